#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Tier 75: the OS images users flash, as lab images (tests/lab/os-image.sh, docs/os-images.md),
# checked from outside the way a user meets them on a board. Per family:
#  1. the image as released, booted untouched: its own network manager leases an address, no
#     account can log in (SSH does not answer on Bookworm and Bullseye; on Trixie systemd's
#     first-boot presets switch it on; Ubuntu's seed lets ubuntu in only to change the password),
#     the first-boot units ran;
#  2. a copy with the family's first-boot input on its firmware partition (Raspberry Pi OS:
#     `ssh` and `userconf.txt` for user admin with a SHA-512 crypt password; cloud-init images: a
#     seed of our own with a user, host name and static address): SSH answers with host keys made
#     on this boot, admin logs in, the input is consumed (or kept, for a seed) as the real code
#     does, the address came from the image's own network manager; booted a second time, nothing
#     first-boot happens again.
# Images are built once and cached (a cold build takes minutes: docs/os-images.md), one after the
# other, before any machine boots. Then each family runs in a subshell of its own (its files in
# WORK/FAMILY, machine names of its own: bw-*, bu-*, tx-*, u24-*, its counts to
# WORK/FAMILY.result), in two lanes at once (tp_lane_start, tests/lib/checks.sh): raspios-trixie
# alone (its boots wait 2 minutes each, the machine idle), the other families one after the other
# beside it. (All four at once, six first boots on a 2-CPU host, slowed bullseye's dhcpcd until it
# took a link-local address before its lease.) The lanes' logs are printed when both are done, the
# counts summed; a family whose subshell ended without its counts fails the tier. Machines,
# namespaces and mounts are removed at the end; the tier fails if the host is not as found.
#   TP_OSI_FAMILIES="raspios-bookworm"   the families to test (default: all four)
# shellcheck disable=SC2317  # the helpers are reached through check and main
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/env.sh
[ "$(id -u)" = 0 ] || { echo "75-os-images: must run as root (network namespaces, nspawn, loop mounts)"; exit 1; }
for c in sshpass dnsmasq mcopy debootstrap systemd-nspawn openssl ssh-keyscan; do
    command -v "$c" >/dev/null || { echo "75-os-images: $c is missing: run tests/setup"; exit 1; }
done

# Machines of this tier live under a prefix of their own (namespaces tpost-*).
export TP_OSI_PREFIX=${TP_OSI_PREFIX:-tpost}
OSI=tests/lab/os-image.sh
WORK=$TP_TMP/os-images-tier-$TP_OSI_PREFIX
FAMILIES=${TP_OSI_FAMILIES:-raspios-bookworm raspios-bullseye raspios-trixie ubuntu-24.04}

