# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The MCP7940N real-time clock, through I2C or through the kernel's RTC driver.

The RTC holds UTC, as Linux keeps it. Setting the time follows the Linux driver: clear ST,
wait for OSCRUN to drop, write the time registers, then set ST (and VBATEN); the oscillator
runs again when OSCRUN reads 1 (docs/hardware.md "MCP7940N at 0x6F").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import fcntl
import os
import struct
import time

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import CMBError, VerifyError
from ansible_collections.turingpi.cluster.plugins.module_utils._virtual_board import decode_time, encode_time

OSCRUN_TIMEOUT = 2.0

# struct rtc_time is nine ints; RTC_RD_TIME = _IOR('p', 0x09, ...), RTC_SET_TIME = _IOW('p', 0x0a, ...).
_RTC_TIME = struct.Struct('9i')
RTC_RD_TIME = (2 << 30) | (_RTC_TIME.size << 16) | (ord('p') << 8) | 0x09
RTC_SET_TIME = (1 << 30) | (_RTC_TIME.size << 16) | (ord('p') << 8) | 0x0A


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def iso(when):
    return None if when is None else when.strftime('%Y-%m-%dT%H:%M:%SZ')


class RtcState(object):
    """What the chip says: time (None when not valid) and its status bits."""

    def __init__(self, when, oscillator_running, battery_backup, power_failed, interface):
        self.time = when
        self.oscillator_running = oscillator_running
        self.battery_backup = battery_backup
        self.power_failed = power_failed
        self.interface = interface

    def drift(self, now):
        if self.time is None:
            return None
        return (self.time - now).total_seconds()

    def as_dict(self, now):
        drift = self.drift(now)
        return dict(
            time=iso(self.time),
            drift_seconds=None if drift is None else round(drift, 3),
            oscillator_running=self.oscillator_running,
            battery_backup=self.battery_backup,
            power_failed=self.power_failed,
            interface=self.interface,
        )


# --- kernel driver ------------------------------------------------------------------------
def kernel_rtc_device(bus_path, sysfs='/sys'):
    """/dev/rtcN of the kernel driver bound to 0x6F on this bus, or None when no driver holds it."""
    number = bus_path.rsplit('-', 1)[-1]
    client = os.path.join(sysfs, 'bus', 'i2c', 'devices', '%s-%04x' % (number, board.MCP7940N_ADDR))
    if not os.path.exists(os.path.join(client, 'driver')):
        return None
    rtc_dir = os.path.join(client, 'rtc')
    names = sorted(os.listdir(rtc_dir)) if os.path.isdir(rtc_dir) else []
    if not names:
        raise CMBError('a kernel driver holds the RTC at 0x6f on %s but registered no /dev/rtc device: '
                       'check dmesg for rtc-ds1307 errors' % bus_path)
    return '/dev/' + names[0]


def kernel_read(device):
    try:
        fd = os.open(device, os.O_RDONLY)
    except EnvironmentError as exc:
        raise CMBError('cannot open %s: %s' % (device, exc))
    try:
        raw = fcntl.ioctl(fd, RTC_RD_TIME, b'\0' * _RTC_TIME.size)
    except EnvironmentError:
        # The driver refuses while the oscillator is stopped (OSCRUN = 0).
        return None
    finally:
        os.close(fd)
    sec, minute, hour, mday, mon, year = _RTC_TIME.unpack(raw)[:6]
    return datetime.datetime(year + 1900, mon + 1, mday, hour, minute, sec)


def kernel_set(device, when):
    values = (when.second, when.minute, when.hour, when.day, when.month - 1, when.year - 1900,
              when.isoweekday() % 7, 0, 0)
    try:
        fd = os.open(device, os.O_RDWR)
    except EnvironmentError as exc:
        raise CMBError('cannot open %s for writing: %s (run with become: true)' % (device, exc))
    try:
        fcntl.ioctl(fd, RTC_SET_TIME, _RTC_TIME.pack(*values))
    except EnvironmentError as exc:
        raise CMBError('the kernel refused to set %s: %s' % (device, exc))
    finally:
        os.close(fd)


