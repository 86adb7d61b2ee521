# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# The census on the virtual Turing Pi (playbooks/census.yml), as parts of the e2e flow. Sourced
# by tests/tiers/80-e2e.sh (or tests/e2e/dev-census.sh) after tests/lib/cluster-env.sh and
# tests/lib/checks.sh, with the lab up (tests/lab/lab board-up N); each check prints ok:/FAIL:.
#
#   census_fresh   right after board-up, before bootstrap: every node off, the master not set up.
#                  From a board file that lists only the master (the lab's file without its node
#                  slots), the census must find every module of the lab's module table (lab
#                  modules) in its slot with its MAC and serial, write a board file the inventory
#                  plugin reads, leave the power register and dnsmasq as found. Its check mode
#                  says which slots it would power and powers none. Leaves the lab as found (every
#                  node off; the master now routes the cluster subnet, as bootstrap.yml does
#                  first) and the census' board file in $CENSUS_FILE (hostnames node2..; the
#                  image of each slot is the file's default): bootstrap can run from it.
#   census_running after bootstrap from $CENSUS_FILE, its nodes running: a census from that file
#                  reads the running nodes over SSH instead of power-cycling them (their machines
#                  keep running, the same processes), reports their MACs, flags nothing and leaves
#                  the file as it is (no change). Leaves the lab as found.
#   census_swap A B  every node off (lab swap restarts the power supervisor): the modules of slots
#                  A and B change places (lab swap); a census from the lab's own board file must
#                  flag both as moved and write them in their new slots; the power register as
#                  before; dnsmasq as before (census_router=false: the router as it is). Leaves
#                  them swapped back, the lab as found.
# Logs: $TP_TMP/e2e-census-*.log.

CENSUS_FILE=$TP_TMP/lab/cluster/census.turingpi.yml
# The input of census_fresh: the lab's board file with only slot 1. In the lab's cluster directory,
# so that its group_vars (the master's netboot_images: census_bootcode's default) apply.
CENSUS_MASTER_ONLY=$TP_TMP/lab/cluster/master-only.turingpi.yml
census__board=$TP_TMP/lab/run/board/board.json

census__power() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["ds4520"]["shadow"]["242"])' "$census__board"; }
census__on_master() { ssh -q -i "$TP_TMP/lab/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no \
    -o UserKnownHostsFile=/dev/null root@172.31.77.1 "$@"; }
# The master's dnsmasq: its snippets (names and contents) and whether it runs.
census__dnsmasq() { census__on_master 'cd /etc/dnsmasq.d && ls && cat ./* | md5sum; systemctl is-active dnsmasq' 2>/dev/null; }
census__playbook() {  # log name, ansible-playbook args...
    local log=$TP_TMP/e2e-census-$1.log start=$SECONDS rc; shift
    ansible-playbook "$@" >"$log" 2>&1
    rc=$?
    echo "    ($((SECONDS - start)) s, log $log)"
    [ "$rc" = 0 ] || grep -E 'fatal:|FAILED!|ERROR' "$log" | tail -10
    return "$rc"
}
# A question about the census' report (census_report=FILE: JSON), as a Python expression over r.
census__report_says() {  # FILE EXPRESSION
    python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); sys.exit(0 if eval(sys.argv[2]) else 1)' "$1" "$2"
}
# Whether FILE (a board file) lists, per "SLOT MAC SERIAL" line of stdin, that module in that slot
# and no other node slot; as ansible-inventory reads it (the inventory plugin).
census__file_has() {  # FILE, the table on stdin
    local file=$1 json
    json=$(ansible-inventory -i "$file" --list 2>"$TP_TMP/e2e-census-inventory.log") || { cat "$TP_TMP/e2e-census-inventory.log"; return 1; }
    python3 -c '
import json, sys
inventory, table = json.loads(sys.argv[1]), sys.stdin.read().split("\n")
want = dict((int(s), (m, n)) for s, m, n in (line.split() for line in table if line.strip()))
hosts = inventory["_meta"]["hostvars"]
plain = lambda v: v.get("__ansible_unsafe") if isinstance(v, dict) else v  # ansible-inventory marks values unsafe
got = dict((v["turingpi_slot"], (plain(v["turingpi_mac"]), plain(v["turingpi_serial"]))) for v in hosts.values() if v["turingpi_slot"] != 1)
if got != want:
    print("    the file lists %s, the lab holds %s" % (sorted(got.items()), sorted(want.items())))
    sys.exit(1)
' "$json"
}