. tests/lib/checks.sh
passes=0
ok() { echo "ok: $*"; passes=$((passes + 1)); }
state() {  # what this tier may leave behind (not the lab's tplab-*: others may run it meanwhile)
    echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
    ls -d /sys/fs/cgroup/"$TP_OSI_PREFIX" /sys/fs/cgroup/*/"$TP_OSI_PREFIX" 2>/dev/null || true
    ip netns list | awk '{print $1}' | grep "^$TP_OSI_PREFIX-" || true
    # Only this tier's: other prefixes' machines and builds may come and go meanwhile.
    grep -F "$TP_TMP/lab/os-images/run-$TP_OSI_PREFIX/" /proc/mounts || true
    losetup -n -l -O BACK-FILE 2>/dev/null | grep -F "$WORK/" || true
}
before=$(state)
cleanup() {
    tp_lanes_kill
    "$OSI" down >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cleanup
mkdir -p "$WORK"

PASSWORD='Lab-pass-75'
ssh_opts=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5)
on_switch() { ip netns exec "$TP_OSI_PREFIX-sw" "$@"; }
port_open() { on_switch timeout 3 bash -c "exec 3<>/dev/tcp/$1/22" 2>/dev/null; }
port_refused() {  # refused by the machine's kernel: it is up, nothing listens
    local out; out=$(on_switch timeout 3 bash -c "exec 3<>/dev/tcp/$1/22" 2>&1); [[ $out == *refused* ]]
}
wait_port() { local _; for _ in $(seq 60); do port_open "$1" && return 0; sleep 0.5; done; return 1; }
with_password() {  # user address command
    on_switch sshpass -p "$PASSWORD" ssh "${ssh_opts[@]}" -o PubkeyAuthentication=no \
        -o PreferredAuthentications=password,keyboard-interactive "$1@$2" "$3"
}
# The host keys a machine serves, as fingerprints (what a controller's known_hosts would pin).
served_keys() { on_switch ssh-keyscan -T 5 "$1" 2>/dev/null | ssh-keygen -lf - 2>/dev/null | awk '{print $2}' | sort; }
in_machine() { "$OSI" exec "$@"; }
# Processes in the machine's network namespace that can run DHCP, by name.
dhcp_clients() {
    local pid
    for pid in $(ip netns pids "$TP_OSI_PREFIX-$1"); do cat "/proc/$pid/comm"; done \
        | grep -xE 'NetworkManager|dhcpcd|dhclient|systemd-network|udhcpc|cloud-init' | sort -u | tr '\n' ' '
}
# The image's root partition has no /etc/ssh/ssh_host_* (read with debugfs, nothing mounted).
no_host_keys_in() {
    local start
    start=$(sfdisk -d "$1" | sed -n 's/.*start= *\([0-9]*\),.*type=83.*/\1/p')
    debugfs -R 'ls /etc/ssh' "$1?offset=$((start * 512))" 2>/dev/null | grep -q sshd_config || return 1
    ! debugfs -R 'ls /etc/ssh' "$1?offset=$((start * 512))" 2>/dev/null | grep -q ssh_host_
}
leased() { [ -n "$2" ] && [ "$("$OSI" address "$1")" = "$2" ]; }
eth0_has() { ip -n "$TP_OSI_PREFIX-$1" -4 addr show eth0 | grep -q "inet $2/24 "; }
logins_refused() {  # address user...
    local a=$1 u; shift
    for u in "$@"; do with_password "$u" "$a" true 2>/dev/null && return 1; done
    return 0
}
# The machine's own network manager reports the address (asked over SSH as admin).
manager_has() {
    local q
    case "$1" in
        NetworkManager) q='nmcli -g IP4.ADDRESS device show eth0' ;;
        dhcpcd) q='systemctl is-active -q dhcpcd && ip -4 addr show eth0' ;;
        systemd-network) q='networkctl status eth0' ;;
    esac
    local _
    for _ in 1 2 3 4 5; do
        with_password admin "$2" "$q" 2>/dev/null | grep -q "$2" && return 0
        sleep 1
    done
    with_password admin "$2" "$q" >&2
    return 1
}
fw_has() {  # image file...
    local img=$1 f; shift
    for f in "$@"; do "$OSI" fw "$img" ls | grep -qix "::/$f" || return 1; done
}
fw_lacks() {  # image file...
    local img=$1 f; shift
    for f in "$@"; do "$OSI" fw "$img" ls | grep -qix "::/$f" && return 1; done
    return 0
}
# Families boot and stop machines at once under one prefix: os-image.sh registers a machine and
# takes the switch down after the last one under its switch lock, so neither loses the switch.
boot() { "$OSI" boot "$1" "$2"; }   # image name: "name state address"
stop() { "$OSI" stop "$1"; }

