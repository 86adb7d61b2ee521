# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private doc fragment of turingpi.cluster. Do not use it from outside the collection.

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class ModuleDocFragment(object):

    # The options every Cluster Management Bus module shares (CMB_COMMON_ARGS).
    DOCUMENTATION = r'''
options:
  bus:
    description:
      - The I2C bus of the Cluster Management Bus.
      - A bus number (V(1) on the Turing Pi V1) or a device path such as V(/dev/i2c-1).
      - V(virtual:/path/to/board.json) selects the virtual Turing Pi board, a register-level model
        of the board's chips kept in that file, for tests and demos without hardware. It is never
        used unless named here. The board must exist, and only M(turingpi.cluster.virtual_board) creates
        one; a missing file fails and creates nothing.
    type: str
    default: '1'
  lock_file:
    description:
      - File locked around every read-modify-write so two plays on this node cannot lose an update.
      - Defaults to V(/run/lock/turingpi-cmb-i2c-N.lock), or the state file plus V(.lock) for the virtual board.
      - Nothing arbitrates the bus between different nodes; drive the bus from the master only.
      - A directory, a file that cannot be opened for writing, or a path under a plain file is refused
        with a message that says what to do; the bus is not touched then.
    type: path
  lock_timeout:
    description: Seconds to wait for the lock before failing.
    type: float
    default: 30.0
  retries:
    description:
      - How many times a transfer is retried when the device does not acknowledge.
      - The DS4520 does not acknowledge during its EEPROM write cycle (up to 20 ms).
    type: int
    default: 5
requirements:
  - smbus2 >= 0.4.0 on the node that owns the bus (not needed for the virtual board)
notes:
  - The bus must be enabled on the node with C(dtoverlay=i2c1,pins_44_45) in C(config.txt);
    the C(turingpi.cluster.cmb) role does it.
'''

    # The action group of every Cluster Management Bus module (meta/runtime.yml action_groups.cmb).
    ACTIONGROUP_CMB = r'''
attributes:
  action_group:
    description: Use C(group/turingpi.cluster.cmb) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - turingpi.cluster.cmb
'''
