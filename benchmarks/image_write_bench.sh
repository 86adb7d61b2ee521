#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Compares turingpi.cluster.image_write with dd and bmaptool, on one image, on two targets:
#
#   loop       a loop device over a file (fast: reads and writes both hit the host's disk cache)
#   emmc-usb   the same loop device throttled to the speed of a compute module's eMMC seen
#              through rpiboot's USB mass-storage firmware (below)
#
# and for each tool: first write to a blank target, re-write of the same image, re-write after
# three 4 KiB blocks of the target were changed (blocks inside three of the bmap's ranges: the
# first, the middle and the last one). Each bmaptool run is followed by a timed read-back of
# what it wrote (the mapped ranges, read from the device after dropping its cache and compared
# with the image, with the same reads image_write's own read-back does), reported as
# "bmaptool + read-back": the like-for-like figure for image_write, which reads back everything
# it writes.
#
#   benchmarks/image_write_bench.sh [SIZE_MIB]       # default 2048; CI uses 256
#
# Environment:
#   TP_BENCH_THROTTLED_MIB  image size for the throttled target; default SIZE_MIB (then both
#                           targets get the very same image); 0 skips the throttled target.
#                           The flash tier uses a small one: at USB speed every MiB costs time.
#   TP_BENCH_WRITE_BPS      write limit of the throttled target in bytes/s, default 6000000
#   TP_BENCH_READ_BPS       read limit of the throttled target in bytes/s, default 11000000
#
# Where the throttle figures come from (no board was attached to the machines that ran this):
#   - writes, 6 MB/s: "The speed seems to have degraded between CM3 and CM4, it used to be
#     between 5-6MB/s" (flashing through rpiboot, github.com/raspberrypi/usbboot/issues/87,
#     2021-12); a CM3 behind rpiboot written at "only 5MB/s+" with Rufus
#     (forums.balena.io/t/issues-with-cm3-images/42980).
#   - reads, 11 MB/s: dd from the eMMC/SD card behind the same VPU-firmware mass-storage mode
#     (msd/start4.elf) read at 11.1 MB/s (github.com/raspberrypi/usbboot/issues/68) and a CM4
#     eMMC at 10.3 MB/s with rpiboot's default payload (github.com/raspberrypi/usbboot/issues/391).
#     Those are Pi 4 / CM4 figures of the same firmware mode; no CM3 read figure was found, so
#     11 MB/s for a CM3 is an assumption.
#   USB mass storage (bulk-only transport) runs one command at a time, so a real device does not
#   read and write at once; the throttle limits reads and writes separately. image_write's device
#   I/O is sequential by phase (compare, write, fsync, read back), so it gains little from that,
#   but take the throttled figures as a model, not a measurement of a board.
#
# How the throttle works: blk-throttle on the loop device's MAJ:MIN, device-wide (cgroup v1:
# blkio.throttle.{read,write}_bps_device of the root blkio cgroup, so the kernel's writeback is
# throttled too; cgroup v2: io.max of a cgroup created for the run, each tool run inside it). The
# limits are set only while a tool is timed (wiping and checking the target run at full speed),
# and the script first checks that they hold (a dd with and without them) and stops if they do
# not. Everything it sets up (loop devices, limits, cgroup, files) is removed on exit, also on
# failure.
#
# The image is generated: about 40 % random data, 60 % zeros (a realistic share of empty space
# for a freshly built OS image), partition-like layout. Page caches are dropped between runs when
# /proc/sys/vm/drop_caches is writable. Needs root, bmaptool (bmap-tools), losetup, blkdiscard.
# Prints one table per target; exits non-zero if a tool fails or a written target differs from
# the image.
set -euo pipefail
cd "$(dirname "$0")/.."
SIZE_MIB=${1:-2048}
THR_MIB=${TP_BENCH_THROTTLED_MIB:-$SIZE_MIB}
WBPS=${TP_BENCH_WRITE_BPS:-6000000}
RBPS=${TP_BENCH_READ_BPS:-11000000}
. tests/lib/env.sh
PY=${TP_VENV_219}/bin/python
[ -x "$PY" ] || PY=python3
[ "$(id -u)" -eq 0 ] || { echo "bench: needs root (loop devices, throttling)"; exit 1; }
command -v bmaptool >/dev/null || { echo "bench: bmaptool not found (apt install bmap-tools)"; exit 1; }
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tp-bench.XXXXXX")
# The collection as this checkout has it (not whatever TP_COLLECTIONS points at).
mkdir -p "$WORK/collections/ansible_collections/turingpi"
ln -s "$TP_ROOT" "$WORK/collections/ansible_collections/turingpi/cluster"
LOOPS=()
V1=/sys/fs/cgroup/blkio
CG=          # cgroup v2 directory we created
THROTTLED=() # MAJ:MIN with v1 limits set
cleanup() {
    local mm l
    for mm in "${THROTTLED[@]}"; do
        echo "$mm 0" > "$V1/blkio.throttle.write_bps_device" 2>/dev/null || true
        echo "$mm 0" > "$V1/blkio.throttle.read_bps_device" 2>/dev/null || true
    done
    if [ -n "$CG" ] && [ -d "$CG" ]; then rmdir "$CG" 2>/dev/null || true; fi
    for l in "${LOOPS[@]}"; do losetup -d "$l" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

drop() {
    sync
    if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

# make_image MIB -> $WORK/image-MIB.img, .bmap, .sha256
make_image() {
    local mib=$1 img=$WORK/image-$1.img
    [ -f "$img" ] && return 0
    "$PY" - "$img" "$mib" <<'PY'
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
    bmaptool -q create -o "$WORK/image-$mib.bmap" "$img"
    sha256sum "$img" | cut -d' ' -f1 > "$WORK/image-$mib.sha256"
}

# -- the throttle ---------------------------------------------------------------------------
MODE=
pick_throttle() {
    if [ -w "$V1/blkio.throttle.write_bps_device" ]; then
        MODE=v1
    elif grep -qw io /sys/fs/cgroup/cgroup.controllers 2>/dev/null \
         && grep -qw io /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
        MODE=v2
        CG=/sys/fs/cgroup/tp-bench.$$
        mkdir "$CG"
    else
        echo "bench: no blk-throttle here (neither cgroup v1 blkio nor a cgroup v2 io controller): cannot model the USB target"
        exit 1
    fi
}
throttle_on() {  # MAJ:MIN
    case $MODE in
        v1) THROTTLED+=("$1")
            echo "$1 $WBPS" > "$V1/blkio.throttle.write_bps_device"
            echo "$1 $RBPS" > "$V1/blkio.throttle.read_bps_device" ;;
        v2) echo "$1 rbps=$RBPS wbps=$WBPS" > "$CG/io.max" ;;
    esac
}
throttle_off() {
    case $MODE in
        v1) echo "$1 0" > "$V1/blkio.throttle.write_bps_device"
            echo "$1 0" > "$V1/blkio.throttle.read_bps_device" ;;
        v2) echo "$1 rbps=max wbps=max" > "$CG/io.max" ;;
    esac
}
# in_cgroup CMD...: runs CMD (a command or a function) in a subshell inside the v2 cgroup (v1
# limits are device-wide already); the cgroup is empty again when the subshell ends.
in_cgroup() {
    if [ "$MODE" = v2 ]; then
        ( echo "$BASHPID" > "$CG/cgroup.procs" && "$@" )
    else
        "$@"
    fi
}

