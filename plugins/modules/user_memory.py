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
  - The value is kept as compact JSON behind a header and a CRC-16. At most 58 bytes of JSON fit.
  - Reads first and writes only the 8 byte pages that differ, then reads back and verifies.
    EEPROM pages are written one at a time, waiting out the chip's write cycle.
  - "Write order: a change of one page is one page write. A change of several pages first writes the
    header page (bytes 0-7) marked as being written, then the other changed pages, and the header
    page with its final content last (so the header page is written twice). A run interrupted
    before its first write leaves the old record; one interrupted later leaves a record that reads
    as V(torn) (never as data), and the next run writes what is missing. The CRC catches a page
    torn inside its own write cycle (V(corrupt))."
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
  - turingpi.cluster._cmb.ACTIONGROUP_CMB
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.FULL
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
      description:
        - The decoded content before, with C(state) one of V(empty), V(valid), V(torn) (a write was
          interrupted), V(corrupt) (the checksum fails), V(foreign) (not written by this collection).
        - C(reason) says why for V(torn), V(corrupt) and V(foreign).
      type: dict
    after:
      description: The decoded content after.
      type: dict
    pages_written:
      description: Offsets of the 8 byte pages whose content was (or would be) changed.
      type: list
      elements: int
    page_writes:
      description:
        - The page writes, by offset, in the order they were (or would be) made.
        - The header page V(0) comes first (marked as being written) and last when several pages change.
      type: list
      elements: int
  sample:
    eeprom:
      before: {state: empty, data: null}
      after: {state: valid, data: {name: rack-a}}
      pages_written: [0, 8]
      page_writes: [0, 8, 0]
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
        writes = {}
        for area in areas:
            writes[area] = memory.plan_writes(area, current[area], wanted[area])
            results[area] = dict(before=memory.decode(area, current[area]),
                                 pages_written=memory.changed_pages(area, current[area], wanted[area]),
                                 page_writes=[offset for offset, dummy in writes[area]])
            changed = changed or bool(writes[area])
        if changed and not module.check_mode:
            for area in areas:
                if writes[area]:
                    memory.write_record(bus, area, writes[area], wanted[area])
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
