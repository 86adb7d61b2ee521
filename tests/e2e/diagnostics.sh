# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Boot-stage diagnostics on the virtual Turing Pi (docs/boot-diagnostics.md), sourced by
# tests/tiers/80-e2e.sh: diag_faults WRONG_SERIAL_SLOT UNEXPORTED_SLOT LATE_SLOT (default 2 3 4).
#
# When: on an up lab (lab board-up) where bootstrap.yml ran once and every node answers, with
# tests/lib/cluster-env.sh and tests/lib/checks.sh sourced; after step 3 of 80-e2e (the re-run).
# What: three faults in ONE bootstrap run with a short bootstrap_boot_timeout, each of a node the
# run powers on or finds powered:
#   - a wrong serial in the inventory: a copy of the board file with that slot's serial changed,
#     and the master's TFTP directory of its real serial moved aside (as on a master that never
#     had the right one);
#   - its root not exported: its line removed from the master's exports, re-exported;
#   - the netboot server started too late: dnsmasq stopped, the node power-cycled through the
#     bus, its boot ROM left to give up (the supervisor's log says so), dnsmasq started again.
# The run skips the netboot role (-e bootstrap_netboot=false): it would repair the first two
# faults, which is what a user does after reading the message. bootstrap.yml must fail and name,
# for each of the three, the stage it reached and the likely cause; the other nodes succeed.
# State left: as found. The board file, the TFTP directory and the export restored, the three
# nodes power-cycled through the bus and answering over SSH again, every slot on.
# Cost: about 2 min on a 3-node lab (the boot ROM giving up, about 45 s in the lab; the run's master play
# and its 30 s boot timeout; the nodes' reboot).

DIAG_BOOT_TIMEOUT=${DIAG_BOOT_TIMEOUT:-30}  # the faulty nodes stop within seconds of power-on

diag_master() {  # a command on the master, as root, through the lab's management network
    ssh -i "$TP_TMP/lab/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
        -o LogLevel=ERROR root@172.31.77.1 "$@"
}

diag_power() {  # NODES-JSON: switch slots through the master's bus, e.g. '{"3": "off"}'
    ansible -i "$TP_CLUSTER_INVENTORY" master -b -m turingpi.cluster.power \
        -a "{\"bus\": \"virtual:/var/lib/turingpi/board/board.json\", \"nodes\": $1}" >>"$TP_TMP/e2e-diag-power.log" 2>&1
}

diag_answer() {  # HOSTS: they answer over SSH within 120 s
    ansible -i "$TP_CLUSTER_INVENTORY" "$1" -m ansible.builtin.wait_for_connection -a timeout=120 >>"$TP_TMP/e2e-diag-power.log" 2>&1
}

diag_said() {  # LOG NODE PATTERN...: NODE's last failure in LOG matches every PATTERN
    local log=$1 node=$2 line pattern; shift 2
    line=$(grep -E "^fatal: \[$node\]" "$log" | tail -1)
    for pattern in "$@"; do
        grep -qE -- "$pattern" <<<"$line" || { echo "    $node: no /$pattern/ in: ${line:-(no failure)}"; return 1; }
    done
}

diag_faults() {
    local wrong=${1:-2} unexported=${2:-3} late=${3:-4}
    local lab=$TP_TMP/lab cluster=$TP_TMP/lab/cluster
    local tftp=$lab/run/node1/srv/netboot/tftp exports=$lab/run/node1/root/etc/exports.d/turingpi-netboot.exports
    local board=$cluster/diagnostics.turingpi.yml log=$TP_TMP/e2e-diagnostics.log
    local real bad start=$SECONDS rc=0 _try
    real=$(printf '0000aa%02x' "$wrong") bad=$(printf '0000bb%02x' "$wrong")
    : >"$TP_TMP/e2e-diag-power.log"
    echo "--- boot-stage diagnostics: node$wrong wrong serial, node$unexported root not exported, node$late server too late"

    # The faults. The two first nodes off, so that the run powers them on.
    diag_power "{\"$wrong\": \"off\", \"$unexported\": \"off\"}"
    sed "s/serial: '$real'/serial: '$bad'/" "$cluster/board.turingpi.yml" >"$board"
    check "the board file copy gives node$wrong serial $bad" grep -q "serial: '$bad'" "$board"
    mv "$tftp/$real" "$lab/run/node1/srv/netboot/diag-$real"
    cp -p "$exports" "$TP_TMP/e2e-diag-exports"
    sed -i "\\|/node$unexported |d" "$exports"
    diag_master 'exportfs -ra' >/dev/null 2>&1 || true
    diag_master 'systemctl stop dnsmasq'
    diag_power "{\"$late\": \"restarted\"}"
    for _try in $(seq 60); do grep -q "slot $late: boot ROM gave up" "$lab/run/supervisor.log" && break; sleep 1; done
    check "node$late's boot ROM gave up while the netboot server was stopped" grep -q "slot $late: boot ROM gave up" "$lab/run/supervisor.log"
    diag_master 'systemctl start dnsmasq'

    ansible-playbook -i "$board" turingpi.cluster.bootstrap -e bootstrap_netboot=false \
        -e "bootstrap_boot_timeout=$DIAG_BOOT_TIMEOUT" >"$log" 2>&1 || rc=$?
    echo "    (bootstrap with the faults: $((SECONDS - start)) s since the faults were set, log $log)"
    check "bootstrap fails" [ "$rc" != 0 ]
    check "node$wrong: bootcode.bin reached, wrong serial named (asked $real, inventory $bad)" \
        diag_said "$log" "node$wrong" "Last boot stage reached: bootcode.bin" "wrong serial in the inventory" "$real/start.elf" "serial: $real"
    check "node$unexported: kernel reached, its root not exported" \
        diag_said "$log" "node$unexported" "Last boot stage reached: kernel" "/srv/netboot/nfs/node$unexported is not in /etc/exports"
    check "node$late: no DHCP, the netboot server was not running when it got power" \
        diag_said "$log" "node$late" "Last boot stage reached: none" "netboot server (was not running|started at)" "gives up and sleeps"
    check "only those three nodes failed" bash -c "
        [ \"\$(awk '/^PLAY RECAP/{r=1; next} r && / failed=[1-9]/{print \$1}' '$log' | sort | tr '\n' ' ')\" = \
          \"\$(printf '%s\n' node$wrong node$unexported node$late | sort | tr '\n' ' ')\" ]"

    # Back as found: board file, TFTP directory, export; the three nodes booted again.
    rm -f "$board"
    mv "$lab/run/node1/srv/netboot/diag-$real" "$tftp/$real"
    cp -p "$TP_TMP/e2e-diag-exports" "$exports"
    diag_master 'exportfs -ra' >/dev/null 2>&1 || true
    diag_power "{\"$wrong\": \"off\", \"$unexported\": \"off\", \"$late\": \"off\"}"
    diag_power "{\"$wrong\": \"on\", \"$unexported\": \"on\", \"$late\": \"on\"}"
    check "node$wrong, node$unexported and node$late answer again" diag_answer "node$wrong,node$unexported,node$late"
    echo "    (diagnostics: $((SECONDS - start)) s)"
}
