#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: virtual_board
short_description: Create, inspect and power-cycle a virtual Turing Pi V1 board
version_added: 1.0.0
description:
  - Manages the state file of the virtual Turing Pi V1 board, the register-level model of the
    board's DS4520 I/O expander, MCP7940N clock and switch that the CMB modules use when given
    O(turingpi.cluster.power#module:bus=virtual:/path/to/board.json).
  - For tests, demos and labs without hardware. It never touches a real bus.
  - It is the only module that creates a board. The CMB modules fail on a state file that does not
    exist, and write nothing.
  - The board is modelled after the chips' datasheets, including the EEPROM write cycle, the
    SEE shadow, the read-only status register and a clock that keeps running between runs.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  path:
    description: The board's state file.
    type: path
    required: true
  state:
    description:
      - V(present) creates the board fresh from the factory (every node on) if it does not exist,
        and applies the hardware options below.
      - V(absent) removes it.
      - V(power_cycled) takes the whole board's power away for O(off_seconds) and gives it back.
        The power register reloads from EEPROM, and the clock keeps time only with battery backup.
      - V(reset) replaces it with a board fresh from the factory.
    type: str
    choices: [present, absent, power_cycled, reset]
    default: present
  populated:
    description: The slots that hold a compute module. Only these show as running in the status register.
    type: list
    elements: int
  battery:
    description: Whether the RTC's CR2032 cell is fitted and charged.
    type: bool
  see_persists:
    description: Whether the DS4520's SEE bit survives a board power cycle (the board's documentation does not say).
    type: bool
  rtc_driver_bound:
    description: Make the RTC behave as if the kernel's RTC driver held it (plain I2C access fails with EBUSY).
    type: bool
  off_seconds:
    description: How long the board is without power for O(state=power_cycled).
    type: float
    default: 1.0
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.NO_DIFF
attributes:
  idempotent:
    support: partial
    details:
      - V(power_cycled) and V(reset) always change.
'''

EXAMPLES = r'''
- name: A virtual board with modules in slots 1, 2, 3 and 5
  turingpi.cluster.virtual_board:
    path: /tmp/turingpi-board.json
    populated: [1, 2, 3, 5]

- name: Pull the plug for two seconds
  turingpi.cluster.virtual_board:
    path: /tmp/turingpi-board.json
    state: power_cycled
    off_seconds: 2
'''

RETURN = r'''
registers:
  description: The DS4520's control (0xF2), configuration (0xF4) and status (0xF8) registers, and the EEPROM copy of 0xF2.
  returned: when the board exists
  type: dict
  sample: {control: '0xff', config: '0x00', status: '0xfe', control_eeprom: '0xff'}
writes:
  description: Write transactions the DS4520 has seen, by register (decimal string keys), since the board was created.
  returned: when the board exists
  type: dict
  sample: {"242": 3}
eeprom_cycles:
  description: EEPROM write cycles the DS4520 has spent since the board was created.
  returned: when the board exists
  type: int
populated:
  description: The populated slots.
  returned: when the board exists
  type: list
  elements: int
'''

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils import _virtual_board as vb
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import CMBError

HARDWARE_OPTIONS = ('populated', 'battery', 'see_persists', 'rtc_driver_bound')


def describe(state):
    vboard = vb.VirtualBoard(state)
    ds = state['ds4520']
    return dict(
        registers=dict(
            control='0x%02x' % vboard.read(board.DS4520_ADDR, board.DS4520_REG_IO_CONTROL0, 1)[0],
            config='0x%02x' % vboard.read(board.DS4520_ADDR, board.DS4520_REG_CONFIG, 1)[0],
            status='0x%02x' % vboard.read(board.DS4520_ADDR, board.DS4520_REG_IO_STATUS0, 1)[0],
            control_eeprom='0x%02x' % ds['nv'][board.DS4520_REG_IO_CONTROL0],
        ),
        writes=dict(ds['writes']),
        eeprom_cycles=ds['eeprom_cycles'],
        populated=state['populated'],
    )


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            state=dict(type='str', choices=['present', 'absent', 'power_cycled', 'reset'], default='present'),
            populated=dict(type='list', elements='int'),
            battery=dict(type='bool'),
            see_persists=dict(type='bool'),
            rtc_driver_bound=dict(type='bool'),
            off_seconds=dict(type='float', default=1.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    path = params['path']
    if params['populated'] is not None:
        bad = [n for n in params['populated'] if n not in board.NODES]
        if bad:
            module.fail_json(msg='populated: %s not a slot of the Turing Pi V1 (1 to 7)' % ', '.join(str(n) for n in bad))
        params['populated'] = sorted(set(params['populated']))

    if params['state'] == 'absent':
        exists = os.path.exists(path)
        if exists and not module.check_mode:
            for name in (path, path + '.tx', path + '.lock'):
                if os.path.exists(name):
                    os.remove(name)
        module.exit_json(changed=exists)

    changed = not os.path.exists(path) or params['state'] in ('power_cycled', 'reset')
    try:
        with vb.transaction(path, create=True) as vboard:
            if params['state'] == 'reset':
                vboard.state = vb.default_state()
            for option in HARDWARE_OPTIONS:
                if params[option] is not None and vboard.state.get(option) != params[option]:
                    vboard.state[option] = params[option]
                    changed = True
            if params['state'] == 'power_cycled':
                vboard.power_cycle(params['off_seconds'])
            result = describe(vboard.state)
            if module.check_mode:
                raise _CheckModeAbort()
    except _CheckModeAbort:
        pass
    except (CMBError, EnvironmentError, ValueError) as exc:
        module.fail_json(msg='virtual board %s: %s' % (path, exc))
    module.exit_json(changed=changed, **result)


class _CheckModeAbort(Exception):
    """Leaves the transaction without saving."""


if __name__ == '__main__':
    main()
