# SPDX-License-Identifier: GPL-3.0-or-later
# Sourced: the real-kernel test guest's life cycle, for tests/tiers/50-kernel.sh and
# benchmarks/power_bench.sh.
#
#   tp_guest_start          build or reuse the image, boot a throw-away copy, wait for SSH;
#                           sets TP_GUEST_DIR (run files), TP_GUEST_PORT, TP_GUEST_INVENTORY,
#                           TP_GUEST_BUS (number of the i2c-stub bus) and exports ANSIBLE_CONFIG
#   tp_guest_ssh CMD...     run a command in the guest as root
#   tp_guest_stop           poweroff over SSH, then QEMU ends, or is killed by PID after a bound;
#                           removes the run files. Safe to call twice, and from an EXIT trap.
#
# Nothing here leaves the machine: QEMU's user network is restricted (restrict=on), and the only
# port is a forward from 127.0.0.1 to the guest's sshd.
# shellcheck shell=bash
. "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"

TP_GUEST_BOOT_TIMEOUT=${TP_GUEST_BOOT_TIMEOUT:-240}
TP_GUEST_DIR='' TP_GUEST_PORT='' TP_GUEST_PID='' TP_GUEST_BUS='' TP_GUEST_CP=''

tp_free_port() {
    local port tries=0
    while [ $tries -lt 50 ]; do
        port=$(( 20000 + RANDOM % 20000 )); tries=$((tries + 1))
        if ! ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then echo "$port"; return 0; fi
    done
    return 1
}

tp_guest_ssh() {
    ssh -F none -i "$TP_GUEST_DIR/id_ed25519" -p "$TP_GUEST_PORT" -l root \
        -o UserKnownHostsFile="$TP_GUEST_DIR/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=6 \
        -o ControlMaster=auto -o ControlPersist=120 -o ControlPath="$TP_GUEST_CP/own" \
        127.0.0.1 "$@"
}

tp_guest_start() {
    local image pub key
    image=$("$TP_KERNEL_DIR/build-image.sh") || { echo "tp_guest_start: the guest image did not build" >&2; return 1; }
    TP_GUEST_DIR=$(mktemp -d "$TP_KERNEL_TMP/run.XXXXXX")
    # Unix socket paths are short (108 bytes): the SSH control sockets live under /tmp.
    TP_GUEST_CP=$(mktemp -d /tmp/tp-kernel-ssh.XXXXXX)
    ssh-keygen -q -t ed25519 -N '' -C "tp-kernel-run" -f "$TP_GUEST_DIR/id_ed25519"
    key=$(base64 -w0 "$TP_GUEST_DIR/id_ed25519.pub")
    qemu-img create -q -f qcow2 -b "$image/rootfs.img" -F raw "$TP_GUEST_DIR/disk.qcow2"
    TP_GUEST_PORT=$(tp_free_port) || { echo "tp_guest_start: no free port" >&2; return 1; }
    pub=$(cut -d' ' -f1,2 "$image/ssh_host_ed25519_key.pub")
    echo "[127.0.0.1]:$TP_GUEST_PORT $pub" > "$TP_GUEST_DIR/known_hosts"
    tp_log "booting the guest ($(cat "$image/kernel-version"), TCG, ssh on 127.0.0.1:$TP_GUEST_PORT)"
    qemu-system-x86_64 -name tp-kernel-guest -accel tcg -m 1024 -smp 2 \
        -kernel "$image/vmlinuz" -initrd "$image/initrd.img" \
        -append "root=/dev/vda rw console=ttyS0 quiet panic=-1 net.ifnames=0 mitigations=off tp.ssh_key=$key" \
        -drive "file=$TP_GUEST_DIR/disk.qcow2,if=virtio,format=qcow2" \
        -netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$TP_GUEST_PORT-:22" \
        -device virtio-net-pci,netdev=n0 \
        -display none -nodefaults -no-reboot -serial "file:$TP_GUEST_DIR/serial.log" \
        </dev/null >"$TP_GUEST_DIR/qemu.log" 2>&1 &
    TP_GUEST_PID=$!
    echo "$TP_GUEST_PID" > "$TP_GUEST_DIR/qemu.pid"
    local start=$SECONDS
    while ! tp_guest_ssh true 2>/dev/null; do
        if ! kill -0 "$TP_GUEST_PID" 2>/dev/null; then
            echo "tp_guest_start: QEMU exited during boot:" >&2; tail -20 "$TP_GUEST_DIR/qemu.log" "$TP_GUEST_DIR/serial.log" >&2
            return 1
        fi
        if [ $((SECONDS - start)) -ge "$TP_GUEST_BOOT_TIMEOUT" ]; then
            echo "tp_guest_start: no SSH after $TP_GUEST_BOOT_TIMEOUT s; serial console:" >&2; tail -30 "$TP_GUEST_DIR/serial.log" >&2
            return 1
        fi
        sleep 2
    done
    tp_log "guest up: SSH after $((SECONDS - start)) s"
    # The stub's bus number: QEMU's PIIX4 SMBus may be probed first.
    # shellcheck disable=SC2016 # expanded by the guest's shell
    TP_GUEST_BUS=$(tp_guest_ssh 'for a in /sys/class/i2c-adapter/i2c-*; do
            [ "$(cat "$a/name")" = "SMBus stub driver" ] && echo "${a##*-}"; done; true')
    case $TP_GUEST_BUS in
        ''|*[!0-9]*) echo "tp_guest_start: no single i2c-stub bus in the guest ('$TP_GUEST_BUS')" >&2
                     tp_guest_ssh 'ls /sys/class/i2c-adapter; lsmod | grep i2c' >&2 || true; return 1 ;;
    esac
    TP_GUEST_INVENTORY=$TP_GUEST_DIR/inventory.ini
    cat > "$TP_GUEST_INVENTORY" <<INI
[guest]
tp-kernel-guest ansible_host=127.0.0.1 ansible_port=$TP_GUEST_PORT ansible_user=root ansible_connection=ssh ansible_python_interpreter=/usr/bin/python3 ansible_ssh_private_key_file=$TP_GUEST_DIR/id_ed25519 ansible_ssh_common_args='-F none -o UserKnownHostsFile=$TP_GUEST_DIR/known_hosts -o StrictHostKeyChecking=yes'

[guest:vars]
tp_stub_bus=$TP_GUEST_BUS
INI
    cat > "$TP_GUEST_DIR/ansible.cfg" <<CFG
[defaults]
inventory = $TP_GUEST_INVENTORY
roles_path = $TP_ROOT/tests/integration/targets
gathering = explicit
retry_files_enabled = false
forks = 1
[ssh_connection]
pipelining = true
control_path_dir = $TP_GUEST_CP
ssh_args = -o ControlMaster=auto -o ControlPersist=120s
CFG
    export ANSIBLE_CONFIG=$TP_GUEST_DIR/ansible.cfg
    export TP_GUEST_DIR TP_GUEST_PORT TP_GUEST_BUS TP_GUEST_INVENTORY
}

