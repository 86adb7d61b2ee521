#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Tier 65: playbooks/first_contact.yml on the lab (tests/lab/lab up 1), against a node that, like
# a freshly flashed Raspberry Pi OS, only lets user pi in with a password:
#  1. first contact with the password (sshpass) installs the admin user with the controller's key
#     and sudo, then logs in with the key and switches password login off;
#  2. checked from outside with plain ssh: the key works for the admin user and sudo, the
#     password no longer does, sshd says so;
#  3. a run with a wrong password fails and changes nothing.
# Logs: $TP_TMP/first-contact-*.log. The lab is always torn down; the tier fails if the host is
# not left as it was found.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/env.sh
export PATH=$TP_VENV_219/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$TP_COLLECTIONS ANSIBLE_NOCOLOR=1
[ "$(id -u)" = 0 ] || { echo "65-first-contact: must run as root (network namespaces, nspawn)"; exit 1; }
command -v sshpass >/dev/null || { echo "65-first-contact: sshpass is missing: run tests/setup"; exit 1; }

. tests/lib/host-state.sh
. tests/lib/checks.sh
before=$(tp_host_state)
cleanup() { tests/lab/lab down >/dev/null 2>&1 || true; }
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

cleanup
tp_checks_done 65-first-contact "$before"
