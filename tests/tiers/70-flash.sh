#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Flashing: the image_write and flash_identity integration targets (loop devices, as root) through
# ansible-test on the first supported controller, then the write benchmark at a small size; and
# meanwhile, per OS family, the flash role's identity on a copy of the family's lab image
# (tests/lab/os-image.sh), booted and checked from outside (admin logs in with the key at its
# static address, the first-boot mechanism ran, the address came from the image's own manager).
# The families run at once, each a lane (tp_lane_start, tests/lib/checks.sh) beside the targets:
# most of a family's time is its machine's boot, and Trixie's waits two minutes for
# systemd-networkd-wait-online. Their logs are printed when all are done. Unit tests of the block
# engine and usbboot run in the units tier (tests/unit).
# Every loop device created here (by the targets or the benchmark) is detached on exit; the
# benchmark removes its own throttle limits; the families' machines (prefix tpfl) and their
# switch are taken down.
#   TP_FLASH_FAMILIES="raspios-bookworm"   the families flashed and booted (default: all four)
#   TP_OSI_NET=172.31.79                   the switch's subnet (os-image.sh; default 172.31.78)
# shellcheck disable=SC2317  # the helpers are reached through traps, lanes and main
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../lib/env.sh
. "$(dirname "$0")/../lib/env.sh"
# shellcheck source=tests/lib/ansible-test.sh
. "$TP_ROOT/tests/lib/ansible-test.sh"
# shellcheck source=tests/lib/checks.sh
. "$TP_ROOT/tests/lib/checks.sh"
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

# TP_FLASH_TARGETS (default both) and TP_FLASH_BENCH=0 narrow a run while working on one part.
targets=${TP_FLASH_TARGETS-image_write flash_identity}
# The engine's unit tests run on every controller (units tier); the loop-device targets take
# minutes, so they run on the first supported controller only. Then the benchmark; the first
# failure ends these two (run under set -e).
targets_and_bench() {
    local pair core py tree
    for pair in ${TP_CONTROLLERS%% *}; do
        [ -n "$targets" ] || break
        core=${pair%%:*} py=${pair##*:}
        tree=$(tp_ansible_test_tree "flash-$core")
        echo "--- ansible-core $core, Python $py: $targets"
        # shellcheck disable=SC2086  # $targets: one word per target
        (cd "$tree" && PATH=$TP_TMP/venv-$core/bin:$PATH \
            ansible-test integration --local --python "$py" --allow-destructive --color no $targets)
    done
    [ "${TP_FLASH_BENCH:-1}" != 0 ] || return 0
    # The throttled (USB-speed) target gets a 32 MiB image: at 6 MB/s every MiB costs time.
    echo "--- benchmark, 256 MiB on a loop device, 32 MiB on the throttled one"
    TP_BENCH_THROTTLED_MIB=${TP_FLASH_BENCH_THROTTLED_MIB:-32} \
        "$TP_ROOT/benchmarks/image_write_bench.sh" "${TP_FLASH_BENCH_MIB:-256}"
}

# --- each OS family: the flash role's identity on a copy of its lab image, booted, checked ---
# The role runs as playbooks/flash.yml runs it, with the copy (an image file) as flash_device:
# image_write finds it already equal to the image and writes nothing, then the identity step
# reads the family from the image and writes it. A family os-image.sh does not list is skipped
# and said so; one it lists and cannot build is a failure.
OSI=$TP_ROOT/tests/lab/os-image.sh
export TP_OSI_PREFIX=tpfl
NET=${TP_OSI_NET:-172.31.78}
FAMILIES=${TP_FLASH_FAMILIES:-raspios-bookworm raspios-bullseye ubuntu-24.04 raspios-trixie}
WORK=$TP_TMP/flash-families
families_down() { "$OSI" down >/dev/null 2>&1 || true; rm -rf "$WORK"; }
trap 'tp_lanes_kill; families_down; cleanup' EXIT
families_down
mkdir -p "$WORK"
ssh-keygen -q -t ed25519 -N '' -C tier70 -f "$WORK/id"
ssh_opts=(-i "$WORK/id" -o IdentitiesOnly=yes -o BatchMode=yes -o PasswordAuthentication=no
          -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=5)
as_admin() {  # ADDRESS COMMAND: as admin, with the key only (no password prompt)
    ip netns exec "$TP_OSI_PREFIX-sw" ssh "${ssh_opts[@]}" "admin@$1" "$2"
}
wait_login() { local _; for _ in $(seq 60); do as_admin "$1" true >/dev/null 2>&1 && return 0; sleep 1; done; return 1; }
# check_in FAMILY NAME DESCRIPTION SCRIPT: SCRIPT (sh) in the machine, as root.
check_in() {
    if "$OSI" exec "$2" sh -c "$4" >"$WORK/$2.out" 2>&1; then ok "$1: $3"
    else fail "$1: $3: $(tr '\n' ' ' < "$WORK/$2.out" | cut -c1-300)"; fi
}
# has_in_root IMAGE PATH: the image's root partition has PATH (debugfs, nothing mounted).
has_in_root() {
    local start
    start=$(sfdisk -d "$1" | sed -n 's/.*start= *\([0-9]*\),.*type=83.*/\1/p')
    debugfs -R "stat $2" "$1?offset=$((start * 512))" 2>/dev/null | grep -q '^Inode:'
}
# The checks of the first boot's outcome, in the machine.
# shellcheck disable=SC2016  # run by the machine's shell
userconf_done='fw=$(awk '\''$3 == "vfat" {print $2; exit}'\'' /etc/fstab)
    test ! -e "$fw/userconf.txt" && test ! -e "$fw/failed_userconf.txt" || { ls "$fw"; exit 1; }
    ! getent passwd pi && test "$(getent passwd admin | cut -d: -f3,6)" = 1000:/home/admin || { getent passwd admin pi; exit 1; }
    ! systemctl is-active -q userconfig && ! systemctl is-failed -q userconfig && ! systemctl is-enabled -q userconfig \
        || { systemctl status userconfig; exit 1; }'
