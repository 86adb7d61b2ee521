#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Compares turingpi.cluster.image_write with dd and bmaptool on one loop device and one image:
# first write, re-write of the same image, re-write after a small change of the target.
#
#   benchmarks/image_write_bench.sh [SIZE_MIB]       # default 2048; CI uses 256
#
# The image is generated: about 40 % random data, 60 % zeros (a realistic share of empty space
# for a freshly built OS image), partition-like layout. Page caches are dropped between runs when
# /proc/sys/vm/drop_caches is writable. Needs root, bmaptool (bmap-tools), losetup.
# Prints one table; exits non-zero if a tool fails or a written target differs from the image.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-2048}
. tests/lib/env.sh
PY=${TP_VENV_219}/bin/python
[ -x "$PY" ] || PY=python3
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tp-bench.XXXXXX")
LOOP=
cleanup() {
    if [ -n "$LOOP" ]; then losetup -d "$LOOP" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
command -v bmaptool >/dev/null || { echo "bench: bmaptool not found (apt install bmap-tools)"; exit 1; }

IMG=$WORK/image.img
"$PY" - "$IMG" "$SIZE_MIB" <<'PY'
import os, sys
path, mib = sys.argv[1], int(sys.argv[2])
rnd = os.urandom(1 << 20)
with open(path, 'wb') as f:
    f.truncate(mib << 20)
    for i in range(mib):
        # 2 MiB of data in every 5 MiB, varied so blocks are not all equal.
        if i % 5 < 2:
            f.seek(i << 20)
            f.write(rnd[i % 97:] + rnd[:i % 97])
PY
bmaptool -q create -o "$WORK/image.bmap" "$IMG"
DIGEST=$(sha256sum "$IMG" | cut -d' ' -f1)
truncate -s $(( (SIZE_MIB + 64) << 20 )) "$WORK/target.img"
LOOP=$(losetup --find --show "$WORK/target.img")

drop() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}
# Wipes the target (fresh, like a new module) without timing it.
wipe() { blkdiscard "$LOOP" 2>/dev/null || dd if=/dev/zero of="$LOOP" bs=4M count=$(( (SIZE_MIB + 64) / 4 )) conv=fsync status=none; drop; }
# A small change: 3 scattered 4 KiB blocks of the target overwritten, inside mapped data
# (every 5 MiB starts with 2 MiB of data).
touch_target() {
    for off in 1 $((SIZE_MIB / 15 * 5)) $((SIZE_MIB * 2 / 15 * 5)); do
        dd if=/dev/urandom of="$LOOP" bs=4096 seek=$(( off * 256 + 7 )) count=1 conv=notrunc,fsync status=none
    done
    drop
}
cmp_target() { cmp -n $((SIZE_MIB << 20)) "$IMG" "$LOOP" >/dev/null || { echo "bench: $1 left a target that differs from the image"; exit 1; }; }
written() { awk '{printf "%.0f", $7 * 512}' "/sys/block/$(basename "$LOOP")/stat"; }

declare -A T W
run() {  # name scenario cmd...
    local name=$1 scen=$2; shift 2
    local before after start end
    before=$(written)
    start=$(date +%s.%N)
    "$@" >"$WORK/out.$name.$scen" 2>&1 || { cat "$WORK/out.$name.$scen"; echo "bench: $name $scen failed"; exit 1; }
    end=$(date +%s.%N)
    after=$(written)
    T[$name.$scen]=$(echo "$end - $start" | bc)
    W[$name.$scen]=$(( after - before ))
    cmp_target "$name $scen"
    drop
}

dd_write() { dd if="$IMG" of="$LOOP" bs=4M conv=fsync status=none; }
bmap_write() { bmaptool -q copy --bmap "$WORK/image.bmap" "$IMG" "$LOOP"; }
iw_write() {
    PYTHONPATH=$TP_COLLECTIONS "$PY" - "$IMG" "$LOOP" "$DIGEST" "$WORK/image.bmap" <<'PY'
import json, sys
from ansible_collections.turingpi.cluster.plugins.module_utils import _image as image
src, dest, digest, bmap = sys.argv[1:5]
with open(bmap, 'rb') as f:
    bm = image.parse_bmap(f.read())
stats = image.ImageWriter(image.Source(src), dest, sha256=digest, bmap=bm, force=True).run()
print(json.dumps(stats.as_dict()))
PY
}

for tool in dd bmaptool image_write; do
    case $tool in dd) fn=dd_write ;; bmaptool) fn=bmap_write ;; image_write) fn=iw_write ;; esac
    wipe
    run $tool first $fn
    run $tool rewrite $fn
    touch_target
    run $tool change $fn
done

mib() { echo "scale=1; $1 / 1048576" | bc; }
printf '\nimage %d MiB (%s MiB mapped), loop device %s, caches dropped: %s\n' "$SIZE_MIB" \
    "$(mib $(( $(grep -o '<MappedBlocksCount> *[0-9]*' "$WORK/image.bmap" | grep -o '[0-9]*$') * 4096 )))" "$LOOP" \
    "$([ -w /proc/sys/vm/drop_caches ] && echo yes || echo no)"
printf '%-12s | %-22s | %-22s | %-22s\n' tool "first write" "re-write unchanged" "re-write after change"
printf '%-12s | %-22s | %-22s | %-22s\n' "" "s / MiB written" "s / MiB written" "s / MiB written"
for tool in dd bmaptool image_write; do
    printf '%-12s' "$tool"
    for scen in first rewrite change; do
        printf ' | %8.2f s %9s MiB' "${T[$tool.$scen]}" "$(mib "${W[$tool.$scen]}")"
    done
    echo
done
echo "image_write (bmap, verify on) details:"
for scen in first rewrite change; do echo "  $scen: $(cat "$WORK/out.image_write.$scen")"; done
