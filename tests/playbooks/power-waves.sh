#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Power in waves (playbooks/power.yml, playbooks/tasks/power_wave.yml, the same tasks as
# bootstrap.yml's waves) on a virtual board, the nodes local hosts whose vcgencmd is a stand-in
# that records, at each call, the board's power register: with turingpi_power_wave_size=2 the
# nodes get power two at a time, eMMC/SD first, one write per wave, the next wave only after the
# pause; a re-run changes nothing; a node reporting under-voltage (throttled=0x50005) stops the run
# with the message before the next wave; a node without vcgencmd, or whose vcgencmd cannot reach
# the VideoCore, says the flags were not read and goes on; check mode writes nothing; ad hoc
# slots go in waves too, and a slot without a node is refused.
# Run from tests/tiers/45-playbooks.sh (bash tests/playbooks/power-waves.sh); prints one line per check.
set -uo pipefail
. "$(dirname "$0")/../lib/env.sh"
export PATH=$TP_VENV_219/bin:$PATH
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
board=$work/board.json
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else fail "$what"; tail -30 "$work/out"; fi; }

# The register as the state file holds it, and its write count (read without the collection).
# shadow: 0xF2 without bit 0 (no node's: docs/hardware.md "DS4520 at 0x57"; the factory sets it).
reg() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); v=s['ds4520']['$1'].get('242', 0); print(hex(v & 0xFE if '$1' == 'shadow' else v))" "$board"; }
# n2 network boot; n3, n4, n5 eMMC; n6 declared off; slot 7 has no host.
cat > "$work/inventory.yml" <<EOF2
turingpi_master:
  hosts:
    tp-master: {turingpi_slot: 1, turingpi_power: 'on'}
  vars:
    turingpi_bus: 'virtual:$board'
turingpi_nodes:
  hosts:
    n2: {turingpi_slot: 2, turingpi_boot: netboot, turingpi_serial: '0000aa02'}
    n3: {turingpi_slot: 3}
    n4: {turingpi_slot: 4}
    n5: {turingpi_slot: 5}
    n6: {turingpi_slot: 6, turingpi_power: 'off'}
all:
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
EOF2
# The stand-in: prints what $work/throttled says (or fails as vcgencmd does without a VideoCore)
# and logs the time and the power register it saw.
mkdir -p "$work/bin"
cat > "$work/bin/vcgencmd" <<EOF2
#!/bin/sh
echo "\$(date +%s.%N) \$(python3 -c "import json; print(json.load(open('$board'))['ds4520']['shadow']['242'])")" >> '$work/calls'
if [ -f '$work/vchi' ]; then echo 'VCHI initialization failed' >&2; exit 255; fi
echo "throttled=\$(cat '$work/throttled')"
EOF2
chmod +x "$work/bin/vcgencmd"
with_vcgencmd="$work/bin:$PATH"
no_vcgencmd=$PATH

fresh() {  # every worker off, the call log empty
    rm -f "$work/calls" "$work/vchi"
    ansible localhost -m turingpi.cluster.virtual_board -a "path=$board" > "$work/out" 2>&1 &&
    ansible localhost -m turingpi.cluster.power -a "bus=virtual:$board node=workers state=off" > "$work/out" 2>&1
}
waves() {  # PATH, extra args...
    local path=$1; shift
    PATH=$path ansible-playbook -i "$work/inventory.yml" turingpi.cluster.power -e turingpi_power_wave_size=2 \
        -e turingpi_power_wave_pause=3 -e bootstrap_boot_timeout=20 "$@" > "$work/out" 2>&1
}
# The register values the stand-in saw, in call order, and the gap between two calls (s).
seen() { python3 -c "import sys; print(' '.join(hex(int(l.split()[1]) & 0xFE) for l in open(sys.argv[1])))" "$work/calls" 2>/dev/null; }
gap() { awk -v a="$1" -v b="$2" 'NR==a{t=$1} NR==b{printf "%d\n", $1 - t}' "$work/calls"; }
calls() { if [ -f "$work/calls" ]; then wc -l < "$work/calls"; else echo 0; fi; }
# Bits (docs/hardware.md "DS4520 at 0x57"): master 0x02, n2 0x04, n3 0x08, n4 0x10, n5 0x80, n6 0x40.
WAVE1=0x1a  # master, n3, n4: the eMMC nodes first
ALL=0x9e    # and n5, n2

