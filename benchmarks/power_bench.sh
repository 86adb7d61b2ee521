#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Benchmark: every worker (nodes 2-7) off, then on again, on the real-kernel test guest
# (tests/kernel: Debian under QEMU/TCG, i2c-stub at 0x57 on a real /dev/i2c-N):
#   (a) turingpi.cluster.power, one task per change (node: workers)   benchmarks/power/collection.yml
#   (b) the hardware documentation's per-node commands, one ansible.builtin.command task per
#       node and change: i2cset -m <mask> -y <bus> 0x57 0xf2 0x00 / 0xff  benchmarks/power/per-node.yml
# Alternating runs, TP_BENCH_REPS each (default 3), medians and ratios. Writes to 0xF2 are
# counted by the guest kernel's smbus:smbus_write trace event (filtered on 0x57), not by the
# collection. Times: "tasks" is measured inside the play (first to last task, controller clock),
# "playbook" is the whole ansible-playbook run including its start-up.
# Usage: benchmarks/power_bench.sh   (root; needs tests/setup done; the guest image is built or reused)
set -euo pipefail
. "$(cd "$(dirname "$0")/.." && pwd)/tests/kernel/vm.sh"
cd "$TP_ROOT"
REPS=${TP_BENCH_REPS:-3}
results=$(mktemp)
trap 'tp_guest_stop; rm -f "$results"' EXIT
trap 'exit 130' INT TERM

tp_guest_start
B=$TP_GUEST_BUS

run_variant() {  # run_variant <name> <playbook> <count: yes/no>
    local name=$1 playbook=$2 out t0 t1 wall tasks f2 all values final
    # Same start for both: every node on, SEE set (volatile shadow), so neither pays the SEE write.
    tp_guest_ssh "i2cset -y $B 0x57 0xf4 0x01 && i2cset -y $B 0x57 0xf2 0xff"
    tp_trace_start
    t0=$(date +%s.%N)
    out=$(ansible-playbook "$playbook" 2>&1) || { echo "$out" | tail -30 >&2; echo "power_bench: $name failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    read -r f2 all values < <(tp_trace_count)
    tasks=$(grep -o 'TP_BENCH_TASKS_SECONDS=[0-9.]*' <<<"$out" | tail -1 | cut -d= -f2)
    [ -n "$tasks" ] || { echo "power_bench: $name printed no time" >&2; exit 1; }
    final=$(tp_guest_ssh "i2cget -y $B 0x57 0xf2")
    [ "$final" = 0xff ] || { echo "power_bench: $name left 0xF2 at $final, not 0xff" >&2; exit 1; }
    if [ "$3" = yes ]; then
        echo "$name $wall $tasks $f2 $all $values" >> "$results"
    fi
    printf '  %-10s tasks %6.2f s  playbook %6.2f s  0xF2 writes %2d  (values written: %s)\n' \
        "$name" "$tasks" "$wall" "$f2" "$values"
}

tp_log "warm-up (not counted): one run of each"
run_variant collection benchmarks/power/collection.yml no
run_variant per-node benchmarks/power/per-node.yml no
for rep in $(seq 1 "$REPS"); do
    tp_log "run $rep of $REPS"
    run_variant collection benchmarks/power/collection.yml yes
    run_variant per-node benchmarks/power/per-node.yml yes
done

python3 - "$results" "$REPS" "$(tp_guest_ssh uname -r)" <<'PY'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
def col(name, i):
    return [float(r[i]) for r in rows if r[0] == name]
print()
print('turingpi.cluster power benchmark: workers (nodes 2-7) off, then on')
print('guest: Debian bookworm, kernel %s, QEMU TCG, i2c-stub; %s runs each, medians' % (sys.argv[3], sys.argv[2]))
print('%-44s %12s %12s %13s %13s' % ('variant', 'tasks (s)', 'playbook (s)', '0xF2 writes', '0x57 writes'))
labels = {'collection': '(a) turingpi.cluster.power, node: workers',
          'per-node': '(b) i2cset -m <mask>, one task per node'}
med = {}
for name in ('collection', 'per-node'):
    med[name] = [statistics.median(col(name, i)) for i in (2, 1, 3, 4)]
    print('%-44s %12.2f %12.2f %13d %13d' % (labels[name], med[name][0], med[name][1], med[name][2], med[name][3]))
a, b = med['collection'], med['per-node']
print('ratio (b)/(a): tasks %.1fx faster, playbook %.1fx faster, %.0fx fewer writes to 0xF2'
      % (b[0] / a[0], b[1] / a[1], b[2] / a[2]))
print('0xF2 writes per change: (a) %g for 6 nodes, (b) %g' % (a[2] / 2, b[2] / 2))
PY
