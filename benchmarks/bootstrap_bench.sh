#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Times playbooks/bootstrap.yml on the virtual Turing Pi (tests/lab/lab board-up) from every
# node off, for 1, 3 and 6 network-boot nodes, and the idempotent re-run of the 6-node cluster,
# in one run on one machine. Each size starts from a fresh lab (master included), so every run
# does the same work per node: unpack the image, copy each node's root, power, boot, provision.
#
#   benchmarks/bootstrap_bench.sh [SIZES]     # default "1 3 6"; needs root (tests/lab)
#
# Aims (issue 5): 6 nodes in no more than 1.5x the time of 1 node (the node work runs in
# parallel), and the idempotent re-run of the whole cluster under a minute.
# Prints one table (wall seconds, and the CPU seconds the whole machine spent: on a machine whose
# cores the controller, the master and the nodes share, wall time follows CPU time once the cores
# are busy); exits non-zero if a run fails or the re-run changes anything.
set -euo pipefail
cd "$(dirname "$0")/.."
. tests/lib/cluster-env.sh
SIZES=${1:-1 3 6}
INV=$TP_CLUSTER_INVENTORY
LOGS=$TP_TMP/bootstrap-bench
mkdir -p "$LOGS"
trap 'tests/lab/lab down >/dev/null 2>&1 || true' EXIT
# Built before timing: the lab root and the OS image are cached across runs.
tests/lab/lab down >/dev/null 2>&1 || true
tests/lab/build-root.sh >/dev/null
# The nodes' image (TP_BENCH_IMAGE: a file, lab-os or an os-image.sh family; default Raspberry Pi OS Bookworm).
IMAGE=${TP_BENCH_IMAGE:-raspios-bookworm}
case "$IMAGE" in lab-os) tests/lab/make-image.sh lab-os >/dev/null ;; */*) ;; *) tests/lab/os-image.sh build "$IMAGE" >/dev/null ;; esac

# CPU seconds the whole machine spent (user, system, irq): controller, master and nodes together.
busy() { awk '/^cpu /{printf "%.2f\n", ($2 + $3 + $4 + $7 + $8) / 100}' /proc/stat; }

timed() {  # log, playbook args... -> "seconds cpu_seconds" on stdout
    local log=$1 start end cpu0 cpu1; shift
    start=$(date +%s.%N); cpu0=$(busy)
    ansible-playbook -i "$INV" "$@" >"$log" 2>&1 || { tail -30 "$log" >&2; echo "bootstrap_bench: failed, log $log" >&2; exit 1; }
    end=$(date +%s.%N); cpu1=$(busy)
    echo "$(echo "$end - $start" | bc) $(echo "$cpu1 - $cpu0" | bc)"
}

declare -A T C
last=
for n in $SIZES; do
    tests/lab/lab down >/dev/null 2>&1 || true
    tests/lab/lab board-up "$n" --image "$IMAGE" >/dev/null
    read -r "T[$n]" "C[$n]" < <(timed "$LOGS/bootstrap-$n.log" turingpi.cluster.bootstrap)
    echo "bootstrap, $n node(s): ${T[$n]} s, ${C[$n]} CPU s" >&2
    last=$n
done
read -r "T[rerun]" "C[rerun]" < <(timed "$LOGS/rerun-$last.log" turingpi.cluster.bootstrap)
rerun_changed=$(tp_recap_changed "$LOGS/rerun-$last.log")
tests/lab/lab down >/dev/null

echo
echo "bootstrap.yml on the virtual Turing Pi ($(nproc) cores; logs in $LOGS)"
# cores busy: CPU seconds / seconds, how much of the machine the run kept working.
printf '%-40s %10s %12s %12s\n' "run" "seconds" "CPU seconds" "cores busy"
row() { printf '%-40s %10.1f %12.1f %12.2f\n' "$1" "$2" "$3" "$(echo "$3 / $2" | bc -l)"; }
for n in $SIZES; do row "bootstrap from all off, $n node(s)" "${T[$n]}" "${C[$n]}"; done
row "re-run on $last node(s) (changed=$rerun_changed)" "${T[rerun]}" "${C[rerun]}"
first=${SIZES%% *}
printf 'ratio %s nodes / %s node(s): %.2f (aim <= 1.5)\n' "$last" "$first" "$(echo "${T[$last]} / ${T[$first]}" | bc -l)"
[ "$rerun_changed" = 0 ] || { echo "bootstrap_bench: the re-run changed $rerun_changed things"; exit 1; }
