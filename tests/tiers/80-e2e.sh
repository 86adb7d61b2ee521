#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Tier 80: the whole cluster end to end on the virtual Turing Pi (tests/lab/lab board-up), whose
# network-boot nodes run the OS images users flash (tests/lab/os-image.sh, docs/os-images.md):
# slots 2-5 Raspberry Pi OS Bookworm, slots 6-7 a cloud-init family (TP_E2E_CLOUD_IMAGE):
#  1. every node off; playbooks/bootstrap.yml brings up the master (cmb, router, netboot),
#     powers the six network-boot modules through the virtual bus in waves of 3, 20 s apart
#     (tests/e2e/waves.sh checks the waves in the supervisor's log; the power supervisor boots
#     their machines from the roots the master serves), provisions and verifies them;
#  2. checked from outside: power register, running machines, each node reached through the
#     master with SSH checking the host keys bootstrap.yml was given for it (the controller's
#     known_hosts, StrictHostKeyChecking=yes), running its image from its root on the master:
#     an overlay of the image's one shared copy and the node's own layer, where its writes land;
#     the image's first-boot mechanism done, provisioned;
#     the board's RTC set, running, on battery backup, its name and id in its user EEPROM, info
#     shows them;
#  3. a second bootstrap changes nothing (the board's id, EEPROM and clock kept); three boot faults
#     in one bootstrap run (a wrong serial, a root not exported, the netboot server started too
#     late), each failure naming the node's last boot stage and its cause (tests/e2e/diagnostics.sh);
#  4. playbooks/reprovision.yml on node3 and node5 (one at a time): their roots are fresh (a new
#     layer in under 10 s), the shared copies unchanged, the other four nodes kept running
#     untouched, the results file says ok;
#  5. a request for an unknown node is refused before anything is touched;
#  6. the census (tests/e2e/census.sh): before step 1, from a board file listing only the master,
#     it finds every module's slot, MAC and serial, and step 1 bootstraps from the file it wrote;
#     now, with the nodes running, it reads them over SSH and power-cycles none; with every node
#     off and two modules swapped, it flags both.
# Logs: $TP_TMP/e2e-*.log. The lab is always torn down; the tier fails if the host is not left as
# it was found.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/cluster-env.sh
LAB=$TP_TMP/lab
INV=$TP_CLUSTER_INVENTORY
BOARD=$LAB/run/board/board.json
NODES="2 3 4 5 6 7"
CLOUD_IMAGE=${TP_E2E_CLOUD_IMAGE:-ubuntu-24.04}
KNOWN_HOSTS=$TP_TMP/lab/cluster/known_hosts
# The master's /srv/netboot/nfs as the host sees it: the image copies and the nodes' layers.
SRV=$LAB/run/node1/srv/netboot/nfs
# What each slot runs: the first-boot mechanism of its image family.
family() { case "$1" in 6|7) echo cloud-init ;; *) echo raspios ;; esac; }

. tests/lib/host-state.sh
. tests/lib/checks.sh
. tests/e2e/waves.sh
. tests/e2e/diagnostics.sh
. tests/e2e/census.sh
before=$(tp_host_state)
cleanup() { tests/lab/lab down >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# The power register 0xF2 (volatile shadow) as the state file holds it.
power_reg() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ds4520"]["shadow"]["242"])' "$BOARD"; }
running() { tests/lab/lab status | awk '/^node[0-9] running/{print $1}' | tr '\n' ' '; }
machine_pid() { cat "$LAB/run/node$1.pid" 2>/dev/null; }
# A command on some nodes, through the master (the inventory plugin's jump): prints {host: stdout}
# as JSON (tests/lib/on-nodes.yml). out_of JSON HOST prints one host's output.
on_nodes() {
    local json=$TP_TMP/e2e-on-nodes.json
    rm -f "$json"
    ansible-playbook -i "$INV" tests/lib/on-nodes.yml -e "$(python3 -c 'import json, sys; print(json.dumps(
        {"on_nodes_hosts": sys.argv[1], "on_nodes_cmd": sys.argv[2], "on_nodes_out": sys.argv[3]}))' "$1" "$2" "$json")" \
        >"$TP_TMP/e2e-on-nodes.log" 2>&1 && cat "$json"
}
out_of() { python3 -c 'import json, sys; print(json.loads(sys.argv[1]).get(sys.argv[2], "(no output)"))' "$1" "$2"; }
playbook() {  # log name, playbook args...
    local log=$TP_TMP/e2e-$1.log start=$SECONDS; shift
    ansible-playbook -i "$INV" "$@" >"$log" 2>&1
    local rc=$?
    echo "    ($((SECONDS - start)) s, log $log)"
    return $rc
}

