# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.census and turingpi.cluster.census_board through main(): the bus writes, the
results, the board file written."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

import yaml

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils import _boot_log as boot_log
from ansible_collections.turingpi.cluster.plugins.modules import census
from ansible_collections.turingpi.cluster.plugins.modules import census_board
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils.test_census import Wire

DS = board.DS4520_ADDR
FAST = {'settle': 0.0, 'poll': 0.01, 'dhcp_timeout': 0.3, 'tftp_timeout': 2.0}


def nodes_off(bus, on=()):
    bus.write_byte(DS, board.DS4520_REG_IO_CONTROL0, board.mask_of([1] + list(on)))
    del bus.log[:]


def test_check_mode_powers_nothing_and_says_what_it_would(recording_bus, run_module):
    nodes_off(recording_bus, on=[5])
    rc, result = run_module(census, {'bus': 'virtual:x'}, check_mode=True)
    assert rc == 0 and result['changed']
    assert result['plan'] == {'probe': [2, 3, 4, 6, 7], 'running': [5], 'power_register': '0x82'}
    assert result['slots'] == [] and recording_bus.writes() == []


def test_a_census_through_main(recording_bus, run_module, monkeypatch):
    nodes_off(recording_bus)
    wire = Wire(recording_bus, time.time, {2: ('netboot', '02:00:00:00:00:02', '0000aa02'), 4: ('netboot', '02:00:00:00:00:04', '0000aa04')},
                dhcp_after=0.0, tftp_after=0.0)
    monkeypatch.setattr(boot_log, 'read_events', lambda run_command, since=None, **kw: wire.events(since))
    args = dict(FAST, bus='virtual:x', slots=[2, 4, 3])
    rc, result = run_module(census, args)
    assert rc == 0 and result['changed']
    found = dict((s['slot'], s) for s in result['slots'])
    assert [s['slot'] for s in result['slots']] == [2, 3, 4]
    assert (found[2]['mac'], found[2]['serial']) == ('02:00:00:00:00:02', '0000aa02')
    assert (found[4]['mac'], found[4]['serial']) == ('02:00:00:00:00:04', '0000aa04')
    assert result['power_register'] == '0x02'
    assert result['summary'][0].startswith('slot 2: network boot, MAC 02:00:00:00:00:02, serial 0000aa02')
    assert recording_bus.read_byte(DS, board.DS4520_REG_IO_CONTROL0) == 0x02


def test_the_master_is_refused(recording_bus, run_module):
    rc, result = run_module(census, {'bus': 'virtual:x', 'slots': [1, 3]})
    assert rc == 1 and result['msg'].startswith('slots 1: the census surveys the node slots 2 to 7')
    assert recording_bus.writes() == []


def test_a_journal_that_cannot_be_read_fails_and_leaves_the_power(recording_bus, run_module, monkeypatch):
    nodes_off(recording_bus)

    def broken(run_command, **kw):
        raise boot_log.BootLogError('Cannot read the journal of dnsmasq')

    monkeypatch.setattr(boot_log, 'read_events', broken)
    rc, result = run_module(census, dict(FAST, bus='virtual:x', slots=[2]))
    assert rc == 1 and 'Cannot read the journal of dnsmasq' in result['msg']
    assert recording_bus.read_byte(DS, board.DS4520_REG_IO_CONTROL0) == 0x02


BOARD = """# my board
plugin: turingpi.cluster.board
boards:
  - name: lab
    defaults: {boot: netboot}
    slots:
      1: {hostname: master}
      2: {hostname: node2, mac: '02:00:00:00:00:02', serial: '0000aa02'}
"""


def test_census_board_writes_the_file_and_reports(tmp_path, run_module):
    path = tmp_path / 'board.turingpi.yml'
    path.write_text(BOARD)
    dest = tmp_path / 'new.turingpi.yml'
    slots = [{'slot': 2, 'state': 'empty'}, {'slot': 3, 'state': 'netboot', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02'}]
    args = {'path': str(path), 'slots': slots, 'dest': str(dest), 'board_id': 'id-1'}
    rc, result = run_module(census_board, args, check_mode=True, diff=True)
    assert rc == 0 and result['changed'] and not dest.exists()
    rc, result = run_module(census_board, args)
    assert rc == 0 and result['changed'] and result['moved'] == [{'mac': '02:00:00:00:00:02', 'serial': '0000aa02', 'from': 2, 'to': 3}]
    assert "mac: '02:00:00:00:00:02'" in dest.read_text() and "serial: '0000aa02'" in dest.read_text()
    written = yaml.safe_load(dest.read_text())
    assert written['boards'][0]['slots'] == {1: {'hostname': 'master'}, 3: {'hostname': 'node2', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02'}}
    assert written['boards'][0]['vars'] == {'turingpi_board_id': 'id-1'}
    assert '-      2: {hostname: node2' in result['diff_text']
    rc, result = run_module(census_board, args)
    assert rc == 0 and not result['changed']


def test_census_board_keeps_a_file_that_says_it_all(tmp_path, run_module):
    path = tmp_path / 'board.turingpi.yml'
    path.write_text(BOARD)
    slots = [{'slot': 2, 'state': 'netboot', 'mac': '02:00:00:00:00:02', 'serial': '0000aa02'}]
    rc, result = run_module(census_board, {'path': str(path), 'slots': slots, 'dest': str(path)})
    assert rc == 0 and not result['changed'] and result['diff_text'] == ''
    assert path.read_text() == BOARD


def test_census_board_says_what_is_wrong(tmp_path, run_module):
    rc, result = run_module(census_board, {'path': str(tmp_path / 'none.yml'), 'slots': []})
    assert rc == 1 and 'cannot read the board file' in result['msg']
    path = tmp_path / 'board.turingpi.yml'
    path.write_text(BOARD)
    rc, result = run_module(census_board, {'path': str(path), 'slots': [{'mac': 'x'}]})
    assert rc == 1 and 'expected the slots result of turingpi.cluster.census' in result['msg']
