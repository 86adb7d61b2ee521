#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Builds the lab's "node" root: one Debian bookworm tree that every lab machine (the master
# and the nodes) boots from through its own overlay. Built once and cached under
# $TP_TMP/lab/root-<hash of this script>, so editing this file rebuilds it.
#
# Everything the roles install is already in the root: the lab machines have no route to a
# package mirror, so the roles' package tasks must find them installed. The services the
# roles enable are disabled here, so enabling them is a real change the tests can see.
#
#   tests/lab/build-root.sh        # prints the path of the (cached) root
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib/env.sh"

PACKAGES=(
    python3 python3-apt openssh-server iproute2 iputils-ping udhcpc busybox systemd systemd-sysv
    dbus udev sudo ca-certificates procps kmod
    # router role
    nftables dnsmasq chrony
    # netboot role
    nfs-kernel-server tftp-hpa mtools dosfstools fdisk e2fsprogs rsync openssh-client
    # cmb role
    i2c-tools python3-smbus2
)
# Services the roles turn on; off in the root so the roles' work is visible.
DISABLE=(dnsmasq.service chrony.service nfs-server.service nfs-kernel-server.service rpcbind.service
         rpcbind.socket nftables.service)

# Stage 1, the slow one (about 3 minutes): debootstrap, cached by the package list.
pkgkey=$(echo "${PACKAGES[*]}" | sha256sum | cut -c1-12)
base=$TP_TMP/lab/base-$pkgkey
# Stage 2: the lab's own settings on a copy, cached by this whole script.
key=$(sha256sum "$0" | cut -c1-12)
dest=$TP_TMP/lab/root-$key
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi
mkdir -p "$TP_TMP/lab/debs"
exec 9>"$TP_TMP/lab/.build.lock"
flock 9
if [ -f "$dest/.complete" ]; then echo "$dest"; exit 0; fi

if [ ! -f "$base/.complete" ]; then
    rm -rf "$base.tmp"
    mkdir -p "$base.tmp"
    include=$(IFS=,; echo "${PACKAGES[*]}")
    echo "build-root: debootstrap bookworm -> $base (about 3 minutes)" >&2
    if ! debootstrap --variant=minbase --include="$include" --cache-dir="$TP_TMP/lab/debs" \
            bookworm "$base.tmp" http://deb.debian.org/debian >"$TP_TMP/lab/debootstrap.log" 2>&1; then
        tail -20 "$TP_TMP/lab/debootstrap.log" >&2
        exit 1
    fi
    rm -rf "$base.tmp/var/cache/apt/archives/"*.deb "$base.tmp/var/lib/apt/lists/"*
    touch "$base.tmp/.complete"
    mv "$base.tmp" "$base"
    for old in "$TP_TMP"/lab/base-*; do [ "$old" = "$base" ] || rm -rf "$old"; done
fi

rm -rf "$dest.tmp"
cp -a "$base" "$dest.tmp"
rm -f "$dest.tmp/.complete"
r=$dest.tmp
chroot "$r" systemctl disable "${DISABLE[@]}" >/dev/null 2>&1 || true
chroot "$r" systemctl mask systemd-networkd.service systemd-resolved.service >/dev/null 2>&1 || true
chroot "$r" systemctl enable ssh.service >/dev/null 2>&1
# A fresh machine id per machine (systemd-nspawn hands out a transient one when empty).
: > "$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"
# No host DNS server is reachable from the lab: without this every fact gathering waits.
echo "nameserver 127.0.0.1" > "$r/etc/resolv.conf"
# sshd: keys only, root allowed (the lab's Ansible user).
cat > "$r/etc/ssh/sshd_config.d/lab.conf" <<'CFG'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
CFG
# A container must not set the clock (that is the host's clock): Debian's chrony.service is
# skipped without CAP_SYS_TIME. In the lab chronyd runs with -x (serve time, never set it).
mkdir -p "$r/etc/systemd/system/chrony.service.d"
cat > "$r/etc/systemd/system/chrony.service.d/tplab.conf" <<'CFG'
# tests/lab: containers share the host clock; serve time without touching it.
[Unit]
ConditionCapability=
[Service]
ExecStart=
ExecStart=!/usr/sbin/chronyd $DAEMON_OPTS -x
CFG
# A oneshot unit of the lab that runs early at boot: NAME DESCRIPTION COMMAND.
lab_unit() {
    cat > "$r/etc/systemd/system/$1.service" <<CFG
[Unit]
Description=tests/lab: $2
DefaultDependencies=no
Before=systemd-sysctl.service sysinit.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c '$3'
[Install]
WantedBy=sysinit.target
CFG
    chroot "$r" systemctl enable "$1.service" >/dev/null 2>&1
}
# systemd-nspawn leaves /proc/sys read-only when it joins an existing network namespace. Make
# /proc/sys/net writable, and only it: those settings belong to the machine's own namespace,
# everything else under /proc/sys is the host kernel's. systemd-sysctl runs after it.
lab_unit tplab-proc-sys-net "writable /proc/sys/net inside the machine's network namespace" \
    'mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net'
# Loop devices for roles that mount images (netboot): nspawn's /dev has none. The nodes are
# the host's (major 7), allocated by the host kernel through loop-control.
# shellcheck disable=SC2016  # the command runs in the machine's shell, not this one
lab_unit tplab-loop-devices "loop device nodes" \
    '[ -e /dev/loop-control ] || mknod -m 660 /dev/loop-control c 10 237; for i in $(seq 0 63); do [ -e /dev/loop$i ] || mknod -m 660 /dev/loop$i b 7 $i; done'
# No kernel NFS here: the rpc_pipefs mount can only fail.
chroot "$r" systemctl mask run-rpc_pipefs.mount >/dev/null 2>&1
touch "$r/.complete"
mv "$r" "$dest"
# Older roots of this lab are stale: remove those no machine is using.
for old in "$TP_TMP"/lab/root-*; do
    [ "$old" = "$dest" ] || grep -qE "[ ,]lowerdir=${old}[,: ]" /proc/mounts || rm -rf "$old"
done
echo "$dest"
