#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The families scenario's machines: one lab image per OS family (tests/lab/os-image.sh), prepared
# the way a user prepares a card before the first boot, booted on the scenario's own switch.
#
#   machine.sh create FAMILY NAME DIR   # prints "address ADDRESS"; DIR holds admin_key(.pub), the card copy
#   machine.sh destroy                  # every machine of the scenario, its switch and card copies
#
# The card: `ssh` and `userconf.txt` (user admin, password "molecule") on the firmware partition,
# then the key copied in with the password as ssh-copy-id does; for an image that ships a
# cloud-init seed (user-data on the firmware partition), a seed of the user's own instead, with
# the same user, hash and key. Runs as root (os-image.sh boots machines in namespaces).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
osi=$root/tests/lab/os-image.sh
# The scenario's own machine prefix and subnet: no collision with the lab (tplab, 172.31.77) or
# os-image.sh's default (tpos, 172.31.78).
export TP_OSI_PREFIX=tpmo TP_OSI_NET=172.31.80 TP_OSI_BOOT_TIMEOUT=${TP_OSI_BOOT_TIMEOUT:-300}
PASSWORD=molecule

die() { echo "machine.sh: $*" >&2; exit 1; }
in_switch() { ip netns exec "$TP_OSI_PREFIX-sw" "$@"; }
ssh_opts=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10)

create() {
    local family=$1 name=$2 dir=$3 img card hash key out address
    img=$("$osi" build "$family") || die "$family: the image does not build"
    card=$dir/card-$name.img
    cp --sparse=always "$img" "$card"
    hash=$(openssl passwd -6 -salt tpmolecule "$PASSWORD")
    key=$(cat "$dir/admin_key.pub")
    local tmp
    tmp=$(mktemp -d)
    : > "$tmp/ssh"
    "$osi" fw "$card" put "$tmp/ssh" ssh
    if "$osi" fw "$card" ls | grep -qx '::/user-data'; then
        # A cloud-init image: the user edits user-data on the firmware partition.
        cat > "$tmp/user-data" <<SEED
#cloud-config
hostname: $name
users:
  - name: admin
    gecos: Molecule admin
    groups: [adm, sudo]
    sudo: "ALL=(ALL) NOPASSWD:ALL"
    shell: /bin/bash
    lock_passwd: false
    passwd: "$hash"
    ssh_authorized_keys:
      - $key
ssh_pwauth: true
SEED
        "$osi" fw "$card" put "$tmp/user-data" user-data
        local seeded=1
    else
        echo "admin:$hash" > "$tmp/userconf.txt"
        "$osi" fw "$card" put "$tmp/userconf.txt" userconf.txt
        local seeded=0
    fi
    rm -rf "$tmp"
    out=$("$osi" boot "$card" "$name") || die "$name ($family) did not boot"
    address=$(echo "$out" | tail -1 | awk '{print $3}')
    # dhcpcd (Bullseye) takes a link-local address when the lease is slow to come (a busy host)
    # and goes on asking: wait for the lease the switch's dnsmasq hands out.
    leased() { case "$1" in "" | 169.254.*) return 1 ;; esac; }
    local _
    for _ in $(seq 60); do
        leased "$address" && break
        sleep 1
        address=$("$osi" address "$name")
    done
    leased "$address" || die "$name ($family) has no leased address: $out"
    # sshd may answer before the first boot has made the user (cloud-init): a few tries.
    for _ in $(seq 60); do in_switch timeout 2 bash -c "exec 3<>/dev/tcp/$address/22" 2>/dev/null && break; sleep 1; done
    for _ in $(seq 10); do
        in_switch sshpass -p "$PASSWORD" ssh "${ssh_opts[@]}" -o PubkeyAuthentication=no "admin@$address" true 2>/dev/null && break
        sleep 2
    done
    if [ "$seeded" = 0 ]; then
        # ssh-copy-id, by hand: the password logs in and appends the key.
        in_switch sshpass -p "$PASSWORD" ssh "${ssh_opts[@]}" -o PubkeyAuthentication=no "admin@$address" \
            'umask 077 && mkdir -p .ssh && cat >> .ssh/authorized_keys' < "$dir/admin_key.pub" \
            || die "$name ($family): could not copy the key in with the password"
    fi
    in_switch ssh "${ssh_opts[@]}" -o BatchMode=yes -i "$dir/admin_key" "admin@$address" true \
        || die "$name ($family): the key does not log in"
    echo "address $address"
}

destroy() {
    "$osi" down
    rm -f "${1:-/nonexistent}"/card-*.img
}

case "${1:-}" in
    create) create "${2:?FAMILY}" "${3:?NAME}" "${4:?DIR}" ;;
    destroy) destroy "${2:-}" ;;
    *) sed -n '3,11p' "$0"; exit 2 ;;
esac
