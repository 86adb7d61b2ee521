#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Tier 65: playbooks/first_contact.yml on the lab (tests/lab/lab up 1), against a node that, like
# a freshly flashed Raspberry Pi OS, only lets user pi in with a password:
#  1. first contact with the password (sshpass) installs the admin user with the controller's key
#     and sudo, then logs in with the key and switches password login off;
#  2. checked from outside with plain ssh: the key works for the admin user and sudo, the
#     password no longer does, sshd says so;
#  3. a run with a wrong password fails and changes nothing.
# Case ubuntu: the same against an untouched Ubuntu 24.04 lab image (tests/lab/os-image.sh, its
# own namespaces tpfc-*, not the lab), whose ubuntu/ubuntu login must change the password first:
#  4. without first_contact_new_password the play stops and says so; with it, first contact
#     changes the password at the prompt and goes on; the key works, passwords no longer do.
#   TP_FIRST_CONTACT_CASES="raspios ubuntu"   (default: both; "ubuntu" alone does not use the lab)
# The ubuntu case needs pexpect in the controller's Python (ansible.builtin.expect); without it
# the case fails and says so (tests/setup installs it; TP_FIRST_CONTACT_PYTHON names another Python).
# Logs: $TP_TMP/first-contact-*.log. The lab and the machine are always torn down; the tier
# fails if the host is not left as it was found.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/env.sh
export PATH=$TP_VENV_219/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$TP_COLLECTIONS ANSIBLE_NOCOLOR=1
[ "$(id -u)" = 0 ] || { echo "65-first-contact: must run as root (network namespaces, nspawn)"; exit 1; }
command -v sshpass >/dev/null || { echo "65-first-contact: sshpass is missing: run tests/setup"; exit 1; }

