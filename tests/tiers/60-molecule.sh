#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Tier 60: the Molecule scenarios of the roles (extensions/molecule/{cmb,router,router_shared,netboot,node})
# on the lab of systemd-nspawn machines (tests/lab/lab), and extensions/molecule/families: the cmb
# and node roles on one machine per OS family users flash, booted from the lab's OS images
# (tests/lab/os-image.sh, all families at once, images cached). Each scenario runs create,
# (prepare), (check), converge, idempotence, verify and destroy. The lab scenarios run one after
# the other (one lab); the families scenario shares nothing with them (its own machines and
# switch) and runs beside them as a lane (tp_lane_start, tests/lib/checks.sh), its lines printed
# when it is done: most of its time is its machines' first boots (Trixie's wait two minutes).
#
#   bash tests/tiers/60-molecule.sh                              # every scenario
#   TP_MOLECULE_SCENARIOS="router" bash tests/tiers/60-molecule.sh
#   TP_MOLECULE_SCENARIOS="families" bash tests/tiers/60-molecule.sh   # does not touch the lab
#
# Logs: $TP_TMP/molecule-<scenario>.log (the families lane's in $TP_TMP/molecule-lanes/). The lab
# is always torn down when a lab scenario ran (the families scenario's machines, namespaces
# tpmo-*, always), and the tier fails if the host is not left as it was found (ip_forward,
# nftables ruleset, namespaces, mounts).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/env.sh
export PATH=$TP_VENV_219/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "60-molecule: must run as root (network namespaces, nspawn)"; exit 1; }
command -v molecule >/dev/null || { echo "60-molecule: molecule is not in $TP_VENV_219: run tests/setup"; exit 1; }

. tests/lib/host-state.sh
. tests/lib/checks.sh
scenarios=${TP_MOLECULE_SCENARIOS:-cmb router router_shared netboot node families}
# Only the lab scenarios use tests/lab/lab; the families scenario has its own machines.
uses_lab=0 uses_families=0
for scenario in $scenarios; do if [ "$scenario" = families ]; then uses_families=1; else uses_lab=1; fi; done
# What the families scenario may leave behind: its namespaces and os-image.sh's mounts.
families_state() {
    ip netns list | awk '{print $1}' | grep '^tpmo-' || true
    grep -F "$TP_TMP/lab/os-images/run-tpmo" /proc/mounts || true
}
host_state() { if [ "$uses_lab" = 1 ]; then tp_host_state; else echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"; fi; families_state; }
before=$(host_state)
cleanup() {
    tp_lanes_kill
    [ "$uses_lab" = 0 ] || tests/lab/lab down >/dev/null 2>&1 || true
    [ "$uses_families" = 0 ] || extensions/molecule/families/machine.sh destroy >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$uses_lab" = 1 ]; then
    tests/lab/build-root.sh >/dev/null || { echo "60-molecule: could not build the lab root"; exit 1; }
fi

scenario_test() {  # SCENARIO: molecule test, its log to a file; one line, and on failure its errors
    local log=$TP_TMP/molecule-$1.log start=$SECONDS
    if molecule test -s "$1" >"$log" 2>&1; then
        echo "molecule $1: passed in $((SECONDS - start)) s"
    else
        echo "molecule $1: FAILED in $((SECONDS - start)) s (log $log)"
        grep -E 'fatal:|FAILED!|msg:|ERROR' "$log" | tail -25
        return 1
    fi
}

rc=0
if [ "$uses_families" = 1 ]; then
    mkdir -p "$TP_TMP/molecule-lanes"
    tp_lane_start "$TP_TMP/molecule-lanes" families scenario_test families
fi
for scenario in $scenarios; do
    [ "$scenario" = families ] || scenario_test "$scenario" || rc=1
done
tp_lanes_wait || rc=1

cleanup
after=$(host_state)
if [ "$before" != "$after" ]; then
    echo "60-molecule: the host is not as it was found:"
    diff <(echo "$before") <(echo "$after")
    rc=1
fi
exit $rc