census_fresh() {
    echo "--- census of a board whose file lists only the master"
    python3 - "$TP_CLUSTER_INVENTORY" "$CENSUS_MASTER_ONLY" <<'PY'
import sys, yaml
data = yaml.safe_load(open(sys.argv[1]))
for board in data['boards']:
    board['slots'] = {1: board['slots'][1]}
open(sys.argv[2], 'w').write('# The lab board file without its nodes (tests/e2e/census.sh).\n' + yaml.safe_dump(data, sort_keys=False))
PY
    local power log=$TP_TMP/e2e-census-fresh.log table report=$TP_TMP/e2e-census-fresh.json
    power=$(census__power)
    table=$(tests/lab/lab modules)
    echo "    the lab's modules: $(echo "$table" | tr '\n' ';')"
    if census__playbook check -i "$CENSUS_MASTER_ONLY" turingpi.cluster.census --check; then ok "the census' check mode ran"; else fail "the census' check mode ran"; fi
    check "check mode says it would power the slots that are off" \
        grep -q "would power slots $(seq -s ', ' 2 7) one at a time" "$TP_TMP/e2e-census-check.log"
    check "check mode powered nothing" [ "$(census__power)" = "$power" ]
    rm -f "$CENSUS_FILE" "$report"
    if census__playbook fresh -i "$CENSUS_MASTER_ONLY" turingpi.cluster.census \
            -e "census_dest=$CENSUS_FILE" -e 'census_hostname_format=node{slot}' -e "census_report=$report"; then
        ok "the census ran"
    else
        fail "the census ran"; tail -30 "$TP_TMP/lab/run/supervisor.log"; return 1
    fi
    grep -E '^ *"slot [0-9]' "$log" | sed 's/^ */    /' || true
    check "the power register is as before ($power)" [ "$(census__power)" = "$power" ]
    check "no node machine runs" [ -z "$(tests/lab/lab status | awk '/^node[2-7] running/')" ]
    check "every module in its slot, with its MAC and serial, in a board file the inventory plugin reads" \
        census__file_has "$CENSUS_FILE" <<<"$table"
    # The master was not set up: the census ran the router role first. Its snippet must be gone.
    check "the census' dnsmasq snippet is gone and dnsmasq runs" \
        census__on_master 'test ! -e /etc/dnsmasq.d/turingpi-census.conf && systemctl is-active -q dnsmasq'
    check "the census flagged nothing but the empty slots" census__report_says "$report" \
        "all('holds no module' in f for f in r['flags']) and r['moved'] == []"
    check "the slots without a module are empty (status register 0xF8)" census__report_says "$report" \
        "sorted(r['empty']) == sorted(set(range(2, 8)) - set(int(l.split()[0]) for l in '''$table'''.splitlines()))"
    check "each module's serial was seen in seconds" census__report_says "$report" \
        "all(s['seconds'] < 20 for s in r['slots'] if s['state'] == 'netboot')"
}

census_running() {
    local power pids report=$TP_TMP/e2e-census-running.json out=$TP_TMP/lab/cluster/running.turingpi.yml
    echo "--- census with the nodes running"
    power=$(census__power)
    pids=$(cat "$TP_TMP"/lab/run/node[2-7].pid 2>/dev/null | sort | tr '\n' ' ')
    rm -f "$report" "$out"
    if census__playbook running -i "$CENSUS_FILE" turingpi.cluster.census -e census_router=false \
            -e "census_dest=$out" -e "census_report=$report"; then
        ok "the census ran"
    else
        fail "the census ran"; return 1
    fi
    check "the running nodes were not power-cycled (the same machines)" \
        [ "$(cat "$TP_TMP"/lab/run/node[2-7].pid 2>/dev/null | sort | tr '\n' ' ')" = "$pids" ]
    check "the power register is as before ($power)" [ "$(census__power)" = "$power" ]
    check "they are reported running, with their MACs read over SSH" census__report_says "$report" \
        "all(s['state'] == 'running' and s['mac'] for s in r['slots'] if s['slot'] in (2, 3, 4, 5, 6, 7) and s['was_on'])"
    check "nothing is flagged and the board file needs no change" census__report_says "$report" "r['flags'] == []"
    check "the file written says the same" census__file_has "$out" < <(tests/lab/lab modules)
}

census_swap() {  # slot A, slot B
    local a=$1 b=$2 power dnsmasq table out=$TP_TMP/lab/cluster/swapped.turingpi.yml report=$TP_TMP/e2e-census-swap.json
    echo "--- census after the modules of slots $a and $b changed places"
    power=$(census__power)
    dnsmasq=$(census__dnsmasq)
    tests/lab/lab swap "$a" "$b" >/dev/null || { fail "lab swap $a $b"; return 1; }
    table=$(tests/lab/lab modules)
    rm -f "$out" "$report"
    # The router as it is (bootstrap set it up, or census_fresh did for another node list): only the
    # census' own snippet may come and go.
    if census__playbook swap -i "$TP_CLUSTER_INVENTORY" turingpi.cluster.census -e census_router=false \
            -e "census_dest=$out" -e "census_report=$report"; then
        ok "the census ran"
    else
        fail "the census ran"; return 1
    fi
    check "the census flagged the module of slot $a as moved to slot $b" census__report_says "$report" \
        "any(m['from'] == $a and m['to'] == $b for m in r['moved']) and any('is now in slot $b' in f for f in r['flags'])"
    check "the census flagged the module of slot $b as moved to slot $a" census__report_says "$report" \
        "any(m['from'] == $b and m['to'] == $a for m in r['moved']) and any('is now in slot $a' in f for f in r['flags'])"
    check "the new board file has them in their new slots" census__file_has "$out" <<<"$table"
    check "the power register is as before ($power)" [ "$(census__power)" = "$power" ]
    local after; after=$(census__dnsmasq)
    if [ "$after" = "$dnsmasq" ]; then ok "dnsmasq is as before (its snippets, running)"; else
        fail "dnsmasq is as before (its snippets, running)"
        echo "    before: $(echo "$dnsmasq" | tr '\n' ' '); after: $(echo "$after" | tr '\n' ' ')"
    fi
    tests/lab/lab swap "$a" "$b" >/dev/null || fail "lab swap $a $b back"
}
