#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Flashing: the image_write and flash_identity integration targets (loop devices, as root) through
# ansible-test on each supported controller, then the write benchmark at a small size.
# Unit tests of the block engine and usbboot run in the units tier (tests/unit).
# Every loop device created here (by the targets or the benchmark) is detached on exit; the
# benchmark removes its own throttle limits.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
. "$TP_ROOT/tests/lib/ansible-test.sh"
[ "$(id -u)" -eq 0 ] || { echo "70-flash: needs root (loop devices, mounts)"; exit 1; }

# Loop devices whose backing file lives in a work directory of ours.
ours='\.image_write|\.flash_identity|/tp-bench\.'
cleanup() {
    local dev back
    while read -r dev back; do
        [ -n "$dev" ] || continue
        if [[ $back =~ $ours ]]; then
            for m in $(lsblk -nrpo MOUNTPOINT "$dev" 2>/dev/null | sed '/^$/d' | sort -r); do umount "$m" || true; done
            losetup -d "$dev" || true
            echo "70-flash: detached leftover $dev ($back)"
        fi
    done < <(losetup -n -l -O NAME,BACK-FILE 2>/dev/null)
}
trap cleanup EXIT

targets="image_write flash_identity"
# The engine's unit tests run on every controller (units tier); the loop-device targets take
# minutes, so they run on the first supported controller only.
for pair in ${TP_CONTROLLERS%% *}; do
    core=${pair%%:*} py=${pair##*:}
    tree=$(tp_ansible_test_tree "flash-$core")
    echo "--- ansible-core $core, Python $py: $targets"
    # shellcheck disable=SC2086  # $targets: one word per target
    (cd "$tree" && PATH=$TP_TMP/venv-$core/bin:$PATH \
        ansible-test integration --local --python "$py" --allow-destructive --color no $targets)
done

# The throttled (USB-speed) target gets a 32 MiB image: at 6 MB/s every MiB costs time.
echo "--- benchmark, 256 MiB on a loop device, 32 MiB on the throttled one"
TP_BENCH_THROTTLED_MIB=${TP_FLASH_BENCH_THROTTLED_MIB:-32} \
    "$TP_ROOT/benchmarks/image_write_bench.sh" "${TP_FLASH_BENCH_MIB:-256}"