# --- Raspberry Pi OS (sshswitch, regenerate_ssh_host_keys, userconf-pi) ---
raspios() {
    local family=$1 img=$2 short=$3 manager=$4 fwmnt=$5
    local plain=$WORK/$short-plain.img conf=$WORK/$short-conf.img line state addr keys_plain keys_conf
    cp --sparse=always "$img" "$plain"
    cp --sparse=always "$img" "$conf"

    echo "--- $family: the image as released, booted untouched"
    check "the image has no SSH host keys" no_host_keys_in "$img"
    if ! line=$(boot "$plain" "$short-p"); then fail "$family untouched: the machine boots"; return; fi
    read -r _ state addr <<<"$line"
    check "systemd finished starting ($state)" test "$state" = running -o "$state" = degraded
    check "its own DHCP client leased the address on its eth0 ($addr)" leased "$short-p" "$addr"
    check "the DHCP client in its namespace is $manager (found: $(dhcp_clients "$short-p"))" \
        test "$(dhcp_clients "$short-p")" = "$manager "
    check "eth0 holds the leased address" eth0_has "$short-p" "$addr"
    check "SSH does not answer (connection refused)" port_refused "$addr"
    check "ssh.service is disabled and inactive" \
        test "$(in_machine "$short-p" systemctl is-enabled ssh)/$(in_machine "$short-p" systemctl is-active ssh)" = disabled/inactive
    # shellcheck disable=SC2016  # awk's fields
    check "no account has a usable password (locked, or none set)" \
        test -z "$(in_machine "$short-p" awk -F: '$2 !~ /^[!*]/ {print $1}' /etc/shadow)"
    check "no account has authorized keys" \
        test -z "$(in_machine "$short-p" find /root /home -name authorized_keys)"
    check "a password login is refused (pi, admin)" logins_refused "$addr" pi admin
    check "the first user is still pi, uid 1000" test "$(in_machine "$short-p" getent passwd 1000 | cut -d: -f1)" = pi
    check "userconfig.service (the first-user wizard) is enabled and was started" \
        test "$(in_machine "$short-p" systemctl is-enabled userconfig)" = enabled -a \
             "$(in_machine "$short-p" systemctl show -P ExecMainStartTimestampMonotonic userconfig)" != 0
    check "getty on tty1 is off" test "$(in_machine "$short-p" systemctl is-enabled getty@tty1)" = disabled
    check "host keys were made on this first boot" in_machine "$short-p" test -s /etc/ssh/ssh_host_ed25519_key
    # shellcheck disable=SC2016  # the machine's shell expands it
    keys_plain=$(in_machine "$short-p" sh -c 'for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf "$k"; done' | awk '{print $2}' | sort)
    check "regenerate_ssh_host_keys disabled itself" \
        test "$(in_machine "$short-p" systemctl is-enabled regenerate_ssh_host_keys)" = disabled
    stop "$short-p"

    echo "--- $family: ssh and userconf.txt (admin, SHA-512 crypt password) on the firmware partition"
    : > "$WORK/ssh"
    printf 'admin:%s\n' "$(openssl passwd -6 "$PASSWORD")" > "$WORK/userconf.txt"
    "$OSI" fw "$conf" put "$WORK/ssh"
    "$OSI" fw "$conf" put "$WORK/userconf.txt"
    if ! line=$(boot "$conf" "$short-c"); then fail "$family configured: the machine boots"; return; fi
    read -r _ state addr <<<"$line"
    check "its own DHCP client leased the address on its eth0 ($addr)" leased "$short-c" "$addr"
    check "SSH answers" wait_port "$addr"
    keys_conf=$(served_keys "$addr")
    check "it serves host keys" test -n "$keys_conf"
    check "the host keys are new (not the untouched boot's, none in the image)" \
        test -z "$(comm -12 <(echo "$keys_plain") <(echo "$keys_conf"))"
    check "admin logs in with the password" test "$(with_password admin "$addr" 'id -un' 2>/dev/null)" = admin
    check "admin is the renamed first user (uid 1000, /home/admin), pi is gone" \
        test "$(with_password admin "$addr" 'getent passwd 1000 | cut -d: -f1,6; getent passwd pi || echo no-pi' 2>/dev/null | tr '\n' ' ')" = "admin:/home/admin no-pi "
    check "admin has sudo without a password (010_pi-nopasswd renamed)" \
        test "$(with_password admin "$addr" 'sudo -n id -u' 2>/dev/null)" = 0
    check "ssh and userconf.txt were consumed from $fwmnt" \
        test "$(in_machine "$short-c" sh -c "ls $fwmnt/ssh $fwmnt/ssh.txt $fwmnt/userconf $fwmnt/userconf.txt $fwmnt/failed_userconf.txt 2>/dev/null | wc -l")" = 0
    check "ssh is now enabled, userconfig disabled, getty on tty1 back" \
        test "$(in_machine "$short-c" systemctl is-enabled ssh userconfig getty@tty1 | tr '\n' ' ')" = "enabled disabled enabled "
    check "the address is $manager's (asked from inside, as admin)" manager_has "$manager" "$addr"
    check "the DHCP client in its namespace is $manager" test "$(dhcp_clients "$short-c")" = "$manager "
    stop "$short-c"
    check "the firmware partition of the image no longer has ssh or userconf.txt" fw_lacks "$conf" ssh userconf.txt

    echo "--- $family: the same card booted again"
    if ! line=$(boot "$conf" "$short-c"); then fail "$family second boot: the machine boots"; return; fi
    read -r _ state addr <<<"$line"
    check "SSH answers without an ssh file" wait_port "$addr"
    check "the host keys are the ones of the first boot" test "$(served_keys "$addr")" = "$keys_conf"
    check "admin still logs in with the password" test "$(with_password admin "$addr" 'id -un' 2>/dev/null)" = admin
    stop "$short-c"

    echo "--- $family: a userconf.txt whose user name breaks the OS's rule (Admin)"
    local bad=$WORK/$short-bad.img
    cp --sparse=always "$img" "$bad"
    printf 'Admin:%s\n' "$(openssl passwd -6 "$PASSWORD")" > "$WORK/userconf.txt"
    "$OSI" fw "$bad" put "$WORK/userconf.txt"
    if ! line=$(boot "$bad" "$short-b"); then fail "$family bad userconf: the machine boots"; return; fi
    check "the first user is still pi" test "$(in_machine "$short-b" getent passwd 1000 | cut -d: -f1)" = pi
    stop "$short-b"
    check "userconf.txt was renamed failed_userconf.txt, with the reason" \
        bash -c "'$OSI' fw '$bad' get failed_userconf.txt | grep -q 'Must only contain lower-case letters'"
    check "userconf.txt is gone" fw_lacks "$bad" userconf.txt
    rm -f "$bad"
}