tp_guest_stop() {
    [ -n "$TP_GUEST_DIR" ] || return 0
    local pid=${TP_GUEST_PID:-} sock
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        # Bounded by ConnectTimeout and ServerAlive* in tp_guest_ssh.
        tp_guest_ssh 'systemctl poweroff --no-block' >/dev/null 2>&1 || true
        for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        if kill -0 "$pid" 2>/dev/null; then
            echo "tp_guest_stop: the guest did not power off within 60 s; killing QEMU (pid $pid)" >&2
            kill -TERM "$pid" 2>/dev/null || true
            for _ in 1 2 3 4 5; do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    fi
    # SSH control masters (ours and Ansible's) end with the guest; close any left, by socket.
    if [ -n "$TP_GUEST_CP" ]; then
        for sock in "$TP_GUEST_CP"/*; do
            if [ -S "$sock" ]; then ssh -F none -o ControlPath="$sock" -O exit dummy >/dev/null 2>&1 || true; fi
        done
        rm -rf "$TP_GUEST_CP"
    fi
    if [ -n "${TP_KEEP_GUEST_LOGS:-}" ]; then
        echo "tp_guest_stop: run files kept in $TP_GUEST_DIR" >&2
    else
        rm -rf "$TP_GUEST_DIR"
    fi
    TP_GUEST_DIR='' TP_GUEST_PID='' TP_GUEST_CP=''
}

# Independent count of the bus writes to the DS4520 (0x57), from the guest kernel's own trace
# events: every SMBus transfer through i2c-core (i2c-stub is an SMBus adapter) emits
# smbus:smbus_write, whoever made it. tp_trace_start clears and arms it; tp_trace_count prints
# "<writes to 0xF2> <writes to any 0x57 register> <values written to 0xF2, comma-separated>".
# shellcheck disable=SC2016 # the commands are expanded by the guest's shell
tp_trace_start() {
    tp_guest_ssh 'set -e
        T=/sys/kernel/tracing
        [ -d $T/events/smbus ] || mount -t tracefs nodev $T
        echo 0 > $T/tracing_on
        echo "addr == 0x57" > $T/events/smbus/smbus_write/filter
        echo 1 > $T/events/smbus/smbus_write/enable
        echo > $T/trace
        echo 1 > $T/tracing_on'
}

# shellcheck disable=SC2016 # the commands are expanded by the guest's shell
tp_trace_count() {
    tp_guest_ssh 'set -e
        T=/sys/kernel/tracing
        echo 0 > $T/tracing_on
        awk "/ smbus_write: / && / a=057 / {all++; if (/ c=f2 /) {f2++; v = v sep \$NF; sep = \",\"}}
             END {print f2+0, all+0, (v == \"\" ? \"-\" : v)}" $T/trace'
}
