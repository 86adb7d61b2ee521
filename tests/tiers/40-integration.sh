#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Integration targets for the CMB modules on the virtual board, through ansible-test, with
# each supported controller.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
. "$TP_ROOT/tests/lib/ansible-test.sh"
targets="power cmb_info rtc user_memory virtual_board"
for pair in $TP_CONTROLLERS; do
    core=${pair%%:*} py=${pair##*:}
    tree=$(tp_ansible_test_tree "integration-$core")
    echo "--- ansible-core $core, Python $py: $targets"
    # shellcheck disable=SC2086  # $targets: one word per target
    (cd "$tree" && PATH=$TP_TMP/venv-$core/bin:$PATH ansible-test integration --local --python "$py" $targets)
done
