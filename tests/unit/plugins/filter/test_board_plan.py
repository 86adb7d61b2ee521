# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The inventory contract as the playbooks read it: the board_plan filter on real inventories
(a board file through the plugin, the same board written as a static inventory, two masters
told apart only by turingpi_master), the exact errors, and the netboot settings read from the
role's own defaults."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import textwrap

import pytest
import yaml

from ansible.errors import AnsibleFilterError
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.vars.manager import VariableManager

from ansible_collections.turingpi.cluster.plugins.filter.board_plan import board_plan
from ansible_collections.turingpi.cluster.plugins.filter.node_names import _node_names
from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import BoardError, node_names, plan_cluster
from ansible_collections.turingpi.cluster.plugins.test.valid_hostname import TestModule

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..')
EXAMPLES_DIR = os.path.join(ROOT, 'examples', 'inventory')


def inventory_plan(path):
    """The plan as a play sees it: hostvars and groups of a real inventory."""
    loader = DataLoader()
    inventory = InventoryManager(loader=loader, sources=[path])
    variables = VariableManager(loader=loader, inventory=inventory)
    hostvars = dict((name, variables.get_vars(host=inventory.get_host(name))) for name in inventory.hosts)
    groups = dict((name, [h.name for h in group.get_hosts()]) for name, group in inventory.groups.items())
    return board_plan(hostvars, groups)


def static(tmp_path, text):
    path = tmp_path / 'hosts.yml'
    path.write_text(textwrap.dedent(text))
    return inventory_plan(str(path))


TWO_MASTERS = '''
turingpi_master:
  hosts:
    master-a: {turingpi_slot: 1, turingpi_bus: 'virtual:/a.json'}
    master-b: {turingpi_slot: 1, turingpi_bus: 'virtual:/b.json', turingpi_power_persist: true}
turingpi_nodes:
  hosts:
    a2: {turingpi_slot: 2, turingpi_master: master-a, turingpi_power: 'off'}
    a3: {turingpi_slot: 3, turingpi_master: master-a}
    b2: {turingpi_slot: 2, turingpi_master: master-b, turingpi_boot: netboot, turingpi_serial: '1A2B3C4D'}
    b5: {turingpi_slot: 5, turingpi_master: master-b, turingpi_power: false}
'''


def test_two_masters_by_turingpi_master_without_board(tmp_path):
    plan = static(tmp_path, TWO_MASTERS)
    a, b = plan['masters']['master-a'], plan['masters']['master-b']
    assert [n['name'] for n in a['nodes']] == ['a2', 'a3']
    assert [n['name'] for n in b['nodes']] == ['b2', 'b5']
    assert a['declared_power'] == {2: 'off', 3: 'on'}
    assert b['declared_power'] == {2: 'on', 5: 'off'}
    assert b['netboot_power'] == {2: 'on'} and b['local_power'] == {5: 'off'}
    assert (a['bus'], a['persist'], b['bus'], b['persist']) == ('virtual:/a.json', False, 'virtual:/b.json', True)
    assert plan['nodes']['b2']['serial'] == '1a2b3c4d' and plan['nodes']['b2']['bus'] == 'virtual:/b.json'
    assert plan['nodes']['b2']['module'] is None and a['module'] is None
    assert b['netboot_nodes'] == [{'name': 'b2', 'serial': '1a2b3c4d', 'image': None, 'module': None}]


def test_same_board_without_turingpi_master(tmp_path):
    plan = static(tmp_path, '''
    turingpi_master:
      hosts:
        ma: {turingpi_board: a}
        mb: {turingpi_board: b}
    turingpi_nodes:
      hosts:
        n2: {turingpi_slot: 2, turingpi_board: a}
        n3: {turingpi_slot: 3, turingpi_board: b}
    ''')
    assert plan['nodes']['n2']['master'] == 'ma' and plan['nodes']['n3']['master'] == 'mb'


