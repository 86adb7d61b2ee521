# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Sourced by the demo scripts: a fresh virtual environment with ansible-core and the collection
# built from this tree and installed into it, as a user would install it.
#   tp_demo_install VENV        # then VENV/bin/ansible-playbook, collections in VENV/collections
tp_demo_install() {
    local venv=$1 root build
    root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    echo "== fresh virtual environment in $venv"
    rm -rf "$venv"
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check 'ansible-core>=2.17' 2>&1 | grep -v '^WARNING: Location' || true
    echo "== build and install turingpi.cluster"
    build=$(mktemp -d)
    "$venv/bin/ansible-galaxy" collection build "$root" --output-path "$build" >/dev/null
    ANSIBLE_COLLECTIONS_PATH=$venv/collections "$venv/bin/ansible-galaxy" collection install --force \
        "$build"/turingpi-cluster-*.tar.gz -p "$venv/collections" >/dev/null
    rm -rf "$build"
}
