#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# yamllint, ruff and ansible-lint (production profile) over the whole collection.
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
cd "$TP_ROOT"
echo "--- yamllint"; yamllint -s .
echo "--- ruff"; ruff check --quiet .
echo "--- antsibull-changelog lint"; antsibull-changelog lint
echo "--- ansible-lint (production profile)"
ANSIBLE_COLLECTIONS_PATH=$TP_COLLECTIONS ansible-lint --profile production --offline -q
