#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The shipped CMB playbooks (turingpi.cluster.power / .info) on the virtual board, with the
# demo inventory: declared state in one write, idempotent re-run, ad-hoc use, the table; then
# two boards in one static inventory (two masters, nodes that set turingpi_master and no
# turingpi_board): each master writes only its own nodes' slots, in check mode nothing.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
board=$work/board.json
sed "s|/tmp/turingpi-virtual-board.json|$board|" "$TP_ROOT/demo/inventory.yml" > "$work/inventory.yml"
ansible localhost -m turingpi.cluster.virtual_board -a "path=$board" > "$work/out" 2>&1 || { cat "$work/out"; exit 1; }
play() { ansible-playbook -i "$work/inventory.yml" "$@" > "$work/out" 2>&1 || { cat "$work/out"; return 1; }; }
reg() {  # register value in the board's state file, read without the collection
    python3 -c "import json,sys; s=json.load(open('$board')); print(hex(s['ds4520']['$1']['$2']))"
}
recap() { grep -E '^tp-master' "$work/out" | sed 's/  */ /g'; }
fail() { echo "FAIL: $*"; cat "$work/out"; exit 1; }

play turingpi.cluster.power
# declared: nodes 3 and 6 off -> 0xFF minus 0x08 and 0x40
[ "$(reg shadow 242)" = 0xb7 ] || fail "declared power: register $(reg shadow 242), want 0xb7"
[ "$(reg writes 242)" = 0x1 ] || fail "declared power took $(reg writes 242) writes, want 1"
recap | grep -q 'changed=1' || fail "first run should report one change"

play turingpi.cluster.power
recap | grep -q 'changed=0' || fail "second run should change nothing"
[ "$(reg writes 242)" = 0x1 ] || fail "second run wrote to the power register"

play turingpi.cluster.power -e node=3 -e state=on
[ "$(reg shadow 242)" = 0xbf ] || fail "ad hoc node 3 on: register $(reg shadow 242), want 0xbf"

if ansible-playbook -i "$work/inventory.yml" turingpi.cluster.power -e node=1 -e state=off > "$work/out" 2>&1; then
    fail "switching off the master must be refused"
fi
grep -q 'refusing to switch off node 1' "$work/out" || fail "refusal message missing"
[ "$(reg shadow 242)" = 0xbf ] || fail "a refused run changed the register"

play turingpi.cluster.info
grep -q '"node 6   power off   off"' "$work/out" || fail "info table misses node 6"
grep -q '"power register 0xbf, status 0xbe, volatile (SEE set)"' "$work/out" || fail "info table misses the registers"
# --- two masters, each with its own virtual board ---
for b in a b; do
    ansible localhost -m turingpi.cluster.virtual_board -a "path=$work/$b.json" > "$work/out" 2>&1 || fail "virtual board $b"
done
cat > "$work/two.yml" <<EOF
turingpi_master:
  hosts:
    master-a: {turingpi_slot: 1, turingpi_bus: 'virtual:$work/a.json'}
    master-b: {turingpi_slot: 1, turingpi_bus: 'virtual:$work/b.json'}
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
turingpi_nodes:
  hosts:
    a2: {turingpi_slot: 2, turingpi_master: master-a, turingpi_power: 'off'}
    a3: {turingpi_slot: 3, turingpi_master: master-a}
    b4: {turingpi_slot: 4, turingpi_master: master-b, turingpi_power: 'off'}
    b5: {turingpi_slot: 5, turingpi_master: master-b, turingpi_power: 'off'}
EOF
regof() { python3 -c "import json; s=json.load(open('$work/$1.json')); print(hex(s['ds4520']['$2'].get('$3', 0)))"; }
ansible-playbook -i "$work/two.yml" turingpi.cluster.power --check > "$work/out" 2>&1 || fail "two boards, check mode"
grep -q 'node2 off, node3 on' "$work/out" || fail "check mode on master-a should plan node2 off, node3 on"
grep -q 'node4 off, node5 off' "$work/out" || fail "check mode on master-b should plan node4 off, node5 off"
if [ "$(regof a writes 242)" != 0x0 ] || [ "$(regof b writes 242)" != 0x0 ]; then fail "check mode wrote to a power register"; fi
ansible-playbook -i "$work/two.yml" turingpi.cluster.power > "$work/out" 2>&1 || fail "two boards"
# board a: only its node 2 off (0xFF - 0x04); board b: only its nodes 4 and 5 off (0xFF - 0x10 - 0x80)
[ "$(regof a shadow 242)" = 0xfb ] || fail "board a: register $(regof a shadow 242), want 0xfb (only its node 2 off)"
[ "$(regof b shadow 242)" = 0x6f ] || fail "board b: register $(regof b shadow 242), want 0x6f (only its nodes 4 and 5 off)"
if [ "$(regof a writes 242)" != 0x1 ] || [ "$(regof b writes 242)" != 0x1 ]; then fail "each board should take one write"; fi

# a node whose turingpi_master is no master: a clear error, nothing written
sed -i 's/turingpi_master: master-b, turingpi_power/turingpi_master: master-c, turingpi_power/' "$work/two.yml"
if ansible-playbook -i "$work/two.yml" turingpi.cluster.power -e node=3 -e state=off > "$work/out" 2>&1; then
    fail "a node with an unknown turingpi_master must be refused"
fi
grep -q "turingpi_master 'master-c' is not a host of the master group" "$work/out" || fail "message for an unknown master missing"
[ "$(regof a shadow 242)" = 0xfb ] || fail "a refused run changed board a"
echo "playbooks: 8 passed, 0 failed"
