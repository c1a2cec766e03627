#!/usr/bin/env bash
# Fetches a Debian kernel package for the guest test stage, unpacks it into a
# cache and prints the path of its vmlinuz.
#
#   scripts/vm-kernel.sh                        newest linux-image-6.1.0-*-amd64
#   scripts/vm-kernel.sh linux-image-6.1.0-57-cloud-amd64
#   scripts/vm-kernel.sh 6.1.0-57-rt-amd64      (the same, without the prefix)
#
# The package comes from the apt sources of this machine (`apt-get download`,
# no installation); its boot/ and lib/modules/ are unpacked under
# $RSYSMON_VM_CACHE (default /var/tmp/rsysmon-vm)/<package>/, which is what
# virtme-ng expects: it finds the modules next to the kernel image. A kernel
# already in the cache is used as it is, without asking apt again, unless the
# newest kernel is asked for: then apt decides which one that is, and the
# newest cached one is used only if apt cannot answer.
set -euo pipefail

cache=${RSYSMON_VM_CACHE:-/var/tmp/rsysmon-vm}
say() { echo "vm-kernel: $*" >&2; }

# The package name for an argument, or the newest Debian 12 6.1 kernel.
newest_from_apt() {
    apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' 2>/dev/null |
        awk '{print $1}' | sort -V | tail -n1
}

newest_cached() {
    local d
    for d in "$cache"/linux-image-6.1.0-*-amd64; do
        [[ -d $d && $d =~ /linux-image-6\.1\.0-[0-9]+-amd64$ ]] && basename "$d"
    done | sort -V | tail -n1
}

vmlinuz_of() {
    local f
    for f in "$cache/$1"/boot/vmlinuz-*; do
        [[ -f $f ]] && { echo "$f"; return 0; }
    done
    return 1
}

if (($# > 1)); then
    echo "usage: $0 [linux-image-PACKAGE | KERNEL-RELEASE]" >&2
    exit 2
fi

if (($# == 1)); then
    pkg=$1
    [[ $pkg == linux-image-* ]] || pkg=linux-image-$pkg
    if vmlinuz_of "$pkg" 2>/dev/null; then
        exit 0
    fi
else
    pkg=$(newest_from_apt)
    if [[ -z $pkg && $(id -u) -eq 0 ]]; then
        # A fresh machine may never have run `apt-get update`.
        apt-get update -qq >&2 || true
        pkg=$(newest_from_apt)
    fi
    if [[ -z $pkg ]]; then
        pkg=$(newest_cached)
        [[ -n $pkg ]] || {
            say "no linux-image-6.1.0-*-amd64 package found by apt-cache, and none cached in $cache"
            exit 1
        }
        say "apt knows no 6.1 kernel; using the cached $pkg"
    fi
    if vmlinuz_of "$pkg" 2>/dev/null; then
        exit 0
    fi
fi

if [[ ! $pkg =~ ^linux-image-[0-9][A-Za-z0-9.+-]*$ ]]; then
    say "not a kernel package name: $pkg"
    exit 2
fi

mkdir -p "$cache"
# Download and unpack in a private directory, then rename it into place, so
# that two runs fetching the same kernel never see half of it.
work=$(mktemp -d "$cache/.fetch.XXXXXX")
trap 'rm -rf "$work"' EXIT
chmod 755 "$work" # apt downloads as its own user where it can
say "downloading $pkg"
if ! (cd "$work" && apt-get download -q "$pkg" >&2); then
    # The package lists may be missing or old on a fresh machine.
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq >&2 || true
        (cd "$work" && apt-get download -q "$pkg" >&2) || {
            say "apt-get download $pkg failed"
            exit 1
        }
    else
        say "apt-get download $pkg failed (run as root to refresh the package lists)"
        exit 1
    fi
fi
deb=$(ls "$work"/*.deb)
mkdir "$work/root"
dpkg-deb -x "$deb" "$work/root"
rm -f "$deb"
if ! ls "$work"/root/boot/vmlinuz-* >/dev/null 2>&1; then
    say "$pkg holds no boot/vmlinuz-*: is it a kernel image package?"
    exit 1
fi
if ! mv -T "$work/root" "$cache/$pkg" 2>/dev/null; then
    # Another run unpacked it meanwhile; theirs is as good as ours.
    [[ -d $cache/$pkg ]] || { say "cannot move the kernel into $cache/$pkg"; exit 1; }
fi
vmlinuz_of "$pkg"