tests/lab/lab down >/dev/null 2>&1
echo "--- the lab's NFS mount (the master's overlay attached for the node), without the lab"
if bash tests/lab/test-nfs-mount.sh >"$TP_TMP/e2e-nfs-mount.log" 2>&1; then ok "tests/lab/test-nfs-mount.sh"; else
    fail "tests/lab/test-nfs-mount.sh"; cat "$TP_TMP/e2e-nfs-mount.log"
fi
echo "--- the virtual Turing Pi, every node off"
tests/lab/lab board-up 6 --image raspios-bookworm --image "6,7=$CLOUD_IMAGE" || { echo "80-e2e: the lab did not come up"; exit 1; }
# 0x02: the master's bit only (docs/hardware.md "DS4520 at 0x57": node 1 = bit 1; bit 0 is unused).
check "only the master has power" [ "$(( $(power_reg) & 0xFE ))" = 2 ]
check "no node machine runs" [ "$(running)" = "node1 " ]

# The census finds the modules from a board file that lists only the master (tests/e2e/census.sh);
# its file, with the images the user adds (slots 6 and 7 run the cloud image), is the inventory
# from here on: the bootstrap below runs from it.
census_fresh
python3 - "$TP_CLUSTER_INVENTORY" "$CENSUS_FILE" <<'PY'
import sys, yaml
lab, census = (yaml.safe_load(open(f)) for f in sys.argv[1:3])
images = dict((s, v['image']) for s, v in lab['boards'][0]['slots'].items() if 'image' in v)
for s, v in census['boards'][0]['slots'].items():
    if s in images:
        v['image'] = images[s]
yaml.safe_dump(census, open(sys.argv[2], 'w'), sort_keys=False)
PY
INV=$CENSUS_FILE
check "the census' board file with the images added lists the six nodes" bash -c "
    ansible-inventory -i '$INV' --graph turingpi_nodes 2>/dev/null | grep -c -- '--node[2-7]\$' | grep -qx 6"

echo "--- bootstrap, the nodes switched on in waves of 3, 20 s apart"
mark=$(waves_mark)
# shellcheck disable=SC2046  # waves_args prints separate arguments
if playbook bootstrap-1 turingpi.cluster.bootstrap $(waves_args 3 20); then ok "bootstrap succeeded"; else
    fail "bootstrap failed"; grep -E 'fatal:|FAILED!|ERROR' "$TP_TMP/e2e-bootstrap-1.log" | tail -20
    tail -20 "$LAB/run/supervisor.log"; exit 1
fi
check "the power register has every slot on (0xFE)" [ "$(( $(power_reg) & 0xFE ))" = 254 ]
waves_check_bootstrap 3 20 "$mark" "$TP_TMP/e2e-bootstrap-1.log"
check "all seven machines run" [ "$(running)" = "node1 node2 node3 node4 node5 node6 node7 " ]
# The family from what the root has: Raspberry Pi OS's /etc/rpi-issue and userconf-pi's wizard
# switched off, or cloud-init's own status once it is done.
# shellcheck disable=SC2016  # expanded by the node's shell
out=$(on_nodes turingpi_nodes 'sh -c "echo $(hostname) $(ip -4 -o addr show eth0 | grep -o 10.77.0.1[0-9]) $(if [ -f /etc/rpi-issue ]; then echo raspios-$(systemctl is-enabled userconfig.service 2>/dev/null); else cloud-init status 2>/dev/null | sed -n s/^status:\ /cloud-init-/p; fi) $(systemctl is-system-running)"')
for s in $NODES; do
    if [ "$(family "$s")" = raspios ]; then want="raspios-disabled"; else want="cloud-init-done"; fi
    check "node$s answers through the master as node$s at 10.77.0.1$s, $(family "$s") first boot done ($want), systemd running" \
        [ "$(out_of "$out" "node$s")" = "node$s 10.77.0.1$s $want running" ]
