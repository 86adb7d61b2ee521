# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""vcgencmd get_throttled decoded: under-voltage now (bit 0) and since boot (bit 16), the other
flags named, and every way a node cannot tell (not installed, no VideoCore, odd output) reported
as unreadable, never as under-voltage."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.turingpi.cluster.plugins.filter.throttled import throttled


def ran(stdout='', rc=0, stderr='', msg=''):
    """A registered ansible.builtin.command result."""
    return {'rc': rc, 'stdout': stdout, 'stderr': stderr, 'msg': msg, 'changed': False}


def test_no_flag():
    flags = throttled(ran('throttled=0x0\n'))
    assert flags['readable'] and flags['value'] == 0
    assert not flags['under_voltage'] and not flags['under_voltage_occurred'] and not flags['under_voltage_seen']
    assert flags['flags'] == []
    assert flags['message'] == 'throttled=0x0: no flag set'


def test_under_voltage_now_and_since_boot():
    flags = throttled(ran('throttled=0x50005'))
    assert flags['value'] == 0x50005
    assert flags['under_voltage'] and flags['under_voltage_occurred'] and flags['under_voltage_seen']
    assert flags['flags'] == ['under-voltage detected', 'currently throttled', 'under-voltage has occurred',
                              'throttling has occurred']
    assert flags['message'].startswith('throttled=0x50005: under-voltage detected, ')


@pytest.mark.parametrize('value, now, since', [(0x1, True, False), (0x10000, False, True), (0x10001, True, True)])
def test_each_under_voltage_bit(value, now, since):
    flags = throttled(ran('throttled=%s' % hex(value)))
    assert (flags['under_voltage'], flags['under_voltage_occurred'], flags['under_voltage_seen']) == (now, since, True)


@pytest.mark.parametrize('value, name', [(0x2, 'arm frequency capped'), (0x8, 'soft temperature limit active'),
                                         (0x20000, 'arm frequency capping has occurred'),
                                         (0x80000, 'soft temperature limit has occurred')])
def test_other_flags_are_no_under_voltage(value, name):
    flags = throttled(ran('throttled=%s' % hex(value)))
    assert flags['flags'] == [name] and not flags['under_voltage_seen']


def test_a_string_and_a_decimal_value():
    assert throttled('throttled=65536')['under_voltage_occurred']
    assert throttled(u'throttled=0x0')['readable']


@pytest.mark.parametrize('result, reason', [
    # ansible.builtin.command when the binary does not exist
    (ran(rc=2, msg="[Errno 2] No such file or directory: b'vcgencmd'"), 'vcgencmd is not installed'),
    # ansible-core 2.19: the errno as rc, the details only in the exception
    (ran(rc=2, msg='Error executing command.'), 'vcgencmd is not installed'),
    (ran(rc=13, msg='Error executing command.'), 'vcgencmd could not be run (Error executing command., error 13)'),
    (ran(rc=127, stderr='sh: 1: vcgencmd: not found'), 'vcgencmd is not installed'),
    # vcgencmd's own exit status -1 when it cannot open the VideoCore
    (ran(rc=255, stderr='VCHI initialization failed'), 'cannot reach the VideoCore (VCHI initialization failed)'),
    (ran(rc=255, msg='non-zero return code'), 'cannot reach the VideoCore (exit status 255)'),
    (ran(rc=1, stderr='boom', msg='non-zero return code'), 'failed with exit status 1: boom'),
    (ran('error=1 error_msg="Command not registered"'), "printed 'error=1"),
    ({'skipped': True, 'changed': False}, 'the command was skipped'),
    (None, 'expected the result of vcgencmd get_throttled'),
])
def test_unreadable_is_never_under_voltage(result, reason):
    flags = throttled(result)
    assert not flags['readable'] and flags['value'] is None and not flags['under_voltage_seen']
    assert flags['message'].startswith('under-voltage flags not read: ')
    assert reason in flags['message']
