# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Power in waves: the order nodes get power in (eMMC/SD first, then network boot; by master and
slot; only what is declared on, or the slots asked for) and one write per master per wave, on
the plan the board_plan filter makes of a real inventory."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import textwrap

import pytest

from ansible.errors import AnsibleFilterError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

from ansible_collections.turingpi.cluster.plugins.filter.board_plan import board_plan
from ansible_collections.turingpi.cluster.plugins.filter.power_wave_writes import power_wave_writes
from ansible_collections.turingpi.cluster.plugins.filter.power_waves import power_waves

TWO_BOARDS = '''
turingpi_master:
  hosts:
    master-b: {turingpi_slot: 1, turingpi_bus: 'virtual:/b.json'}
    master-a: {turingpi_slot: 1, turingpi_bus: 'virtual:/a.json'}
turingpi_nodes:
  hosts:
    b7: {turingpi_slot: 7, turingpi_master: master-b, turingpi_boot: netboot, turingpi_serial: '1a2b3c4d'}
    b2: {turingpi_slot: 2, turingpi_master: master-b}
    a5: {turingpi_slot: 5, turingpi_master: master-a, turingpi_boot: netboot, turingpi_serial: '1a2b3c4e'}
    a3: {turingpi_slot: 3, turingpi_master: master-a, turingpi_boot: sd, turingpi_power: 'off'}
    a4: {turingpi_slot: 4, turingpi_master: master-a, turingpi_boot: sd}
    a2: {turingpi_slot: 2, turingpi_master: master-a, turingpi_boot: netboot, turingpi_serial: '1a2b3c4f'}
'''


@pytest.fixture
def plan(tmp_path):
    path = tmp_path / 'hosts.yml'
    path.write_text(textwrap.dedent(TWO_BOARDS))
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=inventory)
    hostvars = dict((name, variables.get_vars(host=inventory.get_host(name))) for name in inventory.hosts)
    groups = dict((name, [h.name for h in group.get_hosts()]) for name, group in inventory.groups.items())
    return board_plan(hostvars, groups)


def test_declared_on_local_storage_first_then_network_boot(plan):
    # a3 is declared off; local: master-a's a4, master-b's b2; network boot: a2, a5, then b7
    assert power_waves(plan) == ['a4', 'b2', 'a2', 'a5', 'b7']


@pytest.mark.parametrize('slots', ['2', 2, [2], ['node2'], ' 2 , ', ['1', '2']])
def test_slots_asked_for_on_every_master(plan, slots):
    # slot 2 of both boards, the local one first; slot 1 (the master) is never a wave's
    assert power_waves(plan, slots) == ['b2', 'a2']


def test_missing_slots_named(plan):
    with pytest.raises(AnsibleFilterError, match="slot 3, 4, 5 of master 'master-b' has no node") as info:
        power_waves(plan, '2,3,4,5')
    assert 'turingpi_power_wave_size=0' in str(info.value)
    with pytest.raises(AnsibleFilterError, match="slot 6, 7 of master 'master-a' has no node"):
        power_waves(plan, 'workers')
    with pytest.raises(AnsibleFilterError, match='node 9 does not exist: the Turing Pi V1 has slots 1 to 7'):
        power_waves(plan, '9')


def test_a_single_board_and_slots_declared_off(tmp_path):
    path = tmp_path / 'hosts.yml'
    path.write_text(textwrap.dedent('''
        turingpi_master:
          hosts:
            m: {turingpi_slot: 1}
        turingpi_nodes:
          hosts:
            n3: {turingpi_slot: 3, turingpi_power: 'off'}
            n2: {turingpi_slot: 2}
        '''))
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[str(path)])
    variables = VariableManager(loader=loader, inventory=inventory)
    hostvars = dict((name, variables.get_vars(host=inventory.get_host(name))) for name in inventory.hosts)
    groups = dict((name, [h.name for h in group.get_hosts()]) for name, group in inventory.groups.items())
    single = board_plan(hostvars, groups)
    assert power_waves(single) == ['n2']
    # asked for, whatever it declares
    assert power_waves(single, '3,2') == ['n2', 'n3']
    with pytest.raises(AnsibleFilterError, match="slot 4, 5, 6, 7 of master 'm' has no node"):
        power_waves(single, 'all')


def test_one_write_per_master_per_wave(plan):
    assert power_wave_writes(plan, ['a4', 'b2', 'a2']) == [
        {'master': 'master-a', 'nodes': {4: 'on', 2: 'on'}},
        {'master': 'master-b', 'nodes': {2: 'on'}},
    ]
    assert power_wave_writes(plan, ['b7']) == [{'master': 'master-b', 'nodes': {7: 'on'}}]
    assert power_wave_writes(plan, []) == []


def test_bad_input(plan):
    with pytest.raises(AnsibleFilterError, match="'nope' is not a node of the plan"):
        power_wave_writes(plan, ['nope'])
    with pytest.raises(AnsibleFilterError, match='use it on the plan'):
        power_waves({'hostvars': {}})
    with pytest.raises(AnsibleFilterError, match='use it on the plan'):
        power_wave_writes([], ['a2'])
