#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Lab images of the OS families users flash, with each family's real first-boot behaviour, and a
# way to boot such an image file as a lab machine from its own partitions. docs/os-images.md
# says per family what is reproduced and what cannot be (kernel, firmware, CPU).
#
#   tests/lab/os-image.sh build FAMILY        # prints $TP_TMP/lab/os-images/FAMILY.img (cached)
#   tests/lab/os-image.sh families            # the families this script builds
#   tests/lab/os-image.sh fw IMAGE ls|put SRC [NAME]|get NAME|rm NAME
#                                             # the image's firmware partition, as a card reader
#   tests/lab/os-image.sh boot IMAGE NAME     # boot IMAGE (it is written to: boot a copy) as
#                                             # machine NAME; waits for systemd, prints its address
#   tests/lab/os-image.sh exec NAME CMD...    # run CMD inside the machine (the serial console)
#   tests/lab/os-image.sh address NAME        # the address its own DHCP client leased, if any
#   tests/lab/os-image.sh stop NAME           # shut it down, write its firmware partition back
#   tests/lab/os-image.sh status | down       # what runs | stop every machine and the switch
#
# An image is an MBR disk laid out as the family's real one (FAT32 firmware partition, ext4 root,
# fstab by the family's scheme), its root debootstrapped from Debian with the first-boot code of
# ../shared/realworld installed and enabled as the real image has it. It is rebuilt when this
# script or a file of ../shared/realworld changes (the key is a hash of both).
#
# Machines run under systemd-nspawn --boot in a network namespace $TP_OSI_PREFIX-NAME (default
# prefix tpos) whose eth0 is on a bridge in $TP_OSI_PREFIX-sw, where a dnsmasq hands out
# addresses in $TP_OSI_NET.0/24 (default 172.31.78) and answers DNS for nothing. The root
# partition is loop-mounted and is the machine's /; the host kernel has no vfat, so the firmware
# partition is extracted, bound where the image's fstab mounts it, and written back by stop.
# Must run as root.
# shellcheck disable=SC2317  # the functions are reached through main's dispatch and setup_FAMILY
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=../lib/env.sh
. "$here/../lib/env.sh"

