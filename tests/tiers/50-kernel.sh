#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The real-kernel tier: the CMB modules on a real Linux I2C stack. A Debian guest under QEMU (TCG)
# with i2c-dev and i2c-stub at 0x57 and 0x6f, smbus2, and a test-harness stand-in for the RTC's
# crystal (tests/kernel/guest/usr/local/sbin/tp-test-crystal). See docs/testing-kernel-tier.md.
#   1. the collection's integration targets (power, cmb_info, rtc, user_memory) with
#      cmb_backend=i2c on the guest's /dev/i2c-N;
#   2. known changes through the collection, read back with i2cget over SSH and the bus writes
#      counted with the guest kernel's smbus trace events;
#   3. the kernel's rtc-ds1307 driver bound to 0x6f: the rtc module must use /dev/rtcN;
#   4. network-boot roots as the netboot role sets them up on a master (turingpi.cluster.netboot_root's
#      overlays on one shared image copy, the role's exports), served by the guest's kernel NFS
#      server to an NFS client in the same guest (tests/kernel/nfs-roots.yml).
# TP_KERNEL_TARGETS="power rtc" runs only those targets in step 1 (for debugging; says so).
# Exits non-zero on the first failure. The guest is powered off (or killed by PID) on any exit.
set -euo pipefail
. "$(dirname "$0")/../kernel/vm.sh"
cd "$TP_ROOT"

fail() { echo "50-kernel: FAIL: $*" >&2; exit 1; }
step() { tp_log "--- $*"; }
trap tp_guest_stop EXIT
trap 'exit 130' INT TERM
tier_start=$SECONDS

step "guest image and boot"
tp_guest_start
B=$TP_GUEST_BUS
echo "stub bus: /dev/i2c-$B; kernel $(tp_guest_ssh uname -r)"

# Register helpers: plain i2c-dev reads in the guest, none of the collection's code.
reg() { tp_guest_ssh "i2cget -y $B $1 $2"; }
expect() {  # expect <what> <addr> <reg> <mask> <value>
    local got
    got=$(reg "$2" "$3") || fail "$1: i2cget -y $B $2 $3 failed"
    if [ $(( got & $4 )) -ne $(( $5 )) ]; then
        fail "$1: register $2:$3 is $got, (value & $4) should be $5"
    fi
    printf '  ok  %-52s %s:%s = %s\n' "$1" "$2" "$3" "$got"
}

step "the guest is the test bench we expect"
detect=$(tp_guest_ssh "i2cdetect -y $B 0x50 0x77")
grep -q ' 57' <<<"$detect" || fail "no device at 0x57 on the stub bus:"$'\n'"$detect"
grep -q ' 6f' <<<"$detect" || fail "no device at 0x6f on the stub bus:"$'\n'"$detect"
tp_guest_ssh systemctl is-active --quiet tp-test-crystal.service || fail "tp-test-crystal.service is not running"
# The crystal stand-in works: ST set makes OSCRUN read 1, ST cleared makes it read 0.
tp_guest_ssh "i2cset -y $B 0x6f 0x03 0x00; i2cset -y $B 0x6f 0x00 0x80; sleep 0.5"
expect "crystal stand-in: OSCRUN follows ST=1" 0x6f 0x03 0x20 0x20
tp_guest_ssh "i2cset -y $B 0x6f 0x00 0x00; sleep 0.5"
expect "crystal stand-in: OSCRUN follows ST=0" 0x6f 0x03 0x20 0x00

targets=${TP_KERNEL_TARGETS:-power cmb_info rtc user_memory}
step "1/4 the integration targets with cmb_backend=i2c on /dev/i2c-$B: $targets"
limit=()
if [ "$targets" != "power cmb_info rtc user_memory" ]; then
    echo "NOTE: TP_KERNEL_TARGETS limits the targets to: $targets"
    limit=(--tags "${targets// /,}")
fi
ansible-playbook tests/kernel/run-targets.yml "${limit[@]}" || fail "the integration targets failed on the real kernel"

