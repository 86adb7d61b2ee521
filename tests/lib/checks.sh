# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Sourced by the lab tiers that report one line per check (65-first-contact, 80-e2e): ok, fail,
# check DESCRIPTION COMMAND..., and tp_checks_done, which fails the tier on any failed check or
# when the host is not as it was found (tests/lib/host-state.sh, sourced first).
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
