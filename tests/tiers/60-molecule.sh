#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Tier 60: the Molecule scenarios of the master's roles (extensions/molecule/{cmb,router,router_shared,netboot,node})
# on the lab of systemd-nspawn machines (tests/lab/lab). Each scenario runs create, (prepare),
# check, converge, idempotence, verify and destroy.
#
#   bash tests/tiers/60-molecule.sh                              # every scenario
#   TP_MOLECULE_SCENARIOS="router" bash tests/tiers/60-molecule.sh
#
# Logs: $TP_TMP/molecule-<scenario>.log. The lab is always torn down, and the tier fails if the
# host is not left as it was found (ip_forward, nftables ruleset, namespaces, mounts).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/env.sh
export PATH=$TP_VENV_219/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "60-molecule: must run as root (network namespaces, nspawn)"; exit 1; }
command -v molecule >/dev/null || { echo "60-molecule: molecule is not in $TP_VENV_219: run tests/setup"; exit 1; }

. tests/lib/host-state.sh
before=$(tp_host_state)
cleanup() { tests/lab/lab down >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

tests/lab/build-root.sh >/dev/null || { echo "60-molecule: could not build the lab root"; exit 1; }

rc=0
for scenario in ${TP_MOLECULE_SCENARIOS:-cmb router router_shared netboot node}; do
    log=$TP_TMP/molecule-$scenario.log
    start=$SECONDS
    if molecule test -s "$scenario" >"$log" 2>&1; then
        echo "molecule $scenario: passed in $((SECONDS - start)) s"
    else
        echo "molecule $scenario: FAILED in $((SECONDS - start)) s (log $log)"
        grep -E 'fatal:|FAILED!|msg:|ERROR' "$log" | tail -25
        rc=1
    fi
done

cleanup
after=$(tp_host_state)
if [ "$before" != "$after" ]; then
    echo "60-molecule: the host is not as it was found:"
    diff <(echo "$before") <(echo "$after")
    rc=1
fi
exit $rc
