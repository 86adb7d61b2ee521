#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Build the collection artifact and check it installs and its docs render.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
out=$TP_TMP/build; rm -rf "$out"; mkdir -p "$out"
ansible-galaxy collection build "$TP_ROOT" --output-path "$out" --force
tarballs=("$out"/turingpi-cluster-*.tar.gz)
tarball=${tarballs[0]}
ansible-galaxy collection install "$tarball" -p "$out/installed" --force >/dev/null
for path in "$TP_ROOT"/plugins/modules/*.py; do
    plugin=$(basename "$path" .py)
    ANSIBLE_COLLECTIONS_PATH=$out/installed ansible-doc -t module "turingpi.cluster.$plugin" >/dev/null
done
if [ -d "$TP_ROOT/plugins/inventory" ]; then
    for path in "$TP_ROOT"/plugins/inventory/*.py; do
        plugin=$(basename "$path" .py)
        [ "$plugin" = __init__ ] && continue
        ANSIBLE_COLLECTIONS_PATH=$out/installed ansible-doc -t inventory "turingpi.cluster.$plugin" >/dev/null
    done
fi
for path in "$TP_ROOT"/roles/*/; do
    role=$(basename "$path")
    ANSIBLE_COLLECTIONS_PATH=$out/installed ansible-doc -t role "turingpi.cluster.$role" >/dev/null
done
echo "built and documented: $(basename "$tarball")"