step "2/4 known changes through the collection, read back with i2cget"
tp_guest_ssh "set -e; i2cset -y $B 0x57 0xf4 0x00; i2cset -y $B 0x57 0xf2 0xff
    for r in \$(seq 0 63); do i2cset -y $B 0x57 \$r 0xff; done
    for r in \$(seq 0 7); do i2cset -y $B 0x6f \$r 0x00; done"
tp_trace_start
ansible-playbook tests/kernel/verify.yml || fail "the verification playbook failed"
read -r f2_writes all_writes f2_values < <(tp_trace_count)
echo "  kernel trace: $f2_writes write(s) to 0x57:0xf2 ($f2_values), $all_writes to 0x57 in all"
[ "$f2_writes" -eq 1 ] || fail "the kernel traced $f2_writes writes to 0xF2 for one power change, not 1"
expect "power: nodes 3 and 6 off, the rest on (0xb7)" 0x57 0xf2 0xff 0xb7
expect "power: SEE set (volatile shadow, EEPROM spared)" 0x57 0xf4 0x01 0x01
eeprom=$(tp_guest_ssh "for r in \$(seq 0 63); do i2cget -y $B 0x57 \$r; done" | tr '\n' ' ')
python3 - "$eeprom" <<'PY' || fail "user_memory: the EEPROM does not hold the document"
# Record layout (docs of turingpi.cluster.user_memory): 'TP', version 1, length N, N bytes of
# JSON, CRC-16/CCITT-FALSE of bytes 0..3+N big-endian, then erased (0xFF). The CRC is
# computed here, independently.
import json, sys
raw = bytes(int(v, 16) for v in sys.argv[1].split())
assert raw[0:3] == b'TP\x01', 'header %r' % raw[0:4]
length = raw[3]
doc = json.loads(raw[4:4 + length].decode())
assert doc == {'kernel_tier': 50}, doc
crc = 0xFFFF
for byte in raw[:4 + length]:
    crc ^= byte << 8
    for _ in range(8):
        crc = ((crc << 1) ^ 0x1021) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
assert raw[4 + length:6 + length] == crc.to_bytes(2, 'big'), 'CRC %r, expected %04x' % (raw[4 + length:6 + length], crc)
assert set(raw[6 + length:]) <= {0xff}, 'bytes after the record were written: %r' % raw[6 + length:]
print('  ok  user_memory: TP 01, %d bytes of JSON %s, CRC %04x, rest erased' % (length, json.dumps(doc), crc))
PY
expect "rtc: ST set" 0x6f 0x00 0x80 0x80
expect "rtc: minutes 05" 0x6f 0x01 0x7f 0x05
expect "rtc: hours 04 (24-hour mode)" 0x6f 0x02 0x7f 0x04
expect "rtc: VBATEN set" 0x6f 0x03 0x08 0x08
expect "rtc: OSCRUN set (by the crystal stand-in)" 0x6f 0x03 0x20 0x20
expect "rtc: date 03" 0x6f 0x04 0x3f 0x03
expect "rtc: month 02" 0x6f 0x05 0x1f 0x02
expect "rtc: year 31" 0x6f 0x06 0xff 0x31
s1=$(reg 0x6f 0x00); sleep 2.5; s2=$(reg 0x6f 0x00)
[ "$s1" != "$s2" ] || fail "the crystal stand-in did not advance the seconds ($s1 after 2.5 s)"
echo "  ok  rtc: the seconds advance ($s1 -> $s2)"

step "3/4 the kernel's rtc-ds1307 driver bound to 0x6f"
tp_guest_ssh "modprobe rtc-ds1307 && echo mcp7940x 0x6f > /sys/bus/i2c/devices/i2c-$B/new_device"
client=/sys/bus/i2c/devices/$B-006f
rtcdev=
for _ in $(seq 1 20); do
    rtcdev=$(tp_guest_ssh "ls $client/rtc 2>/dev/null" || true)
    [ -n "$rtcdev" ] && break
    sleep 0.5
