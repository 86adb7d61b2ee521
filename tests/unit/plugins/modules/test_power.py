# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.power through main(): the exact transactions on the bus."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _bus
from ansible_collections.turingpi.cluster.plugins.module_utils import _power
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


def test_missing_bus_device(run_module, tmp_path, monkeypatch):
    monkeypatch.setattr(_bus, 'DEV_DIR', str(tmp_path))  # bus 77 is then a path this test owns
    monkeypatch.setattr(_bus, 'smbus2', object())
    rc, result = run_module(power, {'node': '2', 'state': 'off', 'bus': '77'})
    assert rc == 1
    assert result['msg'].startswith("%s/i2c-77 not found: enable the Cluster Management Bus with 'dtoverlay=i2c1,pins_44_45'"
                                    % tmp_path)


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


def test_no_power_change_writes_nothing_not_even_see(recording_bus, run_module):
    # A board fresh from the factory has SEE = 0; node 3 is already on.
    rc, result = run_module(power, {'node': '3', 'state': 'on'})
    assert rc == 0 and not result['changed']
    assert recording_bus.log == [('read', DS, 0xF2, 3), ('read', DS, 0xF8, 1)]
    assert result['writes'] == 0


@pytest.mark.parametrize('off_time', ['nan', 'inf', '-inf', '1e300', 301, -1])
def test_off_time_out_of_range_is_refused_before_the_bus_is_touched(recording_bus, run_module, off_time):
    rc, result = run_module(power, {'node': '6', 'state': 'restarted', 'off_time': off_time})
    assert rc == 1
    assert result['msg'] == 'off_time must be from 0 to 300 seconds, not %s' % float(off_time)
    assert recording_bus.log == []


class FailingSleep(object):
    """Stands in for the time module in _power: the hold between off and on fails."""

    @staticmethod
    def sleep(seconds):
        raise OverflowError('sleep length is too large')


def test_a_restart_that_fails_while_off_switches_the_node_back_on(recording_bus, run_module, monkeypatch):
    monkeypatch.setattr(_power, 'time', FailingSleep)
    rc, result = run_module(power, {'node': '6', 'state': 'restarted', 'off_time': 1})
    assert rc == 1
    assert result['msg'] == 'restarting node 6 failed (sleep length is too large): switched node 6 back on (0xF2 = 0xff)'
    assert recording_bus.writes(reg=0xF2) == [('write', DS, 0xF2, [0xBF]), ('write', DS, 0xF2, [0xFF])]
    assert recording_bus.read_byte(DS, 0xF2) == 0xFF


def nack_writes_of(recording_bus, monkeypatch, value, times):
    """The first ``times`` writes of ``value`` to 0xF2 are not acknowledged."""
    real_write = recording_bus._raw_write
    left = [times]

    def nacking(addr, reg, data):
        if reg == 0xF2 and list(data) == [value] and left[0] > 0:
            left[0] -= 1
            recording_bus.log.append(('nack', addr, reg, list(data)))
            raise EnvironmentError(errno.EREMOTEIO, 'Remote I/O error')
        return real_write(addr, reg, data)

    monkeypatch.setattr(recording_bus, '_raw_write', nacking)
    monkeypatch.setattr(recording_bus, 'retry_delay', 0)


def test_a_restart_whose_on_write_fails_is_switched_on_again(recording_bus, run_module, monkeypatch):
    nack_writes_of(recording_bus, monkeypatch, 0xFF, times=6)  # one write and its 5 retries
    rc, result = run_module(power, {'node': '6', 'state': 'restarted', 'off_time': 0})
    assert rc == 1
    assert result['msg'].startswith('restarting node 6 failed (no device answered at 0x57 on virtual board %s after 6 '
                                    'attempts (Remote I/O error): ' % recording_bus.path)
    assert result['msg'].endswith('): switched node 6 back on (0xF2 = 0xff)')
    # off, six unanswered attempts to switch it on, then the write that switched it back on
    assert [e for e in recording_bus.log if e[0] in ('write', 'nack') and e[2] == 0xF2] == (
        [('write', DS, 0xF2, [0xBF])] + [('nack', DS, 0xF2, [0xFF])] * 6 + [('write', DS, 0xF2, [0xFF])])
    assert recording_bus.read_byte(DS, 0xF2) == 0xFF


def test_a_restart_that_cannot_switch_back_on_says_the_node_may_be_off(recording_bus, run_module, monkeypatch):
    nack_writes_of(recording_bus, monkeypatch, 0xFF, times=12)
    rc, result = run_module(power, {'node': '6', 'state': 'restarted', 'off_time': 0})
    assert rc == 1
    assert result['msg'].startswith('restarting node 6 failed (no device answered at 0x57')
    assert ', and switching node 6 back on failed too (no device answered at 0x57' in result['msg']
    assert result['msg'].endswith('): node 6 may be off; switch node 6 on with turingpi.cluster.power (state: on)')
    assert recording_bus.read_byte(DS, 0xF2) == 0xBF


def test_a_missing_virtual_board_is_not_created(run_module, tmp_path):
    path = str(tmp_path / 'missing' / 'dir' / 'board.json')
    rc, result = run_module(power, {'node': '2', 'state': 'off', 'bus': 'virtual:' + path})
    assert rc == 1
    assert result['msg'] == (
        'virtual board %s does not exist (nor does its directory %s): only turingpi.cluster.virtual_board creates '
        'boards, so run it first with path: %s; nothing was written' % (path, os.path.dirname(path), path))
    assert os.listdir(str(tmp_path)) == []


def test_a_lock_file_that_is_a_directory_fails_with_advice(recording_bus, run_module, tmp_path):
    rc, result = run_module(power, {'node': '2', 'state': 'off', 'lock_file': str(tmp_path)})
    assert rc == 1
    assert result['msg'] == ('lock_file %s is a directory: set lock_file to the path of a file (it is created if '
                             'missing), or leave it unset for the default' % tmp_path)
    assert recording_bus.log == []
