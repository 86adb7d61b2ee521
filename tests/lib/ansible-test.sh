# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Sourced by tiers that run ansible-test: it needs the collection laid out as
# ansible_collections/turingpi/cluster and refuses a symlink, so copy the tree there.
# Usage: tp_ansible_test_tree NAME  -> prints the directory to cd into.
tp_ansible_test_tree() {
    local dest=$TP_TMP/ansible-test-$1/ansible_collections/turingpi/cluster
    mkdir -p "$dest"
    rsync -a --delete --exclude .tmp --exclude .git --exclude 'tests/output' "$TP_ROOT/" "$dest/"
    # ansible-test asks git which files belong to the collection.
    (cd "$dest" && { [ -d .git ] || git init -q; } && git add -A >/dev/null 2>&1)
    echo "$dest"
}
