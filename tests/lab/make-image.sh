#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# A small stand-in for a Raspberry Pi OS image, for the netboot tests: an MBR disk image with a
# FAT boot partition (bootcode.bin, start.elf, config.txt, cmdline.txt, ...) and an ext4 root
# (fstab with PARTUUID lines, a host name, an SSH host key, a setuid file, a symlink).
# Built without loop devices or root mounts (mkfs.vfat/mtools, mke2fs -d).
# The variant "lab-os" is a bootable one: its root is the lab's Debian root (tests/lab/build-root.sh)
# set up like an OS image (DHCP on eth0 with systemd-networkd, SD card lines in fstab), for the
# virtual Turing Pi's network-boot nodes.
#
#   tests/lab/make-image.sh VARIANT   # prints $TP_TMP/lab/images/VARIANT.img; the files are
#                                     # also kept in $TP_TMP/lab/images/VARIANT/{boot,root}
#                                     # (lab-os: boot only)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/env.sh"
variant=${1:?usage: make-image.sh VARIANT}
dir=$TP_TMP/lab/images/$variant
img=$TP_TMP/lab/images/$variant.img
stamp=$0
if [ "$variant" = lab-os ]; then
    labroot=$("$here/build-root.sh")
    stamp=$labroot/.complete
fi
[ -f "$img" ] && [ "$img" -nt "$0" ] && [ "$img" -nt "$stamp" ] && { echo "$img"; exit 0; }
rm -rf "$dir" && mkdir -p "$dir/boot/overlays" "$dir/root"
b=$dir/boot r=$dir/root
# Deterministic "firmware" per variant.
python3 -c "import random,sys; random.seed(sys.argv[1]); sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(52000)))" "bootcode-$variant" > "$b/bootcode.bin"
python3 -c "import random,sys; random.seed(sys.argv[1]); sys.stdout.buffer.write(bytes(random.getrandbits(8) for _ in range(300000)))" "start-$variant" > "$b/start.elf"
echo "fixup $variant" > "$b/fixup.dat"
echo "kernel $variant" > "$b/kernel8.img"
echo "overlay" > "$b/overlays/i2c-rtc.dtbo"
printf 'arm_64bit=1\ndtparam=audio=on\n' > "$b/config.txt"
echo "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait" > "$b/cmdline.txt"
if [ "$variant" = lab-os ]; then
    cp -a "$labroot/." "$r/"
    rm -f "$r/.complete"
    # An OS image brings up its network by itself: DHCP on eth0 (the address the master's
    # dnsmasq keeps for the module's MAC). KeepConfiguration: the lab's management address stays.
    # IPv4 only, like the lab's namespaces: waiting for an IPv6 link-local address that never
    # comes would keep the link "configuring" and the machine "starting".
    chroot "$r" systemctl unmask systemd-networkd.service >/dev/null 2>&1
    chroot "$r" systemctl enable systemd-networkd.service >/dev/null 2>&1
    mkdir -p "$r/etc/systemd/network"
    printf '[Match]\nName=eth0\n\n[Network]\nDHCP=ipv4\nLinkLocalAddressing=no\nIPv6AcceptRA=no\nKeepConfiguration=yes\n\n[DHCPv4]\nUseHostname=no\n' > "$r/etc/systemd/network/10-eth0.network"
    printf 'proc /proc proc defaults 0 0\nPARTUUID=4e639091-01 /boot/firmware vfat defaults 0 2\nPARTUUID=4e639091-02 / ext4 defaults,noatime 0 1\n' > "$r/etc/fstab"
    echo raspberrypi > "$r/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n' > "$r/etc/hosts"
    echo "$variant" > "$r/etc/tp-image-version"
    root_mib=$(( $(du -sm "$r" | cut -f1) * 13 / 10 + 16 ))
else
    mkdir -p "$r/etc/ssh" "$r/usr/bin" "$r/home/pi" "$r/boot/firmware" "$r/dev" "$r/proc"
    printf '%s\n' 'proc            /proc           proc    defaults          0       0' \
        'PARTUUID=4e639091-01  /boot/firmware  vfat    defaults          0       2' \
        'PARTUUID=4e639091-02  /               ext4    defaults,noatime  0       1' > "$r/etc/fstab"
    echo raspberrypi > "$r/etc/hostname"
    printf '127.0.0.1\tlocalhost\n127.0.1.1\traspberrypi\n' > "$r/etc/hosts"
    echo "IMAGE HOST KEY $variant" > "$r/etc/ssh/ssh_host_ed25519_key"
    echo "$variant" > "$r/etc/tp-image-version"
    printf '#!/bin/sh\necho sudo\n' > "$r/usr/bin/sudo"
    chmod 4755 "$r/usr/bin/sudo"
    ln -s ../usr/bin/sudo "$r/etc/sudo-link"
    chown -R 1000:1000 "$r/home/pi"
    root_mib=16
fi
# One time stamp for every file, as in reproducible image builds: files that differ between
# variants with the same size (etc/tp-image-version) then look alike to a size+time check.
find "$b" "$r" -exec touch -h -d @1700000000 {} +
# Partitions: boot at 1 MiB (16 MiB FAT16), root after it (ext4, 16 MiB for the stand-ins).
mkfs.vfat -n BOOTFS -C "$dir/p1.img" 16384 >/dev/null
(cd "$b" && MTOOLS_SKIP_CHECK=1 mcopy -s -p -i "$dir/p1.img" ./* ::/)
mke2fs -q -t ext4 -L rootfs -d "$r" "$dir/p2.img" "${root_mib}M" >/dev/null
{ head -c 1048576 /dev/zero; cat "$dir/p1.img" "$dir/p2.img"; } > "$img.tmp"
printf 'label: dos\nlabel-id: 0x4e639091\nstart=2048, size=32768, type=c\nstart=34816, size=%d, type=83\n' $((root_mib * 2048)) \
    | sfdisk -q "$img.tmp" 2>/dev/null
rm -f "$dir/p1.img" "$dir/p2.img"
[ "$variant" = lab-os ] && rm -rf "$r"
mv "$img.tmp" "$img"
echo "$img"
