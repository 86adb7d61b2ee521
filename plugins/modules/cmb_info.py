#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: cmb_info
short_description: Read the state of a Turing Pi V1 board from its Cluster Management Bus
version_added: 1.0.0
description:
  - Reports, per node, its power and whether its slot is populated and running; the real-time
    clock's time, its drift from this node's clock, its oscillator and battery backup; which
    devices answer on the bus; and what the user memory holds.
  - Only reads. A slot that is switched off cannot be told empty or populated (the status
    register shows populated AND powered), so its C(populated) is null.
  - A device that does not answer does not hide the others. What could not be read is listed in
    RV(unavailable) with the reason, its values are null, and RV(devices) says what does answer.
    The module fails only when no device at all answers.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  gather:
    description: What to read.
    type: list
    elements: str
    choices: [power, rtc, devices, user_memory]
    default: [power, rtc, devices, user_memory]
extends_documentation_fragment:
  - turingpi.cluster._cmb
  - turingpi.cluster._cmb.ACTIONGROUP_CMB
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.INFO_MODULE
seealso:
  - module: turingpi.cluster.power
  - module: turingpi.cluster.rtc
  - module: turingpi.cluster.user_memory
'''

EXAMPLES = r'''
- name: Read the board
  turingpi.cluster.cmb_info:
  register: board

- name: Show which nodes run
  ansible.builtin.debug:
    msg: "{{ board.nodes | dict2items | selectattr('value.running') | map(attribute='key') | list }}"
'''

RETURN = r'''
nodes:
  description:
    - Per node (by slot number), its power, whether it runs and whether its slot is populated.
    - All null when the I/O expander cannot be read (see RV(unavailable)).
  returned: when O(gather) has V(power)
  type: dict
  sample:
    "1": {power: "on", running: true, populated: true}
    "4": {power: "off", running: false, populated: null}
registers:
  description:
    - The DS4520's control (0xF2), configuration (0xF4) and status (0xF8) registers, as hex strings.
    - Null when the I/O expander cannot be read.
  returned: when O(gather) has V(power)
  type: dict
  sample: {control: '0xfe', config: '0x01', status: '0x0e'}
persistent:
  description:
    - Whether power writes go to EEPROM and become the power-up state (SEE = 0).
    - Null when the I/O expander cannot be read.
  returned: when O(gather) has V(power)
  type: bool
rtc:
  description:
    - The real-time clock.
    - When the clock cannot be read (it does not answer, or a kernel driver holds it without a C(/dev/rtc) device),
      only C(error) is set, saying why; the rest of the board is still reported.
  returned: when O(gather) has V(rtc)
  type: dict
  sample:
    time: '2026-11-23T21:00:00Z'
    drift_seconds: 0.4
    oscillator_running: true
    battery_backup: true
    power_failed: false
    interface: i2c
devices:
  description: Which devices acknowledge on the bus, and the address the switch answered at.
  returned: when O(gather) has V(devices), or when a part could not be read
  type: dict
  sample: {io_expander: true, rtc: true, switch: true, switch_address: '0x5c'}
user_memory:
  description:
    - Per area, its raw bytes as hex and its decoded record (see M(turingpi.cluster.user_memory)), with
      C(state) one of V(empty), V(valid), V(torn), V(corrupt), V(foreign).
    - An area whose chip does not answer has C(state=unreadable) and an C(error).
  returned: when O(gather) has V(user_memory)
  type: dict
  sample:
    eeprom: {state: valid, data: {name: rack-a}, raw: '5450...'}
    sram: {state: empty, data: null, raw: '0000...'}
unavailable:
  description:
    - The parts that could not be read, each with the reason. Keys V(power), V(rtc),
      V(user_memory.eeprom), V(user_memory.sram).
  returned: when a part could not be read
  type: dict
  sample:
    power: 'no device answered at 0x57 on /dev/i2c-1 after 6 attempts (Remote I/O error): ...'
    user_memory.eeprom: 'no device answered at 0x57 on /dev/i2c-1 after 6 attempts (Remote I/O error): ...'