# --- cloud-init images (Ubuntu): the NoCloud seed on the firmware partition ---
cloudinit() {
    local family=$1 img=$2 short=$3 fwmnt=$4
    local plain=$WORK/$short-plain.img conf=$WORK/$short-conf.img line state addr out keys_plain keys_conf
    local static=${TP_OSI_NET:-172.31.78}.50
    cp --sparse=always "$img" "$plain"
    cp --sparse=always "$img" "$conf"

    echo "--- $family: the image as released, booted untouched (its own seed: user ubuntu, password ubuntu, expired)"
    check "the image has no SSH host keys" no_host_keys_in "$img"
    if ! line=$(boot "$plain" "$short-p"); then fail "$family untouched: the machine boots"; return; fi
    read -r _ state addr <<<"$line"
    check "systemd finished starting ($state)" test "$state" = running -o "$state" = degraded
    # The shipped meta-data says `instance_id: cloud-image`; cloud-init reads `instance-id`, so the
    # instance is NoCloud's default id, as on Ubuntu.
    check "cloud-init ran from the NoCloud seed (instance nocloud: the seed's instance_id is not a key cloud-init reads)" \
        test "$(in_machine "$short-p" cloud-init query instance-id 2>/dev/null)" = nocloud
    check "its own DHCP client leased the address on its eth0 ($addr)" leased "$short-p" "$addr"
    check "the DHCP client in its namespace is systemd-networkd (found: $(dhcp_clients "$short-p"))" \
        test "$(dhcp_clients "$short-p")" = "systemd-network "
    check "netplan rendered eth0 for networkd from the seed's network-config" \
        in_machine "$short-p" sh -c 'grep -q dhcp4 /etc/netplan/50-cloud-init.yaml && ls /run/systemd/network/*netplan-eth0.network'
    check "SSH answers (Ubuntu has it on)" wait_port "$addr"
    keys_plain=$(served_keys "$addr")
    check "host keys were made on this first boot" test -n "$keys_plain"
    out=$(on_switch sshpass -p ubuntu ssh "${ssh_opts[@]}" -o PubkeyAuthentication=no ubuntu@"$addr" true 2>&1)
    # sshd accepts the password, then PAM (the password is expired) ends the session: without a
    # terminal it cannot ask for a new one, as a controller's non-interactive ssh meets it.
    check "ubuntu/ubuntu is accepted, then a password change is forced" \
        grep -qi 'password has expired' <<<"$out"
    check "without a terminal the login ends there (no command runs)" \
        grep -qi 'password change required but no tty' <<<"$out"
    check "the password of ubuntu is expired" \
        bash -c "'$OSI' exec $short-p chage -l ubuntu | grep -q '^Last password change.*password must be changed'"
    check "ubuntu has sudo" bash -c "'$OSI' exec $short-p id -nG ubuntu | grep -qw sudo"
    check "the host name is ubuntu" test "$(in_machine "$short-p" hostname)" = ubuntu
    stop "$short-p"
    check "the seed stays on the firmware partition (cloud-init does not consume it)" fw_has "$plain" user-data meta-data network-config

    echo "--- $family: a seed of our own: user admin (SHA-512 crypt password), host name, static address"
    cat > "$WORK/user-data" <<EOF
#cloud-config
hostname: node-$short
ssh_pwauth: true
users:
  - name: admin
    lock_passwd: false
    passwd: $(openssl passwd -6 "$PASSWORD")
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    shell: /bin/bash
EOF
    printf 'instance-id: lab-%s-1\n' "$short" > "$WORK/meta-data"
    printf 'network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [%s/24]\n      dhcp4: false\n' "$static" > "$WORK/network-config"
    for f in user-data meta-data network-config; do "$OSI" fw "$conf" put "$WORK/$f"; done
    if ! line=$(boot "$conf" "$short-c"); then fail "$family configured: the machine boots"; return; fi
    read -r _ state addr <<<"$line"
    check "no DHCP lease: the address on eth0 is the seed's static one ($addr)" \
        test -z "$("$OSI" address "$short-c")" -a "$addr" = "$static"
    check "SSH answers on $static" wait_port "$static"
    keys_conf=$(served_keys "$static")
    check "the host keys are new" test -n "$keys_conf" -a -z "$(comm -12 <(echo "$keys_plain") <(echo "$keys_conf"))"
    check "admin logs in with the password" test "$(with_password admin "$static" 'id -un' 2>/dev/null)" = admin
    check "admin has sudo without a password" test "$(with_password admin "$static" 'sudo -n id -u' 2>/dev/null)" = 0
    check "the host name is the seed's" test "$(with_password admin "$static" hostname 2>/dev/null)" = "node-$short"
    check "networkd holds the static address (netplan from the seed)" \
        bash -c "'$OSI' exec $short-c networkctl status eth0 --no-pager | grep -q '$static'"
    stop "$short-c"

    echo "--- $family: booted again, same instance-id: nothing first-boot happens again"
    if ! line=$(boot "$conf" "$short-c"); then fail "$family second boot: the machine boots"; return; fi
    check "SSH answers on $static" wait_port "$static"
    check "the host keys are the same" test "$(served_keys "$static")" = "$keys_conf"
    stop "$short-c"

    echo "--- $family: a new instance-id in meta-data: cloud-init runs again, as for a new machine"
    printf 'instance-id: lab-%s-2\n' "$short" > "$WORK/meta-data"
    "$OSI" fw "$conf" put "$WORK/meta-data"
    if ! line=$(boot "$conf" "$short-c"); then fail "$family new instance: the machine boots"; return; fi
    check "SSH answers on $static" wait_port "$static"
    check "the host keys were made again" test -z "$(comm -12 <(echo "$keys_conf") <(served_keys "$static"))"
    check "admin still logs in" test "$(with_password admin "$static" 'id -un' 2>/dev/null)" = admin
    stop "$short-c"
}