# -- one target -----------------------------------------------------------------------------
declare -A T W RB
now() { date +%s.%N; }
written() { awk '{printf "%.0f", $7 * 512}' "/sys/block/$(basename "$1")/stat"; }
secs() { echo "$2 - $1" | bc; }

# check_throttle LOOP MAJ:MIN: a buffered write with fsync and a read, with and without the
# limits; stops the benchmark unless the limited runs come within 25 % of the limits.
check_throttle() {
    local loop=$1 mm=$2 wmib rmib s e tw tr fw fr
    wmib=$(( WBPS * 2 / 1048576 + 1 )); rmib=$(( RBPS * 2 / 1048576 + 1 ))
    drop; s=$(now); dd if=/dev/urandom of="$loop" bs=1M count="$wmib" conv=fsync status=none; e=$(now); fw=$(secs "$s" "$e")
    drop; s=$(now); dd if="$loop" of=/dev/null bs=1M count="$rmib" status=none; e=$(now); fr=$(secs "$s" "$e")
    throttle_on "$mm"
    drop; s=$(now); in_cgroup dd if=/dev/urandom of="$loop" bs=1M count="$wmib" conv=fsync status=none; e=$(now); tw=$(secs "$s" "$e")
    drop; s=$(now); in_cgroup dd if="$loop" of=/dev/null bs=1M count="$rmib" status=none; e=$(now); tr=$(secs "$s" "$e")
    throttle_off "$mm"
    printf 'throttle check (%s): write %d MiB %.2f s unthrottled, %.2f s throttled (%.1f MB/s, limit %.1f); read %d MiB %.2f s, %.2f s (%.1f MB/s, limit %.1f)\n' \
        "$MODE" "$wmib" "$fw" "$tw" "$(echo "$wmib * 1.048576 / $tw" | bc -l)" "$(echo "$WBPS / 1000000" | bc -l)" \
        "$rmib" "$fr" "$tr" "$(echo "$rmib * 1.048576 / $tr" | bc -l)" "$(echo "$RBPS / 1000000" | bc -l)"
    local wr rr
    wr=$(echo "$wmib * 1048576 / $tw / $WBPS" | bc -l) rr=$(echo "$rmib * 1048576 / $tr / $RBPS" | bc -l)
    if [ "$(echo "$wr >= 0.75 && $wr <= 1.25 && $rr >= 0.75 && $rr <= 1.25" | bc -l)" != 1 ]; then
        echo "bench: the throttle does not hold on $loop on this machine: no throttled figures"
        exit 1
    fi
}

