#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# ansible-test units on each supported controller. No test collected is a failure.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
. "$TP_ROOT/tests/lib/ansible-test.sh"
for pair in $TP_CONTROLLERS; do
    core=${pair%%:*} py=${pair##*:}
    tree=$(tp_ansible_test_tree "units-$core")
    # ansible-test passes no environment through: the netboot_root tests build their roots from the
    # real first-boot code in shared/realworld (beside the collection), found through this file.
    mkdir -p "$tree/tests/output"
    realpath "$TP_ROOT/../shared/realworld" > "$tree/tests/output/realworld-path"
    echo "--- ansible-test units, ansible-core $core, Python $py"
    rc=0
    (cd "$tree" && PATH=$TP_TMP/venv-$core/bin:$PATH ansible-test units --python "$py" --color no --requirements) || rc=$?
    if [ $rc -eq 5 ]; then echo "no unit tests were collected: that is a failure"; exit 1; fi
    [ $rc -eq 0 ] || exit $rc
done
