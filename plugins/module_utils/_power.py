# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""Node power through the DS4520: read, plan, check safety, write, verify."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import math
import time

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import CMBError, VerifyError

STATES = ('on', 'off', 'restarted')
_TRUE = ('on', 'true', 'yes', '1')
_FALSE = ('off', 'false', 'no', '0')


# A restarted node is held off this long at most (and at least): the lock is held meanwhile.
OFF_TIME_MIN = 0.0
OFF_TIME_MAX = 300.0


class PowerRefused(CMBError):
    pass


class RestartFailed(CMBError):
    """A restart failed after its nodes were switched off; the message says what they were left in."""


def normalize_state(value, what):
    """'on' / 'off' / 'restarted' for a state that YAML may have turned into a boolean."""
    if isinstance(value, bool):
        return 'on' if value else 'off'
    text = str(value).strip().lower()
    if text in _TRUE:
        return 'on'
    if text in _FALSE:
        return 'off'
    if text == 'restarted':
        return 'restarted'
    raise ValueError("%s: state '%s' is not one of on, off, restarted" % (what, value))


def desired_from_params(node, state, nodes):
    """{node number: state} from either ``node`` + ``state`` or the ``nodes`` dict."""
    desired = {}
    if nodes is not None:
        for key, value in nodes.items():
            number = board.parse_node(key)
            desired[number] = normalize_state(value, 'node %s' % key)
    else:
        for number in board.expand_nodes(node):
            desired[number] = normalize_state(state, 'node %s' % number)
    if not desired:
        raise ValueError('no node given: set node (a slot 1-7, a list, all or workers) or nodes')
    return desired


class PowerPlan(object):
    """What has to be written to 0xF2 (and 0xF4) to reach the desired state.

    SEE (0xF4) is written only right before a write to 0xF2, so ``changed`` means that the
    power state (or its EEPROM copy) changed, never that SEE alone did.
    """

    def __init__(self, control, config, desired, persist):
        self.before = control
        self.config_before = config
        target = control
        restart = []
        for node, state in desired.items():
            bit = board.NODE_MASK[node]
            if state == 'off':
                target &= ~bit
            elif state == 'on' or not control & bit:
                target |= bit  # restarting a node that is off just switches it on
            else:
                restart.append(node)
        self.restart_nodes = sorted(restart)
        self.after = target
        # While restarting, the restarted nodes are held off.
        self.off_phase = target & ~board.mask_of(restart) if restart else None
        # SEE was 1: the EEPROM copy of 0xF2 may differ from the shadow we read, so a
        # persistent run has to write it even when the shadow already matches.
        self.commit_eeprom = bool(persist and config & board.DS4520_CONFIG_SEE)
        self.writes = []  # values to write to 0xF2, in order
        if self.off_phase is not None:
            self.writes.append(self.off_phase)
        if self.after != self.before or self.commit_eeprom or self.off_phase is not None:
            self.writes.append(self.after)
        see_wanted = 0 if persist else board.DS4520_CONFIG_SEE
        self.config_after = (config & ~board.DS4520_CONFIG_SEE) | see_wanted if self.writes else config

    @property
    def config_changes(self):
        return self.config_after != self.config_before

    @property
    def changed(self):
        return bool(self.writes)

    def check_safety(self, force):
        if force:
            return
        master = board.NODE_MASK[board.MASTER_NODE]
        if self.before & master and any(not value & master for value in self.writes):
            raise PowerRefused(
                'refusing to switch off node %d: it is the master, and usually the node running this '
                'module, so nothing could switch it back on. Set force: true if you mean it'
                % board.MASTER_NODE)
        if self.writes and not self.after & board.ALL_NODES_MASK:
            raise PowerRefused(
                'refusing to switch off every node: nothing on the board could switch one back on '
                '(one user needed an external I2C controller to recover). Set force: true if you mean it')


def read_state(bus):
    """(control 0xF2, config 0xF4, status 0xF8): 0xF2-0xF4 in one sequential read."""
    control, dummy, config = bus.read(board.DS4520_ADDR, board.DS4520_REG_IO_CONTROL0, 3)
    status = bus.read_byte(board.DS4520_ADDR, board.DS4520_REG_IO_STATUS0)
    return control, config, status


def check_off_time(value):
    """``off_time`` as a float, or ValueError: checked before anything is read or written."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError('off_time must be a number of seconds, not %r' % (value,))
    if not math.isfinite(seconds) or not OFF_TIME_MIN <= seconds <= OFF_TIME_MAX:
        raise ValueError('off_time must be from %g to %g seconds, not %s' % (OFF_TIME_MIN, OFF_TIME_MAX, value))
    return seconds


def _write_verified(bus, reg, value, eeprom):
    bus.write_byte(board.DS4520_ADDR, reg, value)
    if eeprom:
        bus.wait_ready(board.DS4520_ADDR)
    readback = bus.read_byte(board.DS4520_ADDR, reg)
    if readback != value:
        raise VerifyError('wrote 0x%02x to DS4520 register 0x%02x but read back 0x%02x: another node or '
                          'the external header may be writing to the bus at the same time'
                          % (value, reg, readback))


def apply(bus, plan, off_time):
    """Carry out ``plan``: SEE first (so the 0xF2 write lands where asked), then 0xF2.

    A restart that fails while its nodes are off (the hold, the write that switches them on,
    its verification) switches them back on before it reports the failure.
    """
    if not plan.writes:
        return
    if plan.config_changes:
        _write_verified(bus, board.DS4520_REG_CONFIG, plan.config_after, eeprom=False)
    eeprom = not plan.config_after & board.DS4520_CONFIG_SEE
    if not plan.restart_nodes:
        _write_verified(bus, board.DS4520_REG_IO_CONTROL0, plan.after, eeprom)
        return
    try:
        _write_verified(bus, board.DS4520_REG_IO_CONTROL0, plan.off_phase, eeprom)
        time.sleep(off_time)
        _write_verified(bus, board.DS4520_REG_IO_CONTROL0, plan.after, eeprom)
    except Exception as exc:  # anything at all: the nodes must not be left off
        _switch_back_on(bus, plan, eeprom, exc)


def _switch_back_on(bus, plan, eeprom, exc):
    nodes = plan.restart_nodes
    named = '%s %s' % ('node' if len(nodes) == 1 else 'nodes', ', '.join(str(n) for n in nodes))
    why = 'restarting %s failed (%s)' % (named, exc)
    try:
        _write_verified(bus, board.DS4520_REG_IO_CONTROL0, plan.after, eeprom)
    except Exception as again:  # reported with the state the nodes may be left in
        raise RestartFailed('%s, and switching %s back on failed too (%s): %s may be off; switch %s on with '
                            'turingpi.cluster.power (state: on)' % (why, named, again, named, named))
    raise RestartFailed('%s: switched %s back on (0xF2 = 0x%02x)' % (why, named, plan.after))


def describe(control, status=None):
    """{'1': {'power': 'on', 'running': True}, ...} for module results."""
    result = {}
    for node in board.NODES:
        entry = {'power': 'on' if control & board.NODE_MASK[node] else 'off'}
        if status is not None:
            entry['running'] = bool(status & board.NODE_MASK[node])
        result[str(node)] = entry
    return result


def power_text(control):
    return ''.join('node%d: %s\n' % (node, state) for node, state in sorted(board.power_map(control).items()))
