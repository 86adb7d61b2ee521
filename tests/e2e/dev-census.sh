#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Development driver of tests/e2e/census.sh (not part of CI): a small lab, both census parts, down.
#   flock /tmp/tplab.lock bash tests/e2e/dev-census.sh [N]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/cluster-env.sh
. tests/lib/checks.sh
. tests/e2e/census.sh
trap 'tests/lab/lab down >/dev/null 2>&1' EXIT
n=${1:-3}
tests/lab/lab down >/dev/null 2>&1
start=$SECONDS
tests/lab/lab board-up "$n" --image "${TP_LAB_IMAGE:-lab-os}" >"$TP_TMP/e2e-census-lab.log" 2>&1 || { tail "$TP_TMP/e2e-census-lab.log"; exit 1; }
echo "lab up in $((SECONDS - start)) s"
t=$SECONDS; census_fresh; echo "census_fresh: $((SECONDS - t)) s"
if [ "${TP_CENSUS_BOOTSTRAP:-0}" = 1 ]; then
    # The census' file bootstraps; then a census with the nodes running; then every node off.
    t=$SECONDS
    if ansible-playbook -i "$CENSUS_FILE" turingpi.cluster.bootstrap >"$TP_TMP/e2e-census-bootstrap.log" 2>&1; then
        ok "bootstrap from the census' board file"
    else
        fail "bootstrap from the census' board file"; grep -E 'fatal:|FAILED!' "$TP_TMP/e2e-census-bootstrap.log" | tail -5
    fi
    echo "bootstrap: $((SECONDS - t)) s"
    t=$SECONDS; census_running; echo "census_running: $((SECONDS - t)) s"
    ansible -i "$CENSUS_FILE" turingpi_master -m turingpi.cluster.power \
        -a '{"bus": "virtual:/var/lib/turingpi/board/board.json", "node": ["workers"], "state": "off"}' \
        >"$TP_TMP/e2e-census-power.log" 2>&1 || fail "every node off"
    sleep 2
fi
t=$SECONDS; census_swap 2 3; echo "census_swap: $((SECONDS - t)) s"
# shellcheck disable=SC2154  # fails: counted by tests/lib/checks.sh
echo "dev-census: $fails failed check(s)"
[ "$fails" = 0 ]
