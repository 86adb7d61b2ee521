# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""A virtual Turing Pi V1 board, modelled at register level after the chips' datasheets.

It is a test and demo back end, selected only by ``bus: virtual:/path/board.json``; only the
virtual_board module creates that file (``transaction(create=True)``). Its state lives in that
JSON file so that separate module runs (and a lab that powers virtual nodes on and off) share
one board. What is modelled (docs/hardware.md, sections "DS4520 at
0x57" and "MCP7940N at 0x6F"):

DS4520 (0x57)
  * 0x00-0x3F user EEPROM; a write is a page write that wraps inside its 8-byte row.
  * 0xF0-0xF3 have an EEPROM copy and a volatile shadow. SEE (0xF4 bit 0) = 0: writes go to
    both and cost an EEPROM write cycle; SEE = 1: shadow only. Reads return the shadow.
  * During an EEPROM write cycle (10 ms typical) the chip NACKs every transfer.
  * 0xF8 is read-only: a slot's bit is 1 when it is populated AND powered.
  * 0xFA-0xFF volatile user SRAM (as the board's docs say).
  * A board power-up loads the shadow from EEPROM; whether SEE survives is a parameter.
MCP7940N (0x6F)
  * BCD time registers that keep counting while ST = 1, across runs (wall clock).
  * OSCRUN (read-only) follows ST after a start-up delay; LPYR (read-only) follows the year.
  * PWRFAIL can only be cleared by software; a board power-down with VBATEN = 1 sets it and
    keeps time and SRAM, with VBATEN = 0 the clock stops and SRAM is lost.
  * 0x20-0x5F battery-backed SRAM.
Switch (0x5C by default): acknowledges, no registers.
Optionally the RTC can be marked as held by a kernel driver: plain access then fails with
EBUSY, as i2c-dev does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import fcntl
import json
import os
import tempfile
import time

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import Bus, CMBError

STATE_FORMAT = 1
EEPROM_WRITE_TIME = 0.010  # DS4520: 10 ms typical (20 ms max)
OSC_STARTUP_TIME = 0.030  # MCP7940N: OSCRUN sets once the crystal has started


def _nack(addr, why):
    return EnvironmentError(errno.EREMOTEIO, 'virtual device 0x%02x NACK: %s' % (addr, why))


def bcd_to_int(value):
    high, low = value >> 4, value & 0x0F
    if high > 9 or low > 9:
        raise ValueError('0x%02x is not BCD' % value)
    return high * 10 + low


def int_to_bcd(value):
    return ((value // 10) << 4) | (value % 10)


def default_state(populated=None, see_persists=False, switch_address=board.SWITCH_ADDR_CURRENT,
                  rtc_driver_bound=False, now=None):
    """A board fresh from the factory: every node on, SEE = 0, RTC stopped at 2000-01-01."""
    now = time.time() if now is None else now
    ds_nv = [0xFF] * 256  # erased EEPROM reads 0xFF
    ds_nv[board.DS4520_REG_PULLUP0] = 0x00
    ds_nv[board.DS4520_REG_PULLUP1] = 0x00
    ds_nv[board.DS4520_REG_IO_CONTROL0] = board.DS4520_FACTORY_IO_CONTROL0
    ds_nv[board.DS4520_REG_IO_CONTROL1] = 0x01
    rtc = [0x00] * 0x60
    rtc[board.RTC_REG_WEEKDAY] = 0x01
    rtc[board.RTC_REG_DATE] = 0x01
    rtc[board.RTC_REG_MONTH] = 0x01
    state = {
        'format': STATE_FORMAT,
        'populated': sorted(board.NODES if populated is None else populated),
        'see_persists': bool(see_persists),
        'switch_address': switch_address,
        'rtc_driver_bound': bool(rtc_driver_bound),
        'battery': True,
        'ds4520': {
            'nv': ds_nv,
            'shadow': {},
            'busy_until': 0.0,
            'eeprom_cycles': 0,
            'writes': {},
        },
        'mcp7940n': {'regs': rtc, 'ticked_at': now, 'osc_started_at': None},
    }
    _power_up(state)
    return state


def _power_up(state):
    """What the chips do when the board gets power."""
    ds = state['ds4520']
    shadow = {}
    for reg in range(board.DS4520_REG_PULLUP0, board.DS4520_REG_IO_CONTROL1 + 1):
        shadow[str(reg)] = ds['nv'][reg]
    old_config = ds.get('shadow', {}).get(str(board.DS4520_REG_CONFIG), 0)
    shadow[str(board.DS4520_REG_CONFIG)] = old_config if state.get('see_persists') else 0
    for reg in range(0xFA, 0x100):
        shadow[str(reg)] = 0x00
    ds['shadow'] = shadow
    ds['busy_until'] = 0.0


class VirtualBoard(object):
    """The register model. ``read``/``write`` behave as the chips do on the wire."""

    def __init__(self, state, clock=time.time, eeprom_write_time=EEPROM_WRITE_TIME,
                 osc_startup_time=OSC_STARTUP_TIME):
        self.state = state
        self.clock = clock
        self.eeprom_write_time = eeprom_write_time
        self.osc_startup_time = osc_startup_time

    # -- wire-level entry points ------------------------------------------------------------
    def read(self, addr, reg, length, force=False):
        now = self.clock()
        if addr == board.DS4520_ADDR:
            self._ds_check_ready(now)
            return [self._ds_read(r & 0xFF) for r in range(reg, reg + length)]
        if addr == board.MCP7940N_ADDR:
            self._rtc_check_access(force)
            self._rtc_advance(now)
            return [self._rtc_read(r & 0xFF, now) for r in range(reg, reg + length)]
        if addr == self.state.get('switch_address'):
            return [0x00] * length
        raise EnvironmentError(errno.ENXIO, 'no virtual device at 0x%02x' % addr)

    def write(self, addr, reg, data, force=False):
        now = self.clock()
        if addr == board.DS4520_ADDR:
            self._ds_check_ready(now)
            self._ds_write(reg, data, now)
        elif addr == board.MCP7940N_ADDR:
            self._rtc_check_access(force)
            self._rtc_advance(now)
            for offset, value in enumerate(data):
                self._rtc_write((reg + offset) & 0xFF, value, now)
        elif addr == self.state.get('switch_address'):
            pass  # acknowledged, nothing documented behind it
        else:
            raise EnvironmentError(errno.ENXIO, 'no virtual device at 0x%02x' % addr)

    def probe(self, addr, force=False):
        self.read(addr, 0, 1, force=force)

    # -- board-level events (the lab's power switch) ---------------------------------------
    def power_cycle(self, off_seconds=1.0):
        """The whole board loses power and gets it back ``off_seconds`` later."""
        now = self.clock()
        self._rtc_advance(now)
        rtc = self.state['mcp7940n']
        regs = rtc['regs']
        if self.state.get('battery', True) and regs[board.RTC_REG_WEEKDAY] & board.RTC_BIT_VBATEN:
            regs[board.RTC_REG_WEEKDAY] |= board.RTC_BIT_PWRFAIL
            # power-down / power-up time stamps: minute, hour, date, weekday+month
            regs[0x18:0x1C] = [regs[1], regs[2] & 0x3F, regs[4], (regs[5] & 0x1F)]
            rtc['ticked_at'] = now - off_seconds  # it kept counting on the battery
        else:
            regs[:] = [0x00] * 0x60
            regs[board.RTC_REG_WEEKDAY] = 0x01
            regs[board.RTC_REG_DATE] = 0x01
            regs[board.RTC_REG_MONTH] = 0x01
            rtc['ticked_at'] = now
            rtc['osc_started_at'] = None
        _power_up(self.state)

    # -- DS4520 ---------------------------------------------------------------------------------
    def _ds_check_ready(self, now):
        if now < self.state['ds4520']['busy_until']:
            raise _nack(board.DS4520_ADDR, 'EEPROM write cycle in progress')

    def _ds_read(self, reg):
        ds = self.state['ds4520']
        if reg < board.DS4520_EEPROM_SIZE:
            return ds['nv'][reg]
        if reg == board.DS4520_REG_IO_STATUS0:
            return self._ds_control() & board.mask_of(self.state['populated'])
        if reg == board.DS4520_REG_IO_STATUS0 + 1:
            return 0x00
        return ds['shadow'].get(str(reg), 0x00)

    def _ds_control(self):
        return self.state['ds4520']['shadow'][str(board.DS4520_REG_IO_CONTROL0)]

    def _ds_write(self, reg, data, now):
        ds = self.state['ds4520']
        ds['writes'][str(reg)] = ds['writes'].get(str(reg), 0) + 1
        see = ds['shadow'].get(str(board.DS4520_REG_CONFIG), 0) & board.DS4520_CONFIG_SEE
        eeprom_cycle = False
        if reg < board.DS4520_EEPROM_SIZE:
            # Page write: the address wraps inside the 8-byte row.
            row = reg - reg % board.DS4520_PAGE_SIZE
            for offset, value in enumerate(data):
                ds['nv'][row + (reg - row + offset) % board.DS4520_PAGE_SIZE] = value
            eeprom_cycle = True
        else:
            for offset, value in enumerate(data):
                target = (reg + offset) & 0xFF
                if board.DS4520_REG_PULLUP0 <= target <= board.DS4520_REG_IO_CONTROL1:
                    ds['shadow'][str(target)] = value
                    if not see:
                        ds['nv'][target] = value
                        eeprom_cycle = True
                elif target == board.DS4520_REG_CONFIG:
                    ds['shadow'][str(target)] = value & board.DS4520_CONFIG_SEE
                elif 0xFA <= target <= 0xFF:
                    ds['shadow'][str(target)] = value
                # 0xF8/0xF9 are read-only and reserved registers ignore writes.
        if eeprom_cycle:
            ds['eeprom_cycles'] += 1
            ds['busy_until'] = now + self.eeprom_write_time

    # -- MCP7940N -------------------------------------------------------------------------------
    def _rtc_check_access(self, force):
        if self.state.get('rtc_driver_bound') and not force:
            raise EnvironmentError(errno.EBUSY, 'Device or resource busy')

    def _rtc_running(self):
        return bool(self.state['mcp7940n']['regs'][board.RTC_REG_SECONDS] & board.RTC_BIT_ST)

    def _rtc_advance(self, now):
        rtc = self.state['mcp7940n']
        if not self._rtc_running():
            rtc['ticked_at'] = now
            return
        elapsed = int(now - rtc['ticked_at'])
        if elapsed <= 0:
            return
        regs = rtc['regs']
        try:
            current = decode_time(regs[:board.RTC_TIME_REGS])
        except ValueError:
            rtc['ticked_at'] += elapsed  # a real chip would roll over oddly; we just hold
            return
        encoded = encode_time(current + datetime.timedelta(seconds=elapsed), regs[:board.RTC_TIME_REGS])
        regs[:board.RTC_TIME_REGS] = encoded
        rtc['ticked_at'] += elapsed

    def _rtc_read(self, reg, now):
        rtc = self.state['mcp7940n']
        if reg >= len(rtc['regs']):
            return 0x00
        value = rtc['regs'][reg]
        if reg == board.RTC_REG_WEEKDAY:
            started = rtc.get('osc_started_at')
            running = self._rtc_running() and started is not None and now - started >= self.osc_startup_time
            value = (value & ~board.RTC_BIT_OSCRUN) | (board.RTC_BIT_OSCRUN if running else 0)
        elif reg == board.RTC_REG_MONTH:
            try:
                leap = bcd_to_int(rtc['regs'][board.RTC_REG_YEAR]) % 4 == 0
            except ValueError:
                leap = False
            value = (value & ~board.RTC_BIT_LPYR) | (board.RTC_BIT_LPYR if leap else 0)
        return value

    def _rtc_write(self, reg, value, now):
        rtc = self.state['mcp7940n']
        regs = rtc['regs']
        if reg >= len(regs):
            return
        if reg == board.RTC_REG_SECONDS:
            was_running = self._rtc_running()
            regs[reg] = value
            rtc['ticked_at'] = now  # writing seconds restarts the second
            if value & board.RTC_BIT_ST and not was_running:
                rtc['osc_started_at'] = now
            elif not value & board.RTC_BIT_ST:
                rtc['osc_started_at'] = None
        elif reg == board.RTC_REG_WEEKDAY:
            keep_pwrfail = regs[reg] & board.RTC_BIT_PWRFAIL and value & board.RTC_BIT_PWRFAIL
            regs[reg] = (value & 0x0F) | (board.RTC_BIT_PWRFAIL if keep_pwrfail else 0)
        elif reg == board.RTC_REG_MONTH:
            regs[reg] = value & 0x1F
        elif 0x18 <= reg <= 0x1F:
            pass  # time stamps are written by the chip only
        else:
            regs[reg] = value


def decode_time(regs):
    """datetime from the seven MCP7940N time registers (raises ValueError when not valid)."""
    seconds = bcd_to_int(regs[0] & 0x7F)
    minutes = bcd_to_int(regs[1] & 0x7F)
    if regs[2] & board.RTC_BIT_12H:
        hour = bcd_to_int(regs[2] & 0x1F) % 12 + (12 if regs[2] & board.RTC_BIT_PM else 0)
    else:
        hour = bcd_to_int(regs[2] & 0x3F)
    day = bcd_to_int(regs[4] & 0x3F)
    month = bcd_to_int(regs[5] & 0x1F)
    year = 2000 + bcd_to_int(regs[6])
    return datetime.datetime(year, month, day, hour, minutes, seconds)


def encode_time(when, template=None):
    """The seven time registers for ``when``, keeping the control bits of ``template``."""
    template = template or [0] * board.RTC_TIME_REGS
    if not 2000 <= when.year <= 2099:
        raise ValueError('the MCP7940N holds years 2000 to 2099, not %d' % when.year)
    if template[2] & board.RTC_BIT_12H:
        hour12 = when.hour % 12 or 12
        hours = board.RTC_BIT_12H | (board.RTC_BIT_PM if when.hour >= 12 else 0) | int_to_bcd(hour12)
    else:
        hours = int_to_bcd(when.hour)
    return [
        (template[0] & board.RTC_BIT_ST) | int_to_bcd(when.second),
        int_to_bcd(when.minute),
        hours,
        (template[3] & 0xF8) | (when.isoweekday() % 7 + 1),
        int_to_bcd(when.day),
        (template[5] & board.RTC_BIT_LPYR) | int_to_bcd(when.month),
        int_to_bcd(when.year - 2000),
    ]


def load_state(path):
    try:
        with open(path) as handle:
            state = json.load(handle)
    except ValueError as exc:
        raise CMBError('%s is not a virtual Turing Pi board state (%s): remove it or point bus at another file' % (path, exc))
    if not isinstance(state, dict) or state.get('format') != STATE_FORMAT:
        raise CMBError('%s is not a virtual Turing Pi board state (format %s)' % (path, STATE_FORMAT))
    return state


def save_state(path, state):
    directory = os.path.dirname(path) or '.'
    fd, tmp = tempfile.mkstemp(prefix='.board-', dir=directory)
    with os.fdopen(fd, 'w') as handle:
        json.dump(state, handle, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.rename(tmp, path)


class BoardNotFoundError(CMBError):
    pass


def missing_board_message(path):
    directory = os.path.dirname(path) or '.'
    where = '' if os.path.isdir(directory) else ' (nor does its directory %s)' % directory
    return ('virtual board %s does not exist%s: only turingpi.cluster.virtual_board creates boards, so run it '
            'first with path: %s; nothing was written' % (path, where, path))


class transaction(object):
    """Load the board, let the caller act on it, save it; one process at a time.

    Only ``create=True`` (the virtual_board module) makes a board that does not exist yet.
    """

    def __init__(self, path, create=False):
        self.path = path
        self.create = create
        self._fd = None
        self.board = None

    def __enter__(self):
        directory = os.path.dirname(self.path) or '.'
        if not self.create and not os.path.isfile(self.path):
            raise BoardNotFoundError(missing_board_message(self.path))
        if not os.path.isdir(directory):
            raise CMBError('virtual board %s: directory %s does not exist' % (self.path, directory))
        self._fd = os.open(self.path + '.tx', os.O_RDWR | os.O_CREAT, 0o664)
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            if os.path.exists(self.path):
                state = load_state(self.path)
            elif self.create:
                state = default_state()
            else:  # removed since the check above
                raise BoardNotFoundError(missing_board_message(self.path))
        except Exception:
            self._release()
            raise
        self.board = VirtualBoard(state)
        return self.board

    def _release(self):
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
        self._fd = None

    def __exit__(self, exc_type, exc, tb):
        try:
            # A NACK changes nothing, but a completed transfer must be kept.
            if exc_type is None or issubclass(exc_type, EnvironmentError):
                save_state(self.path, self.board.state)
        finally:
            self._release()


class VirtualBus(Bus):
    """The virtual board behind the same interface as the real bus; the board must exist."""

    def __init__(self, path, retries=5, retry_delay=0.005):
        super(VirtualBus, self).__init__(retries, retry_delay)
        self.path = path
        self.name = 'virtual board %s' % path
        if not os.path.isfile(path):
            raise BoardNotFoundError(missing_board_message(path))

    def _raw_read(self, addr, reg, length):
        with transaction(self.path) as vboard:
            return vboard.read(addr, reg, length, force=addr in self.force)

    def _raw_write(self, addr, reg, data):
        with transaction(self.path) as vboard:
            vboard.write(addr, reg, data, force=addr in self.force)

    def _raw_probe(self, addr):
        with transaction(self.path) as vboard:
            vboard.probe(addr, force=addr in self.force)
