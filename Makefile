# The two commands a newcomer needs:
#   sudo make run    install what is missing, build, watch the system
#   sudo make test   install what is missing, build, run every test: on this
#                    machine's kernel, then on Debian 12's in a QEMU guest
#
# Under sudo, root's PATH usually lacks the invoking user's rustup toolchain;
# look for it there too.
CARGO ?= $(shell command -v cargo 2>/dev/null || ls $${SUDO_USER:+/home/$$SUDO_USER/.cargo/bin/cargo} /root/.cargo/bin/cargo 2>/dev/null | head -n1 || echo cargo)
export CARGO

.PHONY: all deps vm-deps build run test test-host test-guest test-kernels bench clean

all: build

deps:
	@scripts/install-deps.sh

# QEMU and virtme-ng, for the tests under other kernels.
vm-deps:
	@scripts/install-vm-deps.sh

build: deps
	$(CARGO) build --release --workspace

run: build
	./target/release/rsysmon run

# Everything: the tests on this machine's kernel, then the guest stage under
# Debian 12's stock kernel (docs/kernels.md).
test: test-host
	@$(MAKE) --no-print-directory test-guest

# Formatting and lints first (rustfmt.toml; every clippy warning is an
# error), then unit and root integration tests. The integration tests load
# the real probes: run as root. RSYSMON_SKIP_ROOT_TESTS=1 skips them on purpose.
test-host: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) test --workspace --release --no-fail-fast

# The tests of scripts/guest-tests.list in a QEMU guest running the newest
# Debian 12 kernel (linux-image-6.1.0-*-amd64).
test-guest: deps vm-deps
	scripts/test-kernels.sh

# The same under any Debian kernel packages, e.g.
#   make test-kernels KERNELS="linux-image-6.1.0-57-amd64 linux-image-6.1.0-57-cloud-amd64"
test-kernels: deps vm-deps
	scripts/test-kernels.sh $(KERNELS)

# Benchmarks (BENCHMARKS.md); e.g. `sudo make bench BENCH_ARGS=--quick`.
bench: build
	bench/run.sh $(BENCH_ARGS)

clean:
	$(CARGO) clean
