# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Power in waves on the virtual Turing Pi (turingpi_power_wave_size / turingpi_power_wave_pause
# of playbooks/bootstrap.yml and playbooks/power.yml), as parts of the e2e flow. Sourced by
# tests/tiers/80-e2e.sh (or tests/e2e/dev-waves.sh) after tests/lib/cluster-env.sh and
# tests/lib/checks.sh, with the lab up (tests/lab/lab board-up N); each check prints ok:/FAIL:.
# What is checked is what the board's power rail saw: the power supervisor's log
# ($TP_TMP/lab/run/supervisor.log, one "slot S powered on" line per machine it started).
#
#   waves_mark     prints the supervisor log's length now: give it to the checks below, so they
#                  read only what came after (the e2e flow powers nodes more than once).
#   waves_args SIZE PAUSE
#                  prints the ansible-playbook arguments for waves of SIZE, PAUSE seconds apart.
#   waves_check_bootstrap SIZE PAUSE MARK LOG
#                  after a bootstrap run with waves_args SIZE PAUSE (its output in LOG) from every
#                  node off (right after board-up): every slot the register has on was powered on
#                  once since MARK, in waves of at most SIZE, in the waves' order (eMMC/SD first,
#                  then network boot, by slot: the lab's nodes all boot from the network), each
#                  wave at least PAUSE seconds after the one before; and the lab's nodes, which
#                  have no Raspberry Pi firmware tools, said their under-voltage flags could not be
#                  read (vcgencmd not installed), none reported under-voltage. Reads only.
#   waves_power SIZE PAUSE SLOTS
#                  playbooks/power.yml: SLOTS (e.g. 6,7) switched off, then on again in waves of
#                  SIZE, PAUSE seconds apart; checked in the supervisor's log as above and the nodes
#                  answer again. Needs a bootstrapped lab; leaves it so, SLOTS' machines restarted
#                  (from the same roots: their files kept) and two more "slot S powered off"
#                  lines per slot in the log. Logs: $TP_TMP/e2e-waves-*.log.

waves__log=$TP_TMP/lab/run/supervisor.log
waves__board=$TP_TMP/lab/run/board/board.json

waves_mark() { if [ -f "$waves__log" ]; then wc -l < "$waves__log"; else echo 0; fi; }
waves_args() { echo "-e turingpi_power_wave_size=$1 -e turingpi_power_wave_pause=$2"; }

# The slots (2-7) the power register (0xF2, volatile shadow) has on, space-separated.
waves__slots_on() {
    python3 -c '
import json, sys
# docs/hardware.md "DS4520 at 0x57": the bit of each node (nodes 5-7 reversed)
mask = {2: 0x04, 3: 0x08, 4: 0x10, 5: 0x80, 6: 0x40, 7: 0x20}
control = json.load(open(sys.argv[1]))["ds4520"]["shadow"]["242"]
print(" ".join(str(s) for s in sorted(mask) if control & mask[s]))' "$waves__board"
}

# The power-ons of the supervisor's log after line MARK, against the waves expected: SLOTS in
# order, SIZE at a time, PAUSE seconds apart. Prints what it found; fails with the reason.
waves__check_log() {  # SIZE PAUSE MARK SLOTS...
    local size=$1 pause=$2 mark=$3; shift 3
    tail -n +"$((mark + 1))" "$waves__log" | python3 -c '
import re, sys
size, pause, want = int(sys.argv[1]), int(sys.argv[2]), [int(s) for s in sys.argv[3:]]
events, day, last = [], 0, None
for line in sys.stdin:
    m = re.match(r"(\d\d):(\d\d):(\d\d) power-supervisor: slot (\d) powered on: machine started", line)
    if not m:
        continue
    t = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + int(m.group(3))
    if last is not None and t + day < last - 43200:
        day += 86400  # past midnight
    last = t + day
    events.append((last, int(m.group(4))))
slots = [s for _t, s in events]
if sorted(slots) != sorted(want):
    sys.exit("powered on since the mark: slots %s; want each of %s once" % (slots, want))
# Waves as the rail saw them: a new wave where PAUSE seconds or more passed since the last power-on.
seen = []
for t, s in sorted(events):
    if not seen or t - seen[-1]["end"] >= pause:
        seen.append({"start": t, "slots": []})
    seen[-1]["slots"].append(s)
    seen[-1]["end"] = t
expected = [sorted(want[i:i + size]) for i in range(0, len(want), size)]
print("    waves seen: " + "; ".join("slots %s at +%d..%d s" % (",".join(map(str, sorted(w["slots"]))),
                                       w["start"] - seen[0]["start"], w["end"] - seen[0]["start"]) for w in seen))
got = [sorted(w["slots"]) for w in seen]
if got != expected:
    sys.exit("the power-ons fall in waves %s, want %s (waves of %d, %d s apart)" % (got, expected, size, pause))
' "$size" "$pause" "$@"
}

waves_check_bootstrap() {  # SIZE PAUSE MARK LOG
    local size=$1 pause=$2 mark=$3 log=$4 on n
    on=$(waves__slots_on)
    n=$(wc -w <<<"$on")
    # shellcheck disable=SC2086  # the slots, one argument each
    check "the supervisor saw slots ${on// /,} powered on in waves of at most $size, each at least $pause s after the last" \
        waves__check_log "$size" "$pause" "$mark" $on
    check "each of the $n nodes said its under-voltage flags could not be read: vcgencmd not installed (the lab has no firmware tools)" \
        bash -c "[ \$(grep -cE '\"msg\": \"node[2-7]: under-voltage flags not read: vcgencmd is not installed' '$log') = $n ]"
    check "no node reported under-voltage" bash -c "! grep -q 'reports under-voltage' '$log'"
}

waves_power() {  # SIZE PAUSE SLOTS
    local size=$1 pause=$2 slots=$3 mark log=$TP_TMP/e2e-waves-power.log start=$SECONDS
    ansible-playbook -i "$TP_CLUSTER_INVENTORY" turingpi.cluster.power -e "node=$slots" -e state=off \
        >"$TP_TMP/e2e-waves-power-off.log" 2>&1
    check "power.yml switched slots $slots off" bash -c "[ -z \"\$(comm -12 <(tr ' ' '\n' <<<'$(waves__slots_on)' | sort) <(tr ',' '\n' <<<'$slots' | sort))\" ]"
    mark=$(waves_mark)
    # shellcheck disable=SC2046  # waves_args prints separate arguments
    if ansible-playbook -i "$TP_CLUSTER_INVENTORY" turingpi.cluster.power -e "node=$slots" -e state=on \
            $(waves_args "$size" "$pause") >"$log" 2>&1; then
        ok "power.yml switched slots $slots on in waves of $size ($((SECONDS - start)) s, log $log)"
    else
        fail "power.yml in waves failed (log $log)"; grep -E 'fatal:|FAILED!|ERROR' "$log" | tail -10
    fi
    # shellcheck disable=SC2046  # the slots, one argument each
    check "the supervisor saw slots $slots powered on in waves of at most $size, each at least $pause s after the last" \
        waves__check_log "$size" "$pause" "$mark" $(tr ',' ' ' <<<"$slots")
    check "every node of slots $slots answered after its wave and said its flags could not be read" \
        bash -c "[ \$(grep -cE '\"msg\": \"node[2-7]: under-voltage flags not read' '$log') = $(tr ',' '\n' <<<"$slots" | wc -l) ]"
}
