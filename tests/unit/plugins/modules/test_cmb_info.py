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


def dead_devices(recording_bus, monkeypatch, *addresses):
    """The devices at ``addresses`` acknowledge nothing: no read, no probe."""
    real_read, real_probe = recording_bus._raw_read, recording_bus._raw_probe

    def read(addr, reg, length):
        if addr in addresses:
            raise EnvironmentError(121, 'Remote I/O error')
        return real_read(addr, reg, length)

    def probe(addr):
        if addr in addresses:
            raise EnvironmentError(121, 'Remote I/O error')
        return real_probe(addr)

    monkeypatch.setattr(recording_bus, '_raw_read', read)
    monkeypatch.setattr(recording_bus, '_raw_probe', probe)
    monkeypatch.setattr(recording_bus, 'retry_delay', 0)


def test_an_expander_that_does_not_answer_does_not_hide_the_rest(recording_bus, run_module, monkeypatch):
    run_module(user_memory, {'data': {'name': 'b1'}, 'area': ['sram']})
    dead_devices(recording_bus, monkeypatch, 0x57)
    rc, result = run_module(cmb_info, {})
    assert rc == 0 and not result['changed']
    assert result['devices'] == {'io_expander': False, 'rtc': True, 'switch': True, 'switch_address': '0x5c'}
    assert result['nodes']['3'] == {'power': None, 'running': None, 'populated': None}
    assert result['registers'] is None and result['persistent'] is None
    expected = ('no device answered at 0x57 on virtual board %s after 6 attempts (Remote I/O error): check that this '
                'node is on a Turing Pi V1 and that the bus is the Cluster Management Bus' % recording_bus.path)
    assert result['unavailable'] == {'power': expected, 'user_memory.eeprom': expected}
    assert result['user_memory']['eeprom'] == {'state': 'unreadable', 'data': None, 'error': expected}
    assert result['user_memory']['sram']['data'] == {'name': 'b1'}
    assert result['rtc']['oscillator_running'] is False and 'error' not in result['rtc']


def test_only_the_power_part_asked_still_says_what_answers(recording_bus, run_module, monkeypatch):
    dead_devices(recording_bus, monkeypatch, 0x57)
    rc, result = run_module(cmb_info, {'gather': ['power']})
    assert rc == 0
    assert sorted(result['unavailable']) == ['power']
    assert result['devices']['rtc'] and not result['devices']['io_expander']


def test_nothing_answering_fails_with_advice(recording_bus, run_module, monkeypatch):
    dead_devices(recording_bus, monkeypatch, 0x57, 0x6F, 0x5C, 0x04)
    rc, result = run_module(cmb_info, {})
    assert rc == 1
    assert result['msg'] == ('nothing answered on virtual board %s: no I/O expander at 0x57, no RTC at 0x6f, no switch '
                             'at 0x5c or 0x04: check that this node is on a Turing Pi V1 and that bus is its Cluster '
                             'Management Bus' % recording_bus.path)
    assert sorted(result['unavailable']) == ['power', 'rtc', 'user_memory.eeprom', 'user_memory.sram']
