# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _power as power

SEE = 0x01


@pytest.mark.parametrize('control, config, desired, persist, writes, config_after', [
    # already in state, volatile: nothing to write
    (0xFF, SEE, {3: 'on'}, False, [], SEE),
    # node 3 off: one write, bit 0x08 cleared, bit 0 kept
    (0xFF, SEE, {3: 'off'}, False, [0xF7], SEE),
    # several nodes, one write; nodes 5-7 are the reversed bits
    (0xFF, SEE, {5: 'off', 6: 'off', 7: 'off'}, False, [0x1F], SEE),
    # volatile wanted but SEE is 0: set SEE first, then write
    (0xFF, 0x00, {2: 'off'}, False, [0xFB], SEE),
    # volatile wanted, SEE 0, already in state: SEE is set only before a 0xF2 write, so nothing
    (0xFB, 0x00, {2: 'off'}, False, [], 0x00),
    # persistent wanted after volatile writes: the EEPROM copy is unknown, so commit it
    (0xFB, SEE, {2: 'off'}, True, [0xFB], 0x00),
    # persistent and SEE already 0: the EEPROM copy equals the shadow
    (0xFB, 0x00, {2: 'off'}, True, [], 0x00),
    # restart a running node: off, then on again
    (0xFF, SEE, {4: 'restarted'}, False, [0xEF, 0xFF], SEE),
    # restart a node that is off: just switch it on
    (0xEF, SEE, {4: 'restarted'}, False, [0xFF], SEE),
    # mixed: the off phase carries the other changes too
    (0xFF, SEE, {4: 'restarted', 2: 'off'}, False, [0xEB, 0xFB], SEE),
])
def test_plan(control, config, desired, persist, writes, config_after):
    plan = power.PowerPlan(control, config, desired, persist)
    assert plan.writes == writes
    assert plan.config_after == config_after
    assert plan.changed == bool(writes)
    assert plan.config_changes == (config_after != config)


@pytest.mark.parametrize('value', [0, 0.2, 2, '2.5', 300])
def test_off_time_in_range(value):
    assert power.check_off_time(value) == float(value)


@pytest.mark.parametrize('value', [float('nan'), float('inf'), float('-inf'), 1e300, 300.001, -0.5, 'nan'])
def test_off_time_out_of_range(value):
    with pytest.raises(ValueError) as exc:
        power.check_off_time(value)
    assert str(exc.value) == 'off_time must be from 0 to 300 seconds, not %s' % value


def test_off_time_not_a_number():
    with pytest.raises(ValueError) as exc:
        power.check_off_time('soon')
    assert str(exc.value) == "off_time must be a number of seconds, not 'soon'"


def test_plan_never_looks_at_status():
    # Built from 0xF2 only: an empty slot that is powered stays powered.
    plan = power.PowerPlan(0xFF, SEE, {3: 'off'}, False)
    assert plan.after == 0xF7


@pytest.mark.parametrize('control, desired, message', [
    (0xFF, {1: 'off'}, 'refusing to switch off node 1'),
    (0xFF, {1: 'restarted'}, 'refusing to switch off node 1'),
    (0x05, {2: 'off'}, 'refusing to switch off every node'),
])
def test_refusals(control, desired, message):
    plan = power.PowerPlan(control, SEE, desired, False)
    with pytest.raises(power.PowerRefused) as exc:
        plan.check_safety(force=False)
    assert str(exc.value).startswith(message)
    assert 'force: true' in str(exc.value)
    plan.check_safety(force=True)


def test_master_already_off_is_not_refused():
    plan = power.PowerPlan(0xFD, SEE, {1: 'off', 2: 'on'}, False)
    plan.check_safety(force=False)
    assert plan.writes == []


@pytest.mark.parametrize('value, state', [(True, 'on'), (False, 'off'), ('on', 'on'), ('OFF', 'off'), ('yes', 'on'),
                                          ('restarted', 'restarted')])
def test_yaml_booleans_become_states(value, state):
    assert power.normalize_state(value, 'node 2') == state


def test_desired_from_nodes_dict():
    assert power.desired_from_params(None, 'on', {'2': True, 3: 'off', 'node4': 'restarted'}) == {
        2: 'on', 3: 'off', 4: 'restarted'}


def test_desired_rejects_bad_state():
    with pytest.raises(ValueError) as exc:
        power.desired_from_params(None, 'on', {'2': 'sideways'})
    assert str(exc.value) == "node 2: state 'sideways' is not one of on, off, restarted"
