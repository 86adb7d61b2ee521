#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Development driver for tests/e2e/diagnostics.sh: a small lab (3 network-boot nodes), one
# bootstrap, the three faults, the lab down. Run under the lab's lock:
#   flock /tmp/tplab.lock bash tests/e2e/dev-diagnostics.sh [IMAGE]
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/cluster-env.sh
fails=0  # counted by tests/lib/checks.sh
. tests/lib/checks.sh
. tests/e2e/diagnostics.sh
trap 'tests/lab/lab down >/dev/null 2>&1 || true' EXIT
t0=$SECONDS
tests/lab/lab down >/dev/null 2>&1
tests/lab/lab board-up 3 --image "${1:-lab-os}" || exit 1
ansible-playbook -i "$TP_CLUSTER_INVENTORY" turingpi.cluster.bootstrap >"$TP_TMP/e2e-diag-bootstrap-1.log" 2>&1 \
    || { echo "first bootstrap failed: $TP_TMP/e2e-diag-bootstrap-1.log"; tail -30 "$TP_TMP/e2e-diag-bootstrap-1.log"; exit 1; }
echo "    (board-up and first bootstrap: $((SECONDS - t0)) s)"
diag_faults 2 3 4
# reprovision.yml waits through tasks/wait_for_node.yml too: a node that comes back passes.
if ansible-playbook -i "$TP_CLUSTER_INVENTORY" turingpi.cluster.reprovision -e reprovision_nodes=node3 \
        -e "reprovision_results_file=$TP_TMP/e2e-diag-reprovision.json" >"$TP_TMP/e2e-diag-reprovision.log" 2>&1; then
    ok "reprovision.yml of node3 passes its wait"
else
    fail "reprovision.yml of node3: $TP_TMP/e2e-diag-reprovision.log"
fi
echo "--- dnsmasq journal (for the unit tests)"
diag_master 'journalctl -u dnsmasq -o json --no-pager' >"$TP_TMP/e2e-diag-journal.json"
cp "$TP_TMP/lab/run/supervisor.log" "$TP_TMP/e2e-diag-supervisor.log"
echo "dev-diagnostics: $fails failed check(s), $((SECONDS - t0)) s"
