# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.turingpi.cluster.plugins.modules import rtc

RTC = 0x6F


def test_sets_a_stopped_clock_like_the_linux_driver(recording_bus, run_module):
    rc, result = run_module(rtc, {})
    assert rc == 0 and result['changed'] and result['time_set']
    writes = recording_bus.writes(addr=RTC)
    # the clock was stopped: minutes..year with VBATEN, then seconds with ST
    assert [(w[2], len(w[3])) for w in writes] == [(0x01, 6), (0x00, 1)]
    assert writes[0][3][2] & 0x08  # VBATEN in the weekday register
    assert writes[1][3][0] & 0x80  # ST
    assert result['after']['oscillator_running'] and abs(result['after']['drift_seconds']) < 1


def test_running_clock_is_stopped_first(recording_bus, run_module):
    run_module(rtc, {'time': '2030-01-01 00:00:00', 'tolerance': 5})
    del recording_bus.log[:]
    rc, result = run_module(rtc, {})
    writes = recording_bus.writes(addr=RTC)
    assert writes[0][2] == 0x00 and not writes[0][3][0] & 0x80  # ST cleared first
    assert writes[-1][2] == 0x00 and writes[-1][3][0] & 0x80  # and set last


def test_in_tolerance_changes_nothing(recording_bus, run_module):
    run_module(rtc, {})
    del recording_bus.log[:]
    rc, result = run_module(rtc, {'tolerance': 5})
    assert rc == 0 and not result['changed'] and recording_bus.writes() == []


def test_check_mode_writes_nothing(recording_bus, run_module):
    rc, result = run_module(rtc, {}, check_mode=True)
    assert result['changed'] and recording_bus.writes() == []


def test_bad_time(run_module):
    rc, result = run_module(rtc, {'time': 'tomorrow'})
    assert rc == 1 and result['msg'] == "time 'tomorrow' is not a UTC time like 2026-01-01 00:00:00"
