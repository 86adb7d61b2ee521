# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""Node power through the DS4520: read, plan, check safety, write, verify."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import CMBError, VerifyError

STATES = ('on', 'off', 'restarted')
_TRUE = ('on', 'true', 'yes', '1')
_FALSE = ('off', 'false', 'no', '0')


class PowerRefused(CMBError):
    pass


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
    """What has to be written to 0xF2 (and 0xF4) to reach the desired state."""

    def __init__(self, control, config, desired, persist):
        self.before = control
        self.config_before = config
        see_wanted = 0 if persist else board.DS4520_CONFIG_SEE
        self.config_after = (config & ~board.DS4520_CONFIG_SEE) | see_wanted
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

    @property
    def writes(self):
        """Values to write to 0xF2, in order."""
        values = []
        if self.off_phase is not None:
            values.append(self.off_phase)
        if self.after != self.before or self.commit_eeprom or self.off_phase is not None:
            values.append(self.after)
        return values

    @property
    def config_changes(self):
        return self.config_after != self.config_before

    @property
    def changed(self):
        return bool(self.writes) or self.config_changes

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


def _write_verified(bus, reg, value, eeprom):
    bus.write_byte(board.DS4520_ADDR, reg, value)
    if eeprom:
        bus.wait_ready(board.DS4520_ADDR, board.DS4520_EEPROM_WRITE_TIME * 2)
    readback = bus.read_byte(board.DS4520_ADDR, reg)
    if readback != value:
        raise VerifyError('wrote 0x%02x to DS4520 register 0x%02x but read back 0x%02x: another node or '
                          'the external header may be writing to the bus at the same time'
                          % (value, reg, readback))


def apply(bus, plan, off_time):
    """Carry out ``plan``: SEE first (so the 0xF2 write lands where asked), then 0xF2."""
    if plan.config_changes:
        _write_verified(bus, board.DS4520_REG_CONFIG, plan.config_after, eeprom=False)
    eeprom = not plan.config_after & board.DS4520_CONFIG_SEE
    writes = plan.writes
    for index, value in enumerate(writes):
        if index:
            time.sleep(off_time)
        _write_verified(bus, board.DS4520_REG_IO_CONTROL0, value, eeprom)


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
