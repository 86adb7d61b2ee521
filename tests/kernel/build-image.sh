#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Stage 2 of the guest: the bootable image of the real-kernel tier, in $TP_TMP/kernel/image-<key>/:
#   rootfs.img   ext4 root (mke2fs -d), never booted directly: each run boots a qcow2 overlay
#   vmlinuz, initrd.img   the guest's own Debian kernel and its small initrd (MODULES=list)
#   ssh_host_ed25519_key.pub   the guest's host key, for a strict known_hosts file
# The root also gets rtc-ds1307.ko, built by build-rtc-module.sh (cached apart).
# The key hashes the base root's key, this script and tests/kernel/guest/, so a second run reuses
# the image. Prints the image directory.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mkdir -p "$TP_KERNEL_TMP"
exec 9>"$TP_KERNEL_TMP/build.lock"
flock -w 1200 9 || { echo "build-image: another build held $TP_KERNEL_TMP/build.lock for 20 min" >&2; exit 1; }

base_root=$("$TP_KERNEL_DIR/build-base.sh")
key=$(tp_image_key)
image=$TP_KERNEL_TMP/image-$key
if [ -f "$image/.done" ]; then echo "$image"; exit 0; fi
tp_log "building guest image $key" >&2
work=$TP_KERNEL_TMP/work-$key
root=$work/root
cleanup() {
    awk -v r="$root" 'index($2, r) == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
rm -rf "$work" "$image"
mkdir -p "$work" "$image.tmp"
cp -a "$base_root" "$root"
cp -a "$TP_KERNEL_DIR/guest/." "$root/"

# Identity, no DNS (a resolver that does not answer costs seconds per fact gathering), no fsck.
echo tp-kernel-guest > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\ttp-kernel-guest\n' > "$root/etc/hosts"
printf '# no DNS in the test guest: localhost answers at once with a refusal\nnameserver 127.0.0.1\noptions timeout:1 attempts:1\n' > "$root/etc/resolv.conf"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 0\n' > "$root/etc/fstab"

mount -t proc proc "$root/proc"
in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }
# The MCP7940N's kernel driver, which Debian's amd64 kernel lacks (build-rtc-module.sh).
ko=$("$TP_KERNEL_DIR/build-rtc-module.sh" "$base_root")
kver=$(ls "$root/lib/modules")
install -D -m 0644 "$ko" "$root/lib/modules/$kver/updates/rtc-ds1307.ko"
in_root depmod -a "$kver"
in_root systemctl enable --quiet tp-net.service tp-authorized-key.service tp-test-crystal.service
# Nothing in the guest waits for the network or wakes up on a timer during a test.
in_root systemctl mask --quiet systemd-networkd.service systemd-networkd-wait-online.service getty-static.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer 2>/dev/null || true
in_root systemctl set-default --quiet multi-user.target
# The NFS server is off at boot: the network-boot step starts it through the netboot role, as on
# a master (and the boot stays as short as before).
in_root systemctl disable --quiet nfs-server.service
[ -f "$root/etc/ssh/ssh_host_ed25519_key" ] || in_root ssh-keygen -A >/dev/null
in_root update-initramfs -u -k all >"$work/initramfs.log" 2>&1 || { cat "$work/initramfs.log" >&2; exit 1; }
umount "$root/proc"

kernel=$(find "$root/boot" -maxdepth 1 -name 'vmlinuz-*' | sort | tail -1)
[ -n "$kernel" ] || { echo "build-image: no kernel in the guest root" >&2; exit 1; }
cp "$kernel" "$image.tmp/vmlinuz"
cp "$root/boot/initrd.img-${kernel##*/vmlinuz-}" "$image.tmp/initrd.img"
cp "$root/etc/ssh/ssh_host_ed25519_key.pub" "$image.tmp/"
basename "$kernel" > "$image.tmp/kernel-version"
# Checked here rather than at boot: the image is useless without these.
for need in usr/lib/python3/dist-packages/smbus2 usr/sbin/i2cset usr/bin/python3 usr/sbin/sshd \
        usr/sbin/exportfs usr/sbin/mount.nfs usr/bin/rsync usr/bin/ssh-keygen; do
    [ -e "$root/$need" ] || { echo "build-image: $need missing from the guest root" >&2; exit 1; }
done
mke2fs -q -t ext4 -L tp-guest -d "$root" "$image.tmp/rootfs.img" 2G >/dev/null
mv "$image.tmp" "$image"
touch "$image/.done"
for old in "$TP_KERNEL_TMP"/image-????????????????; do [ "$old" = "$image" ] || rm -rf "$old"; done
tp_log "guest image ready: $(du -sh --apparent-size "$image/rootfs.img" | cut -f1) apparent, initrd $(du -sh "$image/initrd.img" | cut -f1)" >&2
echo "$image"
