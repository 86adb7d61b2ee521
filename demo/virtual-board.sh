#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Installs the collection into a fresh virtual environment and runs its CMB playbooks on the
# built-in virtual Turing Pi board: no hardware, no root needed.
#
#   demo/virtual-board.sh            # venv in .tmp/demo-venv, board in /tmp/turingpi-virtual-board.json
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
venv=${TP_DEMO_VENV:-$root/.tmp/demo-venv}
. "$root/demo/install.sh"
tp_demo_install "$venv"
export ANSIBLE_COLLECTIONS_PATH=$venv/collections ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_NOCOLOR=${ANSIBLE_NOCOLOR:-1}

inventory=$root/demo/inventory.yml
# Only turingpi.cluster.virtual_board creates a board: a fresh one from the factory.
"$venv/bin/ansible" localhost -m turingpi.cluster.virtual_board -a 'path=/tmp/turingpi-virtual-board.json state=reset' >/dev/null
echo "== the board fresh from the factory"
"$venv/bin/ansible-playbook" -i "$inventory" turingpi.cluster.info
echo "== apply the power state declared in $inventory"
"$venv/bin/ansible-playbook" -i "$inventory" turingpi.cluster.power
echo "== power-cycle node 5 ad hoc"
"$venv/bin/ansible-playbook" -i "$inventory" turingpi.cluster.power -e node=5 -e state=restarted
echo "== the board now"
"$venv/bin/ansible-playbook" -i "$inventory" turingpi.cluster.info
