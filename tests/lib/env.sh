# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Sourced by tests/run, tests/setup and every tier: where things live.
TP_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TP_TMP=${TP_TMP:-$TP_ROOT/.tmp}
# One virtual environment per supported controller (tests/requirements-<core>.txt): every
# ansible-core that meta/runtime.yml's requires_ansible claims, 2.19 on Python 3.11, 2.20 and
# 2.21 on Python 3.12. Set TP_CONTROLLERS to run the tiers on fewer of them.
TP_CONTROLLERS=${TP_CONTROLLERS:-"2.19:3.11 2.20:3.12 2.21:3.12"}
TP_VENV_219=$TP_TMP/venv-2.19
TP_VENV_221=$TP_TMP/venv-2.21
# The build tier's tools (tests/requirements-build.txt), apart from the controllers.
TP_VENV_BUILD=$TP_TMP/venv-build
# ANSIBLE_COLLECTIONS_PATH root holding ansible_collections/turingpi/cluster -> the repository.
TP_COLLECTIONS=${TP_COLLECTIONS:-$TP_TMP/collections}
export TP_ROOT TP_TMP TP_CONTROLLERS TP_VENV_219 TP_VENV_221 TP_VENV_BUILD TP_COLLECTIONS
export PATH=$TP_VENV_219/bin:$PATH
export ANSIBLE_COLLECTIONS_PATH=$TP_COLLECTIONS
export ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0 PIP_DISABLE_PIP_VERSION_CHECK=1
export ANSIBLE_LOCALHOST_WARNING=false ANSIBLE_INVENTORY_UNPARSED_WARNING=false
