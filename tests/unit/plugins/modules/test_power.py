# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.power through main(): the exact transactions on the bus."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.turingpi.cluster.plugins.module_utils import _bus
from ansible_collections.turingpi.cluster.plugins.modules import power

DS = 0x57


def test_switch_off_writes_see_then_one_value(recording_bus, run_module):
    rc, result = run_module(power, {'node': '3', 'state': 'off'})
    assert rc == 0 and result['changed']
    assert recording_bus.writes() == [('write', DS, 0xF4, [0x01]), ('write', DS, 0xF2, [0xF7])]
    assert result['before']['3'] == 'on' and result['after']['3'] == 'off'
    assert result['power_register'] == '0xf7'
    assert result['nodes']['3'] == {'power': 'off', 'running': False}


def test_already_in_state_writes_nothing(recording_bus, run_module):
    run_module(power, {'node': '3', 'state': 'off'})
    del recording_bus.log[:]
    rc, result = run_module(power, {'node': '3', 'state': 'off'})
    assert rc == 0 and not result['changed']
    assert recording_bus.writes() == []
    # it read the control register, never built anything from the status register alone
    assert ('read', DS, 0xF2, 3) in recording_bus.log


def test_check_mode_writes_nothing(recording_bus, run_module):
    rc, result = run_module(power, {'node': ['workers'], 'state': 'off'}, check_mode=True, diff=True)
    assert rc == 0 and result['changed']
    assert recording_bus.writes() == []
    assert result['power_register'] == '0x03'
    assert 'node7: on' in result['diff']['before'] and 'node7: off' in result['diff']['after']
    assert 'running' not in result['nodes']['7']


def test_whole_board_in_one_write(recording_bus, run_module):
    rc, result = run_module(power, {'nodes': {'2': 'off', '5': False, '6': 'off', '7': 'on'}})
    assert rc == 0
    assert recording_bus.writes(reg=0xF2) == [('write', DS, 0xF2, [0x3B])]
    assert result['writes'] == 1


def test_persist_clears_see_before_writing(recording_bus, run_module):
    run_module(power, {'node': '4', 'state': 'off'})
    del recording_bus.log[:]
    rc, result = run_module(power, {'node': '4', 'state': 'off', 'persist': True})
    assert rc == 0 and result['changed']
    assert recording_bus.writes() == [('write', DS, 0xF4, [0x00]), ('write', DS, 0xF2, [0xEF])]


def test_restart_holds_off_then_on(recording_bus, run_module):
    rc, result = run_module(power, {'node': '6', 'state': 'restarted', 'off_time': 0})
    assert rc == 0 and result['restarted'] == [6]
    assert recording_bus.writes(reg=0xF2) == [('write', DS, 0xF2, [0xBF]), ('write', DS, 0xF2, [0xFF])]


def test_refusing_the_master_changes_nothing(recording_bus, run_module):
    rc, result = run_module(power, {'node': '1', 'state': 'off'})
    assert rc == 1 and result['failed']
    assert result['msg'].startswith('refusing to switch off node 1: it is the master')
    assert recording_bus.writes() == []


def test_refusing_all_off_changes_nothing(recording_bus, run_module):
    run_module(power, {'node': 'workers', 'state': 'off'})
    del recording_bus.log[:]
    rc, result = run_module(power, {'node': '1', 'state': 'off', 'force': False})
    assert rc == 1 and recording_bus.writes() == []


def test_bad_node_is_refused_before_the_bus_is_touched(recording_bus, run_module):
    rc, result = run_module(power, {'node': ['2', '9'], 'state': 'off'})
    assert rc == 1
    assert result['msg'] == 'node 9 does not exist: the Turing Pi V1 has slots 1 to 7'
    assert recording_bus.log == []


def test_node_and_nodes_are_exclusive(run_module):
    rc, result = run_module(power, {'node': '2', 'nodes': {'3': 'on'}})
    assert rc == 1 and 'mutually exclusive' in result['msg']


def test_missing_bus_device(run_module):
    rc, result = run_module(power, {'node': '2', 'state': 'off', 'bus': '/dev/i2c-77'})
    assert rc == 1
    assert result['msg'].startswith("/dev/i2c-77 not found: enable the Cluster Management Bus with 'dtoverlay=i2c1,pins_44_45'")


def test_missing_smbus2(run_module, monkeypatch):
    monkeypatch.setattr(_bus, 'smbus2', None)
    rc, result = run_module(power, {'node': '2', 'state': 'off'})
    assert rc == 1
    assert 'Failed to import the required Python library (smbus2)' in result['msg']


def test_readback_mismatch_is_an_error(recording_bus, run_module, monkeypatch):
    real_read = recording_bus._raw_read

    def lying_read(addr, reg, length):
        data = real_read(addr, reg, length)
        if reg == 0xF2 and recording_bus.writes(reg=0xF2):
            return [data[0] ^ 0x40]  # someone else flipped node 6
        return data

    monkeypatch.setattr(recording_bus, '_raw_read', lying_read)
    rc, result = run_module(power, {'node': '3', 'state': 'off'})
    assert rc == 1
    assert result['msg'].startswith('wrote 0xf7 to DS4520 register 0xf2 but read back 0xb7')
