#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Build the collection artifact and check it installs and its docs render.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
out=$TP_TMP/build; rm -rf "$out"; mkdir -p "$out"
ansible-galaxy collection build "$TP_ROOT" --output-path "$out" --force
tarball=$(ls "$out"/turingpi-cluster-*.tar.gz)
ansible-galaxy collection install "$tarball" -p "$out/installed" --force >/dev/null
for plugin in $(cd "$TP_ROOT/plugins/modules" && ls *.py | sed 's/\.py$//'); do
    ANSIBLE_COLLECTIONS_PATH=$out/installed ansible-doc -t module "turingpi.cluster.$plugin" >/dev/null
done
if [ -d "$TP_ROOT/plugins/inventory" ]; then
    for plugin in $(cd "$TP_ROOT/plugins/inventory" && ls *.py | grep -v __init__ | sed 's/\.py$//'); do
        ANSIBLE_COLLECTIONS_PATH=$out/installed ansible-doc -t inventory "turingpi.cluster.$plugin" >/dev/null
    done
fi
for role in $(ls "$TP_ROOT/roles" 2>/dev/null); do
    ANSIBLE_COLLECTIONS_PATH=$out/installed ansible-doc -t role "turingpi.cluster.$role" >/dev/null
done
echo "built and documented: $(basename "$tarball")"