# measure NAME MIB THROTTLE(0|1)
measure() {
    local name=$1 mib=$2 thr=$3 img loop mm digest tool fn scen
    make_image "$mib"
    img=$WORK/image-$mib.img digest=$(cat "$WORK/image-$mib.sha256")
    truncate -s $(( (mib + 64) << 20 )) "$WORK/target-$name.img"
    loop=$(losetup --find --show "$WORK/target-$name.img")
    LOOPS+=("$loop")
    mm=$(cat "/sys/block/$(basename "$loop")/dev")
    [ "$thr" = 0 ] || check_throttle "$loop" "$mm"
    # The digest is not remembered yet: the first image_write run hashes the image (and
    # remembers its digest here for the next runs, as it does for the next module).
    rm -rf "$WORK/memo-$name"

    # Wipes the target (blank, like a new module) without timing it.
    wipe() { blkdiscard "$loop" 2>/dev/null || dd if=/dev/zero of="$loop" bs=4M count=$(( (mib + 64) / 4 )) conv=fsync status=none; drop; }
    # A small change: 3 scattered 4 KiB blocks of the target overwritten, inside mapped data:
    # the middle block of the bmap's first, middle and last range (bmaptool rewrites mapped
    # ranges only, so a change in unmapped space would rightly stay).
    touch_target() {
        local block
        for block in $(changed_blocks); do
            dd if=/dev/urandom of="$loop" bs=4096 seek="$block" count=1 conv=notrunc,fsync status=none
        done
        drop
    }
    changed_blocks() {
        "$PY" - "$WORK/image-$mib.bmap" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
assert re.search(r'<BlockSize>\s*4096\s*</BlockSize>', text), 'bench: the bmap block size is not 4096'
ranges = [(int(a), int(b or a)) for a, b in re.findall(r'<Range[^>]*>\s*(\d+)(?:\s*-\s*(\d+))?\s*</Range>', text)]
picked = [ranges[0], ranges[len(ranges) // 2], ranges[-1]]
print(' '.join(str((first + last) // 2) for first, last in picked))
PY
    }
    dd_write() { dd if="$img" of="$loop" bs=4M conv=fsync status=none; }
    bmap_write() { bmaptool -q copy --bmap "$WORK/image-$mib.bmap" "$img" "$loop"; }
    # What image_write's read-back does after its writes, for what bmaptool wrote: drop the
    # device's cache, read the mapped ranges (4 MiB reads, kernel read-ahead hinted) and compare
    # them with the image.
    read_back() {
        PYTHONPATH=$WORK/collections "$PY" - "$img" "$loop" "$WORK/image-$mib.bmap" <<'PY'
import os, sys
from ansible_collections.turingpi.cluster.plugins.module_utils._image.bmap import parse_bmap
from ansible_collections.turingpi.cluster.plugins.module_utils._image.blockio import drop_cache, read_extents
src, dest, bmap = sys.argv[1:4]
with open(bmap, 'rb') as f:
    extents = parse_bmap(f.read()).extents()
fd, ref = os.open(dest, os.O_RDONLY), os.open(src, os.O_RDONLY)
drop_cache(fd, True)
for i, pos, data in read_extents(fd, extents, 4 << 20):
    if data != os.pread(ref, len(data), pos):
        sys.exit('read-back differs at byte %d' % pos)
PY
    }
    iw_write() {
        PYTHONPATH=$WORK/collections "$PY" - "$img" "$loop" "$digest" "$WORK/image-$mib.bmap" "$WORK/memo-$name" <<'PY'
import json, sys
from ansible_collections.turingpi.cluster.plugins.module_utils._image.bmap import parse_bmap
from ansible_collections.turingpi.cluster.plugins.module_utils._image.digest import DigestMemo
from ansible_collections.turingpi.cluster.plugins.module_utils._image.engine import ImageWriter
from ansible_collections.turingpi.cluster.plugins.module_utils._image.sources import Source
src, dest, digest, bmap, memo = sys.argv[1:6]
with open(bmap, 'rb') as f:
    bm = parse_bmap(f.read())
stats = ImageWriter(Source(src), dest, sha256=digest, bmap=bm, force=True, digest_memo=DigestMemo(memo)).run()
print(json.dumps(stats.as_dict()))
PY
    }
    run() {  # tool scenario cmd...
        local key=$name.$1.$2 before after start end; shift 2
        before=$(written "$loop")
        [ "$thr" = 0 ] || throttle_on "$mm"
        start=$(now)
        in_cgroup "$@" >"$WORK/out.$key" 2>&1 || { [ "$thr" = 0 ] || throttle_off "$mm"; cat "$WORK/out.$key"; echo "bench: $key failed"; exit 1; }
        end=$(now)
        [ "$thr" = 0 ] || throttle_off "$mm"
        after=$(written "$loop")
        T[$key]=$(secs "$start" "$end")
        W[$key]=$(( after - before ))
        cmp -n $((mib << 20)) "$img" "$loop" >/dev/null || { echo "bench: $key left a target that differs from the image"; exit 1; }
        drop
    }
    # timed_read_back SCENARIO: the read-back after a bmaptool run (run has compared the target
    # and dropped the caches since), timed under the same limits.
    timed_read_back() {
        local key=$name.read_back.$1 start end
        [ "$thr" = 0 ] || throttle_on "$mm"
        start=$(now)
        in_cgroup read_back >"$WORK/out.$key" 2>&1 || { [ "$thr" = 0 ] || throttle_off "$mm"; cat "$WORK/out.$key"; echo "bench: $key failed"; exit 1; }
        end=$(now)
        [ "$thr" = 0 ] || throttle_off "$mm"
        RB[$1]=$(secs "$start" "$end")
        T[$name.bmaptool+read-back.$1]=$(echo "${T[$name.bmaptool.$1]} + ${RB[$1]}" | bc -l)
        W[$name.bmaptool+read-back.$1]=${W[$name.bmaptool.$1]}
        drop
    }
    for tool in dd bmaptool image_write; do
        case $tool in dd) fn=dd_write ;; bmaptool) fn=bmap_write ;; image_write) fn=iw_write ;; esac
        wipe
        run $tool first $fn
        [ $tool != bmaptool ] || timed_read_back first
        run $tool rewrite $fn
        [ $tool != bmaptool ] || timed_read_back rewrite
        touch_target
        run $tool change $fn
        [ $tool != bmaptool ] || timed_read_back change
    done

    mibs() { echo "scale=1; $1 / 1048576" | bc; }
    if [ "$thr" = 0 ]; then
        printf '\n%s: image %d MiB (%s MiB mapped), loop device, caches dropped: %s\n' "$name" "$mib" \
            "$(mibs $(( $(grep -o '<MappedBlocksCount> *[0-9]*' "$WORK/image-$mib.bmap" | grep -o '[0-9]*$') * 4096 )))" \
            "$([ -w /proc/sys/vm/drop_caches ] && echo yes || echo no)"
    else
        printf '\n%s: image %d MiB (%s MiB mapped), loop device throttled to %.1f MB/s write, %.1f MB/s read (%s), caches dropped: %s\n' \
            "$name" "$mib" "$(mibs $(( $(grep -o '<MappedBlocksCount> *[0-9]*' "$WORK/image-$mib.bmap" | grep -o '[0-9]*$') * 4096 )))" \
            "$(echo "$WBPS / 1000000" | bc -l)" "$(echo "$RBPS / 1000000" | bc -l)" "$MODE" \
            "$([ -w /proc/sys/vm/drop_caches ] && echo yes || echo no)"
    fi
    printf '%-20s | %-22s | %-22s | %-22s\n' tool "first write" "re-write unchanged" "re-write after change"
    printf '%-20s | %-22s | %-22s | %-22s\n' "" "s / MiB written" "s / MiB written" "s / MiB written"
    for tool in dd bmaptool bmaptool+read-back image_write; do
        printf '%-20s' "$tool"
        for scen in first rewrite change; do
            printf ' | %8.2f s %9s MiB' "${T[$name.$tool.$scen]}" "$(mibs "${W[$name.$tool.$scen]}")"
        done
        echo
    done
    printf 'read-back alone after bmaptool: %.2f s, %.2f s, %.2f s\n' "${RB[first]}" "${RB[rewrite]}" "${RB[change]}"
    printf 'image_write, first write: %.2fx the time of bmaptool + read-back (%.2fx bmaptool alone); re-write unchanged: %.1fx faster than dd\n' \
        "$(echo "${T[$name.image_write.first]} / ${T[$name.bmaptool+read-back.first]}" | bc -l)" \
        "$(echo "${T[$name.image_write.first]} / ${T[$name.bmaptool.first]}" | bc -l)" \
        "$(echo "${T[$name.dd.rewrite]} / ${T[$name.image_write.rewrite]}" | bc -l)"
    echo "image_write (bmap, digest, verify on) details:"
    for scen in first rewrite change; do echo "  $scen: $(cat "$WORK/out.$name.image_write.$scen")"; done
    losetup -d "$loop"
    LOOPS=("${LOOPS[@]/$loop}")
    rm -f "$WORK/target-$name.img"
}

measure loop "$SIZE_MIB" 0
if [ "$THR_MIB" != 0 ]; then
    pick_throttle
    measure emmc-usb "$THR_MIB" 1
fi
