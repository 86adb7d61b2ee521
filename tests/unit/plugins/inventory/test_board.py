# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The board inventory plugin, run for real: board files written to disk, read by an
InventoryManager with a DataLoader (through the 'auto' plugin, as ansible-inventory does),
and by the plugin itself for the exact error messages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import textwrap

import pytest

from ansible.errors import AnsibleParserError
from ansible.inventory.data import InventoryData
from ansible.inventory.manager import InventoryManager
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import inventory_loader

ONE_BOARD = '''
plugin: turingpi.cluster.board
boards:
  - name: rack-a
    master:
      address: 192.168.1.50
      user: pi
    bus: virtual:/tmp/tp-board.json
    defaults:
      user: admin
      boot: netboot
      image: raspios-lite-arm64
    slots:
      1:
        hostname: tp-master
      2:
        hostname: node2
        mac: 'DC-A6-32-00-00-02'
        serial: 100000001A2B3C4D
      3:
        hostname: node3
        mac: 'dc:a6:32:00:00:03'
        boot: emmc
        image: null
        power: off
      5:
        hostname: node5
        mac: 'dc:a6:32:00:00:05'
        address: 10.77.0.100
        port: 2222
        vars:
          node_timezone: Europe/Berlin
'''

TWO_BOARDS = '''
plugin: turingpi.cluster.board
boards:
  - name: rack-a
    master: {address: 192.168.1.50, user: pi, port: 2201}
    slots:
      2: {hostname: a2, mac: '02:00:00:00:0a:02'}
  - name: rack b
    network: {subnet: 10.78.0.0/24, router: 10.78.0.254, node_offset: 100}
    slots:
      1: {hostname: b1}
      7: {hostname: b7, mac: '02:00:00:00:0b:07'}
'''


def write(tmp_path, text, name='lab.turingpi.yml'):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return str(path)


def manager(path):
    return InventoryManager(loader=DataLoader(), sources=[path])


def hostvars(inventory, name):
    return inventory.get_host(name).get_vars()


def group_hosts(inventory, group):
    return sorted(h.name for h in inventory.groups[group].get_hosts())


def parse_direct(tmp_path, text):
    """Run the plugin itself, so that its error reaches the test unchanged."""
    path = write(tmp_path, text)
    plugin = inventory_loader.get('turingpi.cluster.board')
    assert plugin.verify_file(path)
    inventory = InventoryData()
    plugin.parse(inventory, DataLoader(), path, cache=False)
    return inventory


def error_of(tmp_path, text):
    with pytest.raises(AnsibleParserError) as exc:
        parse_direct(tmp_path, text)
    message = str(exc.value.message)
    prefix = str(tmp_path / 'lab.turingpi.yml') + ': '
    assert message.startswith(prefix), message
    return message[len(prefix):]


# --- verify_file ---

@pytest.mark.parametrize('name, expected', [
    ('board.turingpi.yml', True),
    ('turingpi.yaml', True),
    ('lab.turingpi.yaml', True),
    ('board.yml', False),
    ('turingpi.yml.bak', False),
    ('hosts.ini', False),
])
def test_verify_file_accepts_only_turingpi_yml(tmp_path, name, expected):
    path = tmp_path / name
    path.write_text('plugin: turingpi.cluster.board\n')
    plugin = inventory_loader.get('turingpi.cluster.board')
    assert plugin.verify_file(str(path)) is expected


def test_verify_file_rejects_missing_file(tmp_path):
    plugin = inventory_loader.get('turingpi.cluster.board')
    assert plugin.verify_file(str(tmp_path / 'absent.turingpi.yml')) is False


# --- one board ---

def test_one_board_groups(tmp_path):
    inv = manager(write(tmp_path, ONE_BOARD))
    assert group_hosts(inv, 'turingpi_master') == ['tp-master']
    assert group_hosts(inv, 'turingpi_nodes') == ['node2', 'node3', 'node5']
    assert group_hosts(inv, 'rack_a') == ['node2', 'node3', 'node5', 'tp-master']
    assert sorted(inv.hosts) == ['node2', 'node3', 'node5', 'tp-master']