# shellcheck disable=SC2016
key_moved='test "$(stat -c "%u:%g %a" /home/admin/.ssh/authorized_keys /home/admin/.ssh | tr "\n" " ")" = "1000:1000 600 1000:1000 700 "'
# shellcheck disable=SC2016
cloud_init_done='timeout 150 cloud-init status --wait >/dev/null 2>&1; cloud-init status --long; cloud-init status | grep -qx "status: done"'
listed=" $("$OSI" families) "
# family_flow FAMILY INDEX: one family's flash, boot and checks; fails counts its failures.
family_flow() {
    local family=$1 i=$2 t0=$SECONDS img name address copy up
    echo "--- $family: flash identity, boot, check"
    if [[ $listed != *" $family "* ]]; then
        echo "SKIP: $family (tests/lab/os-image.sh families does not list it)"
        return
    fi
    if ! img=$("$OSI" build "$family" 2>"$WORK/build-$family.log"); then
        tail -5 "$WORK/build-$family.log"
        fail "$family: tests/lab/os-image.sh build $family failed, not tested (its last lines above)"
        return
    fi
    case "$family" in
        ubuntu-*) name=fubuntu ;;
        *) name=f${family#*-} ;;     # fbookworm, fbullseye, ftrixie
    esac
    address=$NET.$((49 + i))
    copy=$WORK/$name.img
    if ! cp --sparse=always "$img" "$copy"; then
        fail "$family: cannot copy its image '$img'"
        return
    fi
    {
        echo "flash_image: $img"
        echo "flash_image_sha256: skip"
        echo "flash_device: $copy"
        echo "flash_force: true"
        echo "flash_prompt: false"
        echo "flash_verify: false"
        echo "flash_cache_dir: $WORK/cache-$name"
        echo "flash_admin_user: admin"
        echo "flash_admin_ssh_keys: [\"$(cat "$WORK/id.pub")\"]"
        echo "flash_nodes: [{name: $name, address: $address/24, gateway: $NET.1, dns: [$NET.1]}]"
    } > "$WORK/$name.yml"
    if ! ansible-playbook -i localhost, -c local -e ansible_python_interpreter="$(command -v python3)" \
            turingpi.cluster.flash -e "@$WORK/$name.yml" >"$WORK/$name.flash.log" 2>&1; then
        tail -30 "$WORK/$name.flash.log"
        fail "$family: the flash role failed on the image"
        rm -f "$copy"
        return
    fi
    grep -o "\"$name: first user by[^\"]*" "$WORK/$name.flash.log" | tr -d '"' || true
    if ! up=$("$OSI" boot "$copy" "$name" 2>"$WORK/$name.boot.log"); then
        tail -5 "$WORK/$name.boot.log"
        fail "$family: boot failed"
        "$OSI" stop "$name" >/dev/null 2>&1 || true
        rm -f "$copy"
        return
    fi
    echo "$up"
    if wait_login "$address"; then ok "$family: admin logs in with the key at the static address $address"
    else fail "$family: admin does not log in with the key at $address"; fi
    check_in "$family" "$name" "host name $name" "test \"\$(hostname)\" = $name"
    check_in "$family" "$name" "admin may sudo without a password" "su - admin -c 'sudo -n true'"
    # The address is set by the machine's own manager: present, and not a DHCP lease.
    check_in "$family" "$name" "eth0 has $address/24, static" \
        "ip -4 -o addr show eth0 | grep -q 'inet $address/24 ' && ! ip -4 -o addr show eth0 | grep -q dynamic || ip -4 -o addr show eth0"
    if has_in_root "$copy" /usr/lib/userconf-pi/userconf-service; then
        check_in "$family" "$name" "userconf-pi ran: userconf.txt consumed, pi renamed, the wizard not waiting" "$userconf_done"
        check_in "$family" "$name" "the key moved with the home (1000:1000, 600 and 700)" "$key_moved"
    fi
    if has_in_root "$copy" /usr/bin/cloud-init; then
        check_in "$family" "$name" "cloud-init finished (status: done)" "$cloud_init_done"
    fi
    case "$family" in
        raspios-bookworm)
            check_in "$family" "$name" "NetworkManager's profile turingpi-eth0 is active" \
                "nmcli -t -f NAME,DEVICE connection show --active | grep -qx turingpi-eth0:eth0" ;;
        raspios-bullseye)
            check_in "$family" "$name" "dhcpcd runs with the static address" \
                "systemctl is-active -q dhcpcd && grep -q 'static ip_address=$address/24' /etc/dhcpcd.conf" ;;
        *)
            check_in "$family" "$name" "cloud-init rendered the address for the image's manager" \
                "grep -rqs '$address/24' /etc/netplan/ /etc/NetworkManager/system-connections/ /etc/systemd/network/" ;;
    esac
    "$OSI" stop "$name" >/dev/null 2>&1 || fail "$family: stop failed"
    rm -f "$copy"
    echo "$family: $((SECONDS - t0)) s"
}
# family_lane FAMILY INDEX: family_flow as a lane; fails if a check failed.
family_lane() {
    fails=0
    family_flow "$1" "$2"
    echo "$1: $fails failed check(s)"
    [ "$fails" = 0 ]
}