RW=${TP_REALWORLD:-$TP_ROOT/../shared/realworld}
OSI=$TP_TMP/lab/os-images
P=${TP_OSI_PREFIX:-tpos}
RUN=$OSI/run-$P
NET=${TP_OSI_NET:-172.31.78}
MIRROR=${TP_DEBIAN_MIRROR:-http://deb.debian.org/debian}
FAMILIES="raspios-bookworm raspios-bullseye raspios-trixie ubuntu-24.04"

die() { echo "os-image: $*" >&2; exit 1; }
log() { echo "os-image: $*" >&2; }
in_root() { local r=$1; shift; chroot "$r" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"; }

# --- families -----------------------------------------------------------------------------
# What each family's root is made of. Packages are Debian's; what only the Raspberry Pi or
# Ubuntu archive has is either installed from ../shared/realworld or missing (docs/os-images.md).
COMMON_PKGS="systemd systemd-sysv libpam-systemd dbus udev openssh-server sudo iproute2 iputils-ping procps less kmod
 adduser netbase ca-certificates python3 python3-apt curl rsync file parted dosfstools fdisk systemd-timesyncd"
# raspi-config (the parts userconf-pi and rename-user call) and userconf-pi's scripts.
RPI_PKGS="whiptail dos2unix kbd"
family_suite() {
    case "$1" in
        raspios-bookworm) echo bookworm ;;
        raspios-bullseye) echo bullseye ;;
        raspios-trixie|ubuntu-24.04) echo trixie ;;
        *) die "unknown family '$1' (families: $FAMILIES)" ;;
    esac
}
# Ubuntu 24.04 is built on trixie: its cloud-init (25.1), netplan (1.1.2) and systemd (257) are
# nearer to what Ubuntu 24.04 runs (cloud-init 25.x, netplan 1.0 with the same wait-online code,
# systemd 255) than bookworm's (22.4, 0.106, 252), and netplan 1.1 decides whether the boot waits
# for the network the way Ubuntu's does (docs/os-images.md, ubuntu-24.04).
family_packages() {
    case "$1" in
        # Bullseye and Bookworm swap with dphys-swapfile; Trixie has rpi-swap (not in Debian).
        raspios-bookworm) echo "$COMMON_PKGS $RPI_PKGS dphys-swapfile network-manager" ;;
        raspios-bullseye) echo "$COMMON_PKGS $RPI_PKGS dphys-swapfile dhcpcd5 network-manager" ;;
        raspios-trixie) echo "$COMMON_PKGS $RPI_PKGS network-manager cloud-init python3-cffi-backend netplan.io" ;;
        ubuntu-24.04) echo "$COMMON_PKGS cloud-init python3-cffi-backend netplan.io systemd-resolved" ;;
    esac
}
# suite_packages SUITE: what the families of SUITE need, together: one debootstrapped root per
# suite; each family's image removes what only the others need (drop_others).
suite_packages() {
    local f n=0
    for f in $FAMILIES; do [ "$(family_suite "$f")" = "$1" ] && n=$((n + 1)); done
    # One family: its own list as it is (the cache key of its root stays what it was).
    if [ "$n" = 1 ]; then
        for f in $FAMILIES; do [ "$(family_suite "$f")" = "$1" ] && family_packages "$f"; done
        return 0
    fi
    for f in $FAMILIES; do
        [ "$(family_suite "$f")" = "$1" ] && family_packages "$f"
    done | tr ' ' '\n' | sed '/^$/d' | LC_ALL=C sort -u | paste -sd' ' -
}
# drop_others ROOT FAMILY: purge the packages of the shared root that FAMILY does not have (their
# own dependencies stay: the image is then a superset of a root debootstrapped for it alone).
drop_others() {
    local r=$1 family=$2 p mine others=()
    mine=" $(family_packages "$family" | tr -s ' \n' '  ') "
    for p in $(suite_packages "$(family_suite "$family")"); do
        [[ $mine == *" $p "* ]] || others+=("$p")
    done
    [ ${#others[@]} = 0 ] || in_root "$r" dpkg --purge "${others[@]}" >/dev/null 2>&1 \
        || die "$family: dpkg --purge ${others[*]} failed"
}

realworld_hash() {
    [ -d "$RW/raspberrypi-sys-mods" ] || die "no ../shared/realworld beside the repository ($RW)"
    (cd "$RW" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16
}
image_key() { { sha256sum "$0" "$REALWORLD_ROOT_PY" | cut -c1-16; realworld_hash; echo "$1"; } | sha256sum | cut -c1-16; }

unmount_under() {  # DIR: unmount whatever is mounted under DIR, deepest first
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done \
        < <(awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r)
}

# base_root SUITE: a debootstrapped root with the packages of the suite's families, cached by
# suite and package list.
base_root() {
    local suite=$1 pkgs key base
    pkgs=$(suite_packages "$suite")
    key=$(echo "$suite $pkgs" | sha256sum | cut -c1-12)
    base=$OSI/base-$suite-$key
    # Families of one suite share the root: one debootstrap at a time per suite.
    exec 9>"$OSI/.base-$suite.lock"
    flock 9
    if [ ! -f "$base/.complete" ]; then
        # A debootstrap that was killed leaves its /proc (and more) mounted in the half-made root.
        unmount_under "$base.tmp"
        rm -rf "$base.tmp"
        mkdir -p "$base.tmp" "$OSI/debs-$suite"
        log "debootstrap $suite -> $base (minutes)"
        local t0=$SECONDS
        # shellcheck disable=SC2086  # one word per package
        if ! debootstrap --variant=minbase --include="$(echo $pkgs | tr ' ' ,)" \
                --cache-dir="$OSI/debs-$suite" "$suite" "$base.tmp" "$MIRROR" >"$OSI/debootstrap-$suite.log" 2>&1; then
            tail -20 "$OSI/debootstrap-$suite.log" >&2
            # Its second stage's mounts (/proc) must not stay on the host.
            unmount_under "$base.tmp"
            die "debootstrap $suite failed (log $OSI/debootstrap-$suite.log)"
        fi
        unmount_under "$base.tmp"
        rm -rf "$base.tmp/var/cache/apt/archives/"*.deb "$base.tmp/var/lib/apt/lists/"*
        touch "$base.tmp/.complete"
        mv "$base.tmp" "$base"
        log "debootstrap $suite: $((SECONDS - t0)) s"
        # Roots of this suite's older package lists go, under this suite's lock. Never another
        # suite's: its debootstrap may be running right now (base-OTHER-KEY.tmp), and its lock
        # is not ours.
        local old
        for old in "$OSI"/base-"$suite"-*; do
            [ "$old" = "$base" ] || [ "$old" = "$base.tmp" ] || { unmount_under "$old"; rm -rf "$old"; }
        done
    fi
    exec 9>&-
    echo "$base"
}

# --- Raspberry Pi OS: what pi-gen and the packages do -------------------------------------
# install_sys_mods ROOT: raspberrypi-sys-mods as its package installs it (debian/*.install,
# *.service, *.default) and enables it (debian/rules: dh_installsystemd enables sshswitch and
# rpi-display-backlight, not regenerate_ssh_host_keys).
install_sys_mods() {
    local r=$1 src=$RW/raspberrypi-sys-mods d f name
    # File by file, as dpkg unpacks them: directories the root lacks are made 0755, and those it
    # has (/etc, /usr) keep their mode (a copy of the tree would give them the source's, 0555
    # in ../shared/realworld, and systemd-hostnamed could not write /etc/machine-info).
    for d in etc lib usr var; do
        [ -d "$src/$d" ] || continue
        (cd "$src" && find "$d" -type d) | while read -r f; do [ -d "$r/$f" ] || mkdir -m 755 "$r/$f"; done
        (cd "$src" && find "$d" ! -type d) | while read -r f; do cp -a --no-preserve=ownership "$src/$f" "$r/$f"; done
    done
    chmod 0440 "$r"/etc/sudoers.d/010_*
    for f in "$src"/debian/raspberrypi-sys-mods.*.service; do
        name=${f##*/raspberrypi-sys-mods.}
        install -m 644 "$f" "$r/lib/systemd/system/$name"
    done
    install -m 644 "$src/debian/raspberrypi-sys-mods.default" "$r/etc/default/raspberrypi-sys-mods"
    in_root "$r" systemctl enable sshswitch.service rpi-display-backlight.service >/dev/null 2>&1
}

# set_fwloc ROOT DIR: get_fw_loc finds the firmware partition from fstab only on an arm dpkg
# architecture and answers /boot elsewhere (the lab is amd64). Set FWLOC to what it finds on
# the board, so sshswitch and userconf-service look where they do there.
set_fwloc() {
    cat >> "$1/etc/default/raspberrypi-sys-mods" <<EOF

# tests/lab/os-image.sh: this lab image is amd64, where get_fw_loc does not read fstab and
# would answer /boot. On an arm board it finds the firmware partition at $2.
FWLOC=$2
EOF
}

# install_userconf ROOT: userconf-pi as debian/install lays it out; its unit is not enabled by
# the package (dh_installsystemd --no-enable). raspi-config, which its scripts call.
install_userconf() {
    local r=$1 src=$RW/userconf-pi file dest
    while read -r file dest; do
        [ -n "$file" ] || continue
        install -D -m "$( [ -x "$src/$file" ] && echo 755 || echo 644)" "$src/$file" "$r/$dest/$file"
    done < "$src/debian/install"
    install -m 644 "$src/debian/userconf-pi.userconfig.service" "$r/lib/systemd/system/userconfig.service"
    install -m 755 "$RW/raspi-config/raspi-config" "$r/usr/bin/raspi-config"
}

# pi_gen_users ROOT: stage1 and stage2 of pi-gen for the first user (FIRST_USER_NAME=pi, no
# FIRST_USER_PASS, as the official images), root without a password.
pi_gen_users() {
    local r=$1 disabled=${2:---disabled-password}
    sed -i 's|^SHELL=/bin/sh|SHELL=/bin/bash|; s|^# SKEL=/etc/skel|SKEL=/etc/skel|' "$r/etc/default/useradd"
    # shellcheck disable=SC2016  # the script runs in the root's shell
    in_root "$r" sh -ec '
        id -u pi >/dev/null 2>&1 || adduser '"$disabled"' --gecos "" pi >/dev/null
        echo "root:root" | chpasswd
        for GRP in input spi i2c gpio; do groupadd -f -r "$GRP"; done
        for GRP in adm dialout cdrom audio users sudo video games plugdev input gpio spi i2c netdev render; do
            getent group "$GRP" >/dev/null || groupadd -r "$GRP"
            adduser pi "$GRP" >/dev/null 2>&1
        done
        usermod --pass="*" root'
}

# pi_gen_ssh ROOT RELEASE: stage2/01-sys-tweaks: ssh off (ENABLE_SSH=0), regenerate_ssh_host_keys
# on where the release's stage enables it (Bookworm; not Trixie), the host keys deleted.
pi_gen_ssh() {
    local r=$1 release=$2
    in_root "$r" systemctl disable ssh >/dev/null 2>&1
    if grep -q 'systemctl enable regenerate_ssh_host_keys' "$RW/pi-gen/$release/stage2/01-sys-tweaks/01-run.sh"; then
        in_root "$r" systemctl enable regenerate_ssh_host_keys >/dev/null 2>&1
    fi
    rm -f "$r/etc/ssh/"ssh_host_*_key*
}

# rename_user ROOT: export-image/01-user-rename: the real `rename-user -f -s`, which enables
# userconfig.service and disables getty@tty1.
rename_user() {
    # Its calls to ps and systemctl is-active fail in a chroot (no /proc, no systemd) as they
    # do in pi-gen's; the script goes on.
    in_root "$1" env SUDO_USER=pi rename-user -f -s >/dev/null 2>"$OSI/rename-user.log"
}

# boot_files FWDIR FAMILY: config.txt and cmdline.txt as the family's release has them, and
# stand-ins for the firmware, kernels and device trees under their real names: the lab runs
# none of them (it cannot run ARM firmware or an ARM kernel).
boot_files() {
    local fw=$1 family=$2 f
    mkdir -p "$fw/overlays"
    for f in "${@:3}"; do
        printf 'tests/lab/os-image.sh stand-in for %s (%s): not executable, the lab cannot run ARM firmware or kernels\n' \
            "$f" "$family" > "$fw/$f"
    done
    echo "stand-in overlays/README: no device tree overlays in the lab image" > "$fw/overlays/README"
    echo "stand-in overlay" > "$fw/overlays/i2c-rtc.dtbo"
}
RPI_FIRMWARE="bootcode.bin start.elf start4.elf start_cd.elf fixup.dat fixup4.dat fixup_cd.dat
 kernel8.img kernel_2712.img initramfs8 initramfs_2712 bcm2710-rpi-cm3.dtb bcm2710-rpi-3-b.dtb
 bcm2710-rpi-3-b-plus.dtb bcm2711-rpi-cm4.dtb bcm2711-rpi-4-b.dtb bcm2712-rpi-5-b.dtb LICENCE.broadcom"

rpi_config_txt() {  # FILE: config.txt of the arm64 image (pi-gen stage1/00-boot-files)
    cat > "$1" <<'EOF'
# For more options and information see
# http://rptl.io/configtxt
# Some settings may impact device functionality. See link above for details

# Uncomment some or all of these to enable the optional hardware interfaces
#dtparam=i2c_arm=on
#dtparam=i2s=on
#dtparam=spi=on

# Enable audio (loads snd_bcm2835)
dtparam=audio=on

# Automatically load overlays for detected cameras
camera_auto_detect=1

# Automatically load overlays for detected DSI displays
display_auto_detect=1

# Automatically load initramfs files, if found
auto_initramfs=1

# Enable DRM VC4 V3D driver
dtoverlay=vc4-kms-v3d
max_framebuffers=2

# Don't have the firmware create an initial video= setting in cmdline.txt.
# Use the kernel's default instead.
disable_fw_kms_setup=1

# Run in 64-bit mode
arm_64bit=1

# Disable compensation for displays with overscan
disable_overscan=1

# Run as fast as firmware / board allows
arm_boost=1

[cm4]
# Enable host mode on the 2711 built-in XHCI USB controller.
# This line should be removed if the legacy DWC2 controller is required
# (e.g. for USB device mode) or if USB support is not required.
otg_mode=1

[cm5]
dtoverlay=dwc2,dr_mode=host

[all]
EOF
}

# pi_gen_finalise ROOT FWDIR: export-image/05-finalise, the parts that change the first boot.
pi_gen_finalise() {
    local r=$1 fw=$2
    sed -i 's/^#\?Storage=.*/Storage=volatile/' "$r/etc/systemd/journald.conf"
    echo "nameserver 8.8.8.8" > "$r/etc/resolv.conf"     # export-image/03-network
    rm -f "$r"/etc/{passwd,group,shadow,gshadow,subuid,subgid}- "$r/var/lib/dbus/machine-id"
    : > "$r/etc/machine-id"
    ln -nsf /proc/mounts "$r/etc/mtab"
    find "$r/var/log/" -type f -exec cp /dev/null {} \;
    echo "Raspberry Pi reference $(date -u +%Y-%m-%d) (tests/lab/os-image.sh lab image)" > "$r/etc/rpi-issue"
    install -m 644 "$r/etc/rpi-issue" "$fw/issue.txt"
}

hostname_raspberrypi() {  # stage1/02-net-tweaks
    echo raspberrypi > "$1/etc/hostname"
    printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n\n127.0.1.1\t\traspberrypi\n' > "$1/etc/hosts"
}

# setup_raspios ROOT FWDIR DISKID FWMNT [RELEASE]: Raspberry Pi OS Lite as pi-gen builds it, the
# stages that decide the first boot, with the firmware partition at FWMNT (/boot/firmware since
# Bookworm, /boot before). RELEASE is the pi-gen of ../shared/realworld to follow (bookworm, also
# for Bullseye; trixie).
setup_raspios() {
    local r=$1 fw=$2 id=$3 fwmnt=$4 release=${5:-bookworm} f
    local pigen=$RW/pi-gen/$release
    # stage1/01-sys-tweaks (Bookworm's fstab; Bullseye's differs only in mounting it on /boot).
    sed "s|/boot/firmware |$fwmnt |" "$pigen/stage1/01-sys-tweaks/files/fstab" > "$r/etc/fstab"
    hostname_raspberrypi "$r"
    mkdir -p "$r$fwmnt"
    if [ "$fwmnt" = /boot/firmware ]; then      # stage1/00-boot-files
        ln -sfn firmware/overlays "$r/boot/overlays"
        for f in cmdline.txt config.txt; do
            printf "DO NOT EDIT THIS FILE\n\nThe file you are looking for has moved to %s\n" "/boot/firmware/${f}" > "$r/boot/$f"
        done
    fi
    install_sys_mods "$r"
    set_fwloc "$r" "$fwmnt"
    install_userconf "$r"
    # stage1/01-sys-tweaks/00-run.sh: adduser --disabled-password (Bookworm) or --disabled-login
    # (Trixie), as the release's script says.
    pi_gen_users "$r" "$(grep -o -- '--disabled-[a-z]*' "$pigen/stage1/01-sys-tweaks/00-run.sh" | head -1)"
    pi_gen_ssh "$r" "$release"
    rename_user "$r"
    if [ "$release" = trixie ]; then
        # stage1/00-boot-files/files/cmdline.txt of pi-gen master (RELEASE=trixie, the commit of
        # ../shared/realworld/pi-gen/trixie): `resize` (rpi-resize) instead of Bookworm's
        # init=/usr/lib/raspberrypi-sys-mods/firstboot.
        echo "console=serial0,115200 console=tty1 root=ROOTDEV rootfstype=ext4 fsck.repair=yes rootwait resize" > "$fw/cmdline.txt"
    else
        # stage1 cmdline.txt with stage2's 07-resize-init.diff; ROOTDEV is filled in below.
        echo "console=serial0,115200 console=tty1 root=ROOTDEV rootfstype=ext4 fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot" > "$fw/cmdline.txt"
    fi
    # export-image/04-set-partuuid
    sed -i "s/BOOTDEV/PARTUUID=${id}-01/; s/ROOTDEV/PARTUUID=${id}-02/" "$r/etc/fstab"
    sed -i "s/ROOTDEV/PARTUUID=${id}-02/" "$fw/cmdline.txt"
}

setup_raspios_bookworm() {  # ROOT FWDIR DISKID
    local r=$1 fw=$2
    setup_raspios "$@" /boot/firmware
    # stage2/02-net-tweaks: NetworkManager, WLAN off until a country is set.
    mkdir -p "$r/var/lib/NetworkManager"
    printf '[main]\nWirelessEnabled=false\n' > "$r/var/lib/NetworkManager/NetworkManager.state"
    # shellcheck disable=SC2086  # one word per file
    boot_files "$fw" raspios-bookworm $RPI_FIRMWARE
    rpi_config_txt "$fw/config.txt"
    pi_gen_finalise "$r" "$fw"
}

setup_raspios_bullseye() {  # ROOT FWDIR DISKID
    local r=$1 fw=$2
    setup_raspios "$@" /boot
    # stage2/02-net-tweaks of Bullseye: `raspi-config nonint do_netconf 1`, dhcpcd as the network
    # (that function is gone from the raspi-config in ../shared/realworld; this is what it did).
    in_root "$r" systemctl disable NetworkManager >/dev/null 2>&1 || true
    in_root "$r" systemctl enable dhcpcd >/dev/null 2>&1
    # shellcheck disable=SC2086  # one word per file
    boot_files "$fw" raspios-bullseye $RPI_FIRMWARE_BULLSEYE
    rpi_config_txt "$fw/config.txt"
    # Bullseye's config.txt has no auto_initramfs and no disable_fw_kms_setup.
    sed -i '/^# Automatically load initramfs/,/^auto_initramfs/d; /^# Don.t have the firmware/,/^disable_fw_kms_setup/d; /^\[cm5\]/,/^dtoverlay=dwc2/d' "$fw/config.txt"
    pi_gen_finalise "$r" "$fw"
}

setup_raspios_trixie() {  # ROOT FWDIR DISKID
    local r=$1 fw=$2 f seed=$RW/pi-gen/trixie/stage2/04-cloud-init
    drop_others "$r" raspios-trixie
    setup_raspios "$@" /boot/firmware trixie
    # stage2/02-net-tweaks (as Bookworm's): NetworkManager, WLAN off until a country is set.
    mkdir -p "$r/var/lib/NetworkManager"
    printf '[main]\nWirelessEnabled=false\n' > "$r/var/lib/NetworkManager/NetworkManager.state"
    rpi_cloud_init_mods "$r"
    # The image's cloud-init orders its network stage as 26.1 renders it for raspberry-pi-os
    # ("validated in current downstream images", canonical/cloud-init#6459); Debian's 25.1 waits
    # for systemd-networkd-wait-online before sysinit.target, which holds the whole boot.
    cloud_init_network_unit "$r"
    # stage2/04-cloud-init/01-run.sh (ENABLE_CLOUD_INIT=1 in the official build): the NoCloud seed
    # files, every key in them commented out, on the firmware partition.
    # shellcheck disable=SC2016  # the text of pi-gen's script
    grep -qF 'files/meta-data "${ROOTFS_DIR}/boot/firmware/meta-data"' "$seed/01-run.sh" \
        || die "pi-gen trixie's 04-cloud-init no longer installs the seed as this script expects"
    for f in meta-data user-data network-config; do install -m 755 "$seed/files/$f" "$fw/$f"; done
    rm -rf "$r/var/lib/cloud" "$r/etc/netplan/"*.yaml
    # shellcheck disable=SC2086  # one word per file
    boot_files "$fw" raspios-trixie $RPI_FIRMWARE
    # stage1/00-boot-files/files/config.txt of pi-gen master: Bookworm's with a [pi5] section.
    rpi_config_txt "$fw/config.txt"
    sed -i '$d' "$fw/config.txt"
    printf '[pi5]\ndtoverlay=nospi10\n\n[all]\n' >> "$fw/config.txt"
    pi_gen_finalise "$r" "$fw"
    # export-image/05-finalise of trixie: machine-id "uninitialized" (systemd's first boot, which
    # openssh's sshd-keygen.service waits for), /boot/issue.txt a link to the firmware's.
    # shellcheck disable=SC2016  # the text of pi-gen's script
    grep -qF 'echo "uninitialized" > "${ROOTFS_DIR}/etc/machine-id"' "$RW/pi-gen/trixie/export-image/05-finalise/01-run.sh" \
        || die "pi-gen trixie's 05-finalise no longer writes machine-id as this script expects"
    echo uninitialized > "$r/etc/machine-id"
    ln -sfn firmware/issue.txt "$r/boot/issue.txt"
}

# cloud_init_network_unit ROOT: cloud-init-network.service as cloud-init's
# systemd/cloud-init-network.service.tmpl renders it for the variants ubuntu (cloud-init 24.4 and
# later, canonical/cloud-init#5772) and raspberry-pi-os (26.1 and later, #6459): Debian's unit but
# for `After=systemd-networkd-wait-online.service`, which the template writes for the other
# variants (debian among them). It goes to /etc/systemd/system, over the package's.
cloud_init_network_unit() {
    local r=$1 unit=$1/usr/lib/systemd/system/cloud-init-network.service
    grep -qx 'After=systemd-networkd-wait-online.service' "$unit" \
        || die "Debian's cloud-init-network.service no longer orders after systemd-networkd-wait-online"
    grep -vx 'After=systemd-networkd-wait-online.service' "$unit" > "$r/etc/systemd/system/cloud-init-network.service"
}

# rpi_cloud_init_mods ROOT: what the Raspberry Pi archive's rpi-cloud-init-mods installs (the
# package is not available here). RPi-Distro/pi-gen commit 311cb500 (2025-10-20, "Move cfg files
# into package and simplify runsh") deleted stage2/04-cloud-init/files/99_raspberry-pi.cfg and
# files/00-network-manager-all.yaml with the 01-run.sh lines that installed them, and added
# rpi-cloud-init-mods to 00-packages: the two files below are as pi-gen had them then.
rpi_cloud_init_mods() {
    local r=$1
    install -d "$r/etc/cloud/cloud.cfg.d" "$r/usr/lib/netplan"
    cat > "$r/etc/cloud/cloud.cfg.d/99_raspberry-pi.cfg" <<'EOF'
# configure cloud-init with NoCloud

datasource_list: [ NoCloud, None ]
datasource:
  NoCloud:
    seedfrom: file:///boot/firmware

# Leave SSH key emission to console disabled so that
# users can decide whether to enable it manually.
ssh:
  emit_keys_to_console: false
no_ssh_fingerprints: true

# Disable SSH host key generation
# regenerate_ssh_host_keys.service will take care 
# of it on first boot
ssh_deletekeys: false
# Disable generation as it could be that the new keys
# aren't available yet when the service runs.
# also they are really only needed for the ssh service
# which will only run after the keys are already present
# so we don't schedule cloud-init after key generation
# as that would delay first boot too much
ssh_genkeytypes: []
EOF
    # Netplan hands every device to NetworkManager (pi-gen put it in /lib/netplan, mode 600).
    printf 'network:\n  version: 2\n  renderer: NetworkManager\n' > "$r/usr/lib/netplan/00-network-manager-all.yaml"
    chmod 600 "$r/usr/lib/netplan/00-network-manager-all.yaml"
    # The image's cloud-init is built for the raspberry-pi-os variant (cloud-init 25.2 and later);
    # Debian's 25.1 here knows only "debian" (default user debian). This is the system_info that
    # cloud-init's config/cloud.cfg.tmpl renders for raspberry-pi-os, on the distro debian.
    cat > "$r/etc/cloud/cloud.cfg.d/05_raspberry-pi-os.cfg" <<'EOF'
# tests/lab/os-image.sh: the system_info of cloud.cfg as cloud-init 25.2+ renders it for the
# raspberry-pi-os variant (this root has Debian's cloud-init 25.1, variant debian).
system_info:
  default_user:
    name: pi
    lock_passwd: True
    gecos: Raspberry Pi OS
    groups: [adm, dialout, cdrom, audio, users, sudo, video, games, plugdev, input, gpio, spi, i2c, netdev, render, lpadmin]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
  network:
    renderers: ['netplan', 'network-manager']
    activators: ['netplan', 'network-manager']
EOF
}

# unit_text NAME: the bytes constant NAME of the unit tests' realworld_root.py (Ubuntu's seed and
# datasource setting are written there once, for both the unit tests' image and this one).
REALWORLD_ROOT_PY=$TP_ROOT/tests/unit/plugins/module_utils/realworld_root.py
unit_text() {
    python3 - "$REALWORLD_ROOT_PY" "$1" <<'EOF'
import ast
import sys

for node in ast.parse(open(sys.argv[1]).read()).body:
    if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == sys.argv[2] for t in node.targets):
        sys.stdout.buffer.write(ast.literal_eval(node.value))
        break
else:
    sys.exit('%s: no %s' % (sys.argv[1], sys.argv[2]))
EOF
}

# --- Ubuntu Server for Raspberry Pi, from Debian packages ------------------------------------
# What the Ubuntu 24.04 preinstalled server image has for its first boot: cloud-init's NoCloud
# seed on the system-boot partition (found by its label), netplan rendering for
# systemd-networkd, the default user ubuntu whose password "ubuntu" expires at first login.
setup_ubuntu_24_04() {  # ROOT FWDIR DISKID
    local r=$1 fw=$2
    drop_others "$r" ubuntu-24.04
    printf 'LABEL=writable\t/\text4\tdiscard,errors=remount-ro\t0\t1\nLABEL=system-boot\t/boot/firmware\tvfat\tdefaults\t0\t1\n' > "$r/etc/fstab"
    mkdir -p "$r/boot/firmware"
    echo ubuntu > "$r/etc/hostname"
    printf '127.0.0.1 localhost\n\n::1 ip6-localhost ip6-loopback\nfe00::0 ip6-localnet\nff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n' > "$r/etc/hosts"
    # Ubuntu's /etc/cloud/cloud.cfg names the default user and the distro; Debian's names
    # "debian". The groups are Ubuntu's (lxd made here: Ubuntu has it, Debian does not).
    in_root "$r" groupadd -r lxd
    cat > "$r/etc/cloud/cloud.cfg.d/05_ubuntu.cfg" <<'EOF'
# tests/lab/os-image.sh: the system_info of Ubuntu's cloud.cfg (this root is Debian's cloud-init).
system_info:
  distro: ubuntu
  default_user:
    name: ubuntu
    lock_passwd: True
    gecos: Ubuntu
    groups: [adm, cdrom, dip, lxd, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
  network:
    renderers: ['netplan', 'eni', 'sysconfig']
    activators: ['netplan', 'eni', 'network-manager', 'networkd']
  ssh_svcname: ssh
EOF
    # The raspi image's own datasource setting: NoCloud, seed on the partition labelled system-boot.
    unit_text UBUNTU_FAKE_CLOUD > "$r/etc/cloud/cloud.cfg.d/99-fake_cloud.cfg"
    # Ubuntu Server: systemd-networkd (what netplan renders for; enabling it enables
    # systemd-networkd-wait-online too, as on Ubuntu) and resolved; ssh on; no host keys
    # (cloud-init makes them on the first boot).
    in_root "$r" systemctl enable systemd-networkd systemd-resolved ssh >/dev/null 2>&1
    # cloud-init-network.service as cloud-init renders it for the variant ubuntu (24.4 and later,
    # canonical/cloud-init#5772). Whether the boot waits for the network is then netplan's
    # decision (its drop-in for systemd-networkd-wait-online: docs/os-images.md).
    cloud_init_network_unit "$r"
    rm -f "$r/etc/ssh/"ssh_host_*_key* "$r/etc/netplan/"*.yaml
    in_root "$r" usermod --pass='*' root
    # The seed the image ships on system-boot.
    unit_text UBUNTU_USER_DATA > "$fw/user-data"
    unit_text UBUNTU_META_DATA > "$fw/meta-data"
    unit_text UBUNTU_NETWORK_CONFIG > "$fw/network-config"
    # shellcheck disable=SC2086  # one word per file
    boot_files "$fw" ubuntu-24.04 $UBUNTU_FIRMWARE
    cat > "$fw/config.txt" <<'EOF'
[all]
kernel=vmlinuz
cmdline=cmdline.txt
initramfs initrd.img followkernel

[pi4]
max_framebuffers=2
arm_boost=1

[all]
# Enable the audio output, I2C and SPI interfaces on the GPIO header. As these
# parameters related to the base device-tree they must appear *before* any
# other dtoverlay= specification
dtparam=audio=on
dtparam=i2c_arm=on
dtparam=spi=on

# Comment out the following line if the edges of the desktop appear outside
# the edges of your display
disable_overscan=1

# Enable the serial pins
enable_uart=1

# Autoload overlays for any recognized cameras or displays that are attached
# to the CSI/DSI ports. Please note this is for libcamera support, *not* for
# the legacy camera stack
camera_auto_detect=1
display_auto_detect=1

# Config settings specific to arm64
arm_64bit=1
dtoverlay=dwc2

[cm4]
# Enable the USB2 outputs on the IO board (assuming your CM4 is plugged into
# such a board)
dtoverlay=dwc2,dr_mode=host

[all]
EOF
    echo "console=serial0,115200 multipath=off dwc_otg.lpm_enable=0 console=tty1 root=LABEL=writable rootfstype=ext4 rootwait fixrtc quiet splash" > "$fw/cmdline.txt"
    : > "$r/etc/machine-id"
    rm -f "$r/var/lib/dbus/machine-id"
    rm -rf "$r/var/lib/cloud"
    find "$r/var/log/" -type f -exec cp /dev/null {} \;
}
UBUNTU_FIRMWARE="bootcode.bin start.elf start4.elf fixup.dat fixup4.dat vmlinuz initrd.img
 bcm2710-rpi-cm3.dtb bcm2710-rpi-3-b.dtb bcm2710-rpi-3-b-plus.dtb bcm2711-rpi-cm4.dtb bcm2711-rpi-4-b.dtb
 bcm2712-rpi-5-b.dtb"
RPI_FIRMWARE_BULLSEYE="bootcode.bin start.elf start4.elf start_cd.elf fixup.dat fixup4.dat fixup_cd.dat
 kernel8.img bcm2710-rpi-cm3.dtb bcm2710-rpi-3-b.dtb bcm2710-rpi-3-b-plus.dtb bcm2711-rpi-cm4.dtb
 bcm2711-rpi-4-b.dtb LICENCE.broadcom"

# --- the disk -------------------------------------------------------------------------------
# make_disk ROOT FWDIR IMAGE DISKID BOOTLABEL ROOTLABEL: the layout of pi-gen's export-image
# (8 MiB alignment, a 512 MiB FAT32 firmware partition, type c, then ext4 sized to the root plus
# 20 % and 200 MiB), built without loop devices (mkfs.vfat -C and mtools, mke2fs -d).
make_disk() {
    local r=$1 fw=$2 img=$3 id=$4 bootlabel=$5 rootlabel=$6 align=$(($7 * 1024 * 1024))
    local boot=$((512 * 1024 * 1024)) rootsize margin rootpart
    rootsize=$(du -x --apparent-size -s --block-size=1 --exclude=var/cache/apt/archives "$r" | cut -f1)
    margin=$((rootsize / 5 + 200 * 1024 * 1024))
    rootpart=$(( (rootsize + margin + align - 1) / align * align ))
    rm -f "$img.p1" "$img.p2" "$img.tmp"
    mkfs.vfat -F 32 -s 4 -n "$bootlabel" -i "$id" -C "$img.p1" $((boot / 1024)) >/dev/null
    (cd "$fw" && MTOOLS_SKIP_CHECK=1 mcopy -s -p -m -i "$img.p1" ./* ::/)
    truncate -s $((rootpart / 1024))k "$img.p2"
    mke2fs -q -F -t ext4 -L "$rootlabel" -O ^64bit,^huge_file -d "$r" "$img.p2" $((rootpart / 1024))k
    truncate -s $((align + boot + rootpart)) "$img.tmp"
    dd if="$img.p1" of="$img.tmp" bs=4M seek=$align oflag=seek_bytes conv=notrunc,sparse status=none
    dd if="$img.p2" of="$img.tmp" bs=4M seek=$((align + boot)) oflag=seek_bytes conv=notrunc,sparse status=none
    printf 'label: dos\nlabel-id: 0x%s\nstart=%d, size=%d, type=c\nstart=%d, size=%d, type=83\n' \
        "$id" $((align / 512)) $((boot / 512)) $(((align + boot) / 512)) $((rootpart / 512)) \
        | sfdisk -q "$img.tmp" >/dev/null 2>&1
    rm -f "$img.p1" "$img.p2"
    mv "$img.tmp" "$img"
}

build() {
    local family=$1 suite key img base work r fw id t0=$SECONDS
    suite=$(family_suite "$family")
    key=$(image_key "$family")
    img=$OSI/$family.img
    if [ -f "$img" ] && [ "$(cat "$OSI/$family.key" 2>/dev/null)" = "$key" ]; then echo "$img"; return 0; fi
    mkdir -p "$OSI"
    exec 8>"$OSI/.build-$family.lock"
    flock 8
    if [ -f "$img" ] && [ "$(cat "$OSI/$family.key" 2>/dev/null)" = "$key" ]; then echo "$img"; return 0; fi
    declare -F "setup_${family//[-.]/_}" >/dev/null || die "$family: not built yet (docs/os-images.md says why)"
    base=$(base_root "$suite")
    work=$OSI/work-$family
    rm -rf "$work"
    mkdir -p "$work/fw"
    r=$work/root fw=$work/fw
    cp -a "$base" "$r"
    rm -f "$r/.complete"
    id=${key:0:8}
    "setup_${family//[-.]/_}" "$r" "$fw" "$id"
    make_disk "$r" "$fw" "$img" "$id" "$(family_labels "$family" boot)" "$(family_labels "$family" root)" \
        "$(family_labels "$family" align)"
    echo "$key" > "$OSI/$family.key"
    rm -rf "$work"
    log "$family: built in $((SECONDS - t0)) s, $(du -h --apparent-size "$img" | cut -f1) ($(du -h "$img" | cut -f1) on disk)"
    echo "$img"
}
family_labels() {
    case "$1:$2" in
        ubuntu-*:boot) echo system-boot ;;
        ubuntu-*:root) echo writable ;;
        ubuntu-*:align) echo 1 ;;
        *:align) echo 8 ;;
        *:boot) echo bootfs ;;
        *:root) echo rootfs ;;
    esac
}

# --- an image's partitions from outside -------------------------------------------------------
# part IMAGE TYPES: "START SIZE" (in sectors) of the first partition whose MBR type is in TYPES.
part() {
    sfdisk -d "$1" 2>/dev/null | sed -n 's/.*start= *\([0-9]*\), *size= *\([0-9]*\), *type=\([0-9a-f]*\).*/\1 \2 \3/p' \
        | awk -v types=" $2 " 'index(types, " " $3 " ") { print $1, $2; exit }'
}
fw_part() { part "$1" "c b e"; }
fw_spec() {  # IMAGE: the mtools "image@@offset" of its firmware partition
    local start size
    read -r start size < <(fw_part "$1") || die "$1: no FAT partition"
    echo "$1@@$((start * 512))"
}
fw() {
    local img=${1:?fw IMAGE ...} op=${2:-ls} spec
    spec=$(fw_spec "$img")
    export MTOOLS_SKIP_CHECK=1
    case "$op" in
        ls) mdir -/ -b -i "$spec" ::/ ;;
        put) mcopy -o -i "$spec" "${3:?put SRC [NAME]}" "::/${4:-$(basename "$3")}" ;;
        get) mcopy -n -i "$spec" "::/${3:?get NAME}" - ;;
        rm) mdel -i "$spec" "::/${3:?rm NAME}" ;;
        *) die "fw IMAGE ls|put SRC [NAME]|get NAME|rm NAME" ;;
    esac
}