def test_one_master_and_nodes_without_board_are_one_board(tmp_path):
    plan = inventory_plan(os.path.join(ROOT, 'demo', 'inventory.yml'))
    master = plan['masters']['tp-master']
    assert master['declared_power'] == {1: 'on', 2: 'on', 3: 'off', 4: 'on', 5: 'on', 6: 'off', 7: 'on'}
    assert master['bus'] == 'virtual:/tmp/turingpi-virtual-board.json'


def test_board_file_and_static_example_give_the_same_plan():
    from_plugin = inventory_plan(os.path.join(EXAMPLES_DIR, 'board.turingpi.yml'))
    from_static = inventory_plan(os.path.join(EXAMPLES_DIR, 'static.yml'))
    assert from_plugin == from_static
    master = from_plugin['masters']['tp-master']
    assert master['router_nodes'] == [
        {'name': 'tp-node2', 'mac': 'dc:a6:32:00:00:02', 'ip': '10.77.0.12'},
        {'name': 'tp-node3', 'mac': 'dc:a6:32:00:00:03', 'ip': '10.77.0.13'},
        {'name': 'tp-node4', 'mac': 'dc:a6:32:00:00:04', 'ip': '10.77.0.14'},
    ]
    assert master['netboot_nodes'] == [{'name': 'tp-node2', 'serial': '1a2b3c4d', 'image': 'raspios-lite-arm64', 'module': 'cm3plus-lite'}]
    assert master['module'] == 'cm3plus'
    assert [(n['name'], n['module'], n['boot']) for n in master['nodes']] == [
        ('tp-node2', 'cm3plus-lite', 'netboot'), ('tp-node3', 'cm3plus', 'emmc'), ('tp-node4', 'cm1', 'emmc')]
    assert (master['router'], master['subnet'], master['prefix']) == ('10.77.0.1', '10.77.0.0/24', 24)
    assert master['names'] == ['master', 'tp-master']


def test_address_rule_when_the_inventory_gives_none(tmp_path):
    plan = static(tmp_path, '''
    turingpi_master:
      hosts:
        m: {turingpi_subnet: 10.9.0.0/24, turingpi_node_offset: 100}
    turingpi_nodes:
      hosts:
        n7: {turingpi_slot: 7}
    ''')
    assert plan['nodes']['n7']['address'] == '10.9.0.107'
    assert plan['masters']['m']['router'] == '10.9.0.1'


def test_netboot_settings_master_then_contract_then_role_defaults(tmp_path):
    with open(os.path.join(ROOT, 'roles', 'netboot', 'defaults', 'main.yml')) as stream:
        defaults = yaml.safe_load(stream)
    plan = static(tmp_path, '''
    turingpi_master:
      hosts:
        m: {turingpi_router: 10.8.0.254, turingpi_subnet: 10.8.0.0/24, netboot_nfs_root: /data/nfs}
    turingpi_nodes:
      hosts:
        n2: {turingpi_slot: 2, turingpi_boot: netboot, turingpi_serial: '0000aaaa'}
    ''')
    settings = plan['masters']['m']['netboot']
    assert settings['netboot_nfs_root'] == '/data/nfs'
    assert settings['netboot_server_address'] == '10.8.0.254'
    assert settings['netboot_network'] == '10.8.0.0/24'
    assert settings['netboot_tftp_root'] == defaults['netboot_tftp_root']
    assert settings['netboot_ssh_key_types'] == defaults['netboot_ssh_key_types']
    assert settings['netboot_cmdline_extra'] == defaults['netboot_cmdline_extra']


def _error(hosts, masters, nodes):
    with pytest.raises(BoardError) as exc:
        plan_cluster(hosts, masters, nodes, {})
    return str(exc.value)