# The rest runs from one function, with the exit on the same line: bash reads a script as it
# goes, and this one runs for minutes (an edit or checkout meanwhile must not be read).
main() {
    local family i t0 targets_rc lanes_rc=0
    # Each step says what failed itself: no step may end the tier unreported.
    set +e
    # The images first, one at a time (cached: tier 75 built them in a full run).
    for family in $FAMILIES; do
        [[ $listed == *" $family "* ]] && { "$OSI" build "$family" >/dev/null 2>"$WORK/build-$family.log" || true; }
    done
    t0=$SECONDS
    i=0
    for family in $FAMILIES; do
        i=$((i + 1))
        tp_lane_start "$WORK" "$family" family_lane "$family" "$i"
    done
    # Not in a condition: set -e holds in the subshell only where its status is not tested.
    ( set -e; targets_and_bench )
    targets_rc=$?
    tp_lanes_wait || lanes_rc=1
    echo "(the targets, the benchmark and the families at once: $((SECONDS - t0)) s)"
    [ "$targets_rc" = 0 ] || fail "the targets and the benchmark (their output is above the families')"
    [ "$lanes_rc" = 0 ] || fail "the families: a lane failed (its log above)"
    families_down
    leftover=$(ip netns list | awk '{print $1}' | grep "^$TP_OSI_PREFIX-" || true)
    [ -z "$leftover" ] || fail "namespaces left behind: $leftover"
    [ "$(cat /proc/sys/net/ipv4/ip_forward)" = 0 ] || fail "ip_forward is not 0"
    echo "70-flash: $fails failed check(s)"
    [ "$fails" = 0 ]
}
main; exit $?