# --- machines -------------------------------------------------------------------------------
valid_name() { [[ "$1" =~ ^[a-z][a-z0-9-]{0,9}$ ]] || die "machine name must match ^[a-z][a-z0-9-]{0,9}\$, got '$1'"; }
mac_of() { printf '02:78:%s\n' "$(echo "$1" | sha256sum | sed 's/\(..\)\(..\)\(..\)\(..\).*/\1:\2:\3:\4/')"; }
nsx() { local n=$1; shift; ip netns exec "$n" "$@"; }

# The switch lock: a machine registers itself (its image file) and makes the switch if there is
# none under it, and the last machine to stop takes the switch (and the prefix's cgroup parents)
# down under it, so machines booted and stopped at once never lose the switch under a boot.
lock_switch() { mkdir -p "$RUN"; exec 7>"$RUN/.switch.lock"; flock 7; }
unlock_switch() { exec 7>&-; }

switch_up() {  # with the switch lock held
    if [ -e "/run/netns/$P-sw" ]; then return 0; fi
    ip netns add "$P-sw"
    nsx "$P-sw" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$P-sw" link set lo up
    ip -n "$P-sw" link add br0 type bridge
    ip -n "$P-sw" addr add "$NET.1/24" dev br0
    ip -n "$P-sw" link set br0 up
    # DHCP for the machines' own network managers; DNS that answers at once (no upstream), so
    # that name look-ups inside a machine do not wait for a server that is not there.
    cat > "$RUN/dnsmasq.conf" <<EOF
interface=br0
bind-interfaces
listen-address=$NET.1
no-resolv
no-hosts
local=/#/
dhcp-range=$NET.100,$NET.199,255.255.255.0,1h
dhcp-option=option:router,$NET.1
dhcp-option=option:dns-server,$NET.1
dhcp-leasefile=$RUN/dnsmasq.leases
dhcp-authoritative
log-dhcp
log-facility=$RUN/dnsmasq.log
pid-file=$RUN/dnsmasq.pid
user=root
group=root
EOF
    : > "$RUN/dnsmasq.leases"
    nsx "$P-sw" dnsmasq --conf-file="$RUN/dnsmasq.conf" 7>&-
}

