#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: user_memory
short_description: Store small structured data in the Turing Pi V1 board's user memory
version_added: 1.0.0
description:
  - Stores a small value (for example the board's name and cluster id) on the board itself, in
    the 64 byte EEPROM of the DS4520 I/O expander and/or the 64 byte battery-backed SRAM of the
    MCP7940N clock.
  - The value is kept as compact JSON behind a header and a CRC-16, so a write that was
    interrupted is detected and reported as corrupt rather than read as data. At most 58 bytes
    of JSON fit.
  - Reads first and writes only the 8 byte pages that differ, then reads back and verifies.
    EEPROM pages are written one at a time, waiting out the chip's write cycle.
  - Read the stored values with M(turingpi.cluster.cmb_info).
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  area:
    description:
      - Where to store the value. V(eeprom) survives anything but wears (about 50,000 writes per page);
        V(sram) lasts while the board has power or a charged battery with battery backup enabled.
      - Give both to keep two copies.
    type: list
    elements: str
    choices: [eeprom, sram]
    default: [eeprom]
  data:
    description:
      - The value to store, any JSON-serialisable data. Required with O(state=present).
    type: raw
  state:
    description: V(present) stores O(data); V(absent) erases the area.
    type: str
    choices: [present, absent]
    default: present
extends_documentation_fragment:
  - turingpi.cluster._cmb
  - turingpi.cluster._cmb.ATTRIBUTES
  - turingpi.cluster._cmb.ACTIONGROUP_CMB
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
seealso:
  - module: turingpi.cluster.cmb_info
'''

EXAMPLES = r'''
- name: Name the board, on the board
  turingpi.cluster.user_memory:
    data:
      name: rack-a
      cluster: k3s-lab
    area: [eeprom, sram]

- name: Erase the RTC's SRAM
  turingpi.cluster.user_memory:
    area: sram
    state: absent
'''

RETURN = r'''
areas:
  description: Per area, what it held before and holds after (predicted in check mode).
  returned: always
  type: dict
  contains:
    before:
      description: The decoded content before, with C(state) one of V(empty), V(valid), V(corrupt), V(foreign).
      type: dict
    after:
      description: The decoded content after.
      type: dict
    pages_written:
      description: Offsets of the 8 byte pages that were (or would be) written.
      type: list
      elements: int
  sample:
    eeprom:
      before: {state: empty, data: null}
      after: {state: valid, data: {name: rack-a}}
      pages_written: [0, 8]
bytes:
  description: Size of the stored record (header, JSON and checksum).
  returned: when O(state=present)
  type: int
  sample: 25
'''

import json

from ansible_collections.turingpi.cluster.plugins.module_utils import _user_memory as memory
from ansible_collections.turingpi.cluster.plugins.module_utils._cmb_module import CMBModule


def main():
    module = CMBModule(
        argument_spec=dict(
            area=dict(type='list', elements='str', choices=['eeprom', 'sram'], default=['eeprom']),
            data=dict(type='raw'),
            state=dict(type='str', choices=['present', 'absent'], default='present'),
        ),
        required_if=[('state', 'present', ['data'])],
        supports_check_mode=True,
    )
    params = module.params
    areas = sorted(set(params['area']))
    if not areas:
        module.fail_json(msg='area must name eeprom, sram or both')

    wanted = {}
    for area in areas:
        try:
            wanted[area] = memory.encode(area, params['data']) if params['state'] == 'present' else memory.erased_image(area)
        except (TypeError, ValueError) as exc:
            module.fail_json(msg='cannot store data in the %s: %s' % (area, exc))

    results = {}
    changed = False
    with module.bus() as bus:
        current = dict((area, memory.read_image(bus, area)) for area in areas)
        for area in areas:
            pages = memory.changed_pages(area, current[area], wanted[area])
            results[area] = dict(before=memory.decode(area, current[area]), pages_written=pages)
            changed = changed or bool(pages)
        if changed and not module.check_mode:
            for area in areas:
                if results[area]['pages_written']:
                    memory.write_pages(bus, area, wanted[area], results[area]['pages_written'])
    for area in areas:
        results[area]['after'] = memory.decode(area, wanted[area])

    result = dict(changed=changed, areas=results)
    if params['state'] == 'present':
        result['bytes'] = memory.HEADER + len(memory.to_payload(params['data'])) + memory.CRC_SIZE
    if module._diff:
        result['diff'] = dict(
            before=''.join('%s: %s\n' % (a, json.dumps(results[a]['before'], sort_keys=True)) for a in areas),
            after=''.join('%s: %s\n' % (a, json.dumps(results[a]['after'], sort_keys=True)) for a in areas),
        )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
