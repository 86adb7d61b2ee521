#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Tier 60: the Molecule scenarios of the roles (extensions/molecule/{cmb,router,router_shared,netboot,node})
# on the lab of systemd-nspawn machines (tests/lab/lab), and extensions/molecule/families: the cmb
# and node roles on one machine per OS family users flash, booted from the lab's OS images
# (tests/lab/os-image.sh, all families at once, images cached). Each scenario runs create,
# (prepare), (check), converge, idempotence, verify and destroy.
#
#   bash tests/tiers/60-molecule.sh                              # every scenario
#   TP_MOLECULE_SCENARIOS="router" bash tests/tiers/60-molecule.sh
#   TP_MOLECULE_SCENARIOS="families" bash tests/tiers/60-molecule.sh   # does not touch the lab
#
# Logs: $TP_TMP/molecule-<scenario>.log. The lab is always torn down when a lab scenario ran (the
# families scenario's machines, namespaces tpmo-*, always), and the tier fails if the host is
# not left as it was found (ip_forward, nftables ruleset, namespaces, mounts).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/env.sh
export PATH=$TP_VENV_219/bin:$PATH
[ "$(id -u)" = 0 ] || { echo "60-molecule: must run as root (network namespaces, nspawn)"; exit 1; }
command -v molecule >/dev/null || { echo "60-molecule: molecule is not in $TP_VENV_219: run tests/setup"; exit 1; }

. tests/lib/host-state.sh
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
    [ "$uses_lab" = 0 ] || tests/lab/lab down >/dev/null 2>&1 || true
    [ "$uses_families" = 0 ] || extensions/molecule/families/machine.sh destroy >/dev/null 2>&1 || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$uses_lab" = 1 ]; then
    tests/lab/build-root.sh >/dev/null || { echo "60-molecule: could not build the lab root"; exit 1; }
fi

rc=0
for scenario in $scenarios; do
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
after=$(host_state)
if [ "$before" != "$after" ]; then
    echo "60-molecule: the host is not as it was found:"
    diff <(echo "$before") <(echo "$after")
    rc=1
fi
exit $rc