. tests/lib/host-state.sh
. tests/lib/checks.sh
cases=${TP_FIRST_CONTACT_CASES:-raspios ubuntu}
has_case() { [[ " $cases " == *" $1 "* ]]; }
# The ubuntu case's machine: os-image.sh with a prefix and subnet of its own.
export TP_OSI_PREFIX=tpfc TP_OSI_NET=172.31.81
osi=tests/lab/os-image.sh
if ! has_case raspios; then
    # Without the lab, the lab's state (tplab-* namespaces, nftables) is not this tier's to compare.
    tp_host_state() { echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"; }
fi
machine_state() { ip netns list | awk '{print $1}' | grep '^tpfc-' || true; }
before=$(tp_host_state)
machines_before=$(machine_state)
cleanup() {
    if has_case raspios; then tests/lab/lab down >/dev/null 2>&1 || true; fi
    if has_case ubuntu; then "$osi" down >/dev/null 2>&1 || true; rm -f "$TP_TMP/first-contact-ubuntu.img"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

LAB=$TP_TMP/lab
KEY=$LAB/first_contact_admin_key
NODE=172.31.77.2
PASSWORD=raspberry
# Plain ssh from the controller, the way a user would try it afterwards.
ssh_opts=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=10)
with_key() { ssh "${ssh_opts[@]}" -o BatchMode=yes -o PasswordAuthentication=no -i "$KEY" "admin@$NODE" "$@"; }
with_password() {  # password, command
    sshpass -p "$1" ssh "${ssh_opts[@]}" -o PubkeyAuthentication=no \
        -o PreferredAuthentications=password,keyboard-interactive "pi@$NODE" "$2"
}
# The password is refused by sshd itself (not a network failure).
password_refused() { local out; out=$(with_password "$1" true 2>&1); grep -q 'Permission denied' <<<"$out"; }
as_root() { ssh "${ssh_opts[@]}" -o BatchMode=yes -i "$LAB/id_ed25519" "root@$NODE" "$@"; }

raspios_case() {
    tests/lab/lab down >/dev/null 2>&1
    tests/lab/lab up 1 >/dev/null || { echo "65-first-contact: the lab did not come up"; exit 1; }

    echo "--- node2 as freshly flashed: user pi with a password, no admin user"
    # The lab lets the controller in as root with its key and no one with a password: make user pi,
    # let passwords in the way Raspberry Pi OS's first boot does (a drop-in, which the node role's
    # 00-turingpi.conf overrides), restart sshd and take the root key away.
    as_root "useradd -m -s /bin/bash -G sudo pi && echo 'pi:$PASSWORD' | chpasswd \
        && printf 'PasswordAuthentication yes\nKbdInteractiveAuthentication yes\n' > /etc/ssh/sshd_config.d/50-flashed.conf \
        && systemctl restart ssh && rm /root/.ssh/authorized_keys" \
        || { echo "65-first-contact: could not prepare node2"; exit 1; }
    check "pi gets in with the password" with_password "$PASSWORD" true
    rm -f "$KEY" "$KEY.pub"
    ssh-keygen -q -t ed25519 -N "" -C admin@first-contact -f "$KEY"

    inventory=$TP_TMP/first-contact-inventory.yml
    cat > "$inventory" <<EOF
all:
  vars:
    ansible_python_interpreter: /usr/bin/python3
    ansible_ssh_private_key_file: $KEY
    ansible_ssh_common_args: ${ssh_opts[*]}
  children:
    turingpi_nodes:
      hosts:
        node2: {ansible_host: $NODE, turingpi_slot: 2}
EOF
    first_contact() {  # log name, password
        ansible-playbook -i "$inventory" turingpi.cluster.first_contact -e first_contact_user=pi \
            -e "$(python3 -c 'import json, sys; print(json.dumps({"first_contact_password": sys.argv[1],
                 "node_admin_ssh_keys": [open(sys.argv[2]).read().strip()]}))' "$2" "$KEY.pub")" \
            > "$TP_TMP/first-contact-$1.log" 2>&1
    }

    echo "--- a wrong password: refused, nothing changed"
    if first_contact wrong-password not-the-password; then fail "first contact with a wrong password should fail"; else
        check "the failure is the login" grep -qiE 'unreachable|permission denied|authentication' "$TP_TMP/first-contact-wrong-password.log"
    fi
    check "there is no admin user yet" [ "$(with_password "$PASSWORD" 'getent passwd admin || echo none')" = none ]

    echo "--- first contact"
    if first_contact run "$PASSWORD"; then ok "first contact succeeded"; else
        fail "first contact failed"; grep -E 'fatal:|FAILED!|ERROR' "$TP_TMP/first-contact-run.log" | tail -10
    fi
    check "admin logs in with the key and uses sudo without a password" [ "$(with_key sudo -n id -u)" = 0 ]
    check "the password no longer logs in" password_refused "$PASSWORD"
    sshd_t=$(with_key sudo -n sshd -T)
    check "sshd: password login off" grep -qx 'passwordauthentication no' <<<"$sshd_t"
    check "sshd: keyboard-interactive login off" grep -qx 'kbdinteractiveauthentication no' <<<"$sshd_t"
}

