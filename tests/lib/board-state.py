#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read the virtual board's state file the way the hardware holds it, without the collection's code
(tests/tiers/45-playbooks.sh and 80-e2e.sh check what the playbooks wrote with it).

    board-state.py rtc FILE       # "ST VBATEN |drift to the host clock, s| osc_started_at"
    board-state.py identity FILE  # the JSON document of the user EEPROM's record, or "empty"
    board-state.py cycles FILE    # the DS4520's EEPROM write cycles so far

The RTC registers are the MCP7940N's (docs/hardware.md, "MCP7940N at 0x6F": BCD time, ST in
register 0 bit 7, VBATEN in register 3 bit 3); the record in the DS4520's user EEPROM is the
collection's format, as plugins/module_utils/_user_memory.py documents it ("TP", version 1,
length, document, CRC-16/CCITT-FALSE), decoded here on its own."""

from __future__ import absolute_import, division, print_function

import datetime
import json
import sys
import time


def rtc(state):
    s = state['mcp7940n']
    r = s['regs']

    def bcd(v):
        return (v >> 4) * 10 + (v & 15)

    when = datetime.datetime(2000 + bcd(r[6]), bcd(r[5] & 0x1F), bcd(r[4] & 0x3F), bcd(r[2] & 0x3F), bcd(r[1]), bcd(r[0] & 0x7F))
    if r[0] & 0x80:  # the model counts whole seconds since ticked_at
        when += datetime.timedelta(seconds=int(time.time() - s['ticked_at']))
    drift = (when - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)).total_seconds()
    return '%d %d %d %s' % (r[0] >> 7, (r[3] >> 3) & 1, int(abs(drift)), s['osc_started_at'])


def identity(state):
    nv = bytes(state['ds4520']['nv'][:64])
    if nv == b'\xff' * 64:
        return 'empty'
    n = nv[3]
    crc = 0xFFFF
    for b in nv[:4 + n]:
        crc ^= b << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021 if crc & 0x8000 else crc << 1) & 0xFFFF
    if nv[:3] != b'TP\x01' or crc != nv[4 + n] << 8 | nv[5 + n]:
        raise SystemExit('not a valid record: %s' % nv.hex())
    return nv[4:4 + n].decode()


def main():
    what, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        state = json.load(f)
    if what == 'rtc':
        print(rtc(state))
    elif what == 'identity':
        print(identity(state))
    elif what == 'cycles':
        print(state['ds4520']['eeprom_cycles'])
    else:
        raise SystemExit('board-state.py: rtc, identity or cycles, not %r' % what)


if __name__ == '__main__':
    main()
