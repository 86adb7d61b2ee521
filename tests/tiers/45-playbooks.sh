#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The shipped CMB playbooks (turingpi.cluster.power / .info) on the virtual board, with the
# demo inventory: declared state in one write, idempotent re-run, ad-hoc use, the table; then
# two boards in one static inventory (two masters, nodes that set turingpi_master and no
# turingpi_board): each master writes only its own nodes' slots, in check mode nothing; then
# bootstrap.yml's board play (--tags board) on a fresh board: the RTC set, running and on battery
# backup, the identity in the EEPROM (read from the board's state file, not through the
# collection), kept on a second run and on a rename, refused over other data; check mode writes nothing.
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

# --- bootstrap.yml's board play: the board's clock and identity ---
clock=$work/clock.json
sed "s|$board|$clock|" "$work/inventory.yml" > "$work/clock.yml"
ansible localhost -m turingpi.cluster.virtual_board -a "path=$clock" > "$work/out" 2>&1 || fail "virtual board for the clock"
boardplay() { local start=$SECONDS; ansible-playbook -i "$work/clock.yml" turingpi.cluster.bootstrap --tags board "$@" > "$work/out" 2>&1; local rc=$?; echo "board play $* ($((SECONDS - start)) s)" >&2; return $rc; }
# The board's state, read without the collection (tests/lib/board-state.py): rtc prints "ST VBATEN
# drift-seconds osc_started_at", eeprom the identity record's JSON (header and CRC-16 checked).
rtc() { python3 "$TP_ROOT/tests/lib/board-state.py" rtc "$clock"; }
eeprom() { python3 "$TP_ROOT/tests/lib/board-state.py" identity "$clock"; }
cycles() { python3 "$TP_ROOT/tests/lib/board-state.py" cycles "$clock"; }
field() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }

boardplay --check || fail "board play, check mode"
recap | grep -q 'changed=2' || fail "check mode should report the clock and the identity as changes"
read -r st vbat _ _ <<< "$(rtc)"
[ "$st$vbat" = 00 ] || fail "check mode started the clock or enabled battery backup (ST $st, VBATEN $vbat)"
[ "$(eeprom)" = empty ] || fail "check mode wrote the EEPROM: $(eeprom)"
[ "$(cycles)" = 0 ] || fail "check mode wrote to the DS4520"

boardplay || fail "board play"
recap | grep -q 'changed=2' || fail "the board play should set the clock and write the identity"
grep -q "follows no time source" "$work/out" || fail "auto on a master without chrony should say the controller's clock was used"
read -r st vbat drift started <<< "$(rtc)"
[ "$st$vbat" = 11 ] || fail "after the board play: ST $st, VBATEN $vbat, want 1 and 1"
# The controller's time reaches the module late by the module's start-up (seconds on a loaded machine).
[ "$drift" -le 15 ] || fail "the RTC is $drift s away from the system clock"
doc=$(eeprom)
[ "$(field "$doc" name)" = tp-master ] || fail "identity name: $doc (want the master's name, the inventory sets no turingpi_board)"
id=$(field "$doc" id)
[[ "$id" =~ ^[A-Za-z0-9_-]{22}$ ]] || fail "identity id '$id' is not 22 characters of base64url"
uuid=$(python3 -c "import base64,sys,uuid; print(uuid.UUID(bytes=base64.urlsafe_b64decode(sys.argv[1] + '==')))" "$id")
[ "${uuid:14:1}" = 4 ] || fail "id $id is UUID $uuid, not version 4"
written=$(cycles)

boardplay || fail "board play, second run"
recap | grep -q 'changed=0' || fail "a second board play should change nothing"
[ "$(cycles)" = "$written" ] || fail "the second run wrote to the EEPROM"
[ "$(rtc | cut -d' ' -f4)" = "$started" ] || fail "the second run set the clock again"

ansible-playbook -i "$work/clock.yml" turingpi.cluster.info > "$work/out" 2>&1 || fail "info after the board play"
grep -q "\"identity       name tp-master, cluster id $uuid (stored as $id)\"" "$work/out" || fail "info misses the identity"
grep -Eq '"clock          20[0-9-]+T[0-9:]+Z   drift -?[0-9.]+ s   battery backup on"' "$work/out" || fail "info misses the running clock"

# The board renamed (its turingpi_board) and its clock stopped: the id stays, the name and the
# clock are written, the clock from the master's own with cmb_clock_source=master.
python3 -c "
import json,sys
s=json.load(open(sys.argv[1])); s['mcp7940n']['regs'][0] &= 0x7F; s['mcp7940n']['osc_started_at'] = None
json.dump(s, open(sys.argv[1], 'w'))" "$clock"
boardplay -e turingpi_board=rack-a -e cmb_clock_source=master || fail "board play after a rename"
recap | grep -q 'changed=2' || fail "a rename with the clock stopped should change the clock and the identity"
grep -q "follows no time source" "$work/out" && fail "cmb_clock_source=master used the controller's clock"
doc=$(eeprom)
[ "$(field "$doc" name)/$(field "$doc" id)" = "rack-a/$id" ] || fail "after a rename: $doc, want name rack-a and the id $id kept"
read -r st vbat drift _ <<< "$(rtc)"
[ "$st$vbat" = 11 ] || fail "the stopped clock was not started again (ST $st, VBATEN $vbat)"
[ "$drift" -le 3 ] || fail "set from the master's own clock, the RTC is $drift s away from it"

# A name too long for the EEPROM, and an EEPROM that holds other data: refused, nothing written.
written=$(cycles)
boardplay -e turingpi_board=a-board-name-too-long -e bootstrap_board_clock=false && fail "a name too long must be refused"
grep -q "give the board a shorter name" "$work/out" || fail "message for a name too long missing"
[ "$(cycles)" = "$written" ] || fail "a refused name wrote to the EEPROM"
ansible localhost -m turingpi.cluster.user_memory -a "{\"bus\": \"virtual:$clock\", \"data\": {\"cluster\": \"k3s\"}}" > "$work/out" 2>&1 || fail "other data"
written=$(cycles)
boardplay -e bootstrap_board_clock=false && fail "an EEPROM with other data must be refused"
grep -q "holds something that is not a board identity" "$work/out" || fail "message for other data missing"
[ "$(eeprom)" = '{"cluster":"k3s"}' ] || fail "the other data was overwritten: $(eeprom)"
[ "$(cycles)" = "$written" ] || fail "a refused identity wrote to the EEPROM"
# Power in waves (power.yml on a virtual board with local node hosts): its own checks.
bash tests/playbooks/power-waves.sh > "$work/out" 2>&1 || fail "power in waves (tests/playbooks/power-waves.sh)"
grep -E '^(ok|FAIL)' "$work/out" | tail -3
echo "playbooks: 16 passed, 0 failed"
