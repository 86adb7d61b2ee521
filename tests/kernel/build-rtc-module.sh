#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Debian's amd64 kernel has no I2C RTC drivers (CONFIG_RTC_DRV_DS1307 is not set; the arm64
# kernel of a real node has it built in). The real-kernel tier binds rtc-ds1307 to the stub at
# 0x6f to test the rtc module's kernel path, so this builds that one driver, out of tree, from
# Debian's own linux-source of the guest kernel's exact version, against the matching
# linux-headers, with the same compiler (gcc-12). It runs in a throw-away overlay of the base
# root (nothing is installed on the host or left in the image's root), natively, not under QEMU.
# Usage: build-rtc-module.sh <base root>; prints the path of the cached rtc-ds1307.ko.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
base_root=$1
kver=$(ls "$base_root/lib/modules")
# shellcheck disable=SC2016 # ${Version} is dpkg-query's, not the shell's
pkgver=$(chroot "$base_root" dpkg-query -W -f='${Version}' "linux-image-$kver")
key=$( { echo "$kver $pkgver"; cat "$TP_KERNEL_DIR/build-rtc-module.sh"; } | sha256sum | cut -c1-16)
out=$TP_KERNEL_TMP/rtc-ds1307-$key.ko
if [ -f "$out" ]; then echo "$out"; exit 0; fi
work=$(mktemp -d "$TP_KERNEL_TMP/rtcmod.XXXXXX")
merged=$work/merged
cleanup() {
    awk -v r="$merged" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/upper" "$work/work" "$merged"
mount -t overlay overlay -o "lowerdir=$base_root,upperdir=$work/upper,workdir=$work/work" "$merged"
mount -t proc proc "$merged/proc"
cp /etc/resolv.conf "$merged/etc/resolv.conf"
in_root() { chroot "$merged" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }
tp_log "building rtc-ds1307 for $kver ($pkgver) from Debian's linux-source" >&2
{
    in_root apt-get update -qq
    in_root apt-get install -y -qq --no-install-recommends gcc make libc6-dev xz-utils \
        "linux-headers-$kver=$pkgver" "linux-source-${kver%%.0-*}=$pkgver"
} > "$work/apt.log" 2>&1 || { tail -20 "$work/apt.log" >&2; exit 1; }
mkdir -p "$merged/build"
tar -xJf "$merged/usr/src/linux-source-${kver%%.0-*}.tar.xz" -C "$merged/build" --strip-components=3 \
    "linux-source-${kver%%.0-*}/drivers/rtc/rtc-ds1307.c"
echo 'obj-m := rtc-ds1307.o' > "$merged/build/Makefile"
in_root make -C "/usr/src/linux-headers-$kver" M=/build modules > "$work/make.log" 2>&1 \
    || { tail -30 "$work/make.log" >&2; exit 1; }
in_root modinfo -F vermagic /build/rtc-ds1307.ko | grep -q "^$kver " \
    || { echo "build-rtc-module: vermagic does not match $kver" >&2; exit 1; }
cp "$merged/build/rtc-ds1307.ko" "$out.tmp" && mv "$out.tmp" "$out"
for old in "$TP_KERNEL_TMP"/rtc-ds1307-*.ko; do [ "$old" = "$out" ] || rm -f "$old"; done
echo "$out"