def test_one_board_master_vars(tmp_path):
    inv = manager(write(tmp_path, ONE_BOARD))
    master = hostvars(inv, 'tp-master')
    assert master['ansible_host'] == '192.168.1.50'
    assert master['ansible_user'] == 'pi'
    assert master['ansible_port'] == 22
    assert 'ansible_ssh_common_args' not in master
    assert master['turingpi_slot'] == 1
    assert master['turingpi_role'] == 'master'
    assert master['turingpi_board'] == 'rack-a'
    assert master['turingpi_board_group'] == 'rack_a'
    assert master['turingpi_address'] == '10.77.0.1'
    assert master['turingpi_router'] == '10.77.0.1'
    assert master['turingpi_subnet'] == '10.77.0.0/24'
    assert master['turingpi_bus'] == 'virtual:/tmp/tp-board.json'
    # defaults apply to nodes only: the master boots from eMMC and has no image
    assert master['turingpi_boot'] == 'emmc'
    assert master['turingpi_image'] is None
    assert master['turingpi_power'] == 'on'
    # The board's node list is the board_plan filter's (tests/unit/plugins/filter), not a variable.
    assert 'turingpi_board_nodes' not in master


def test_one_board_node_vars(tmp_path):
    inv = manager(write(tmp_path, ONE_BOARD))
    node2 = hostvars(inv, 'node2')
    assert node2['ansible_host'] == '10.77.0.12'
    assert node2['ansible_user'] == 'admin'
    assert 'ansible_port' not in node2
    assert node2['ansible_ssh_common_args'] == '-o ProxyJump=pi@192.168.1.50'
    assert node2['turingpi_slot'] == 2
    assert node2['turingpi_role'] == 'node'
    assert node2['turingpi_mac'] == 'dc:a6:32:00:00:02'
    assert node2['turingpi_serial'] == '1a2b3c4d'
    assert hostvars(inv, 'node3')['turingpi_serial'] is None
    assert node2['turingpi_boot'] == 'netboot'
    assert node2['turingpi_image'] == 'raspios-lite-arm64'
    assert node2['turingpi_power'] == 'on'
    assert node2['turingpi_master'] == 'tp-master'
    assert node2['turingpi_router'] == '10.77.0.1'
    assert 'turingpi_bus' not in node2

    node3 = hostvars(inv, 'node3')
    assert node3['turingpi_power'] == 'off'  # unquoted YAML off is a boolean
    assert node3['turingpi_boot'] == 'emmc'
    assert node3['turingpi_image'] is None

    node5 = hostvars(inv, 'node5')
    assert node5['ansible_host'] == '10.77.0.100'
    assert node5['turingpi_address'] == '10.77.0.100'
    assert node5['ansible_port'] == 2222
    assert node5['node_timezone'] == 'Europe/Berlin'


# --- two boards ---

def test_two_boards(tmp_path):
    inv = manager(write(tmp_path, TWO_BOARDS))
    assert group_hosts(inv, 'turingpi_master') == ['b1', 'rack-a-node1']
    assert group_hosts(inv, 'turingpi_nodes') == ['a2', 'b7']
    assert group_hosts(inv, 'rack_a') == ['a2', 'rack-a-node1']
    assert group_hosts(inv, 'rack_b') == ['b1', 'b7']

    a2 = hostvars(inv, 'a2')
    assert a2['ansible_ssh_common_args'] == '-o ProxyJump=pi@192.168.1.50:2201'
    assert a2['turingpi_master'] == 'rack-a-node1'
    assert hostvars(inv, 'rack-a-node1')['ansible_port'] == 2201

    # board b: no master address, the controller is on the cluster segment: no jump
    b1 = hostvars(inv, 'b1')
    assert b1['ansible_host'] == '10.78.0.254'
    assert b1['turingpi_address'] == '10.78.0.254'
    assert 'ansible_user' not in b1
    b7 = hostvars(inv, 'b7')
    assert b7['ansible_host'] == '10.78.0.107'
    assert b7['turingpi_router'] == '10.78.0.254'
    assert b7['turingpi_board'] == 'rack b'
    assert 'ansible_ssh_common_args' not in b7