done
# Every node is reached with StrictHostKeyChecking=yes against the controller's known_hosts:
# the keys there are the ones bootstrap.yml was given for the node; the node serves exactly them.
for s in $NODES; do
    check "node$s serves the ed25519 host key the controller was given for it" bash -c "
        served=\$(tests/lab/lab exec 1 ssh-keyscan -t ed25519 -T 5 10.77.0.1$s 2>/dev/null | awk '{print \$3}')
        [ -n \"\$served\" ] && grep -qx '10.77.0.1$s ssh-ed25519 '\"\$served\"'.*' '$KNOWN_HOSTS'"
done
# The root each node runs from is the one the master serves: its overlay of the image's one
# shared copy and the node's own layer (docs/master-services.md). Read in the master's mount table.
mounts=$(on_nodes master 'findmnt -rn -t overlay -o TARGET,OPTIONS')
mounts=$(out_of "$mounts" master)
lower_of() { awk -v t="/srv/netboot/nfs/node$1" '$1 == t {print $2}' <<<"$mounts" | tr , '\n' | sed -n 's/^lowerdir=//p'; }
for s in $NODES; do
    if [ "$(family "$s")" = raspios ]; then image=raspios-bookworm; else image=$CLOUD_IMAGE; fi
    check "node$s's root is an overlay (index=on, nfs_export=on) of the one $image copy and its layer" bash -c "
        awk -v t=/srv/netboot/nfs/node$s '\$1 == t {print \$2}' <<<'$mounts' | tr , '\\n' > '$TP_TMP/e2e-opts'
        grep -qxE 'lowerdir=/srv/netboot/nfs/\\.images/$image/[0-9a-f]{16}/root' '$TP_TMP/e2e-opts' &&
        grep -qx 'upperdir=/srv/netboot/nfs/.layers/node$s/upper' '$TP_TMP/e2e-opts' &&
        grep -qx index=on '$TP_TMP/e2e-opts' && grep -qx nfs_export=on '$TP_TMP/e2e-opts' &&
        [ \$(ls '$SRV/.images/$image' | grep -cE '^[0-9a-f]{16}\$') = 1 ]"
done
check "nodes 2-5 share one copy, nodes 6-7 another" bash -c "
    [ '$(lower_of 2)' = '$(lower_of 5)' ] && [ '$(lower_of 6)' = '$(lower_of 7)' ] && [ '$(lower_of 2)' != '$(lower_of 6)' ]"
# A file written on the node lands in its layer on the master, and nowhere else.
on_nodes turingpi_nodes 'sh -c "hostname > /var/tmp/e2e-marker"' >/dev/null
for s in $NODES; do
    check "node$s's write lands in its own layer on the master, not in the shared copy" bash -c "
        grep -qx node$s '$SRV/.layers/node$s/upper/var/tmp/e2e-marker' &&
        ! ls '$SRV'/.images/*/*/root/var/tmp/e2e-marker 2>/dev/null | grep -q ."
done
for s in $NODES; do echo "    node$s's layer: $(du -sh "$SRV/.layers/node$s" | cut -f1)"; done
echo "    the shared copies: $(du -shc "$SRV"/.images/*/* | tail -1 | cut -f1)"
# The facts the node role reports, the admin user, sshd without passwords: one line per node.
provisioned='
import json, re, sys
slot = sys.argv[1]
text = json.load(sys.stdin)["node" + slot]
facts = json.loads(text[:text.rindex("}") + 1])
assert str(facts["slot"]) == slot and facts["board"] == "lab", facts
assert re.search(r"\n\d+\npasswordauthentication no", text), text
'
out=$(on_nodes turingpi_nodes 'sh -c "cat /etc/ansible/facts.d/turingpi.fact; id -u admin; sshd -T | grep -i ^passwordauthentication"')
for s in $NODES; do
    check "node$s is provisioned (facts for slot $s, admin user, password login off)" \
        python3 -c "$provisioned" "$s" <<<"$out"
done

# The board: its clock set, running, on battery backup; its name and id in its user EEPROM
# (the state file read as the chips hold it, tests/lib/board-state.py).
read -r st vbat drift osc_started <<<"$(python3 tests/lib/board-state.py rtc "$BOARD")"
check "the board's RTC runs (ST $st) on battery backup (VBATEN $vbat), $drift s from the host clock" \
    bash -c "[ '$st $vbat' = '1 1' ] && [ '$drift' -le 15 ]"
identity=$(python3 tests/lib/board-state.py identity "$BOARD")
cycles=$(python3 tests/lib/board-state.py cycles "$BOARD")
check "the user EEPROM holds the identity of board lab ($identity)" \
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); assert d["name"] == "lab" and len(d["id"]) == 22, d' "$identity"
check "the master sets its system clock from the RTC at boot (turingpi-rtc-clock@.service, udev rule)" \
    [ "$(out_of "$(on_nodes master 'sh -c "systemctl cat turingpi-rtc-clock@rtc0.service >/dev/null && grep -q turingpi-rtc-clock /etc/udev/rules.d/60-turingpi-cmb.rules && echo ok"')" master)" = ok ]
