# SPDX-License-Identifier: GPL-3.0-or-later
# Sourced by the scripts of the real-kernel tier (tests/kernel): where the guest lives.
# shellcheck shell=bash
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../lib" && pwd)/env.sh"
TP_KERNEL_DIR=$TP_ROOT/tests/kernel
TP_KERNEL_TMP=$TP_TMP/kernel
export TP_KERNEL_DIR TP_KERNEL_TMP
# Debian packages of the guest root (debootstrap --variant=minbase --include=...).
TP_GUEST_SUITE=bookworm
TP_GUEST_MIRROR=${TP_GUEST_MIRROR:-http://deb.debian.org/debian}
# The last three serve the network-boot step (nfs-roots.yml): the master's kernel NFS server and
# what turingpi.cluster.netboot_root runs there (rsync, ssh-keygen).
TP_GUEST_PACKAGES=linux-image-amd64,initramfs-tools,kmod,systemd,systemd-sysv,udev,openssh-server,python3,python3-smbus2,i2c-tools,procps,iproute2,nfs-kernel-server,rsync,openssh-client
# The base root (slow: debootstrap) is keyed by what goes into it; the image (fast) by the build
# script and the guest's own files, so editing either rebuilds only what it affects.
tp_base_key() {
    printf '%s\n' "$TP_GUEST_SUITE" "$TP_GUEST_PACKAGES" | cat - "$TP_KERNEL_DIR/build-base.sh" | sha256sum | cut -c1-16
}
tp_image_key() {
    { tp_base_key; cat "$TP_KERNEL_DIR/build-image.sh" "$TP_KERNEL_DIR/build-rtc-module.sh";
      (cd "$TP_KERNEL_DIR/guest" && find . -type f | LC_ALL=C sort | xargs sha256sum); } | sha256sum | cut -c1-16
}
tp_log() { echo "[$(date +%H:%M:%S)] $*"; }
