# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""Everything the collection knows about the Turing Pi V1 board, in one place.

Every constant names its source in docs/hardware.md (sections "The board", "Cluster Management
Bus", "DS4520 at 0x57", "MCP7940N at 0x6F"; V1-SPECS and V1-CMB are the short names of
its "Sources").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Default I2C bus: the CMB is bus 1 on every node once `dtoverlay=i2c1,pins_44_45` is set.
DEFAULT_BUS = 1
NODES = (1, 2, 3, 4, 5, 6, 7)
MASTER_NODE = 1  # slot 1 is the top node: flash port, HDMI (V1-SPECS)

# --- Maxim DS4520 I/O expander (docs/hardware.md "DS4520 at 0x57") ---
DS4520_ADDR = 0x57
DS4520_EEPROM_START = 0x00  # 64 B user EEPROM, 0x00-0x3F
DS4520_EEPROM_SIZE = 64
DS4520_PAGE_SIZE = 8  # page writes wrap inside an 8-byte row
DS4520_REG_PULLUP0 = 0xF0  # never written by the collection
DS4520_REG_PULLUP1 = 0xF1  # never written by the collection
DS4520_REG_IO_CONTROL0 = 0xF2  # node power, 1 = on; EEPROM-backed when SEE = 0
DS4520_REG_IO_CONTROL1 = 0xF3  # bit 0 is the unused 9th pin
DS4520_REG_CONFIG = 0xF4  # bit 0 = SEE
DS4520_CONFIG_SEE = 0x01  # SEE = 1: writes to 0xF0-0xF3 go to the volatile shadow only
DS4520_REG_IO_STATUS0 = 0xF8  # read-only: populated AND powered
DS4520_FACTORY_IO_CONTROL0 = 0xFF
DS4520_EEPROM_WRITE_TIME = 0.020  # 10 ms typical, 20 ms max: the chip may NACK meanwhile

# Bit-to-node map of 0xF2 and 0xF8 (V1-CMB "Bits 76543210 / Slots 5674321x"):
# bit 0 unused, nodes 5-7 in reverse order.
NODE_MASK = {1: 0x02, 2: 0x04, 3: 0x08, 4: 0x10, 5: 0x80, 6: 0x40, 7: 0x20}
ALL_NODES_MASK = 0xFE
UNUSED_BITS_MASK = 0x01

# --- Microchip MCP7940N RTC (docs/hardware.md "MCP7940N at 0x6F") ---
MCP7940N_ADDR = 0x6F
RTC_REG_SECONDS = 0x00  # BCD; bit 7 = ST (oscillator start)
RTC_REG_MINUTES = 0x01
RTC_REG_HOURS = 0x02  # bit 6 = 12-hour mode, bit 5 = PM in 12-hour mode
RTC_REG_WEEKDAY = 0x03  # bits 2:0 weekday 1-7; bit 3 VBATEN; bit 4 PWRFAIL; bit 5 OSCRUN (read-only)
RTC_REG_DATE = 0x04
RTC_REG_MONTH = 0x05  # bits 4:0 BCD month; bit 5 LPYR (read-only)
RTC_REG_YEAR = 0x06  # 00-99 -> 2000 + YY
RTC_REG_CONTROL = 0x07
RTC_TIME_REGS = 7  # 0x00-0x06
RTC_BIT_ST = 0x80
RTC_BIT_12H = 0x40
RTC_BIT_PM = 0x20
RTC_BIT_VBATEN = 0x08
RTC_BIT_PWRFAIL = 0x10
RTC_BIT_OSCRUN = 0x20
RTC_BIT_LPYR = 0x20
RTC_SRAM_START = 0x20  # 64 B battery-backed SRAM, 0x20-0x5F
RTC_SRAM_SIZE = 64

# --- Realtek RTL8370 switch: presence only (no register interface is documented) ---
SWITCH_ADDR_CURRENT = 0x5C  # current docs
SWITCH_ADDR_OLD = 0x04  # older docs
SWITCH_ADDRESSES = (SWITCH_ADDR_CURRENT, SWITCH_ADDR_OLD)

DEVICES = {
    'io_expander': DS4520_ADDR,
    'rtc': MCP7940N_ADDR,
}

# User memory areas: name -> (device address, first register, size, page size, erased byte)
MEMORY_AREAS = {
    'eeprom': (DS4520_ADDR, DS4520_EEPROM_START, DS4520_EEPROM_SIZE, DS4520_PAGE_SIZE, 0xFF),
    'sram': (MCP7940N_ADDR, RTC_SRAM_START, RTC_SRAM_SIZE, 8, 0x00),
}

# How to enable the bus, used by error messages (docs/hardware.md "Cluster Management Bus").
ENABLE_BUS_HINT = (
    "enable the Cluster Management Bus with 'dtoverlay=i2c1,pins_44_45' in config.txt "
    "(/boot/firmware/config.txt on Raspberry Pi OS Bookworm and later and on Ubuntu, /boot/config.txt "
    "on earlier Raspberry Pi OS; the turingpi.cluster.cmb role does this) and reboot"
)


def parse_node(value):
    """Return the node number 1-7 for an int or a string such as '3' or 'node3'."""
    text = str(value).strip().lower()
    if text.startswith('node'):
        text = text[4:]
    try:
        node = int(text)
    except ValueError:
        raise ValueError("'%s' is not a node: use a slot number from 1 to 7" % (value,))
    if node not in NODE_MASK:
        raise ValueError("node %d does not exist: the Turing Pi V1 has slots 1 to 7" % node)
    return node


def expand_nodes(values):
    """Expand a list of node numbers and the words 'all' / 'workers' into sorted node numbers."""
    nodes = set()
    for value in values:
        word = str(value).strip().lower()
        if word == 'all':
            nodes.update(NODES)
        elif word == 'workers':
            nodes.update(n for n in NODES if n != MASTER_NODE)
        else:
            nodes.add(parse_node(value))
    return sorted(nodes)


def mask_of(nodes):
    mask = 0
    for node in nodes:
        mask |= NODE_MASK[node]
    return mask


def nodes_in(register_value):
    """Nodes whose bit is set in a 0xF2 / 0xF8 value."""
    return [node for node in NODES if register_value & NODE_MASK[node]]


def power_map(register_value):
    """{node: 'on' | 'off'} for a 0xF2 value."""
    return dict((node, 'on' if register_value & NODE_MASK[node] else 'off') for node in NODES)