done
[ -n "$rtcdev" ] || fail "rtc-ds1307 registered no RTC for 0x6f: $(tp_guest_ssh "dmesg | grep -i -E 'rtc|ds1307' | tail -5")"
echo "  driver $(tp_guest_ssh "basename \$(readlink $client/driver)") holds 0x6f as /dev/$rtcdev"
if busy=$(tp_guest_ssh "i2cget -y $B 0x6f 0x00" 2>&1); then
    fail "plain i2c-dev access to 0x6f worked while the driver holds it ($busy)"
fi
grep -qi busy <<<"$busy" || fail "plain i2c-dev access to 0x6f failed, but not with EBUSY: $busy"
echo "  ok  plain i2cget on 0x6f refused: $busy"
ansible-playbook tests/kernel/kernel-rtc.yml || fail "the rtc modules failed with the kernel driver bound"
kdate=$(tp_guest_ssh "cat /sys/class/rtc/$rtcdev/date")
[ "$kdate" = 2032-03-04 ] || fail "the kernel's $rtcdev reads date $kdate, not 2032-03-04"
echo "  ok  /sys/class/rtc/$rtcdev/date = $kdate"
year=$(tp_guest_ssh "i2cget -f -y $B 0x6f 0x06")
[ "$year" = 0x32 ] || fail "forced i2cget of the year register gives $year, not 0x32"
echo "  ok  forced i2cget 0x6f:0x06 = $year"
tp_guest_ssh "echo 0x6f > /sys/bus/i2c/devices/i2c-$B/delete_device"

