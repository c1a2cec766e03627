# The two commands a newcomer needs:
#   sudo make run    install what is missing, build, watch the system
#   sudo make test   install what is missing, build, run every test
#
# Under sudo, root's PATH usually lacks the invoking user's rustup toolchain;
# look for it there too.
CARGO ?= $(shell command -v cargo 2>/dev/null || ls $${SUDO_USER:+/home/$$SUDO_USER/.cargo/bin/cargo} /root/.cargo/bin/cargo 2>/dev/null | head -n1 || echo cargo)
export CARGO

.PHONY: all deps build run test unit bench clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	$(CARGO) build --release --workspace

run: build
	./target/release/rsysmon run

# Formatting and lints first (rustfmt.toml; every clippy warning is an
# error), then unit and root integration tests. The integration tests load
# the real probes: run as root. RSYSMON_SKIP_ROOT_TESTS=1 skips them on purpose.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --release

# Benchmarks (BENCHMARKS.md); e.g. `sudo make bench BENCH_ARGS=--quick`.
bench: build
	bench/run.sh $(BENCH_ARGS)

clean:
	$(CARGO) clean