# --- I2C --------------------------------------------------------------------------------
def read_i2c(bus, interface='i2c'):
    regs = bus.read(board.MCP7940N_ADDR, board.RTC_REG_SECONDS, board.RTC_TIME_REGS)
    try:
        when = decode_time(regs)
    except ValueError:
        when = None
    running = bool(regs[board.RTC_REG_WEEKDAY] & board.RTC_BIT_OSCRUN)
    return RtcState(
        when=when if running else None,
        oscillator_running=running,
        battery_backup=bool(regs[board.RTC_REG_WEEKDAY] & board.RTC_BIT_VBATEN),
        power_failed=bool(regs[board.RTC_REG_WEEKDAY] & board.RTC_BIT_PWRFAIL),
        interface=interface,
    )


def _wait_oscrun(bus, running, timeout):
    deadline = time.time() + timeout
    while True:
        wday = bus.read_byte(board.MCP7940N_ADDR, board.RTC_REG_WEEKDAY)
        if bool(wday & board.RTC_BIT_OSCRUN) == running:
            return
        if time.time() >= deadline:
            if running:
                raise VerifyError('the RTC oscillator did not start within %s s after setting ST: check the '
                                  'board\'s 32 kHz crystal; the clock will not keep time' % timeout)
            raise VerifyError('the RTC oscillator did not stop within %s s after clearing ST' % timeout)
        time.sleep(0.005)


def set_i2c(bus, when_func, battery_backup, timeout=OSCRUN_TIMEOUT):
    """Stop the oscillator, write the time from ``when_func()``, start it again."""
    regs = bus.read(board.MCP7940N_ADDR, board.RTC_REG_SECONDS, board.RTC_TIME_REGS)
    if regs[0] & board.RTC_BIT_ST:
        bus.write_byte(board.MCP7940N_ADDR, board.RTC_REG_SECONDS, regs[0] & ~board.RTC_BIT_ST)
    _wait_oscrun(bus, False, timeout)
    template = list(regs)
    template[0] &= ~board.RTC_BIT_ST
    # Writing 0 to PWRFAIL clears it; VBATEN as asked. OSCRUN is read-only.
    template[3] = (template[3] & 0x07) | (board.RTC_BIT_VBATEN if battery_backup else 0)
    # Start the clock on a second boundary: the chip has no sub-second register.
    time.sleep(1.0 - when_func().microsecond / 1e6)
    encoded = encode_time(when_func(), template)
    bus.write(board.MCP7940N_ADDR, board.RTC_REG_MINUTES, encoded[1:])
    # Seconds last, with ST: the time starts counting from here.
    bus.write_byte(board.MCP7940N_ADDR, board.RTC_REG_SECONDS, encoded[0] | board.RTC_BIT_ST)
    _wait_oscrun(bus, True, timeout)


def set_battery_backup_i2c(bus, enabled):
    wday = bus.read_byte(board.MCP7940N_ADDR, board.RTC_REG_WEEKDAY)
    # Keep PWRFAIL as it is (writing 1 leaves it); OSCRUN is read-only.
    value = (wday & ~board.RTC_BIT_VBATEN & 0x1F) | (board.RTC_BIT_VBATEN if enabled else 0)
    bus.write_byte(board.MCP7940N_ADDR, board.RTC_REG_WEEKDAY, value)
    if bool(bus.read_byte(board.MCP7940N_ADDR, board.RTC_REG_WEEKDAY) & board.RTC_BIT_VBATEN) != enabled:
        raise VerifyError('VBATEN did not read back as written in RTC register 0x03')


def read_any(bus, bus_path, interface, sysfs='/sys'):
    """Read the RTC through the interface asked for ('auto', 'i2c' or 'kernel').

    Returns (RtcState, kernel device or None). With the kernel driver bound, the status bits
    are read with a forced (harmless) I2C read when the bus allows it.
    """
    device = None
    if interface in ('auto', 'kernel') and bus_path is not None:
        device = kernel_rtc_device(bus_path, sysfs)
    if interface == 'kernel' and device is None:
        raise CMBError('no kernel RTC driver holds 0x6f on %s: add dtoverlay=i2c-rtc,mcp7940x to config.txt '
                       'and reboot, or use interface: i2c' % (bus_path or 'this bus'))
    if device is None:
        return read_i2c(bus), None
    bus.force.add(board.MCP7940N_ADDR)
    state = read_i2c(bus, interface='kernel')
    state.time = kernel_read(device)
    return state, device
