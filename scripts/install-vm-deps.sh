#!/usr/bin/env bash
# Installs what the guest test stage (scripts/vm-run.sh) needs on Debian or
# Ubuntu, and nothing that is already there. Safe to run again.
#
# - qemu-system-x86 runs the guest (KVM where it works, TCG otherwise);
# - virtme-ng boots a kernel with this machine's root filesystem shared
#   read-only, runs one command and returns its exit code. It comes from
#   PyPI into its own virtual environment ($RSYSMON_VM_TOOLS, default
#   /opt/rsysmon/virtme-ng), unless a `vng` is already on PATH;
# - kmod (depmod) indexes the modules of a downloaded kernel; busybox-static
#   builds virtme-ng's initramfs; udev names the guest's virtio-serial ports
#   (/dev/virtio-ports/*), through which virtme-ng passes the command's
#   output and exit code. Installing udev starts nothing on this machine
#   where services are not started (containers), and is already there on
#   an ordinary Debian or Ubuntu system.
set -euo pipefail

tools=${RSYSMON_VM_TOOLS:-/opt/rsysmon/virtme-ng}
virtme_ng_version=1.42
packages=(qemu-system-x86 kmod busybox-static udev file binutils python3 python3-venv)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Any busybox will do for the initramfs.
if [[ " ${missing[*]} " == *" busybox-static "* ]] && command -v busybox >/dev/null 2>&1; then
    missing=("${missing[@]/busybox-static/}")
fi
read -r -a missing <<<"${missing[*]}"

need_vng=0
if ! command -v vng >/dev/null 2>&1 && [[ ! -x $tools/bin/vng ]]; then
    need_vng=1
fi

if ((${#missing[@]} || need_vng)) && [[ $(id -u) -ne 0 ]]; then
    what=("${missing[@]}")
    ((need_vng)) && what+=(virtme-ng)
    echo "rsysmon: missing for the guest tests: ${what[*]}; run this as root (sudo make ...)" >&2
    exit 1
fi

if ((${#missing[@]})); then
    echo "rsysmon: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${missing[@]}"
fi

if ((need_vng)); then
    echo "rsysmon: installing virtme-ng $virtme_ng_version into $tools"
    mkdir -p "$(dirname "$tools")"
    /usr/bin/python3 -m venv "$tools"
    "$tools/bin/pip" install -q --disable-pip-version-check "virtme-ng==$virtme_ng_version"
fi
