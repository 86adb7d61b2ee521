#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: rtc
short_description: Keep the Turing Pi V1 real-time clock in time
version_added: 1.0.0
description:
  - Keeps the board's battery-backed MCP7940N real-time clock within O(tolerance) seconds of this
    node's system clock, or of an explicit O(time), and enables its battery backup.
  - The clock holds UTC, as Linux keeps it.
  - Works whether or not the kernel's RTC driver (C(dtoverlay=i2c-rtc,mcp7940x)) holds the chip.
    With the driver bound, the time is read and set through its C(/dev/rtcN) device; without it,
    through I2C, stopping the oscillator, writing the registers and starting it again as the
    Linux driver does.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  time:
    description:
      - Set the clock to this UTC time instead of the system clock, as V(YYYY-MM-DD HH:MM:SS)
        (a trailing V(Z) or a V(T) separator are accepted).
      - Because the clock keeps running, a second run only sets it again once it has drifted from
        this time by more than O(tolerance); use it to seed a clock, not in a loop.
    type: str
  tolerance:
    description: Largest difference in seconds between the clock and the wanted time that is left alone.
    type: float
    default: 2.0
  battery_backup:
    description:
      - Enable (V(true)) the battery backup (VBATEN), so the clock keeps time and its SRAM keeps its
        contents from the CR2032 cell while the board has no power.
      - Through the kernel driver it can only be enabled, as the driver enables it when it sets the time.
    type: bool
    default: true
  interface:
    description:
      - V(auto) uses the kernel driver when it holds the chip, I2C otherwise.
      - V(i2c) and V(kernel) insist on one.
    type: str
    choices: [auto, i2c, kernel]
    default: auto
extends_documentation_fragment:
  - turingpi.cluster._cmb
  - turingpi.cluster._cmb.ACTIONGROUP_CMB
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.FULL
attributes:
  idempotent:
    details:
      - Within O(tolerance) of a running clock.
seealso:
  - module: turingpi.cluster.cmb_info
'''

EXAMPLES = r'''
- name: Keep the board's clock within 2 seconds of the master's, with battery backup
  turingpi.cluster.rtc:
  become: true

- name: Seed the clock with a known time on a virtual board (made by turingpi.cluster.virtual_board)
  turingpi.cluster.rtc:
    bus: virtual:/tmp/turingpi-board.json
    time: '2026-01-01 00:00:00'
    tolerance: 60
'''

RETURN = r'''
before:
  description: The clock before the run.
  returned: always
  type: dict
  contains:
    time:
      description: The clock's UTC time, or null when its oscillator is stopped or its registers hold no valid time.
      type: str
      sample: '2026-11-23T21:00:00Z'
    drift_seconds:
      description: Clock minus the wanted time, in seconds (null without a valid time).
      type: float
      sample: -3.5
    oscillator_running:
      description: Whether the oscillator runs (OSCRUN).
      type: bool
    battery_backup:
      description: Whether the battery backup is enabled (VBATEN).
      type: bool
    power_failed:
      description: Whether the board lost power since the flag was last cleared (PWRFAIL); setting the time clears it.
      type: bool
    interface:
      description: V(i2c) or V(kernel).
      type: str
  sample:
    time: '2000-01-01T00:00:00Z'
    drift_seconds: null
    oscillator_running: false
    battery_backup: false
    power_failed: false
    interface: i2c
after:
  description: The clock after the run (predicted in check mode), with the same keys as RV(before).
  returned: always
  type: dict
  sample:
    time: '2026-11-23T21:00:00Z'
    drift_seconds: 0.0
    oscillator_running: true
    battery_backup: true
    power_failed: false
    interface: i2c
time_set:
  description: Whether the time was (or would be) set.
  returned: always
  type: bool
device:
  description: The kernel RTC device used, when the kernel driver holds the chip.
  returned: when the kernel driver holds the chip
  type: str
  sample: /dev/rtc0
'''

import datetime

from ansible_collections.turingpi.cluster.plugins.module_utils import _rtc as rtc
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import parse_bus
from ansible_collections.turingpi.cluster.plugins.module_utils._cmb_module import CMBModule


def parse_time(text):
    cleaned = text.strip().rstrip('Zz').replace('T', ' ')
    return datetime.datetime.strptime(cleaned, '%Y-%m-%d %H:%M:%S')


def main():
    module = CMBModule(
        argument_spec=dict(
            time=dict(type='str'),
            tolerance=dict(type='float', default=2.0),
            battery_backup=dict(type='bool', default=True),
            interface=dict(type='str', choices=['auto', 'i2c', 'kernel'], default='auto'),
        ),
        supports_check_mode=True,
    )
    params = module.params
    explicit = None
    if params['time'] is not None:
        try:
            explicit = parse_time(params['time'])
        except ValueError:
            module.fail_json(msg="time '%s' is not a UTC time like 2026-01-01 00:00:00" % params['time'])
        if not 2000 <= explicit.year <= 2099:
            module.fail_json(msg='the MCP7940N holds years 2000 to 2099, not %d' % explicit.year)
    if params['tolerance'] < 0:
        module.fail_json(msg='tolerance must be 0 or more seconds')
    started = rtc.utcnow()

    def wanted():
        if explicit is None:
            return rtc.utcnow()
        return explicit + (rtc.utcnow() - started)

    with module.bus() as bus:
        kind, path = parse_bus(params['bus'])
        bus_path = path if kind == 'i2c' else None
        before, device = rtc.read_any(bus, bus_path, params['interface'])
        drift = before.drift(wanted())
        set_time = drift is None or abs(drift) > params['tolerance']
        if device is not None:
            # The driver enables VBATEN whenever it sets the time.
            set_time = set_time or (params['battery_backup'] and not before.battery_backup)
            if not params['battery_backup'] and before.battery_backup:
                module.fail_json(msg='the kernel RTC driver keeps battery backup enabled; use interface: i2c '
                                     'with the driver unbound to disable it')
        set_vbat = not set_time and before.battery_backup != params['battery_backup']
        changed = set_time or set_vbat
        if changed and not module.check_mode:
            if device is not None:
                rtc.kernel_set(device, wanted())
            elif set_time:
                rtc.set_i2c(bus, wanted, params['battery_backup'])
            else:
                rtc.set_battery_backup_i2c(bus, params['battery_backup'])
            after, device = rtc.read_any(bus, bus_path, params['interface'])
            after_drift = after.drift(wanted())
            if set_time and (after_drift is None or abs(after_drift) > max(params['tolerance'], 1.0)):
                module.fail_json(msg='the RTC did not keep the time it was set to (reads %s): check its crystal'
                                     % rtc.iso(after.time))
        elif changed:
            after = rtc.RtcState(wanted() if set_time else before.time, True if set_time else before.oscillator_running,
                                 params['battery_backup'], False if set_time else before.power_failed,
                                 before.interface)
        else:
            after = before

    now = wanted()
    result = dict(changed=changed, before=before.as_dict(now), after=after.as_dict(now), time_set=set_time)
    if device is not None:
        result['device'] = device
    if module._diff:
        result['diff'] = dict(
            before='time: %s\nbattery_backup: %s\n' % (rtc.iso(before.time), before.battery_backup),
            after='time: %s\nbattery_backup: %s\n' % (rtc.iso(after.time), after.battery_backup),
        )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