@pytest.mark.parametrize('hosts, message', [
    ({'m1': {}, 'm2': {}, 'n2': {'turingpi_slot': 2}},
     "node 'n2': masters m1, m2 share its board '': set turingpi_master to the one that drives it"),
    ({'m1': {}, 'm2': {}, 'n2': {'turingpi_slot': 2, 'turingpi_master': 'm3'}},
     "node 'n2': turingpi_master 'm3' is not a host of the master group (m1, m2)"),
    ({'m1': {'turingpi_board': 'x'}, 'm2': {'turingpi_board': 'y'}, 'n2': {'turingpi_slot': 2, 'turingpi_board': 'z'}},
     "node 'n2': no master drives it: set turingpi_master to the inventory name of the master (slot 1) of its board,"
     " or the same turingpi_board on the node and its master"),
    ({'m1': {}, 'n2': {}},
     "node 'n2': turingpi_slot is not set: give every node its slot (2 to 7) on the board"),
    ({'m1': {}, 'n2': {'turingpi_slot': 1}},
     "node 'n2': turingpi_slot is 1, the master's slot; nodes sit in slots 2 to 7"),
    ({'m1': {}, 'n2': {'turingpi_slot': 8}},
     "node 'n2': unknown slot '8': the Turing Pi V1 has slots 1 to 7"),
    ({'m1': {}, 'n2': {'turingpi_slot': 3}, 'n3': {'turingpi_slot': 3}},
     "master 'm1': nodes 'n2' and 'n3' both have slot 3"),
    ({'m1': {'turingpi_address': '10.77.0.1', 'turingpi_subnet': '10.77.0.0/24'}, 'n2': {'turingpi_slot': 2, 'turingpi_address': '10.77.0.1'}},
     "node 'n2': address 10.77.0.1 is the master's own address; give the node another one (turingpi_address)"),
    ({'m1': {'ansible_host': '10.77.0.12', 'turingpi_subnet': '10.77.0.0/24'}, 'n2': {'turingpi_slot': 2}},
     "node 'n2': address 10.77.0.12 is the master's own address; give the node another one (turingpi_address)"),
    ({'m1': {'turingpi_subnet': '10.77.0.0/24'}, 'n2': {'turingpi_slot': 2, 'turingpi_address': '10.78.0.2'}},
     "node 'n2': turingpi_address 10.78.0.2 is outside the cluster subnet 10.77.0.0/24"),
    ({'m1': {}, 'n2': {'turingpi_slot': 2, 'turingpi_boot': 'usb'}},
     "node 'n2': boot must be one of emmc, sd, netboot, got 'usb'"),
    ({'m1': {}, 'n2': {'turingpi_slot': 2, 'turingpi_power': 'maybe'}},
     "node 'n2': power must be 'on' or 'off', got 'maybe'"),
    ({'m1': {}, 'n2': {'turingpi_slot': 2, 'turingpi_mac': 'zz'}},
     "node 'n2': 'zz' is not a MAC address (six hex pairs separated by ':' or '-', such as dc:a6:32:01:02:03)"),
    ({'m1': {'turingpi_slot': 2}},
     "master 'm1': turingpi_slot is 2, but the master sits in slot 1 (the slot that drives the bus)"),
    ({'m1': {}, 'n2': {'turingpi_slot': 2, 'turingpi_module': 'cm1', 'turingpi_boot': 'netboot'}},
     "node 'n2': a CM1 (BCM2835) cannot network boot: network boot is in the boot ROM of the BCM2837 only (CM3, CM3+);"
     " boot it from its eMMC (boot: emmc) or put a CM3 or CM3+ in this slot"),
    ({'m1': {}, 'n2': {'turingpi_slot': 2, 'turingpi_module': 'cm3-lite'}},
     "node 'n2': a CM3 Lite has no eMMC: it boots from the microSD card of its slot (boot: sd) or from the network (boot: netboot)"),
    ({'m1': {}, 'n2': {'turingpi_slot': 2, 'turingpi_module': 'cm3plus', 'turingpi_boot': 'sd'}},
     "node 'n2': a CM3+ has eMMC on the SD interface the slot's microSD card would use, so it cannot boot from a card:"
     " boot it from its eMMC (boot: emmc) or from the network (boot: netboot), or use a Lite module for the card"),
    ({'m1': {}, 'n2': {'turingpi_slot': 2, 'turingpi_module': 'pi4'}},
     "node 'n2': module must be one of cm1, cm3, cm3-lite, cm3plus or cm3plus-lite (also written CM3+, CM3L, CM3+ Lite, ...), got 'pi4'"),
    ({'m1': {'turingpi_module': 'cm3plus-lite', 'turingpi_boot': 'emmc'}},
     "master 'm1': a CM3+ Lite has no eMMC: it boots from the microSD card of its slot (boot: sd) or from the network (boot: netboot)"),
])
def test_errors(hosts, message):
    masters = [h for h in hosts if h.startswith('m')]
    nodes = [h for h in hosts if not h.startswith('m')]
    assert _error(hosts, masters, nodes) == message