switch_down() {
    if [ -f "$RUN/dnsmasq.pid" ]; then kill "$(cat "$RUN/dnsmasq.pid")" 2>/dev/null || true; fi
    if [ -e "/run/netns/$P-sw" ]; then
        local pid
        for pid in $(ip netns pids "$P-sw"); do kill "$pid" 2>/dev/null || true; done
        ip netns delete "$P-sw" 2>/dev/null || true
    fi
    rm -f "$RUN/dnsmasq.pid"
}

# The machine's cgroups (one per mounted hierarchy nspawn uses): a machine's systemd manages the
# cgroup it starts in, so each machine gets its own.
cgroup_dirs() {
    local h
    for h in /sys/fs/cgroup/unified /sys/fs/cgroup/systemd /sys/fs/cgroup; do
        [ -f "$h/cgroup.procs" ] || continue
        echo "$h/$P/$1"
        [ "$h" = /sys/fs/cgroup/systemd ] && break
    done
}

machine_pid() { local f=$RUN/$1/nspawn.pid; [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null && cat "$f"; }
# The machine's PID 1 as the host sees it: the systemd in its network namespace that is PID 1
# of its own PID namespace.
leader() {
    local pid
    for pid in $(ip netns pids "$P-$1" 2>/dev/null); do
        [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = systemd ] || continue
        [ "$(awk '/^NSpid:/ {print $NF}' "/proc/$pid/status")" = 1 ] && { echo "$pid"; return 0; }
    done
    return 1
}
mexec() { local l; l=$(leader "$1") || die "$1 is not running"; shift; nsenter -t "$l" -m -u -i -n -p -C -- "$@"; }

address() {  # NAME: the address dnsmasq leased to the machine's MAC
    awk -v mac="$(mac_of "$1")" '$2 == mac { print $3 }' "$RUN/dnsmasq.leases" 2>/dev/null | tail -1
}

boot() {
    local img=$1 name=$2 m start size fwmnt d
    valid_name "$name"
    [ -f "$img" ] || die "no image $img"
    img=$(realpath "$img")
    machine_pid "$name" >/dev/null && die "$name is already running"
    m=$RUN/$name
    rm -rf "$m" && mkdir -p "$m/root" "$m/fw"
    lock_switch
    echo "$img" > "$m/image"
    switch_up
    unlock_switch
    # The root partition, as the machine's /, with the mount options of the image's fstab (in
    # a container systemd-remount-fs cannot apply them: it finds no device by PARTUUID or LABEL).
    read -r start size < <(part "$img" 83) || die "$img: no Linux partition"
    mount -o "loop,offset=$((start * 512)),sizelimit=$((size * 512))" "$img" "$m/root"
    opts=$(awk '$2 == "/" && $1 !~ /^#/ { print $4; exit }' "$m/root/etc/fstab")
    opts=$(echo "${opts:-defaults}" | tr , '\n' | { grep -vxE 'defaults|errors=.*|discard|commit=.*' || true; } | paste -sd, -)
    [ -z "$opts" ] || mount -o "remount,$opts" "$m/root"
    # The firmware partition where the image's own fstab mounts it.
    fwmnt=$(awk '$3 == "vfat" { print $2; exit }' "$m/root/etc/fstab")
    [ -n "$fwmnt" ] || { umount "$m/root"; die "$img: its fstab mounts no vfat partition"; }
    echo "$fwmnt" > "$m/fwmnt"
    MTOOLS_SKIP_CHECK=1 mcopy -s -p -m -n -i "$(fw_spec "$img")" '::/*' "$m/fw/"
    fw_manifest "$m/fw" > "$m/fw.manifest"
    # Its network: eth0 in a namespace of its own, on the switch.
    ip netns add "$P-$name"
    nsx "$P-$name" sysctl -qw net.ipv4.ip_forward=0
    ip -n "$P-$name" link set lo up
    ip link add eth0 netns "$P-$name" address "$(mac_of "$name")" type veth peer name "v-$name" netns "$P-sw"
    ip -n "$P-sw" link set "v-$name" master br0 up
    runtime_units "$m/units"
    tty8 "$m"
    local extra=()
    nocloud_seed "$img" "$m" && extra+=(--bind-ro="$m/fw:/var/lib/cloud/seed/nocloud")
    local cgroups=()
    while read -r d; do mkdir -p "$d"; cgroups+=("$d"); done < <(cgroup_dirs "$name")
    # shellcheck disable=SC2016  # the script runs in the new session's shell
    setsid bash -c 'for d in $1; do echo $$ > "$d/cgroup.procs"; done; shift; exec systemd-nspawn "$@"' \
        tpos-nspawn "${cgroups[*]}" \
        -q -D "$m/root" -M "$name" --network-namespace-path="/run/netns/$P-$name" \
        --register=no --keep-unit --resolv-conf=off --timezone=off --link-journal=no \
        --capability=CAP_NET_ADMIN,CAP_NET_RAW --console=pipe -b --bind="$m/fw:$fwmnt" --bind="$m/units:/run/systemd/system" \
        --bind="$(cat "$m/tty8.name"):/dev/tty8" "${extra[@]}" \
        </dev/null >"$m/console.log" 2>&1 &
    echo $! > "$m/nspawn.pid"
    # Up when its systemd has finished starting (running or degraded), as a console would show.
    # Raspberry Pi OS 13 waits 2 minutes for systemd-networkd-wait-online: docs/os-images.md.
    local deadline=$((SECONDS + ${TP_OSI_BOOT_TIMEOUT:-180})) state=
    while [ $SECONDS -lt $deadline ]; do
        machine_pid "$name" >/dev/null || { tail -20 "$m/console.log" >&2; die "$name died while booting"; }
        if leader "$name" >/dev/null; then
            state=$(mexec "$name" systemctl is-system-running 2>/dev/null || true)
            case "$state" in running|degraded) break ;; esac
        fi
        sleep 0.5
    done
    case "$state" in running|degraded) ;; *) log "$name: systemd still '$state' after the boot timeout" ;; esac
    # Its own network manager may still be at work (dhcpcd probes the address for 5 s before it
    # takes it): wait for an IPv4 address on eth0, leased or static.
    local _
    for _ in $(seq 60); do [ -n "$(eth0_address "$name")" ] && break; sleep 0.5; done
    echo "$name ${state:-unknown} $(eth0_address "$name")"
}
eth0_address() { ip -n "$P-$1" -4 -o addr show dev eth0 2>/dev/null | awk '{ sub(/\/.*/, "", $4); print $4; exit }'; }

