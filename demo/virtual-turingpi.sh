#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# The collection's main job with no hardware: installs the collection into a fresh virtual
# environment, builds the virtual Turing Pi (tests/lab/lab board-up: the master and six
# network-boot modules as systemd-nspawn machines, the virtual board as the bus, a power
# supervisor that boots a module's machine when its power bit goes on), and runs
# playbooks/bootstrap.yml on it from every node off to six provisioned nodes.
#
#   sudo demo/virtual-turingpi.sh          # tears the lab down at the end
#   sudo demo/virtual-turingpi.sh --keep   # leaves it running; tests/lab/lab down removes it
#   sudo demo/virtual-turingpi.sh --image ~/Downloads/my-os.img     # the nodes run your image
#   sudo demo/virtual-turingpi.sh --image 6,7=ubuntu-24.04          # slots 6 and 7 run another
# Images: a file of your own, or a family of tests/lab/os-image.sh (built from Debian packages
# with Raspberry Pi OS's real first-boot code: docs/os-images.md); default raspios-bookworm.
#
# Needs root (network namespaces, systemd-nspawn) and installs the Debian packages of
# tests/packages/lab.txt when they are missing. The first run builds the lab's Debian root with
# debootstrap (a few minutes); later runs reuse it. docs/virtual-turingpi.md explains the lab.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
keep=0 images=()
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) keep=1; shift ;;
        --image) [ $# -ge 2 ] || { echo "virtual-turingpi: --image needs [SLOTS=]IMAGE"; exit 2; }
                 images+=(--image "$2"); shift 2 ;;
        *) echo "usage: demo/virtual-turingpi.sh [--keep] [--image [SLOTS=]IMAGE]..."; exit 2 ;;
    esac
done
[ "$(id -u)" = 0 ] || { echo "virtual-turingpi: run as root (network namespaces, systemd-nspawn)"; exit 1; }
. "$root/tests/lib/env.sh"
venv=${TP_DEMO_VENV:-$TP_TMP/demo-venv}

# The lab, and the OS image its nodes run (Raspberry Pi OS Bookworm built by tests/lab/os-image.sh).
pkgs=$(sed 's/#.*//' "$root/tests/packages/lab.txt" "$root/tests/packages/os-images.txt" | sort -u)
missing=$(for p in $pkgs; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"; done)
if [ -n "$missing" ]; then
    echo "== Debian packages for the lab:" "$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

cleanup() { if [ "$keep" = 0 ]; then "$root/tests/lab/lab" down >/dev/null 2>&1 || true; fi; }
trap cleanup EXIT
. "$root/demo/install.sh"
tp_demo_install "$venv"
# The lab and the playbooks use the installed collection, not the working tree.
export TP_COLLECTIONS=$venv/collections TP_LAB_PYTHON=$venv/bin/python
export ANSIBLE_COLLECTIONS_PATH=$venv/collections PATH=$venv/bin:$PATH
# Six nodes provisioned in parallel; pipelining saves a round trip per task.
export ANSIBLE_FORKS=10 ANSIBLE_PIPELINING=1

echo "== the virtual Turing Pi, every node off"
"$root/tests/lab/lab" down >/dev/null 2>&1 || true
"$root/tests/lab/lab" board-up 6 "${images[@]}"
inventory=$TP_TMP/lab/cluster/board.turingpi.yml
echo "== the board file the inventory plugin reads: $inventory"
sed -n '/^boards:/,$p' "$inventory"

echo "== bootstrap: master (cmb, router, netboot), power through the bus, six nodes provisioned"
start=$SECONDS
ansible-playbook -i "$inventory" turingpi.cluster.bootstrap
echo "== bootstrap took $((SECONDS - start)) s; the board now:"
ansible-playbook -i "$inventory" turingpi.cluster.info | sed -n '/msg/,/^$/p'
"$root/tests/lab/lab" status
echo "== power log of the virtual board (the supervisor that plays the board's power rail):"
cat "$TP_TMP/lab/run/supervisor.log"
if [ "$keep" = 1 ]; then
    echo "== the lab keeps running: ansible -i $inventory turingpi_nodes -m ping; tests/lab/lab down removes it"
fi
