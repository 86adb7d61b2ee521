# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.turingpi.cluster.plugins.modules import cmb_info, power, user_memory


def test_reads_everything_and_writes_nothing(recording_bus, run_module):
    run_module(power, {'nodes': {'4': 'off'}})
    run_module(user_memory, {'data': {'name': 'b1'}})
    del recording_bus.log[:]
    rc, result = run_module(cmb_info, {})
    assert rc == 0 and not result['changed']
    assert recording_bus.writes() == []
    assert result['nodes']['4'] == {'power': 'off', 'running': False, 'populated': None}
    assert result['nodes']['5'] == {'power': 'on', 'running': True, 'populated': True}
    assert result['registers'] == {'control': '0xef', 'config': '0x01', 'status': '0xee'}
    assert result['devices'] == {'io_expander': True, 'rtc': True, 'switch': True, 'switch_address': '0x5c'}
    assert result['user_memory']['eeprom']['data'] == {'name': 'b1'}
    assert result['user_memory']['sram']['state'] == 'empty'
    assert result['rtc']['oscillator_running'] is False


def test_gather_subset(recording_bus, run_module):
    rc, result = run_module(cmb_info, {'gather': ['power']})
    assert 'rtc' not in result and 'devices' not in result
    assert all(entry[1] == 0x57 for entry in recording_bus.log)


def test_a_clock_that_does_not_answer_does_not_hide_the_rest(recording_bus, run_module, monkeypatch):
    real_read = recording_bus._raw_read

    def dead_rtc(addr, reg, length):
        if addr == 0x6F:
            raise EnvironmentError(121, 'Remote I/O error')
        return real_read(addr, reg, length)

    monkeypatch.setattr(recording_bus, '_raw_read', dead_rtc)
    monkeypatch.setattr(recording_bus, 'retry_delay', 0)
    rc, result = run_module(cmb_info, {})
    assert rc == 0
    assert result['rtc']['error'].startswith('no device answered at 0x6f')
    assert result['user_memory']['sram']['state'] == 'unreadable'
    assert result['user_memory']['eeprom']['state'] == 'empty'
    assert result['nodes']['1']['power'] == 'on'
