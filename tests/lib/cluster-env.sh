# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Sourced by what runs the cluster playbooks on the virtual Turing Pi (tests/tiers/80-e2e.sh,
# benchmarks/bootstrap_bench.sh): the controller's settings and a reader of the play recap.
. "$(dirname "${BASH_SOURCE[0]}")/env.sh"
[ "$(id -u)" = 0 ] || { echo "$(basename "$0"): must run as root (tests/lab: network namespaces, nspawn)"; exit 1; }
export PATH=$TP_VENV_219/bin:$PATH ANSIBLE_COLLECTIONS_PATH=$TP_COLLECTIONS ANSIBLE_NOCOLOR=1
# Six nodes provisioned in parallel; pipelining is what a user of a cluster sets too.
export ANSIBLE_FORKS=10 ANSIBLE_PIPELINING=1
export TP_CLUSTER_INVENTORY=$TP_TMP/lab/cluster/board.turingpi.yml

# The sum of changed= over the PLAY RECAP of an ansible-playbook log.
tp_recap_changed() { awk '/^PLAY RECAP/{r=1; next} r && /changed=/{sub(/.*changed=/, ""); s += $1} END{print s + 0}' "$1"; }