def test_jump_modes(tmp_path):
    text = '''
    plugin: turingpi.cluster.board
    boards:
      - name: inside
        master: {address: 10.77.0.1, user: pi}
        slots: {2: {hostname: i2, mac: '02:00:00:00:00:02'}}
      - name: forced
        network: {subnet: 10.78.0.0/24}
        master: {jump: always, user: root}
        slots: {2: {hostname: f2, mac: '02:00:00:00:00:03'}}
      - name: never
        network: {subnet: 10.79.0.0/24}
        master: {address: tp.example.org, jump: never}
        slots: {2: {hostname: n2, mac: '02:00:00:00:00:04'}}
      - name: cmd
        network: {subnet: 10.80.0.0/24}
        master: {address: 172.31.77.1, user: root, port: 2222, jump_ssh_args: '-i /lab/key -o StrictHostKeyChecking=no'}
        slots: {2: {hostname: c2, mac: '02:00:00:00:00:06'}}
      - name: six
        network: {subnet: 'fd00:77::/64'}
        master: {address: 'fd00:1::5', user: pi}
        slots: {2: {hostname: s2, mac: '02:00:00:00:00:05'}}
    '''
    inv = manager(write(tmp_path, text))
    assert 'ansible_ssh_common_args' not in hostvars(inv, 'i2')  # master address inside the subnet
    assert hostvars(inv, 'f2')['ansible_ssh_common_args'] == '-o ProxyJump=root@10.78.0.1'
    assert 'ansible_ssh_common_args' not in hostvars(inv, 'n2')
    assert hostvars(inv, 's2')['ansible_ssh_common_args'] == '-o ProxyJump=pi@[fd00:1::5]'
    assert hostvars(inv, 's2')['ansible_host'] == 'fd00:77::c'
    assert hostvars(inv, 'c2')['ansible_ssh_common_args'] == (
        '-o ProxyCommand="ssh -W %h:%p -p 2222 -i /lab/key -o StrictHostKeyChecking=no root@172.31.77.1"')


def test_slot_vars_override_computed_vars(tmp_path):
    text = '''
    plugin: turingpi.cluster.board
    boards:
      - name: rack
        master: {address: 192.168.1.50}
        vars: {ansible_python_interpreter: /usr/bin/python3}
        slots:
          2:
            mac: '02:00:00:00:00:02'
            vars: {ansible_ssh_common_args: '-o ProxyCommand="ssh -W %h:%p jump"'}
    '''
    inv = manager(write(tmp_path, text))
    node = hostvars(inv, 'rack-node2')
    assert node['ansible_ssh_common_args'] == '-o ProxyCommand="ssh -W %h:%p jump"'
    assert node['ansible_python_interpreter'] == '/usr/bin/python3'
    assert hostvars(inv, 'rack-node1')['ansible_python_interpreter'] == '/usr/bin/python3'
    assert 'ansible_ssh_common_args' not in hostvars(inv, 'rack-node1')


# --- constructed features ---

def test_compose_groups_and_keyed_groups(tmp_path):
    text = ONE_BOARD + '''
compose:
  node_number: turingpi_slot * 10
  ansible_host: turingpi_address
groups:
  powered_off: turingpi_power == 'off'
  big_slots: turingpi_slot > 3
keyed_groups:
  - key: turingpi_boot
    prefix: boot
  - key: turingpi_board
    prefix: board
'''
    inv = manager(write(tmp_path, text))
    assert hostvars(inv, 'node3')['node_number'] == 30
    assert hostvars(inv, 'tp-master')['node_number'] == 10
    # compose runs after the board's own vars, so it can override them
    assert hostvars(inv, 'tp-master')['ansible_host'] == '10.77.0.1'
    assert group_hosts(inv, 'powered_off') == ['node3']
    assert group_hosts(inv, 'big_slots') == ['node5']
    assert group_hosts(inv, 'boot_netboot') == ['node2', 'node5']
    assert group_hosts(inv, 'boot_emmc') == ['node3', 'tp-master']
    assert group_hosts(inv, 'board_rack_a') == ['node2', 'node3', 'node5', 'tp-master']


def test_strict_compose_error(tmp_path):
    text = ONE_BOARD + '''
strict: true
compose:
  broken: no_such_variable + 1
'''
    with pytest.raises(Exception) as exc:
        parse_direct(tmp_path, text)
    assert 'Could not set broken for host' in str(exc.value)


