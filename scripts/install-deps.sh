#!/usr/bin/env bash
# Installs what building and testing rsysmon needs on Debian or Ubuntu, and
# nothing that is already there. Safe to run again.
set -euo pipefail

# clang compiles the BPF probes; libelf, zlib and pkg-config build the
# vendored libbpf; libclang (a dependency of clang) drives bindgen; gcc and libc6-dev
# build the test programs; gdb and strace are used by the injection tests;
# rsyslog and nats-server are the real destinations the sink tests start
# on loopback (their packaged services are not needed and not started here),
# rsyslog-gnutls its TLS listener and openssl the test's certificates;
# python3 dlopens libraries (ctypes) and util-linux bind-mounts (unshare,
# mount) in the blocking tests.
packages=(clang llvm libelf-dev zlib1g-dev pkg-config make gcc libc6-dev gdb strace rsyslog rsyslog-gnutls openssl nats-server python3 util-linux)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
    if [[ $(id -u) -ne 0 ]]; then
        echo "rsysmon: missing packages: ${missing[*]}; run this as root (sudo make ...)" >&2
        exit 1
    fi
    echo "rsysmon: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

cargo_bin=${CARGO:-cargo}
if ! command -v "$cargo_bin" >/dev/null 2>&1; then
    echo "rsysmon: no Rust toolchain found: install one with rustup (Rust 1.82 or newer), then run this again" >&2
    exit 1
fi

# `make test` checks formatting and lints first: rustfmt and clippy come
# with rustup's default profile; add them if the toolchain is minimal.
if ! "$cargo_bin" fmt --version >/dev/null 2>&1 || ! "$cargo_bin" clippy --version >/dev/null 2>&1; then
    if command -v rustup >/dev/null 2>&1; then
        echo "rsysmon: installing the rustfmt and clippy components"
        rustup component add rustfmt clippy
    else
        echo "rsysmon: cargo fmt and cargo clippy are missing: install the rustfmt and clippy components" >&2
        exit 1
    fi
fi
