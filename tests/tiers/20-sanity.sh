#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# ansible-test sanity with empty ignore files, on each supported controller.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
. "$TP_ROOT/tests/lib/ansible-test.sh"
for f in "$TP_ROOT"/tests/sanity/ignore-*.txt; do
    [ ! -s "$f" ] || { echo "$f is not empty: fix the code instead of ignoring it"; exit 1; }
done
for pair in $TP_CONTROLLERS; do
    core=${pair%%:*} py=${pair##*:}
    tree=$(tp_ansible_test_tree "sanity-$core")
    echo "--- ansible-test sanity, ansible-core $core, Python $py"
    (cd "$tree" && PATH=$TP_TMP/venv-$core/bin:$PATH ansible-test sanity --python "$py" --color no)
done