def test_not_strict_compose_skips(tmp_path):
    text = ONE_BOARD + '''
compose:
  broken: no_such_variable + 1
'''
    inv = manager(write(tmp_path, text))
    assert 'broken' not in hostvars(inv, 'node2')
    assert hostvars(inv, 'node2')['turingpi_slot'] == 2


# --- validation: exact messages ---

def board(slots, extra=''):
    return '''
plugin: turingpi.cluster.board
boards:
  - name: lab
%s    slots:
%s''' % (extra, ''.join('      %s\n' % line for line in slots))


@pytest.mark.parametrize('text, message', [
    ('plugin: turingpi.cluster.board\nboards: []\n',
     "'boards' must be a non-empty list of boards"),
    ('plugin: turingpi.cluster.board\nboards:\n  - slots: {}\n',
     "board #1: 'name' is required"),
    ('plugin: turingpi.cluster.board\nboards:\n  - name: lab\n',
     "board 'lab': 'slots' is required (a dictionary from slot number 1-7 to the node in it)"),
    ('plugin: turingpi.cluster.board\nboards:\n  - name: lab\n    slot: {}\n',
     "board 'lab': unknown key 'slot' (known keys: name, master, network, bus, defaults, vars, slots)"),
    (board(["8: {mac: '02:00:00:00:00:08'}"]),
     "board 'lab': unknown slot '8': the Turing Pi V1 has slots 1 to 7"),
    (board(["node0: {mac: '02:00:00:00:00:08'}"]),
     "board 'lab': unknown slot 'node0': the Turing Pi V1 has slots 1 to 7"),
    (board(["2: {mac: '02:00:00:00:00'}"]),
     "board 'lab' slot 2: '02:00:00:00:00' is not a MAC address (six hex pairs separated by ':' or '-', such as dc:a6:32:01:02:03)"),
    (board(["2: {mac: 11:22:33:44:55:06}"]),
     "board 'lab' slot 2: the MAC address was read as the number 8846009706: quote it, such as mac: '11:22:33:44:55:66'"),
    (board(["2: {hostname: n2}"]),
     "board 'lab' slot 2: 'mac' is required: the router hands out the node's fixed address by MAC"),
    (board(["2: {mac: '02:00:00:00:00:02'}", "3: {mac: '02:00:00:00:00:02'}"]),
     "board 'lab' slot 3: MAC 02:00:00:00:00:02 is already used by lab-node2 (board 'lab' slot 2)"),
    (board(["2: {mac: '02:00:00:00:00:02', address: 10.78.0.12}"]),
     "board 'lab' slot 2: address 10.78.0.12 is outside the cluster subnet 10.77.0.0/24"),
    (board(["2: {mac: '02:00:00:00:00:02', address: 10.77.0.255}"]),
     "board 'lab' slot 2: address 10.77.0.255 is the network or broadcast address of 10.77.0.0/24"),
    (board(["2: {mac: '02:00:00:00:00:02', address: 10.77.0.1}"]),
     "board 'lab' slot 2: address 10.77.0.1 is the router's (the master's) address"),
    (board(["2: {mac: '02:00:00:00:00:02', address: 10.77.0.13}", "3: {mac: '02:00:00:00:00:03'}"]),
     "board 'lab' slot 3: address 10.77.0.13 is already used by slot 2"),
    (board(["2: {mac: '02:00:00:00:00:02', boot: usb}"]),
     "board 'lab' slot 2: boot must be one of emmc, sd, netboot, got 'usb'"),
    (board(["2: {mac: '02:00:00:00:00:02', power: maybe}"]),
     "board 'lab' slot 2: power must be 'on' or 'off', got 'maybe'"),
    (board(["2: {mac: '02:00:00:00:00:02', colour: red}"]),
     "board 'lab' slot 2: unknown key 'colour' (known keys: hostname, mac, serial, module, boot, image, power, address, user, port, vars)"),
    # module types (docs/hardware.md "Compute modules"): checked with the boot source
    (board(["2: {mac: '02:00:00:00:00:02', module: cm2}"]),
     "board 'lab' slot 2: module must be one of cm1, cm3, cm3-lite, cm3plus or cm3plus-lite (also written CM3+, CM3L, CM3+ Lite, ...),"
     " got 'cm2'"),
    (board(["2: {mac: '02:00:00:00:00:02', module: CM1 Lite}"]),
     "board 'lab' slot 2: module 'CM1 Lite': the Compute Module 1 has no Lite variant (every CM1 has 4 GB of eMMC); use module: cm1"),
    (board(["2: {mac: '02:00:00:00:00:02', module: cm1, boot: netboot}"]),
     "board 'lab' slot 2: a CM1 (BCM2835) cannot network boot: network boot is in the boot ROM of the BCM2837 only (CM3, CM3+);"
     " boot it from its eMMC (boot: emmc) or put a CM3 or CM3+ in this slot"),
    (board(["2: {mac: '02:00:00:00:00:02', module: CM3+ Lite}"]),
     "board 'lab' slot 2: a CM3+ Lite has no eMMC: it boots from the microSD card of its slot (boot: sd) or from the network (boot: netboot)"),
    (board(["3: {mac: '02:00:00:00:00:03', boot: sd}"], extra='    defaults: {module: cm3}\n'),
     "board 'lab' slot 3: a CM3 has eMMC on the SD interface the slot's microSD card would use, so it cannot boot from a card:"
     " boot it from its eMMC (boot: emmc) or from the network (boot: netboot), or use a Lite module for the card"),
    (board(["1: {module: cm3-lite}"]),
     "board 'lab' slot 1: a CM3 Lite has no eMMC: it boots from the microSD card of its slot (boot: sd) or from the network (boot: netboot)"),
    (board(["2: {mac: '02:00:00:00:00:02', serial: 'xyz'}"]),
     "board 'lab' slot 2: serial 'xyz' is not 8 (or 16) hex digits as in /proc/cpuinfo"),
    (board(["2: {mac: '02:00:00:00:00:02', serial: 00123456}"]),
     "board 'lab' slot 2: serial '42798' is not 8 (or 16) hex digits as in /proc/cpuinfo: quote it, YAML read it as a number"),
    (board(["2: {mac: '02:00:00:00:00:02', serial: '1a2b3c4d'}", "3: {mac: '02:00:00:00:00:03', serial: '00000000 1A2B3C4D'}"]),
     "board 'lab' slot 3: serial '00000000 1A2B3C4D' is not 8 (or 16) hex digits as in /proc/cpuinfo"),
    (board(["2: {mac: '02:00:00:00:00:02', serial: '1a2b3c4d'}", "3: {mac: '02:00:00:00:00:03', serial: '000000001A2B3C4D'}"]),
     "board 'lab' slot 3: serial 1a2b3c4d is already used by lab-node2 (board 'lab' slot 2)"),
    (board(["2: {mac: '02:00:00:00:00:02', hostname: 'bad_name'}"]),
     "board 'lab' slot 2: 'bad_name' is not a valid host name (letters, digits and '-', 1 to 63 characters,"
     " not starting or ending with '-', no dots)"),
    # One host name rule for the whole collection: no dots (the name is also a directory on the master).
    (board(["2: {mac: '02:00:00:00:00:02', hostname: 'node2.lab'}"]),
     "board 'lab' slot 2: 'node2.lab' is not a valid host name (letters, digits and '-', 1 to 63 characters,"
     " not starting or ending with '-', no dots)"),
    # A node on the master's own (uplink) address, when the master is reached inside the subnet.
    (board(["2: {mac: '02:00:00:00:00:02'}"], extra='    master: {address: 10.77.0.12}\n'),
     "board 'lab' slot 2: address 10.77.0.12 is the master's own address (master.address)"),
    (board(["1: {address: 10.77.0.5}"]),
     "board 'lab' slot 1: slot 1 is the master: set its cluster address with network.router and how to reach it with master.address"),
    (board(["1: {power: 'off'}"]),
     "board 'lab' slot 1: the master cannot be declared off: it drives the bus and routes the nodes"),
    (board(["2: {mac: '02:00:00:00:00:02'}"], extra='    network: {subnet: 10.77.0.1/24}\n'),
     "board 'lab' network: '10.77.0.1/24' is not a subnet in CIDR notation with the host bits zero, such as 10.77.0.0/24"
     " (10.77.0.1/24 has host bits set)"),
    (board(["7: {mac: '02:00:00:00:00:07'}"], extra='    network: {subnet: 10.77.0.0/28}\n'),
     "board 'lab' slot 7: the default address 10.77.0.17 (network + node_offset 10 + slot) is outside the cluster subnet 10.77.0.0/28;"
     " set the node's address or the node offset"),
    (board(["2: {mac: '02:00:00:00:00:02'}"], extra='    network: {router: 10.1.0.1}\n'),
     "board 'lab' network: router 10.1.0.1 is outside the cluster subnet 10.77.0.0/24"),
    (board(["2: {mac: '02:00:00:00:00:02'}"], extra='    master: {jump: sometimes}\n'),
     "board 'lab' master: jump must be one of auto, always, never, got 'sometimes'"),
    (board(["2: {mac: '02:00:00:00:00:02'}"], extra='    master: {jump_ssh_args: \'-o ProxyCommand="x"\'}\n'),
     "board 'lab' master: jump_ssh_args must not contain double quotes (it goes inside ProxyCommand=\"...\")"),
    (board(["2: {mac: '02:00:00:00:00:02'}"], extra='    master: {port: 70000}\n'),
     "board 'lab' master: 'port' must be a port number from 1 to 65535, got 70000"),
])
def test_bad_board_file(tmp_path, text, message):
    assert error_of(tmp_path, text) == message