step "4/4 network-boot roots over the guest's kernel NFS server"
nfs_start=$SECONDS
R=/srv/netboot/nfs
ansible-playbook tests/kernel/nfs-roots.yml || fail "the network-boot roots playbook failed"
# A field of what turingpi.cluster.netboot_root returned for a node (written by nfs-roots.yml).
result() {  # result <phase> <node> <field>
    python3 - "$TP_GUEST_DIR/nfs-$1.json" "$2" "$3" <<'PY'
import json, sys
print(*[r[sys.argv[3]] for r in json.load(open(sys.argv[1])) if r['item']['name'] == sys.argv[2]])
PY
}
copy=$(result setup node2 image_dir)
if [ -z "$copy" ] || [ "$(result setup node3 image_dir)" != "$copy" ]; then fail "node2 and node3 do not run on one image copy"; fi
echo "  shared image copy: $copy"
# Each check is one SSH round trip (about a second under TCG on a busy machine).
# The shared copy byte for byte: every path with its type, mode, owner and link target, every file's sha256.
copy_sum() {
    tp_guest_ssh "cd $copy && { find . -printf '%y %m %u:%g %s %p %l\n' | LC_ALL=C sort
        find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum; } | sha256sum | cut -d' ' -f1"
}
copy_before=$(copy_sum)
same_copy() {
    [ "$(copy_sum)" = "$copy_before" ] || fail "the shared image copy $copy changed ($1)"
    echo "  ok  the shared copy is byte-identical ($1)"
}
# exportfs -v against the role's export file: each line's path, client and options in force, and
# an fsid of each export's own.
exports_ok() {
    python3 - "$(tp_guest_ssh 'cat /etc/exports.d/turingpi-netboot.exports; echo "--- exportfs -v"; exportfs -v')" <<'PY' || fail "exportfs -v does not show the role's exports"
import re, sys
role, _, live_text = sys.argv[1].partition('--- exportfs -v\n')
role = [l.split() for l in role.splitlines() if l.strip() and not l.startswith('#')]
live, path = {}, None
for line in live_text.splitlines():   # exportfs -v puts a long path on a line of its own
    fields = line.split()
    if line[:1].strip():
        path = fields.pop(0)
    for f in fields:
        client, opts = re.match(r'(.*)\((.*)\)$', f).groups()
        live[(path, client)] = opts.split(',')
fsids = set()
assert len(role) == 2, 'role export file: %s' % role
for path, spec in role:
    client, opts = re.match(r'(.*)\((.*)\)$', spec).groups()
    assert (path, client) in live, '%s %s not exported: %s' % (path, client, live)
    missing = [o for o in opts.split(',') if o not in live[(path, client)]]
    assert not missing, '%s: %s not in force (%s)' % (path, missing, live[(path, client)])
    fsid = [o for o in opts.split(',') if o.startswith('fsid=')]
    assert len(fsid) == 1, '%s: no fsid= of its own in the role file' % path
    fsids.add(fsid[0])
    print('  ok  exportfs -v: %s %s(%s)' % (path, client, ','.join(live[(path, client)])))
assert len(fsids) == len(role), 'the exports share an fsid: %s' % fsids
PY
}
# The server's overlay has the options the module returned, and its fstab line has them too.
overlay_ok() {  # overlay_ok <node> <phase>
    local out opts fstab o want
    out=$(tp_guest_ssh "findmnt -n -r -o FSTYPE,OPTIONS $R/$1 || echo none; findmnt --fstab -n -r -o OPTIONS $R/$1 || echo none")
    opts=${out%%$'\n'*} fstab=${out#*$'\n'}
    [ "${opts%% *}" = overlay ] || fail "$R/$1 is not an overlay on the server: $opts"
    IFS=, read -ra want <<<"$(result "$2" "$1" mount_options)"
    [ "${#want[@]}" -ge 5 ] || fail "$1: the module returned mount_options '${want[*]}'"
    for o in "${want[@]}"; do
        [[ ,${opts#* }, == *",$o,"* ]] || fail "$R/$1 is mounted with ${opts#* }, without $o (module: ${want[*]})"
        [[ ,$fstab, == *",$o,"* ]] || fail "the fstab line of $R/$1 has '$fstab', without $o"
    done
    echo "  ok  $R/$1: overlay with the module's ${#want[@]} options (findmnt and the fstab line)"
}
nfs_mount() {  # nfs_mount <node>: the node's root over NFSv3, as its kernel mounts nfsroot=
    local m=/mnt/${1/node/n} out
    out=$(tp_guest_ssh "set -e; mkdir -p $m; mount -t nfs -o vers=3,nolock 127.0.0.1:$R/$1 $m
        findmnt -n -r -o FSTYPE,SOURCE,OPTIONS $m; cat $m/etc/hostname; grep -c PARTUUID= $m/etc/fstab || true") \
        || fail "mount -t nfs 127.0.0.1:$R/$1 $m failed: $out"
    mapfile -t got <<<"$out"
    [[ ${got[0]} == "nfs 127.0.0.1:$R/$1 "*,vers=3,* ]] || fail "$m is ${got[0]}"
    [ "${got[1]}" = "$1" ] || fail "$m (127.0.0.1:$R/$1) is not $1's root: host name ${got[1]}"
    [ "${got[2]}" = 0 ] || fail "$m/etc/fstab still mounts the SD card"
    echo "  ok  $m: 127.0.0.1:$R/$1 over NFSv3, host name $1, fstab without the SD card"
}
# The files a node changes over NFS: a new one, a changed one (copied up), a removed one (a
# whiteout in the upper dir). probe prints, per dir, "<dir> <host name>|<the new file>|<sha256 of
# the changed one>|<type of the removed one>", "-" for a missing file.
new=etc/tp-over-nfs motd=etc/motd gone=usr/bin/tp-hello
probe() {
    # shellcheck disable=SC2016 # $d is the guest's
    views=$(tp_guest_ssh 'for d in '"$*"'; do
        printf "%s %s|%s|%s|%s\n" $d "$(cat $d/etc/hostname 2>/dev/null || echo -)" "$(cat $d/'"$new"' 2>/dev/null || echo -)" \
            "$(sha256sum 2>/dev/null < $d/'"$motd"' | cut -d" " -f1 | grep . || echo -)" "$(stat -c "%F %t:%T" $d/'"$gone"' 2>/dev/null || echo -)"
        done') || fail "reading $* in the guest failed"
}
view() {  # view <dir> <expected> <what>
    local got
    got=$(awk -v d="$1" '$1 == d { sub(/^[^ ]* /, ""); print }' <<<"$views")
    [ "$got" = "$2" ] || fail "$3: $1 shows '$got', not '$2' (host name|new file|sha256 of $motd|type of $gone)"
}
mapfile -t motd_sums < <(tp_guest_ssh "sha256sum < $copy/root/$motd | cut -d' ' -f1
    { cat $copy/root/$motd; echo 'changed over NFS'; } | sha256sum | cut -d' ' -f1")
image="-|${motd_sums[0]}|regular file 0:0" changed="written over NFS|${motd_sums[1]}|-"
upper=$R/.layers/node2/upper

exports_ok
overlay_ok node2 setup
overlay_ok node3 setup
nfs_mount node2
nfs_mount node3
tp_guest_ssh "set -e; echo 'written over NFS' > /mnt/n2/$new; echo 'changed over NFS' >> /mnt/n2/$motd; rm /mnt/n2/$gone; sync" \
    || fail "writing through node2's NFS mount failed"
echo "  node2 over NFS: wrote /$new, appended to /$motd, removed /$gone"
same_copy "after node2's writes"
probe "$copy/root" /mnt/n2 $R/node2 $upper /mnt/n3 $R/node3 $R/.layers/node3/upper
view "$copy/root" "raspberrypi|$image" "the shared copy"
view /mnt/n2 "node2|$changed" "node2's NFS mount"
view $R/node2 "node2|$changed" "node2's root on the server"
view $upper "node2|written over NFS|${motd_sums[1]}|character special file 0:0" "node2's upper dir (the change, $motd copied up, a whiteout for $gone)"
for d in /mnt/n3 $R/node3; do view "$d" "node3|$image" "node3 (it must not see node2's change)"; done
view $R/.layers/node3/upper "node3|-|-|-" "node3's upper dir"
echo "  ok  node2's change is in its upper dir ($gone a whiteout), not in node3's mount, root or layer"
tp_guest_ssh "umount /mnt/n2 && echo 3 > /proc/sys/vm/drop_caches" || fail "unmounting /mnt/n2 failed"
nfs_mount node2
probe /mnt/n2
view /mnt/n2 "node2|$changed" "node2's NFS mount after a remount"
echo "  ok  node2's change persists over a remount"

# nfsd holds an exported overlay: it cannot be unmounted, so a reset has to withdraw the export.
if busy=$(tp_guest_ssh "umount $R/node3" 2>&1); then fail "umount of the exported $R/node3 worked"; fi
[[ $busy == *busy* ]] || fail "umount of the exported $R/node3 failed, but not as busy: $busy"
echo "  ok  an exported overlay cannot be unmounted: $busy"
# Reset node2 while it is exported. The node is off (its NFS client gone); node3 stays mounted.
tp_guest_ssh "umount /mnt/n2" || fail "unmounting /mnt/n2 failed"
ansible-playbook tests/kernel/nfs-roots.yml -e tp_nfs_phase=reset || fail "resetting node2 (fresh: true) failed while it is exported"
[ "$(result reset node2 mount_options)" = "$(result setup node2 mount_options)" ] || fail "node2's mount options changed with the reset"
exports_ok
overlay_ok node2 reset
nfs_mount node2
probe /mnt/n2 $upper /mnt/n3
view /mnt/n2 "node2|$image" "node2's NFS mount after the reset"
view $upper "node2|-|-|-" "node2's upper dir after the reset"
view /mnt/n3 "node3|$image" "node3's NFS mount, kept over node2's reset"
echo "  ok  node2 after the reset: a fresh root (its layer emptied, the change gone); node3's mount kept working"
same_copy "after the reset"
tp_guest_ssh "umount /mnt/n2 /mnt/n3" || fail "unmounting the NFS clients failed"
echo "  step 4: $((SECONDS - nfs_start)) s"

step "all checks passed in $((SECONDS - tier_start)) s"
