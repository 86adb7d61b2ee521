# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.turingpi.cluster.plugins.module_utils import _user_memory as memory
from ansible_collections.turingpi.cluster.plugins.modules import user_memory


def test_writes_whole_pages_in_eeprom(recording_bus, run_module):
    rc, result = run_module(user_memory, {'data': {'n': 1}})
    assert rc == 0 and result['changed']
    image = memory.encode('eeprom', {'n': 1})
    # 4 + 7 + 2 = 13 bytes: two 8-byte pages, each one write transaction
    assert recording_bus.writes() == [('write', 0x57, 0x00, list(image[0:8])), ('write', 0x57, 0x08, list(image[8:16]))]
    assert result['bytes'] == 13


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
