#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The shipped CMB playbooks (turingpi.cluster.power / .info) on the virtual board, with the
# demo inventory: declared state in one write, idempotent re-run, ad-hoc use, the table.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
board=$work/board.json
sed "s|/tmp/turingpi-virtual-board.json|$board|" "$TP_ROOT/demo/inventory.yml" > "$work/inventory.yml"
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
echo "playbooks: 5 passed, 0 failed"