# --- Raspberry Pi OS 13 (cloud-init with rpi-cloud-init-mods, userconf-pi, sshswitch) ---
# Its first boots wait 2 minutes for systemd-networkd-wait-online (docs/os-images.md), so the
# first-boot machines are booted at once.
with_key() {  # user address command
    on_switch ssh "${ssh_opts[@]}" -i "$WORK/id_ed25519" -o IdentitiesOnly=yes -o PasswordAuthentication=no \
        -o KbdInteractiveAuthentication=no "$1@$2" "$3"
}
# The image's root (read with debugfs, nothing mounted) has PATH as a file or link.
in_image_root() {
    local start
    start=$(sfdisk -d "$1" | sed -n 's/.*start= *\([0-9]*\),.*type=83.*/\1/p')
    debugfs -R "stat $2" "$1?offset=$((start * 512))" 2>/dev/null | grep -q '^Inode:'
}
not() { ! "$@"; }
boot_bg() {  # image name: boots in the background, the "name state address" line in WORK/name.boot
    ( boot "$1" "$2" > "$WORK/$2.boot" 2> "$WORK/$2.boot-err" ) &
}
booted() {  # name: its "name state address" line, once its boot_bg is done
    [ -s "$WORK/$1.boot" ] && cat "$WORK/$1.boot"
}
raspios_cloudinit() {
    local family=$1 img=$2 short=$3 fwmnt=/boot/firmware
    local plain=$WORK/$short-plain.img conf=$WORK/$short-conf.img uc=$WORK/$short-uc.img
    local line state addr keys_conf static=${TP_OSI_NET:-172.31.78}.51
    cp --sparse=always "$img" "$plain"
    cp --sparse=always "$img" "$conf"
    cp --sparse=always "$img" "$uc"
    # A seed as Raspberry Pi Imager writes one for this OS (src/customization_generator.cpp: `user:`
    # with a crypt password and keys, ssh_pwauth, `runcmd: systemctl enable --now ssh`), with a
    # static address in network-config.
    ssh-keygen -q -t ed25519 -N '' -C lab-75 -f "$WORK/id_ed25519"
    cat > "$WORK/user-data" <<EOF
#cloud-config
hostname: node-$short
user:
  name: admin
  shell: /bin/bash
  lock_passwd: false
  passwd: "$(openssl passwd -6 "$PASSWORD")"
  ssh_authorized_keys:
    - "$(cat "$WORK/id_ed25519.pub")"
  sudo: ALL=(ALL) NOPASSWD:ALL
ssh_pwauth: true
runcmd:
  - [ systemctl, enable, --now, ssh ]
EOF
    printf 'dsmode: local\ninstance-id: lab-%s-1\n' "$short" > "$WORK/meta-data"
    printf 'network:\n  version: 2\n  ethernets:\n    eth0:\n      addresses: [%s/24]\n      dhcp4: false\n' "$static" > "$WORK/network-config"
    local f
    for f in user-data meta-data network-config; do "$OSI" fw "$conf" put "$WORK/$f"; done
    : > "$WORK/ssh"
    printf 'admin:%s\n' "$(openssl passwd -6 "$PASSWORD")" > "$WORK/userconf.txt"
    "$OSI" fw "$uc" put "$WORK/ssh"
    "$OSI" fw "$uc" put "$WORK/userconf.txt"

    echo "--- $family: three first boots at once (untouched; our own cloud-init seed; ssh and userconf.txt)"
    check "the image has no SSH host keys" no_host_keys_in "$img"
    check "the image has ssh.service disabled (pi-gen, ENABLE_SSH=0)" \
        not in_image_root "$img" /etc/systemd/system/multi-user.target.wants/ssh.service
    check "the shipped seed is all comments (user-data, network-config)" \
        test -z "$("$OSI" fw "$img" get user-data | grep -vE '^#|^$' | grep -v '^#cloud-config')$("$OSI" fw "$img" get network-config | grep -vE '^#|^$')"
    local tb=$SECONDS
    boot_bg "$plain" "$short-p"; boot_bg "$conf" "$short-c"; boot_bg "$uc" "$short-u"
    wait
    echo "(three first boots in $((SECONDS - tb)) s)"

    echo "--- $family: untouched"
    if line=$(booted "$short-p"); then
        read -r _ state addr <<<"$line"
        check "systemd finished starting ($state)" test "$state" = degraded -o "$state" = running
        check "cloud-init read the seed from $fwmnt (rpi-cloud-init-mods: NoCloud seedfrom)" \
            bash -c "'$OSI' exec $short-p cloud-init status --long | grep -q 'seedfrom,file://$fwmnt'"
        check "NetworkManager leased the address on eth0 ($addr)" leased "$short-p" "$addr"
        check "netplan rendered eth0 for NetworkManager (cloud-init's fallback: the seed has no network)" \
            in_machine "$short-p" test -s /run/NetworkManager/system-connections/netplan-eth0.nmconnection
        check "NetworkManager holds the address, networkd manages nothing" \
            bash -c "'$OSI' exec $short-p nmcli -g IP4.ADDRESS device show eth0 | grep -q '$addr' && '$OSI' exec $short-p networkctl list --no-pager | grep -q 'eth0.*unmanaged'"
        check "systemd-networkd-wait-online failed after its 2 minutes (enabled by the first boot's presets)" \
            test "$(in_machine "$short-p" systemctl is-failed systemd-networkd-wait-online)" = failed
        check "systemd's first-boot presets enabled ssh.service" \
            test "$(in_machine "$short-p" systemctl is-enabled ssh)" = enabled
        # shellcheck disable=SC2016  # awk's fields
        check "no account has a usable password (locked, or none set)" \
            test -z "$(in_machine "$short-p" awk -F: '$2 !~ /^[!*]/ {print $1}' /etc/shadow)"
        # cloud-init's ssh module leaves empty authorized_keys files for root and the default user.
        check "no account has authorized keys" \
            test -z "$(in_machine "$short-p" find /root /home -name authorized_keys -size +0)"
        check "so SSH answers" wait_port "$addr"
        check "a password login is refused (pi, admin)" logins_refused "$addr" pi admin
        check "the first user is still pi, uid 1000" test "$(in_machine "$short-p" getent passwd 1000 | cut -d: -f1)" = pi
        check "userconfig.service (the first-user wizard) is enabled and was started" \
            test "$(in_machine "$short-p" systemctl is-enabled userconfig)" = enabled -a \
                 "$(in_machine "$short-p" systemctl show -P ExecMainStartTimestampMonotonic userconfig)" != 0
        check "host keys were made on this first boot" in_machine "$short-p" test -s /etc/ssh/ssh_host_ed25519_key
        stop "$short-p"
        check "the seed stays on the firmware partition" fw_has "$plain" user-data meta-data network-config
    else
        fail "$family untouched: the machine boots ($(cat "$WORK/$short-p.boot-err"))"
    fi

    echo "--- $family: our own seed (Imager's kind: user admin with key and password, ssh, host name, static address)"
    if line=$(booted "$short-c"); then
        read -r _ state addr <<<"$line"
        check "no DHCP lease: the address on eth0 is the seed's static one ($addr)" \
            test -z "$("$OSI" address "$short-c")" -a "$addr" = "$static"
        check "NetworkManager holds the static address (netplan from the seed)" \
            bash -c "'$OSI' exec $short-c nmcli -g IP4.ADDRESS device show eth0 | grep -q '$static'"
        check "SSH answers on $static (runcmd enabled it)" wait_port "$static"
        keys_conf=$(served_keys "$static")
        check "it serves host keys" test -n "$keys_conf"
        check "admin logs in with the key" test "$(with_key admin "$static" 'id -un' 2>/dev/null)" = admin
        check "admin logs in with the password" test "$(with_password admin "$static" 'id -un' 2>/dev/null)" = admin
        check "admin has sudo without a password" test "$(with_key admin "$static" 'sudo -n id -u' 2>/dev/null)" = 0
        check "the host name is the seed's" test "$(with_key admin "$static" hostname 2>/dev/null)" = "node-$short"
        check "ssh is enabled for the next boots" test "$(in_machine "$short-c" systemctl is-enabled ssh)" = enabled
        stop "$short-c"
        check "the seed stays on the firmware partition" fw_has "$conf" user-data meta-data network-config
    else
        fail "$family configured: the machine boots ($(cat "$WORK/$short-c.boot-err"))"
    fi

    echo "--- $family: ssh and userconf.txt (userconf-pi still runs on this release)"
    if line=$(booted "$short-u"); then
        read -r _ state addr <<<"$line"
        check "SSH answers" wait_port "$addr"
        check "admin is the renamed first user (uid 1000, /home/admin), pi is gone" \
            test "$(in_machine "$short-u" sh -c 'getent passwd 1000 | cut -d: -f1,6; getent passwd pi || echo no-pi' | tr '\n' ' ')" = "admin:/home/admin no-pi "
        check "admin has the password of userconf.txt" \
            test "$(in_machine "$short-u" getent shadow admin | cut -d: -f2)" = "$(cut -d: -f2- "$WORK/userconf.txt")"
        # pi-gen 4b9cd15c (2026-02): the first user is made with `adduser --disabled-login`, shell
        # /usr/sbin/nologin unless the image is built with a password; the userconf-pi of
        # ../shared/realworld (0.9) renames and sets the password but not the shell.
        check "admin's shell is still /usr/sbin/nologin (trixie's stage1; userconf-pi 0.9 sets none)" \
            test "$(in_machine "$short-u" getent passwd admin | cut -d: -f7)" = /usr/sbin/nologin
        check "so SSH refuses admin's password login" logins_refused "$addr" admin
        check "ssh and userconf.txt were consumed from $fwmnt" \
            test "$(in_machine "$short-u" sh -c "ls $fwmnt/ssh $fwmnt/userconf.txt $fwmnt/failed_userconf.txt 2>/dev/null | wc -l")" = 0
        check "userconfig is disabled, getty on tty1 enabled" \
            test "$(in_machine "$short-u" systemctl is-enabled userconfig getty@tty1 | tr '\n' ' ')" = "disabled enabled "
        stop "$short-u"
        check "the firmware partition no longer has ssh or userconf.txt" fw_lacks "$uc" ssh userconf.txt
    else
        fail "$family userconf: the machine boots ($(cat "$WORK/$short-u.boot-err"))"
    fi

    echo "--- $family: our seed's card booted again, same instance-id"
    if ! line=$(boot "$conf" "$short-c"); then fail "$family second boot: the machine boots"; return; fi
    check "SSH answers on $static" wait_port "$static"
    check "the host keys are the ones of the first boot" test "$(served_keys "$static")" = "$keys_conf"
    check "admin still logs in with the key" test "$(with_key admin "$static" 'id -un' 2>/dev/null)" = admin
    check "cloud-init did not run the instance's modules again (runcmd ran once)" \
        test "$(in_machine "$short-c" sh -c 'ls /var/lib/cloud/instances | wc -l')" = 1
    stop "$short-c"
}