def test_hostnames_unique_across_boards(tmp_path):
    text = '''
    plugin: turingpi.cluster.board
    boards:
      - name: a
        slots: {2: {hostname: worker, mac: '02:00:00:00:00:02'}}
      - name: b
        network: {subnet: 10.78.0.0/24}
        slots: {3: {hostname: worker, mac: '02:00:00:00:00:03'}}
    '''
    assert error_of(tmp_path, textwrap.dedent(text)) == (
        "board 'b' slot 3: hostname 'worker' is already used by board 'a' slot 2; hostnames must be unique across boards")


def test_macs_unique_across_boards(tmp_path):
    text = '''
    plugin: turingpi.cluster.board
    boards:
      - name: a
        slots: {2: {mac: '02:00:00:00:00:02'}}
      - name: b
        network: {subnet: 10.78.0.0/24}
        slots: {3: {mac: '02-00-00-00-00-02'}}
    '''
    assert error_of(tmp_path, textwrap.dedent(text)) == (
        "board 'b' slot 3: MAC 02:00:00:00:00:02 is already used by a-node2 (board 'a' slot 2)")


def test_subnets_must_not_overlap(tmp_path):
    text = '''
    plugin: turingpi.cluster.board
    boards:
      - name: a
        network: {subnet: 10.77.0.0/16}
        slots: {2: {mac: '02:00:00:00:00:02'}}
      - name: b
        slots: {3: {mac: '02:00:00:00:00:03'}}
    '''
    assert error_of(tmp_path, textwrap.dedent(text)) == "board 'b': subnet 10.77.0.0/24 overlaps subnet 10.77.0.0/16 of board 'a'"


