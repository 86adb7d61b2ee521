#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Development driver of tests/e2e/waves.sh (not part of CI): a small lab, a bootstrap in waves,
# its checks, power.yml in waves, down.
#   flock /tmp/tplab.lock bash tests/e2e/dev-waves.sh [N [SIZE [PAUSE]]]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/cluster-env.sh
. tests/lib/checks.sh
. tests/e2e/waves.sh
trap 'tests/lab/lab down >/dev/null 2>&1' EXIT
n=${1:-3} size=${2:-2} pause=${3:-15}
tests/lab/lab down >/dev/null 2>&1
start=$SECONDS
tests/lab/lab board-up "$n" --image "${TP_LAB_IMAGE:-raspios-bookworm}" >"$TP_TMP/e2e-waves-lab.log" 2>&1 ||
    { tail "$TP_TMP/e2e-waves-lab.log"; exit 1; }
echo "lab up in $((SECONDS - start)) s"
mark=$(waves_mark)
t=$SECONDS
# shellcheck disable=SC2046  # waves_args prints separate arguments
if ansible-playbook -i "$TP_CLUSTER_INVENTORY" turingpi.cluster.bootstrap $(waves_args "$size" "$pause") \
        >"$TP_TMP/e2e-waves-bootstrap.log" 2>&1; then
    ok "bootstrap in waves of $size, $pause s apart ($((SECONDS - t)) s)"
else
    fail "bootstrap in waves failed"; grep -E 'fatal:|FAILED!|ERROR' "$TP_TMP/e2e-waves-bootstrap.log" | tail -20
fi
waves_check_bootstrap "$size" "$pause" "$mark" "$TP_TMP/e2e-waves-bootstrap.log"
last=$(seq -s, $((n > 1 ? n : 2)) $((n + 1)))
t=$SECONDS; waves_power 1 "$pause" "$last"; echo "waves_power: $((SECONDS - t)) s"
# shellcheck disable=SC2154  # fails: counted by tests/lib/checks.sh
echo "dev-waves: $fails failed check(s)"
[ "$fails" = 0 ]