# family image build-seconds: one family's checks, its counts to WORK/family.result (run in a
# subshell: WORK, passes and fails are its own).
run_family() {
    local family=$1 img=$2 tb=$SECONDS
    WORK=$WORK/$family passes=0 fails=0
    mkdir -p "$WORK"
    echo "=== $family"
    echo "(image $img, ready in $3 s)"
    case "$family" in
        raspios-bookworm) raspios "$family" "$img" bw NetworkManager /boot/firmware ;;
        raspios-bullseye) raspios "$family" "$img" bu dhcpcd /boot ;;
        raspios-trixie) raspios_cloudinit "$family" "$img" tx ;;
        ubuntu-24.04) cloudinit "$family" "$img" u24 /boot/firmware ;;
        *) fail "$family: no test for this family" ;;
    esac
    echo "($family in $((SECONDS - tb)) s)"
    echo "$passes $fails" > "$WORK.result"
    [ "$fails" = 0 ]
}
# family...: one after the other, each in a subshell of its own (img, built: main's); fails if
# one of them failed.
lane() {
    local family rc=0 r
    for family; do
        r=0; ( run_family "$family" "${img[$family]}" "${built[$family]}" ) || r=$?
        [ "$r" = 0 ] || { echo "($family: exit $r)"; rc=1; }
    done
    return "$rc"
}