def test_board_names_unique(tmp_path):
    text = '''
    plugin: turingpi.cluster.board
    boards:
      - name: rack-a
        slots: {}
      - name: rack_a
        network: {subnet: 10.78.0.0/24}
        slots: {}
    '''
    assert error_of(tmp_path, textwrap.dedent(text)) == (
        "board 'rack_a': its group name 'rack_a' is the same as board 'rack-a''s; rename one of them")


def test_reserved_group_name(tmp_path):
    text = 'plugin: turingpi.cluster.board\nboards:\n  - name: turingpi-nodes\n    slots: {}\n'
    assert error_of(tmp_path, text) == (
        "board 'turingpi-nodes': the name gives the group 'turingpi_nodes', which the inventory already uses; rename the board")


def test_hostname_equal_to_group(tmp_path):
    text = board(["2: {hostname: all, mac: '02:00:00:00:00:02'}"])
    assert error_of(tmp_path, text) == "board 'lab' slot 2: hostname 'all' is also the name of a group; rename the host or the board"
    text = board(["2: {hostname: lab, mac: '02:00:00:00:00:02'}"])
    assert error_of(tmp_path, text) == "board 'lab' slot 2: hostname 'lab' is also the name of a group; rename the host or the board"


def test_slot_given_twice_as_yaml_key_is_an_error(tmp_path):
    """YAML keeps the last of two equal keys; the plugin must not silently drop the first node."""
    text = board(["2: {hostname: first, mac: '02:00:00:00:00:02'}", "2: {hostname: second, mac: '02:00:00:00:00:03'}"])
    assert error_of(tmp_path, text) == (
        "a key is given twice in one mapping, and YAML would keep only the last: '2' (line 7);"
        " merge the entries (a slot listed twice loses a node)")
    inv = manager(write(tmp_path, text))
    assert list(inv.hosts) == []


