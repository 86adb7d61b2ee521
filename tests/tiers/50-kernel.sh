#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The real-kernel tier: the CMB modules on a real Linux I2C stack. A Debian guest under QEMU (TCG)
# with i2c-dev and i2c-stub at 0x57 and 0x6f, smbus2, and a test-harness stand-in for the RTC's
# crystal (tests/kernel/guest/usr/local/sbin/tp-test-crystal). See docs/testing-kernel-tier.md.
#   1. the collection's integration targets (power, cmb_info, rtc, user_memory) with
#      cmb_backend=i2c on the guest's /dev/i2c-N;
#   2. known changes through the collection, read back with i2cget over SSH and the bus writes
#      counted with the guest kernel's smbus trace events;
#   3. the kernel's rtc-ds1307 driver bound to 0x6f: the rtc module must use /dev/rtcN.
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
step "1/3 the integration targets with cmb_backend=i2c on /dev/i2c-$B: $targets"
limit=()
if [ "$targets" != "power cmb_info rtc user_memory" ]; then
    echo "NOTE: TP_KERNEL_TARGETS limits the targets to: $targets"
    limit=(--tags "${targets// /,}")
fi
ansible-playbook tests/kernel/run-targets.yml "${limit[@]}" || fail "the integration targets failed on the real kernel"

step "2/3 known changes through the collection, read back with i2cget"
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

step "3/3 the kernel's rtc-ds1307 driver bound to 0x6f"
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

step "all checks passed in $((SECONDS - tier_start)) s"