ubuntu_case() {
    echo "--- ubuntu: an untouched Ubuntu 24.04 image, ubuntu/ubuntu must change the password at once"
    local py=${TP_FIRST_CONTACT_PYTHON:-$TP_VENV_219/bin/python}
    # tests/setup installs pexpect (tests/requirements-common.txt): missing, the case fails.
    if ! "$py" -c 'import pexpect' 2>/dev/null; then
        fail "no pexpect in $py (ansible.builtin.expect needs it on the controller; run tests/setup or set TP_FIRST_CONTACT_PYTHON)"
        return 0
    fi
    local img card out address _ new=Tp-first-Contact-42
    local inv=$TP_TMP/first-contact-ubuntu-inventory.yml proxy="ip netns exec $TP_OSI_PREFIX-sw python3 $TP_ROOT/tests/lib/netns_proxy.py %h %p"
    img=$("$osi" build ubuntu-24.04) || { fail "the ubuntu-24.04 image does not build"; return 0; }
    card=$TP_TMP/first-contact-ubuntu.img
    cp --sparse=always "$img" "$card"
    out=$("$osi" boot "$card" fresh) || { fail "the ubuntu machine did not boot"; return 0; }
    address=$(echo "$out" | tail -1 | awk '{print $3}')
    in_sw() { ip netns exec "$TP_OSI_PREFIX-sw" "$@"; }
    u_password() {  # password, user: what sshd says to a client without a terminal
        in_sw sshpass -p "$1" ssh "${ssh_opts[@]}" -o PubkeyAuthentication=no \
            -o PreferredAuthentications=password,keyboard-interactive "$2@$address" true 2>&1
    }
    u_key() { in_sw ssh "${ssh_opts[@]}" -o BatchMode=yes -o PasswordAuthentication=no -i "$KEY" "admin@$address" "$@"; }
    for _ in $(seq 60); do u_password ubuntu ubuntu | grep -q 'Password change required' && break; sleep 2; done
    check "ubuntu/ubuntu logs in and must change the password at once" grep -q 'Password change required' <<<"$(u_password ubuntu ubuntu)"
    rm -f "$KEY" "$KEY.pub"
    ssh-keygen -q -t ed25519 -N "" -C admin@first-contact -f "$KEY"
    cat > "$inv" <<EOF
all:
  vars:
    ansible_python_interpreter: /usr/bin/python3
    ansible_ssh_private_key_file: $KEY
    ansible_ssh_common_args: ${ssh_opts[*]} -o ProxyCommand="$proxy"
  children:
    turingpi_nodes:
      hosts:
        fresh: {ansible_host: $address, turingpi_slot: 4}
    controller:
      hosts:
        localhost: {ansible_connection: local, ansible_python_interpreter: $py}
EOF
    u_first_contact() {  # log name, more extra vars as JSON
        ansible-playbook -i "$inv" turingpi.cluster.first_contact -e first_contact_user=ubuntu \
            -e "$(python3 -c 'import json, sys
d = {"first_contact_password": "ubuntu", "node_admin_ssh_keys": [open(sys.argv[1]).read().strip()]}
d.update(json.loads(sys.argv[2]))
print(json.dumps(d))' "$KEY.pub" "$2")" > "$TP_TMP/first-contact-$1.log" 2>&1
    }
    if u_first_contact ubuntu-no-new-password '{}'; then fail "first contact without a new password should stop"; else
        check "it stops and asks for first_contact_new_password" grep -q 'first_contact_new_password' "$TP_TMP/first-contact-ubuntu-no-new-password.log"
    fi
    check "the password is still ubuntu, still expired" grep -q 'Password change required' <<<"$(u_password ubuntu ubuntu)"
    if u_first_contact ubuntu "{\"first_contact_new_password\": \"$new\"}"; then ok "first contact changed the password and went on"; else
        fail "first contact with a new password failed"; grep -E 'fatal:|FAILED!|ERROR' "$TP_TMP/first-contact-ubuntu.log" | tail -10
    fi
    check "admin logs in with the key and uses sudo without a password" [ "$(u_key sudo -n id -u)" = 0 ]
    check "ubuntu's password is no longer expired" [ "$(u_key sudo -n chage -l ubuntu | grep -c 'password must be changed')" = 0 ]
    check "the new password no longer logs in (keys only)" grep -q 'Permission denied' <<<"$(u_password "$new" ubuntu)"
    "$osi" stop fresh >/dev/null 2>&1
    rm -f "$card"
}

if has_case raspios; then raspios_case; fi
if has_case ubuntu; then ubuntu_case; fi

cleanup
[ "$(machine_state)" = "$machines_before" ] || fail "machines of this tier are left: $(machine_state | tr '\n' ' ')"
tp_checks_done 65-first-contact "$before"
