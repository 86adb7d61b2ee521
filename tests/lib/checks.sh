# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Sourced by the tiers that report one line per check (65-first-contact, 70-flash, 75-os-images,
# 80-e2e): ok, fail, check DESCRIPTION COMMAND..., and tp_checks_done, which fails the tier on any
# failed check or when the host is not as it was found (tests/lib/host-state.sh, sourced first).
# And by what runs lanes (tests/run, tiers 60, 70, 75): commands that run at once, below.
fails=0
ok() { echo "ok: $*"; }
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() {  # description command...
    local what=$1; shift
    if "$@"; then ok "$what"; else fail "$what"; fi
}
tp_checks_done() {  # tier name, the host state before (tp_host_state)
    local after
    after=$(tp_host_state)
    if [ "$2" != "$after" ]; then
        fail "the host is not as it was found"
        diff <(echo "$2") <(echo "$after")
    fi
    echo "$1: $fails failed check(s)"
    [ "$fails" = 0 ]
}

# --- Lanes: commands run at once, each in a subshell that leads a process group of its own (so
# that tp_lanes_kill ends it with its children), its output to DIR/NAME.log, stdin /dev/null.
#   tp_lane_start DIR NAME COMMAND...  start one (COMMAND: a function or program and its arguments;
#                                      the subshell has the caller's shell options, set -e included)
#   tp_lanes_wait                      wait for every lane started, in the order started, and report
#                                      each with its whole log (tp_lane_report); fails if any failed
#   tp_lane_wait NAME                  wait for one; returns its exit status
#   tp_lane_report LABEL NAME [LINES]  wait for one, print its log (all of it when it failed, else
#                                      all or its last LINES), then "LABEL: passed in N s" or
#                                      "LABEL: FAILED in N s"
#   tp_lanes_kill                      end every lane still running (for an exit trap)
# N is the lane's own time, from its start to its end.
declare -gA TP_LANE_PID=() TP_LANE_LOG=() TP_LANE_RC=()
TP_LANES=()
tp_status_line() {  # LABEL EXIT-STATUS SECONDS
    if [ "$2" = 0 ]; then echo "$1: passed in $3 s"; else echo "$1: FAILED in $3 s"; fi
}
tp_lane_start() {
    local dir=$1 name=$2 t0=$SECONDS monitor=0
    shift 2
    TP_LANE_LOG[$name]=$dir/$name.log
    rm -f "$dir/$name.seconds"
    [[ $- != *m* ]] || monitor=1
    set -m
    # shellcheck disable=SC2064  # t0 and the file are this lane's, fixed now
    ( set +m; trap "echo \$((SECONDS - $t0)) > '$dir/$name.seconds'" EXIT; "$@" ) \
        </dev/null >"${TP_LANE_LOG[$name]}" 2>&1 &
    TP_LANE_PID[$name]=$!
    [ "$monitor" = 1 ] || set +m
    TP_LANES+=("$name")
}
tp_lane_wait() {
    local name=$1 rc=0
    if [ -n "${TP_LANE_PID[$name]:-}" ]; then
        wait "${TP_LANE_PID[$name]}" || rc=$?
        unset "TP_LANE_PID[$name]"
        TP_LANE_RC[$name]=$rc
    fi
    return "${TP_LANE_RC[$name]:-1}"
}
tp_lane_report() {
    local label=$1 name=$2 lines=${3:-} rc=0 log=${TP_LANE_LOG[$2]} seconds
    tp_lane_wait "$name" || rc=$?
    seconds=$(cat "${log%.log}.seconds" 2>/dev/null || echo '?')
    if [ "$rc" != 0 ] || [ -z "$lines" ]; then
        cat "$log"
    else
        echo "(the last $lines lines of $log)"
        tail -n "$lines" "$log"
    fi
    tp_status_line "$label" "$rc" "$seconds"
    return "$rc"
}
tp_lanes_wait() {
    local name failed=0
    for name in "${TP_LANES[@]}"; do
        tp_lane_report "lane $name" "$name" || failed=1
    done
    TP_LANES=()
    return "$failed"
}
tp_lanes_kill() {
    local name
    for name in "${!TP_LANE_PID[@]}"; do
        kill -TERM -- "-${TP_LANE_PID[$name]}" 2>/dev/null || true
    done
    for name in "${!TP_LANE_PID[@]}"; do
        wait "${TP_LANE_PID[$name]}" 2>/dev/null || true
        unset "TP_LANE_PID[$name]"
    done
}