'''

import binascii

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils import _power as power
from ansible_collections.turingpi.cluster.plugins.module_utils import _rtc as rtc
from ansible_collections.turingpi.cluster.plugins.module_utils import _user_memory as memory
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import CMBError, parse_bus
from ansible_collections.turingpi.cluster.plugins.module_utils._cmb_module import CMBModule


def gather_power(bus):
    try:
        control, config, status = power.read_state(bus)
    except CMBError as exc:
        return dict(
            nodes=dict((str(node), dict(power=None, running=None, populated=None)) for node in board.NODES),
            registers=None,
            persistent=None,
        ), str(exc)
    nodes = power.describe(control, status)
    for entry in nodes.values():
        entry['populated'] = True if entry['running'] else None
    return dict(
        nodes=nodes,
        registers=dict(control='0x%02x' % control, config='0x%02x' % config, status='0x%02x' % status),
        persistent=not config & board.DS4520_CONFIG_SEE,
    ), None


def gather_devices(bus):
    devices = dict((name, bus.probe(addr)) for name, addr in sorted(board.DEVICES.items()))
    devices['switch'] = False
    devices['switch_address'] = None
    for addr in board.SWITCH_ADDRESSES:
        if bus.probe(addr):
            devices['switch'] = True
            devices['switch_address'] = '0x%02x' % addr
            break
    return dict(devices=devices)


def gather_user_memory(bus):
    areas = {}
    for area in sorted(board.MEMORY_AREAS):
        try:
            image = memory.read_image(bus, area)
        except CMBError as exc:
            areas[area] = dict(state='unreadable', data=None, error=str(exc))
            continue
        entry = memory.decode(area, image)
        entry['raw'] = binascii.hexlify(bytes(image)).decode('ascii')
        areas[area] = entry
    return dict(user_memory=areas)


def gather_rtc(bus, bus_option):
    kind, path = parse_bus(bus_option)
    try:
        state = rtc.read_any(bus, path if kind == 'i2c' else None, 'auto')[0]
    except CMBError as exc:
        return dict(rtc=dict(error=str(exc)))
    return dict(rtc=state.as_dict(rtc.utcnow()))


def nothing_answers(devices):
    return not (devices['io_expander'] or devices['rtc'] or devices['switch'])


def main():
    module = CMBModule(
        argument_spec=dict(
            gather=dict(type='list', elements='str', choices=['power', 'rtc', 'devices', 'user_memory'],
                        default=['power', 'rtc', 'devices', 'user_memory']),
        ),
        supports_check_mode=True,
    )
    gather = set(module.params['gather'])
    result = dict(changed=False)
    unavailable = {}
    with module.bus(lock=False) as bus:
        if 'devices' in gather:
            result.update(gather_devices(bus))
        if 'power' in gather:
            part, error = gather_power(bus)
            result.update(part)
            if error:
                unavailable['power'] = error
        if 'rtc' in gather:
            result.update(gather_rtc(bus, module.params['bus']))
            if 'error' in result['rtc']:
                unavailable['rtc'] = result['rtc']['error']
        if 'user_memory' in gather:
            result.update(gather_user_memory(bus))
            for area, entry in result['user_memory'].items():
                if entry['state'] == 'unreadable':
                    unavailable['user_memory.%s' % area] = entry['error']
        if unavailable and 'devices' not in result:
            result.update(gather_devices(bus))  # say what does answer
        bus_name = bus.name
    if unavailable:
        result['unavailable'] = unavailable
        if nothing_answers(result['devices']):
            module.fail_json(
                msg='nothing answered on %s: no I/O expander at 0x%02x, no RTC at 0x%02x, no switch at %s: check '
                    'that this node is on a Turing Pi V1 and that bus is its Cluster Management Bus'
                    % (bus_name, board.DS4520_ADDR, board.MCP7940N_ADDR,
                       ' or '.join('0x%02x' % a for a in board.SWITCH_ADDRESSES)),
                **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