# nocloud_seed IMAGE DIR: cloud-init's NoCloud finds its seed on the partition whose label its
# configuration names (blkid, then a mount); a container has neither the block device nor vfat.
# When the image's cloud-init would find the firmware partition by its label, the lab hands the
# partition's files to cloud-init as the NoCloud seed directory instead (read-only). An image
# whose labels do not match gets nothing, as on a board.
nocloud_seed() {
    local img=$1 m=$2 want label start size
    [ -d "$m/root/etc/cloud" ] || return 1
    want=$(sed -n 's/^ *fs_label: *\([^ #]*\).*/\1/p' "$m/root/etc/cloud/cloud.cfg" "$m/root/etc/cloud/cloud.cfg.d/"*.cfg 2>/dev/null | tail -1)
    read -r start size < <(fw_part "$img")
    label=$(blkid -p -O $((start * 512)) -s LABEL -o value "$img" 2>/dev/null)
    want=${want:-cidata}
    [ "${want,,}" = "${label,,}" ] || return 1
    # The mount point is made in the root; stop removes it again.
    if [ ! -d "$m/root/var/lib/cloud/seed/nocloud" ]; then
        mkdir -p "$m/root/var/lib/cloud/seed/nocloud"
        touch "$m/seed-made"
    fi
}

# runtime_units DIR: what the lab adds to a machine at run time, never to its image: units in
# its /run/systemd/system (DIR, bound there; removed with the machine, as a tmpfs would be; the
# machine writes its own runtime units there too, netplan for one). systemd-nspawn leaves /proc/sys read-only
# when it joins a network namespace; the machine's own /proc/sys/net (its namespace's, not the
# host's) is made writable before systemd-sysctl and the network managers start.
runtime_units() {
    mkdir -p "$1/sysinit.target.wants"
    cat > "$1/tpos-proc-sys-net.service" <<'EOF'
[Unit]
Description=tests/lab/os-image.sh: writable /proc/sys/net in the machine's network namespace
DefaultDependencies=no
Before=systemd-sysctl.service sysinit.target
[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/bin/sh -c 'mount --bind /proc/sys/net /proc/sys/net && mount -o remount,bind,rw /proc/sys/net'
EOF
    ln -s ../tpos-proc-sys-net.service "$1/sysinit.target.wants/"
}

# tty8 DIR: the terminal userconf-pi's wizard runs on (userconfig.service: TTYPath=/dev/tty8).
# A container has no virtual terminals; without a /dev/tty8 systemd cannot even start the unit.
# A pseudo-terminal stands in: what the machine writes to it goes to DIR/tty8.log, nobody types.
tty8() {
    # shellcheck disable=SC2016  # Python, not shell
    setsid python3 -c '
import os, sys, time
master, slave = os.openpty()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(os.ttyname(slave) + "\n")
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
with open(sys.argv[2], "ab", buffering=0) as log:
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            data = b""
        if data:
            log.write(data)
        else:
            time.sleep(0.2)
' "$1/tty8.name" "$1/tty8.log" </dev/null >/dev/null 2>&1 &
    echo $! > "$1/tty8.pid"
    local _
    for _ in $(seq 50); do [ -f "$1/tty8.name" ] && return 0; sleep 0.1; done
    die "no pseudo-terminal for tty8"
}

fw_manifest() { (cd "$1" && find . -type f -exec sha256sum {} + | awk '{ print $2, $1 }' | LC_ALL=C sort); }

# fw_writeback NAME: the firmware partition as the machine left it, into the image's FAT.
fw_writeback() {
    local m=$RUN/$1 img spec f
    img=$(cat "$m/image")
    spec=$(fw_spec "$img")
    export MTOOLS_SKIP_CHECK=1
    fw_manifest "$m/fw" > "$m/fw.after"
    # Removed files, then new and changed ones.
    while read -r f; do mdel -i "$spec" "::/${f#./}"; done < <(LC_ALL=C join -v 1 -o 1.1 "$m/fw.manifest" "$m/fw.after")
    while read -r f; do
        local dir=${f#./}; dir=${dir%/*}
        [ "$dir" = "${f#./}" ] || mmd -D s -i "$spec" "::/$dir" 2>/dev/null || true
        mcopy -o -p -m -i "$spec" "$m/fw/${f#./}" "::/${f#./}"
    done < <(LC_ALL=C comm -13 "$m/fw.manifest" "$m/fw.after" | cut -d' ' -f1)
}

stop() {
    local name=$1 m pid d
    valid_name "$name"
    m=$RUN/$name
    [ -d "$m" ] || return 0
    if pid=$(machine_pid "$name"); then
        kill -TERM "$pid"               # nspawn asks the machine's systemd to power off
        local _
        for _ in $(seq 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
        while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
    fi
    while read -r d; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done < <(cgroup_dirs "$name")
    [ -f "$m/tty8.pid" ] && kill "$(cat "$m/tty8.pid")" 2>/dev/null
    if mountpoint -q "$m/root"; then
        [ -f "$m/fw.manifest" ] && fw_writeback "$name"
        if [ -f "$m/seed-made" ]; then
            rmdir "$m/root/var/lib/cloud/seed/nocloud" "$m/root/var/lib/cloud/seed" 2>/dev/null || true
        fi
        umount "$m/root"
    fi
    if [ -e "/run/netns/$P-$name" ]; then
        for pid in $(ip netns pids "$P-$name"); do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns delete "$P-$name" 2>/dev/null || true
    fi
    ip -n "$P-sw" link del "v-$name" 2>/dev/null || true
    rm -rf "$m"
    # The switch and the cgroup parents go with the last machine.
    lock_switch
    if [ -z "$(machines)" ]; then
        switch_down
        while read -r d; do rmdir "${d%/*}" 2>/dev/null || true; done < <(cgroup_dirs "$name")
    fi
    unlock_switch
    return 0
}

machines() { local d; for d in "$RUN"/*/; do [ -f "$d/image" ] && basename "$d"; done 2>/dev/null; return 0; }

status() {
    local name any=0
    for name in $(machines); do
        any=1
        if machine_pid "$name" >/dev/null; then
            echo "$name running, $(cat "$RUN/$name/image"), address $(address "$name")"
        else
            echo "$name stopped (run 'stop $name' to write its firmware partition back)"
        fi
    done
    [ -e "/run/netns/$P-sw" ] && echo "switch $P-sw up, dnsmasq on $NET.1"
    [ "$any" = 1 ] || [ -e "/run/netns/$P-sw" ] || echo "os-image: no machines"
}

down() {
    local name
    for name in $(machines); do stop "$name"; done
    switch_down
    rm -f "$RUN/.switch.lock"
    rmdir "$RUN" 2>/dev/null || true
}

# The dispatch is one function, called on the script's last line with an exit after it: bash
# reads a script as it runs it, and a long `boot` must not go on reading a file that was changed
# meanwhile (another checkout, an edit).
main() {
cmd=${1:-}; shift || true
[ "$(id -u)" = 0 ] || die "must run as root"
case "$cmd" in
    build) build "${1:?build FAMILY}" ;;
    families) echo "$FAMILIES" ;;
    fw) fw "$@" ;;
    boot) boot "${1:?boot IMAGE NAME}" "${2:?boot IMAGE NAME}" ;;
    exec) name=${1:?exec NAME CMD...}; shift; mexec "$name" "$@" ;;
    address) address "${1:?address NAME}" ;;
    stop) stop "${1:?stop NAME}" ;;
    status) status ;;
    down) down ;;
    *) sed -n '3,16p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
}
main "$@"; exit $?
