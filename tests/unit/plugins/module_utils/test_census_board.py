# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""A board file brought up to date with a census: entries follow their modules, empty slots are
flagged and left out, and what comes out is a board file the inventory contract accepts."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _board_model as model
from ansible_collections.turingpi.cluster.plugins.module_utils import _census_board as census_board


def board_file(slots, defaults=None, vars_=None):
    board = {'name': 'lab', 'network': {'subnet': '10.77.0.0/24'}, 'slots': slots}
    if defaults:
        board['defaults'] = defaults
    if vars_:
        board['vars'] = vars_
    return {'plugin': 'turingpi.cluster.board', 'boards': [board]}


def netboot(slot, mac, serial):
    return {'slot': slot, 'state': 'netboot', 'mac': mac, 'serial': serial, 'boot': 'netboot'}


def valid(data):
    """The board file as the inventory plugin reads it: its hosts' (slot, name, mac, serial)."""
    boards = model.load_boards(data['boards'], lambda name: name.replace('-', '_'))
    return sorted((h['slot'], h['name'], h['mac'], h['serial']) for h in boards[0].hosts)


def test_a_board_with_only_the_master_gets_every_module():
    data = board_file({1: {'hostname': 'master'}}, defaults={'boot': 'netboot'})
    found = [netboot(2, '02:00:00:00:00:02', '0000aa02'), netboot(3, '02:00:00:00:00:03', '0000aa03'),
             {'slot': 4, 'state': 'empty'}]
    new, report = census_board.updated_file(data, found, hostname_format='node{slot}', board_id='AbC')
    assert report['new'] == [2, 3] and report['empty'] == [4] and report['moved'] == [] and report['flags'] == []
    slots = new['boards'][0]['slots']
    assert slots[2] == {'hostname': 'node2', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02'}  # boot: the default
    assert new['boards'][0]['vars'] == {'turingpi_board_id': 'AbC'}
    assert valid(new) == [(1, 'master', None, None), (2, 'node2', '02:00:00:00:00:02', '0000aa02'),
                          (3, 'node3', '02:00:00:00:00:03', '0000aa03')]
    assert data['boards'][0]['slots'] == {1: {'hostname': 'master'}}  # the input is not changed


def test_a_swap_is_flagged_and_the_entries_follow_their_modules():
    data = board_file({1: {}, '2': {'hostname': 'node2', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02', 'image': 'a'},
                       3: {'hostname': 'node3', 'mac': '02:00:00:00:00:03', 'serial': '0000aa03'}}, defaults={'boot': 'netboot'})
    found = [netboot(2, '02:00:00:00:00:03', '0000aa03'), netboot(3, '02:00:00:00:00:02', '0000aa02')]
    new, report = census_board.updated_file(data, found)
    assert report['moved'] == [{'mac': '02:00:00:00:00:03', 'serial': '0000aa03', 'from': 3, 'to': 2},
                               {'mac': '02:00:00:00:00:02', 'serial': '0000aa02', 'from': 2, 'to': 3}]
    assert len([f for f in report['flags'] if 'is now in slot' in f]) == 2
    assert "the module of slot 2 ('node2') (MAC 02:00:00:00:00:02, serial 0000aa02) is now in slot 3" in report['flags'][1]
    slots = new['boards'][0]['slots']
    assert slots[3] == {'hostname': 'node2', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02', 'image': 'a'}
    assert slots[2]['hostname'] == 'node3'
    assert valid(new) == [(1, 'lab-node1', None, None), (2, 'node3', '02:00:00:00:00:03', '0000aa03'),
                          (3, 'node2', '02:00:00:00:00:02', '0000aa02')]


def test_a_module_moved_to_an_empty_slot_and_the_empty_one():
    data = board_file({1: {}, 2: {'hostname': 'node2', 'mac': '02:00:00:00:00:02', 'boot': 'netboot'}})
    found = [{'slot': 2, 'state': 'empty'}, netboot(5, '02:00:00:00:00:02', '0000aa02')]
    new, report = census_board.updated_file(data, found)
    assert report['moved'] == [{'mac': '02:00:00:00:00:02', 'serial': '0000aa02', 'from': 2, 'to': 5}]
    assert any("slot 2 ('node2') holds no module (status register 0xF8)" in f for f in report['flags'])
    assert sorted(new['boards'][0]['slots']) == [1, 5]
    assert new['boards'][0]['slots'][5] == {'hostname': 'node2', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02', 'boot': 'netboot'}


def test_another_module_in_a_listed_slot():
    data = board_file({1: {}, 2: {'hostname': 'node2', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02', 'boot': 'netboot'}})
    new, report = census_board.updated_file(data, [netboot(2, 'dc:a6:32:00:00:09', '0000bb09')])
    assert report['new'] == [2]
    assert 'holds another module than the file says' in report['flags'][0]
    assert new['boards'][0]['slots'][2] == {'mac': 'dc:a6:32:00:00:09', 'serial': '0000bb09', 'boot': 'netboot'}


def test_local_boot_running_and_silent_slots():
    data = board_file({1: {}, 3: {'hostname': 'db', 'mac': 'dc:a6:32:00:00:03', 'serial': '0000cc03', 'boot': 'emmc'}})
    found = [{'slot': 2, 'state': 'local', 'mac': 'dc:a6:32:00:00:02', 'serial': None, 'note': 'not reachable'},
             {'slot': 3, 'state': 'running', 'mac': 'dc:a6:32:00:00:03', 'serial': '0000cc03'},
             {'slot': 4, 'state': 'running', 'mac': None, 'serial': None},
             {'slot': 5, 'state': 'silent', 'mac': None, 'serial': None}]
    new, report = census_board.updated_file(data, found)
    slots = new['boards'][0]['slots']
    assert slots[2] == {'mac': 'dc:a6:32:00:00:02'}  # eMMC is the default boot
    assert slots[3] == data['boards'][0]['slots'][3]
    assert sorted(slots) == [1, 2, 3]
    assert report['unknown'] == [4, 5]
    assert any('slot 2 boots from its own storage; its serial is unknown (not reachable)' in f for f in report['flags'])
    assert any('slot 4 is on and not in the file' in f for f in report['flags'])


def test_another_boards_file_is_flagged():
    data = board_file({1: {}}, vars_={'turingpi_board_id': 'old-id'})
    new, report = census_board.updated_file(data, [], board_id='new-id')
    assert 'describes the board with id old-id, but the census ran on the board with id new-id' in report['flags'][0]


@pytest.mark.parametrize('data, name, message', [
    ({'plugin': 'x'}, None, 'not a board file'),
    ({'boards': [{'name': 'a', 'slots': {}}, {'name': 'b', 'slots': {}}]}, None, 'name the one the census ran on'),
    ({'boards': [{'name': 'a', 'slots': {}}]}, 'c', "no board named 'c'"),
])
def test_which_board(data, name, message):
    with pytest.raises(model.BoardError, match=message):
        census_board.updated_file(data, [], board_name=name)


def test_network_boot_without_serial_is_flagged():
    data = board_file({1: {}})
    found = [{'slot': 3, 'state': 'netboot', 'mac': '02:00:00:00:00:03', 'serial': None, 'note': 'is bootcode.bin there?'}]
    new, report = census_board.updated_file(data, found)
    assert new['boards'][0]['slots'][3] == {'mac': '02:00:00:00:00:03', 'boot': 'netboot'}
    assert report['flags'] == ['slot 3 network boots, but its serial was not seen (is bootcode.bin there?)']