fresh || { cat "$work/out"; exit 1; }
echo 0x0 > "$work/throttled"
if command -v vcgencmd >/dev/null; then echo "FAIL: this machine has a vcgencmd ($(command -v vcgencmd)): the test needs a PATH without one"; exit 1; fi
writes0=$(reg writes)
waves "$with_vcgencmd"; rc=$?
check "waves of 2: the run succeeds" [ "$rc" = 0 ]
check "the register ends with n2-n5 on, n6 and slot 7 off ($(reg shadow), want $ALL)" [ "$(reg shadow)" = "$ALL" ]
check "one write per wave (2 writes, got $(( $(reg writes) - writes0 )))" [ "$(( $(reg writes) - writes0 ))" = 2 ]
check "wave 1 (n3, n4) had power alone when read, then n5 and n2 (saw: $(seen))" \
    [ "$(seen)" = "$WAVE1 $WAVE1 $ALL $ALL" ]
check "the second wave came at least the pause (3 s) after the first was read ($(gap 2 3) s)" [ "$(gap 2 3)" -ge 3 ]
check "each node's flags are reported" bash -c "grep -c '\"msg\": \"n[2-5]: throttled=0x0: no flag set\"' '$work/out' | grep -qx 4"

writes0=$(reg writes)
waves "$with_vcgencmd"; rc=$?
check "a re-run succeeds and changes nothing" bash -c "[ $rc = 0 ] && grep -E '^tp-master|^n[2-5] ' '$work/out' | grep -v 'changed=0' | wc -l | grep -qx 0"
check "a re-run writes nothing and does not pause" bash -c "[ $(reg writes) = $writes0 ] && ! grep -q 'Pausing for' '$work/out'"

fresh
echo 0x50005 > "$work/throttled"
waves "$with_vcgencmd"; rc=$?
check "under-voltage (throttled=0x50005) stops the run" [ "$rc" != 0 ]
check "the message names the node, the flags and what to do" \
    grep -q 'n3 reports under-voltage (throttled=0x50005: under-voltage detected, currently throttled, under-voltage has occurred, throttling has occurred): its power supply could not start this wave of 2 node(s) (n3, n4). Nothing more is switched on.' "$work/out"
check "nothing more was switched on: only wave 1 has power ($(reg shadow), want $WAVE1)" [ "$(reg shadow)" = "$WAVE1" ]
check "no node of the next wave was read ($(calls) calls)" [ "$(calls)" = 2 ]

fresh
echo 0x10000 > "$work/throttled"
waves "$with_vcgencmd"; rc=$?
check "under-voltage since boot alone (0x10000) stops the run too" \
    bash -c "[ $rc != 0 ] && grep -q 'n3 reports under-voltage (throttled=0x10000: under-voltage has occurred)' '$work/out'"

fresh
waves "$no_vcgencmd"; rc=$?
check "without vcgencmd the run goes on, every wave switched on" bash -c "[ $rc = 0 ] && [ $(reg shadow) = $ALL ]"
check "and says for each node that the flags were not read" \
    bash -c "grep -c '\"msg\": \"n[2-5]: under-voltage flags not read: vcgencmd is not installed' '$work/out' | grep -qx 4"

fresh
echo 0x0 > "$work/throttled"
touch "$work/vchi"
waves "$with_vcgencmd"; rc=$?
check "a vcgencmd that cannot reach the VideoCore: the run goes on and says so" bash -c "[ $rc = 0 ] &&
    grep -c 'under-voltage flags not read: vcgencmd cannot reach the VideoCore (VCHI initialization failed)' '$work/out' | grep -qx 4"

fresh
writes0=$(reg writes)
waves "$with_vcgencmd" --check; rc=$?
check "check mode: succeeds, writes nothing, reads no flags" \
    bash -c "[ $rc = 0 ] && [ $(reg writes) = $writes0 ] && [ $(reg shadow) = 0x2 ] && [ $(calls) = 0 ]"

fresh
writes0=$(reg writes)
waves "$with_vcgencmd" -e node=3,2 -e state=on -e turingpi_power_wave_size=1 -e turingpi_power_wave_check=false; rc=$?
check "ad hoc node=3,2 in waves of 1 without the check: two writes, no flags read" \
    bash -c "[ $rc = 0 ] && [ $(reg shadow) = 0xe ] && [ $(( $(reg writes) - writes0 )) = 2 ] && [ $(calls) = 0 ]"
waves "$with_vcgencmd" -e node=7 -e state=on; rc=$?
check "ad hoc slot 7 (no node in the inventory) in waves is refused, nothing written" bash -c "[ $rc != 0 ] &&
    grep -q \"slot 7 of master 'tp-master' has no node in the inventory\" '$work/out' && [ $(reg shadow) = 0xe ]"

echo "power-waves: $fails failed check(s)"
[ "$fails" = 0 ]
