#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Stage 1 of the guest: a Debian bookworm minbase root with the kernel, systemd, sshd, python3,
# i2c-tools and smbus2 (Debian's python3-smbus2), in $TP_TMP/kernel/base-<key>/root.
# Reused while the package list and this script are unchanged. Prints the root's path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
key=$(tp_base_key)
base=$TP_KERNEL_TMP/base-$key
if [ -f "$base/.done" ]; then echo "$base/root"; exit 0; fi
mkdir -p "$TP_KERNEL_TMP/debs"
rm -rf "$base" && mkdir -p "$base"
cleanup() {
    # debootstrap mounts proc/sys inside the target; never leave them behind.
    awk -v r="$base/root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
}
trap cleanup EXIT
tp_log "debootstrap $TP_GUEST_SUITE minbase + $TP_GUEST_PACKAGES (a few minutes)" >&2
if ! debootstrap --variant=minbase --include="$TP_GUEST_PACKAGES" --cache-dir="$TP_KERNEL_TMP/debs" \
        "$TP_GUEST_SUITE" "$base/root" "$TP_GUEST_MIRROR" > "$base/debootstrap.log" 2>&1; then
    tail -20 "$base/debootstrap.log" >&2
    [ -f "$base/root/debootstrap/debootstrap.log" ] && tail -20 "$base/root/debootstrap/debootstrap.log" >&2
    exit 1
fi
rm -rf "$base/root/var/cache/apt/archives/"*.deb "$base/root/var/lib/apt/lists/"*_Packages
touch "$base/.done"
# Only one base is kept.
for old in "$TP_KERNEL_TMP"/base-????????????????; do [ "$old" = "$base" ] || rm -rf "$old"; done
echo "$base/root"
