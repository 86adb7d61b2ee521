# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _user_memory as memory
from ansible_collections.turingpi.cluster.plugins.modules import cmb_info, user_memory

OLD = {'name': 'rack-a', 'cluster': 'k3s'}
NEW = {'name': 'rack-b', 'cluster': 'k3s-lab', 'id': 7}
START = {'eeprom': (0x57, 0x00), 'sram': (0x6F, 0x20)}


def test_writes_whole_pages_in_eeprom_header_page_last(recording_bus, run_module):
    rc, result = run_module(user_memory, {'data': {'n': 1}})
    assert rc == 0 and result['changed']
    image = memory.encode('eeprom', {'n': 1})
    marked = [0x54, 0x50, 0x81] + list(image[3:8])  # 'TP', version 1 with WRITING set
    # 4 + 7 + 2 = 13 bytes: two 8-byte pages, each one write transaction; the header page is
    # first marked as being written and gets its final content last
    assert recording_bus.writes() == [('write', 0x57, 0x00, marked), ('write', 0x57, 0x08, list(image[8:16])),
                                      ('write', 0x57, 0x00, list(image[0:8]))]
    assert result['bytes'] == 13
    assert result['areas']['eeprom']['pages_written'] == [0, 8]
    assert result['areas']['eeprom']['page_writes'] == [0, 8, 0]


def test_only_changed_pages_are_rewritten(recording_bus, run_module):
    run_module(user_memory, {'data': {'name': 'rack-a'}, 'area': ['sram']})
    del recording_bus.log[:]
    rc, result = run_module(user_memory, {'data': {'name': 'rack-b'}, 'area': ['sram']})
    assert rc == 0
    assert [(w[1], w[2]) for w in recording_bus.writes()] == [(0x6F, 0x20 + 16)]
    assert result['areas']['sram']['pages_written'] == [16]


def test_check_mode_and_idempotence(recording_bus, run_module):
    rc, result = run_module(user_memory, {'data': 'x'}, check_mode=True)
    assert result['changed'] and recording_bus.writes() == []
    run_module(user_memory, {'data': 'x'})
    del recording_bus.log[:]
    rc, result = run_module(user_memory, {'data': 'x'})
    assert not result['changed'] and recording_bus.writes() == []


def test_too_big_changes_nothing(recording_bus, run_module):
    rc, result = run_module(user_memory, {'data': {'k': 'v' * 60}})
    assert rc == 1
    assert result['msg'].startswith('cannot store data in the eeprom: the data takes 68 bytes as JSON')
    assert recording_bus.log == []


def test_data_required_when_present(run_module):
    rc, result = run_module(user_memory, {'state': 'present'})
    assert rc == 1 and result['msg'] == 'state is present but all of the following are missing: data'


def fail_writes_after(recording_bus, monkeypatch, k):
    """From the (k+1)-th write transaction on, the bus answers no write (a dead bus, or a kill)."""
    real_write = recording_bus._raw_write
    done = [0]

    def write(addr, reg, data):
        if done[0] >= k:
            raise EnvironmentError(errno.EREMOTEIO, 'Remote I/O error')
        done[0] += 1
        return real_write(addr, reg, data)

    monkeypatch.setattr(recording_bus, '_raw_write', write)
    monkeypatch.setattr(recording_bus, 'retry_delay', 0)
    return lambda: monkeypatch.setattr(recording_bus, '_raw_write', real_write)


@pytest.mark.parametrize('area', ['eeprom', 'sram'])
def test_an_interrupted_write_leaves_the_old_record_or_a_torn_one_that_the_next_run_repairs(
        recording_bus, run_module, monkeypatch, area):
    run_module(user_memory, {'data': OLD, 'area': area})
    old = memory.read_image(recording_bus, area)
    plan = memory.plan_writes(area, old, memory.encode(area, NEW))
    assert [offset for offset, data in plan] == [0, 16, 24, 32, 40, 48, 0]  # page 8 holds the same bytes
    for k in range(len(plan)):
        memory.write_record(recording_bus, area, [(offset, old[offset:offset + 8]) for offset in range(0, 64, 8)], old)
        heal = fail_writes_after(recording_bus, monkeypatch, k)
        rc, result = run_module(user_memory, {'data': NEW, 'area': area})
        assert rc == 1 and result['msg'].startswith('no device answered at 0x%02x' % START[area][0])
        heal()
        rc, info = run_module(cmb_info, {'gather': ['user_memory']})
        read = info['user_memory'][area]
        if k == 0:
            assert (read['state'], read['data']) == ('valid', OLD)
        else:
            assert read['state'] == 'torn' and read['data'] is None
            assert read['reason'] == ('a write of this record was interrupted (its header still says it is being '
                                      'written): write it again with turingpi.cluster.user_memory')
        del recording_bus.log[:]
        rc, result = run_module(user_memory, {'data': NEW, 'area': area})
        assert rc == 0 and result['changed']
        assert result['areas'][area]['before']['state'] == ('valid' if k == 0 else 'torn')
        # the repair writes what is missing, the header page last
        assert result['areas'][area]['page_writes'][-1] == 0
        assert [w[2] - START[area][1] for w in recording_bus.writes()] == result['areas'][area]['page_writes']
        assert memory.decode(area, memory.read_image(recording_bus, area)) == {'state': 'valid', 'data': NEW}


def test_a_one_page_change_is_one_write(recording_bus, run_module):
    run_module(user_memory, {'data': OLD})
    del recording_bus.log[:]
    rc, result = run_module(user_memory, {'data': {'name': 'rack-b', 'cluster': 'k3s'}})
    assert rc == 0 and result['areas']['eeprom']['page_writes'] == [32]
    assert [w[2] for w in recording_bus.writes()] == [32]