# Everything below runs from one function, with the exit on the same line: bash reads a script
# as it goes, and this one runs for minutes (an edit or checkout meanwhile must not be read).
main() {
t0=$SECONDS
local family tb p f
local -A img=() built=()
# The images first, one at a time (cached; a build must not race another's).
for family in $FAMILIES; do
    tb=$SECONDS
    if img[$family]=$("$OSI" build "$family"); then
        built[$family]=$((SECONDS - tb))
    else
        echo "=== $family"
        fail "$family: the image builds"
    fi
done
echo "(images ready in $((SECONDS - t0)) s)"
local trixie=() others=() lanes=0
for family in $FAMILIES; do
    [ -n "${built[$family]:-}" ] || continue
    if [ "$family" = raspios-trixie ]; then trixie+=("$family"); else others+=("$family"); fi
done
[ ${#others[@]} = 0 ] || tp_lane_start "$WORK" others lane "${others[@]}"
[ ${#trixie[@]} = 0 ] || tp_lane_start "$WORK" trixie lane "${trixie[@]}"
tp_lanes_wait || lanes=1
for family in $FAMILIES; do
    [ -n "${built[$family]:-}" ] || continue
    if read -r p f < "$WORK/$family.result" 2>/dev/null && [[ $p =~ ^[0-9]+$ && $f =~ ^[0-9]+$ ]]; then
        passes=$((passes + p)) fails=$((fails + f))
    else
        fail "$family: its checks ended without their counts (its lane's log above)"
    fi
done
cleanup
after=$(state)
if [ "$before" != "$after" ]; then
    fail "the host is not as it was found"
    diff <(echo "$before") <(echo "$after")
fi
echo "(tier time $((SECONDS - t0)) s)"
echo "os-images: $passes passed, $fails failed"
[ "$fails" = 0 ] && [ "$lanes" = 0 ]
}
main; exit $?