if playbook info turingpi.cluster.info; then
    check "info shows the board's identity and its clock on battery backup" bash -c "
        grep -q 'identity       name lab, cluster id ' '$TP_TMP/e2e-info.log' && grep -q 'battery backup on' '$TP_TMP/e2e-info.log'"
else fail "info failed"; fi

echo "--- bootstrap again: nothing to change"
if playbook bootstrap-2 turingpi.cluster.bootstrap; then ok "second bootstrap succeeded"; else fail "second bootstrap failed"; fi
changed=$(tp_recap_changed "$TP_TMP/e2e-bootstrap-2.log")
check "second bootstrap: changed=0 on every host (got $changed)" [ "$changed" = 0 ]
grep -B3 '^changed:' "$TP_TMP/e2e-bootstrap-2.log" | grep '^TASK' | head -10
check "the second bootstrap kept the board's id, wrote no EEPROM cycle and did not restart its clock" bash -c "
    [ \"\$(python3 tests/lib/board-state.py identity '$BOARD')\" = '$identity' ] &&
    [ \"\$(python3 tests/lib/board-state.py cycles '$BOARD')\" = '$cycles' ] &&
    [ \"\$(python3 tests/lib/board-state.py rtc '$BOARD' | cut -d' ' -f4)\" = '$osc_started' ]"

# Three boot faults in one bootstrap run, each named by its boot stage (tests/e2e/diagnostics.sh);
# the lab is left as found, nodes 2-4 power-cycled.
diag_faults 2 3 4

echo "--- reprovision node3 and node5, one at a time"
rmark=$(waves_mark)  # the supervisor log's length: what reprovision does comes after
declare -A pid_before
for s in 2 4 6 7; do pid_before[$s]=$(machine_pid "$s"); done
keys_before=$(on_nodes node3,node5 'cat /etc/ssh/ssh_host_ed25519_key.pub')
results=$TP_TMP/e2e-reprovision.json
rm -f "$results"
if playbook reprovision turingpi.cluster.reprovision -e reprovision_nodes=node3,node5 \
        -e reprovision_batch=1 -e "reprovision_results_file=$results"; then ok "reprovision succeeded"; else
    fail "reprovision failed"; grep -E 'fatal:|FAILED!' "$TP_TMP/e2e-reprovision.log" | tail -10
fi
check "the results file says ok for node3 and node5" python3 - "$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert r['status'] == 'ok', r
for n in ('node3', 'node5'):
    assert r['nodes'][n]['status'] == 'ok' and r['nodes'][n]['phase'] == 'done', r['nodes'][n]
    assert set(r['nodes'][n]['phases_done_at_seconds']) == {'power_off', 'reset_root', 'power_on', 'boot', 'provision', 'health'}
PY
check "each reset of a network-boot root took under 10 s (a new layer, not a copy)" python3 - "$results" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for n in ('node3', 'node5'):
    t = r['nodes'][n]['phases_done_at_seconds']
    assert t['reset_root'] - t['power_off'] < 10, (n, t)
    print('    %s: reset %.1f s' % (n, t['reset_root'] - t['power_off']))
PY
# Changed since unpacked: in root/ anything (the inode change time), in boot/ the content (each
# node's boot files are hard links to these, and a new link changes a file's inode time).
check "no file of the shared copies changed since they were unpacked" bash -c "
    for c in '$SRV'/.images/*/*/; do
        [ -z \"\$(find \"\$c/root\" -cnewer \"\$c/.turingpi-netboot-image\" -print -quit)\" ] &&
        [ -z \"\$(find \"\$c/boot\" -newer \"\$c/.turingpi-netboot-image\" -print -quit)\" ] || exit 1
    done"
check "the power supervisor saw node3 and node5 power off and on" \
    bash -c "tail -n +$((rmark + 1)) '$LAB/run/supervisor.log' | grep -c 'slot [35] powered off' | grep -qx 2"
for s in 2 4 6 7; do
    check "node$s kept running (same machine)" [ "$(machine_pid "$s")" = "${pid_before[$s]}" ]
done
out=$(on_nodes turingpi_nodes 'sh -c "cat /var/tmp/e2e-marker 2>/dev/null || echo fresh"')
for s in 2 4 6 7; do check "node$s kept its root" [ "$(out_of "$out" "node$s")" = "node$s" ]; done
for s in 3 5; do check "node$s has a fresh root" [ "$(out_of "$out" "node$s")" = fresh ]; done
keys_after=$(on_nodes node3,node5 'cat /etc/ssh/ssh_host_ed25519_key.pub')
for s in 3 5; do
    check "node$s has new SSH host keys" \
        [ "$(out_of "$keys_before" "node$s")" != "$(out_of "$keys_after" "node$s")" ]
    check "the controller knows node$s by its new key only" bash -c "
        [ \$(grep -c '^10.77.0.1$s ssh-ed25519 ' '$KNOWN_HOSTS') = 1 ] &&
        grep -q '^10.77.0.1$s '\"\$(echo '$(out_of "$keys_after" "node$s")' | cut -d' ' -f1,2)\" '$KNOWN_HOSTS'"
done

echo "--- reprovision refuses an unknown node and touches nothing"
reg=$(power_reg)
if playbook reprovision-refused turingpi.cluster.reprovision -e reprovision_nodes=node3,node9; then
    fail "reprovision of node9 should fail"
else
    check "the refusal names node9" grep -q 'Not in the group turingpi_nodes: node9' "$TP_TMP/e2e-reprovision-refused.log"
fi
check "the power register is unchanged" [ "$(power_reg)" = "$reg" ]

# The census again: the running nodes read over SSH, not power-cycled; then, every node off, two
# modules that changed places are flagged (tests/e2e/census.sh).
census_running
ansible -i "$INV" turingpi_master -m turingpi.cluster.power \
    -a '{"bus": "virtual:/var/lib/turingpi/board/board.json", "node": ["workers"], "state": "off"}' \
    >"$TP_TMP/e2e-census-power.log" 2>&1 || fail "every node switched off for the swap"
for _try in $(seq 30); do [ "$(running)" = "node1 " ] && break; sleep 1; done
census_swap 4 5

cleanup
tp_checks_done 80-e2e "$before"
