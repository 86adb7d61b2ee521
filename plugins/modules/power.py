#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: power
short_description: Switch Turing Pi V1 compute module slots on and off
version_added: 1.0.0
description:
  - Switches the power of the board's seven compute module slots through the DS4520 I/O expander
    on the Cluster Management Bus (register 0xF2).
  - Reads the register first and writes only when a bit differs, all nodes in one write, then reads
    it back and verifies. Never builds the value from the status register.
  - Safe by default. Refuses to switch off node 1 (the master) and to leave every node off, unless
    O(force=true).
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  node:
    description:
      - The node or nodes to act on, by slot number V(1) to V(7).
      - V(all) means every slot, V(workers) means slots 2 to 7.
      - Mutually exclusive with O(nodes).
    type: list
    elements: str
  state:
    description:
      - The power state for O(node).
      - V(restarted) switches a node off, holds it off for O(off_time) seconds and switches it on
        again (a node that is off is only switched on). It always reports a change.
      - If anything fails while a restarted node is off, the module switches it back on before it
        fails, and its message says whether that worked.
    type: str
    choices: ['on', 'off', 'restarted']
    default: 'on'
  nodes:
    description:
      - The whole board at once, as a mapping of slot number to V(on), V(off) or V(restarted).
      - Every change is written in one bus write.
      - Mutually exclusive with O(node).
    type: dict
  persist:
    description:
      - V(false) writes the volatile shadow register only (the DS4520's SEE bit set). The board
        powers up as before after it loses power, and the EEPROM is not worn.
      - The SEE bit (register 0xF4) is written only right before a write to 0xF2, so a run that
        needs no power change writes nothing and reports no change.
      - V(true) writes the EEPROM too, so the board powers up in this state. Each write costs one
        of the chip's about 50,000 EEPROM cycles; a restart costs two.
    type: bool
    default: false
  off_time:
    description:
      - Seconds a restarted node is held off, from V(0) to V(300). Checked before anything is written.
      - The bus lock is held meanwhile, so other plays on this node wait that long for the bus.
      - No minimum off time is documented for the board; community scripts hold a node off 1 to 2 seconds.
    type: float
    default: 2.0
  force:
    description:
      - Allow switching off node 1 (the master) and leaving every node off.
      - A board left with every node off in its EEPROM cannot boot any node again without an
        external I2C controller on the board's header.
    type: bool
    default: false
extends_documentation_fragment:
  - turingpi.cluster._cmb
  - turingpi.cluster._cmb.ACTIONGROUP_CMB
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.FULL
attributes:
  idempotent:
    support: partial
    details:
      - V(restarted) always changes.
seealso:
  - module: turingpi.cluster.cmb_info
'''

EXAMPLES = r'''
- name: Switch node 3 off
  turingpi.cluster.power:
    node: 3
    state: 'off'

- name: Switch every worker on
  turingpi.cluster.power:
    node: workers
    state: 'on'

- name: Declare the whole board in one write, and make it the power-up default
  turingpi.cluster.power:
    nodes:
      2: 'on'
      3: 'on'
      4: 'off'
      5: 'on'
      6: 'off'
      7: restarted
    persist: true

- name: Power-cycle node 5, holding it off for 3 seconds
  turingpi.cluster.power:
    node: 5
    state: restarted
    off_time: 3

- name: Create a virtual board (only turingpi.cluster.virtual_board creates one)
  turingpi.cluster.virtual_board:
    path: /tmp/turingpi-board.json

- name: Try it on the virtual board, no hardware needed
  turingpi.cluster.power:
    bus: virtual:/tmp/turingpi-board.json
    node: [2, 3]
    state: 'off'
'''

RETURN = r'''
before:
  description: Power of every node before the change.
  returned: always
  type: dict
  sample: {"1": "on", "2": "on", "3": "on", "4": "on", "5": "on", "6": "on", "7": "on"}
after:
  description: Power of every node after the change (predicted in check mode).
  returned: always
  type: dict
  sample: {"1": "on", "2": "on", "3": "off", "4": "on", "5": "on", "6": "on", "7": "on"}
nodes:
  description:
    - Per node, its power and whether it is running.
    - C(running) comes from the status register, which is 1 only for a populated and powered slot.
    - C(running) is left out in check mode when the run would change the board.
  returned: always
  type: dict
  sample: {"1": {"power": "on", "running": true}, "3": {"power": "off", "running": false}}
power_register:
  description: Register 0xF2 after the change, as a hex string.
  returned: always
  type: str
  sample: '0xf6'
writes:
  description: How many times register 0xF2 was (or in check mode would be) written.
  returned: always
  type: int
  sample: 1
restarted:
  description: Nodes that were power-cycled.
  returned: always
  type: list
  elements: int
  sample: [5]
'''

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils import _power as power
from ansible_collections.turingpi.cluster.plugins.module_utils._cmb_module import CMBModule


def main():
    module = CMBModule(
        argument_spec=dict(
            node=dict(type='list', elements='str'),
            state=dict(type='str', choices=['on', 'off', 'restarted'], default='on'),
            nodes=dict(type='dict'),
            persist=dict(type='bool', default=False),
            off_time=dict(type='float', default=2.0),
            force=dict(type='bool', default=False),
        ),
        mutually_exclusive=[('node', 'nodes')],
        required_one_of=[('node', 'nodes')],
        supports_check_mode=True,
    )
    params = module.params
    try:
        desired = power.desired_from_params(params['node'], params['state'], params['nodes'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    try:
        off_time = power.check_off_time(params['off_time'])
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    with module.bus() as bus:
        control, config, status = power.read_state(bus)
        plan = power.PowerPlan(control, config, desired, params['persist'])
        plan.check_safety(params['force'])
        if plan.changed and not module.check_mode:
            power.apply(bus, plan, off_time)
            control, config, status = power.read_state(bus)
        elif plan.changed:
            control, status = plan.after, None

    result = dict(
        changed=plan.changed,
        before=dict((str(n), s) for n, s in board.power_map(plan.before).items()),
        after=dict((str(n), s) for n, s in board.power_map(control).items()),
        nodes=power.describe(control, status),
        power_register='0x%02x' % control,
        writes=len(plan.writes),
        restarted=plan.restart_nodes,
    )
    if module._diff:
        result['diff'] = dict(before=power.power_text(plan.before), after=power.power_text(control))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