def test_one_host_name_rule(tmp_path):
    message = ("node 'node2.lab': 'node2.lab' is not a valid host name (letters, digits and '-', 1 to 63 characters,"
               " not starting or ending with '-', no dots)")
    assert _error({'m': {}, 'node2.lab': {'turingpi_slot': 2}}, ['m'], ['node2.lab']) == message
    valid = TestModule().tests()['valid_hostname']
    assert [valid(n) for n in ('node2', 'N2', 'a' * 63)] == [True, True, True]
    assert [valid(n) for n in ('node2.lab', '-x', 'x-', 'a' * 64, '', None, 'a_b')] == [False] * 7


def test_filter_reports_the_rule_broken(tmp_path):
    with pytest.raises(AnsibleFilterError) as exc:
        board_plan({'m1': {}, 'm2': {}, 'n2': {'turingpi_slot': 2}}, {'turingpi_master': ['m1', 'm2'], 'turingpi_nodes': ['n2']})
    assert 'masters m1, m2 share its board' in str(exc.value)


def test_filter_takes_other_group_names():
    plan = board_plan({'m': {}, 'n2': {'turingpi_slot': 2}}, {'masters': ['m'], 'workers': ['n2']}, 'masters', 'workers')
    assert plan['masters']['m']['slots'] == {2: 'n2'}


@pytest.mark.parametrize('value, names', [
    ('node3,node5', ['node3', 'node5']),
    (' node3 , ,node5,node3 ', ['node3', 'node5']),
    (['node3', ' node5'], ['node3', 'node5']),
    ('', []),
    (None, []),
])
def test_node_names(value, names):
    assert node_names(value) == names == _node_names(value)


def test_node_names_refuses_other_types():
    with pytest.raises(AnsibleFilterError) as exc:
        _node_names({'node3': 1})
    assert str(exc.value) == "expected node names as a comma-separated string or a list, got {'node3': 1}"


def test_delegated_netboot_settings_are_the_ones_the_role_uses():
    """playbooks/vars/netboot_on_master.yml passes the master's settings to the role's node_root and
    reset_root entry points: every netboot_* variable those tasks read (and no other), each a
    default of the role, so the plan has a value for it."""
    import re
    role = os.path.join(ROOT, 'roles', 'netboot')
    used = set()
    for name in ('tasks/node_root.yml', 'tasks/reset_root.yml', 'tasks/nodes.yml', 'tasks/node.yml', 'tasks/capacity.yml',
                 'tasks/survey.yml', 'tasks/prune.yml', 'templates/cmdline.txt.j2', 'vars/main.yml'):
        with open(os.path.join(role, name)) as stream:
            used.update(re.findall(r'(?<![.\w])(netboot_[a-z][a-z0-9_]*)', stream.read()))
    # What the entry points take as their own input (the nodes) or give back (the host keys, the
    # nodes' roots), not a master setting; vars/main.yml also names the main entry point's node list.
    used -= {'netboot_node', 'netboot_root_nodes', 'netboot_reset_nodes', 'netboot_dnsmasq_conf_dir',
             'netboot_nodes', 'netboot_host_keys', 'netboot_node_roots'}
    with open(os.path.join(ROOT, 'playbooks', 'vars', 'netboot_on_master.yml')) as stream:
        passed = set(k for k in yaml.safe_load(stream) if k.startswith('netboot_'))
    with open(os.path.join(role, 'defaults', 'main.yml')) as stream:
        defaults = yaml.safe_load(stream)
    assert passed == used
    assert passed <= set(defaults)
    plan = board_plan({'m': {}, 'n2': {'turingpi_slot': 2}}, {'turingpi_master': ['m'], 'turingpi_nodes': ['n2']})
    assert passed <= set(plan['masters']['m']['netboot'])
