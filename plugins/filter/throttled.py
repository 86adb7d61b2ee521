# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: throttled
short_description: What a Raspberry Pi's C(vcgencmd get_throttled) says about its power supply
version_added: 1.0.0
description:
  - Decodes the result of C(vcgencmd get_throttled) run on a node (a registered C(ansible.builtin.command)
    result, or its output as a string) into the firmware's flags.
  - Bit 0 is under-voltage now, bit 16 under-voltage since the node booted (it stays set until the node reboots);
    bits 1, 2, 3 and 17, 18, 19 are frequency capping, throttling and the soft temperature limit, now and since boot
    (the Raspberry Pi documentation, C(vcgencmd get_throttled)).
  - A node without a usable C(vcgencmd) (not installed, no access to the VideoCore, not a Raspberry Pi) gives
    RV(_value.readable=false) and the reason, never under-voltage.
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
options:
  _input:
    description:
      - The registered result of C(vcgencmd get_throttled) (its C(rc), C(stdout), C(stderr) and C(msg) are read),
        or the command's output.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: Read the node's under-voltage flags
  ansible.builtin.command:
    argv: [vcgencmd, get_throttled]
  register: throttled_result
  changed_when: false
  failed_when: false

- name: Stop when the node's supply is too weak
  ansible.builtin.assert:
    that: not (throttled_result | turingpi.cluster.throttled).under_voltage_seen
    fail_msg: "{{ (throttled_result | turingpi.cluster.throttled).message }}"
'''

RETURN = r'''
_value:
  description: The flags.
  type: dict
  contains:
    readable:
      description: Whether C(vcgencmd) gave a value.
      type: bool
    value:
      description: The value (null when not readable).
      type: int
    under_voltage:
      description: Under-voltage now (bit 0).
      type: bool
    under_voltage_occurred:
      description: Under-voltage since the node booted (bit 16).
      type: bool
    under_voltage_seen:
      description: Either of the two.
      type: bool
    flags:
      description: The names of the flags set, as the Raspberry Pi documentation names them.
      type: list
      elements: str
    message:
      description:
        - One line for a person, the value and the names of its flags, or why it could not be read.
      type: str
'''

import re

from ansible.module_utils.common.text.converters import to_text

# Raspberry Pi documentation, "vcgencmd get_throttled": bit -> meaning.
FLAGS = (
    (0, 'under-voltage detected'),
    (1, 'arm frequency capped'),
    (2, 'currently throttled'),
    (3, 'soft temperature limit active'),
    (16, 'under-voltage has occurred'),
    (17, 'arm frequency capping has occurred'),
    (18, 'throttling has occurred'),
    (19, 'soft temperature limit has occurred'),
)
UNDER_VOLTAGE_NOW = 1 << 0
UNDER_VOLTAGE_OCCURRED = 1 << 16
# vcgencmd's exit status 255 (-1): "problem with VCHI", no VideoCore to ask.
VCHI_PROBLEM = 255
NOT_FOUND = re.compile(r'No such file or directory|not found|command not found', re.IGNORECASE)
VALUE = re.compile(r'^\s*throttled=(0x[0-9a-fA-F]+|[0-9]+)\s*$', re.MULTILINE)


def _unreadable(reason):
    return {'readable': False, 'value': None, 'under_voltage': False, 'under_voltage_occurred': False,
            'under_voltage_seen': False, 'flags': [], 'message': 'under-voltage flags not read: %s' % reason}


def decode(value):
    """The flags of a get_throttled value (an int)."""
    flags = [name for bit, name in FLAGS if value & (1 << bit)]
    return {
        'readable': True,
        'value': value,
        'under_voltage': bool(value & UNDER_VOLTAGE_NOW),
        'under_voltage_occurred': bool(value & UNDER_VOLTAGE_OCCURRED),
        'under_voltage_seen': bool(value & (UNDER_VOLTAGE_NOW | UNDER_VOLTAGE_OCCURRED)),
        'flags': flags,
        'message': 'throttled=0x%x: %s' % (value, ', '.join(flags) if flags else 'no flag set'),
    }


def throttled(result):
    if isinstance(result, (str, bytes)):
        result = {'rc': 0, 'stdout': to_text(result)}
    if not isinstance(result, dict):
        return _unreadable('expected the result of vcgencmd get_throttled, got %r' % (result,))
    if result.get('skipped'):
        return _unreadable('the command was skipped')
    stdout = to_text(result.get('stdout') or '')
    said = to_text(result.get('stderr') or '').strip() or stdout.strip()
    msg = to_text(result.get('msg') or '').strip()
    rc = result.get('rc')
    # ansible.builtin.command cannot start the program: rc is the errno (2 when it does not exist).
    if rc != 0 and not stdout.strip() and (msg.startswith('Error executing command') or NOT_FOUND.search(said or msg)):
        if rc in (2, 127):
            return _unreadable('vcgencmd is not installed (the Raspberry Pi firmware tools, package raspi-utils or '
                               'libraspberrypi-bin)')
        return _unreadable('vcgencmd could not be run (%s, error %s)' % (msg or said, rc))
    if rc == VCHI_PROBLEM or 'VCHI' in said:
        return _unreadable('vcgencmd cannot reach the VideoCore (%s): not a Raspberry Pi, or no access to /dev/vchiq'
                           % (said or 'exit status %s' % rc))
    if rc != 0:
        return _unreadable('vcgencmd get_throttled failed with exit status %s: %s' % (rc, said or msg))
    match = VALUE.search(stdout)
    if not match:
        return _unreadable('vcgencmd get_throttled printed %r, not throttled=0x...' % stdout.strip())
    return decode(int(match.group(1), 0))


class FilterModule(object):

    def filters(self):
        return {'throttled': throttled}