def test_manager_reports_bad_file_and_adds_no_hosts(tmp_path):
    """Through the real InventoryManager, a bad file adds no host at all (validated before adding)."""
    inv = manager(write(tmp_path, board(["2: {mac: '02:00:00:00:00:02'}", "9: {mac: '02:00:00:00:00:09'}"])))
    assert list(inv.hosts) == []
    assert 'turingpi_nodes' not in inv.groups


def test_empty_slot_entry_and_master_only(tmp_path):
    inv = manager(write(tmp_path, board(['1:'])))
    assert sorted(inv.hosts) == ['lab-node1']
    assert hostvars(inv, 'lab-node1')['turingpi_role'] == 'master'
    assert group_hosts(inv, 'turingpi_nodes') == []


def test_module_per_slot_and_by_default(tmp_path):
    text = board(["1: {module: 'CM3+'}", "2: {mac: '02:00:00:00:00:02'}", "3: {mac: '02:00:00:00:00:03', module: cm1, boot: emmc}",
                  "4: {mac: '02:00:00:00:00:04', module: CM3L, boot: sd}", "5: {mac: '02:00:00:00:00:05', module: null}"],
                 extra='    defaults: {module: cm3plus-lite, boot: netboot}\n')
    inv = manager(write(tmp_path, text))
    assert [hostvars(inv, 'lab-node%d' % n)['turingpi_module'] for n in (1, 2, 3, 4, 5)] == [
        'cm3plus', 'cm3plus-lite', 'cm1', 'cm3-lite', None]
    assert [hostvars(inv, 'lab-node%d' % n)['turingpi_boot'] for n in (1, 2, 3, 4, 5)] == ['emmc', 'netboot', 'emmc', 'sd', 'netboot']
    # the board's default boot source reaches a slot that names only its module: a CM1 would network boot
    text = board(["3: {mac: '02:00:00:00:00:03', module: cm1}"], extra='    defaults: {boot: netboot}\n')
    assert error_of(tmp_path, text).startswith("board 'lab' slot 3: a CM1 (BCM2835) cannot network boot")


# --- the documented examples: the plugin and a plain static inventory agree ---

def test_examples_static_inventory_matches_the_board_file():
    """docs/inventory.md promises that a static inventory with the same variables works the same:
    examples/inventory/static.yml must give every host what examples/inventory/board.turingpi.yml gives."""
    import os
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..')
    examples = os.path.join(root, 'examples', 'inventory')
    from_plugin = manager(os.path.join(examples, 'board.turingpi.yml'))
    from_static = manager(os.path.join(examples, 'static.yml'))
    assert sorted(from_plugin.hosts) == sorted(from_static.hosts) == ['tp-master', 'tp-node2', 'tp-node3', 'tp-node4']
    for group in ('turingpi_master', 'turingpi_nodes', 'rack_a', 'boot_emmc', 'boot_netboot'):
        assert group_hosts(from_plugin, group) == group_hosts(from_static, group), group
    for name in from_plugin.hosts:
        plugin_vars = from_plugin.get_host(name).get_vars()
        static_vars = from_static.get_host(name).get_vars()
        for group in from_static.get_host(name).get_groups():
            static_vars = dict(group.get_vars(), **static_vars)
        wanted = sorted(k for k in plugin_vars if k.startswith(('turingpi_', 'ansible_host', 'ansible_user', 'ansible_port', 'ansible_ssh')))
        assert wanted, name
        for key in wanted:
            assert static_vars.get(key) == plugin_vars[key], (name, key)
        assert sorted(k for k in static_vars if k.startswith('turingpi_')) == sorted(k for k in wanted if k.startswith('turingpi_')), name
