# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The virtual board behaves as the datasheets say (not as the modules happen to use it)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import errno
import os

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils import _virtual_board as vb

DS, RTC = 0x57, 0x6F


class Clock(object):
    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def chip(clock):
    return vb.VirtualBoard(vb.default_state(now=clock()), clock=clock)


def settle(chip, clock, seconds=0.05):
    clock.now += seconds


def test_factory_state(chip):
    assert chip.read(DS, 0xF2, 1) == [0xFF]
    assert chip.read(DS, 0xF4, 1) == [0x00]
    assert chip.read(DS, 0xF8, 1) == [0xFE]
    assert chip.read(DS, 0x00, 64) == [0xFF] * 64


def test_eeprom_page_write_wraps_inside_its_row(chip, clock):
    chip.write(DS, 0x06, list(range(1, 11)))
    settle(chip, clock)
    # bytes 1, 2 land at 0x06, 0x07; 3..8 wrap to 0x00..0x05; 9, 10 overwrite 0x06, 0x07
    assert chip.read(DS, 0x00, 8) == [3, 4, 5, 6, 7, 8, 9, 10]
    assert chip.read(DS, 0x08, 8) == [0xFF] * 8


def test_eeprom_write_cycle_nacks(chip, clock):
    chip.write(DS, 0x00, [1])
    with pytest.raises(EnvironmentError) as exc:
        chip.read(DS, 0x00, 1)
    assert exc.value.errno == errno.EREMOTEIO
    clock.now += vb.EEPROM_WRITE_TIME
    assert chip.read(DS, 0x00, 1) == [1]


def test_power_register_goes_to_eeprom_when_see_is_0(chip, clock):
    chip.write(DS, 0xF2, [0xF7])
    assert chip.state['ds4520']['nv'][0xF2] == 0xF7
    with pytest.raises(EnvironmentError):
        chip.read(DS, 0xF2, 1)  # the write cycle
    settle(chip, clock)
    assert chip.read(DS, 0xF2, 1) == [0xF7]
    assert chip.state['ds4520']['eeprom_cycles'] == 1


def test_power_register_stays_volatile_when_see_is_1(chip, clock):
    chip.write(DS, 0xF4, [0x01])
    chip.write(DS, 0xF2, [0x7F])
    assert chip.read(DS, 0xF2, 1) == [0x7F]  # no write cycle: readable at once
    assert chip.state['ds4520']['nv'][0xF2] == 0xFF
    assert chip.state['ds4520']['eeprom_cycles'] == 0


def test_status_is_populated_and_powered_and_read_only(clock):
    chip = vb.VirtualBoard(vb.default_state(populated=[1, 2, 3], now=clock()), clock=clock)
    assert chip.read(DS, 0xF8, 1) == [0x0E]  # the docs' example
    chip.write(DS, 0xF4, [0x01])
    chip.write(DS, 0xF2, [0xF7])  # node 3 off
    assert chip.read(DS, 0xF8, 1) == [0x06]
    chip.write(DS, 0xF8, [0xFF])
    assert chip.read(DS, 0xF8, 1) == [0x06]


def test_power_up_reloads_the_shadow_from_eeprom(chip, clock):
    chip.write(DS, 0xF4, [0x01])
    chip.write(DS, 0xF2, [0x03])
    chip.power_cycle()
    assert chip.read(DS, 0xF2, 1) == [0xFF]
    assert chip.read(DS, 0xF4, 1) == [0x00]


def test_see_persistence_is_a_parameter(clock):
    chip = vb.VirtualBoard(vb.default_state(see_persists=True, now=clock()), clock=clock)
    chip.write(DS, 0xF4, [0x01])
    chip.power_cycle()
    assert chip.read(DS, 0xF4, 1) == [0x01]


def test_unknown_address_does_not_acknowledge(chip):
    with pytest.raises(EnvironmentError) as exc:
        chip.read(0x50, 0, 1)
    assert exc.value.errno == errno.ENXIO


def test_switch_acknowledges_at_its_address(clock):
    chip = vb.VirtualBoard(vb.default_state(switch_address=0x04, now=clock()), clock=clock)
    chip.probe(0x04)
    with pytest.raises(EnvironmentError):
        chip.probe(0x5C)


def set_clock(chip, when, st=True, vbaten=False):
    regs = vb.encode_time(when)
    regs[3] |= board.RTC_BIT_VBATEN if vbaten else 0
    chip.write(RTC, 0x01, regs[1:])
    chip.write(RTC, 0x00, [regs[0] | (board.RTC_BIT_ST if st else 0)])


def test_rtc_keeps_counting(chip, clock):
    set_clock(chip, datetime.datetime(2026, 12, 31, 23, 59, 0))
    clock.now += 3661.5
    assert vb.decode_time(chip.read(RTC, 0x00, 7)) == datetime.datetime(2027, 1, 1, 1, 0, 1)


def test_rtc_stands_still_without_st(chip, clock):
    set_clock(chip, datetime.datetime(2026, 1, 1), st=False)
    clock.now += 100
    assert vb.decode_time(chip.read(RTC, 0x00, 7)) == datetime.datetime(2026, 1, 1)


def test_oscrun_follows_st_after_startup(chip, clock):
    set_clock(chip, datetime.datetime(2026, 1, 1))
    assert not chip.read(RTC, 0x03, 1)[0] & board.RTC_BIT_OSCRUN
    clock.now += vb.OSC_STARTUP_TIME + 0.001
    assert chip.read(RTC, 0x03, 1)[0] & board.RTC_BIT_OSCRUN
    chip.write(RTC, 0x00, [0x00])
    assert not chip.read(RTC, 0x03, 1)[0] & board.RTC_BIT_OSCRUN


def test_oscrun_and_lpyr_are_read_only(chip, clock):
    chip.write(RTC, 0x03, [0xFF])
    chip.write(RTC, 0x06, [0x25])  # 2025: not a leap year
    chip.write(RTC, 0x05, [0xFF])
    assert not chip.read(RTC, 0x03, 1)[0] & board.RTC_BIT_OSCRUN
    assert not chip.read(RTC, 0x05, 1)[0] & board.RTC_BIT_LPYR
    chip.write(RTC, 0x06, [0x28])
    assert chip.read(RTC, 0x05, 1)[0] & board.RTC_BIT_LPYR


def test_battery_keeps_time_and_sram_and_flags_power_failure(chip, clock):
    set_clock(chip, datetime.datetime(2026, 1, 1), vbaten=True)
    chip.write(RTC, 0x20, [0x42])
    chip.power_cycle(off_seconds=10)
    clock.now += 0.1
    regs = chip.read(RTC, 0x00, 7)
    assert vb.decode_time(regs) == datetime.datetime(2026, 1, 1, 0, 0, 10)
    assert regs[3] & board.RTC_BIT_PWRFAIL
    assert chip.read(RTC, 0x20, 1) == [0x42]
    # PWRFAIL can be cleared, not set, by software
    chip.write(RTC, 0x03, [regs[3] & ~board.RTC_BIT_PWRFAIL])
    assert not chip.read(RTC, 0x03, 1)[0] & board.RTC_BIT_PWRFAIL
    chip.write(RTC, 0x03, [board.RTC_BIT_PWRFAIL])
    assert not chip.read(RTC, 0x03, 1)[0] & board.RTC_BIT_PWRFAIL


def test_without_vbaten_power_loss_stops_the_clock_and_loses_sram(chip, clock):
    set_clock(chip, datetime.datetime(2026, 1, 1), vbaten=False)
    chip.write(RTC, 0x20, [0x42])
    chip.power_cycle()
    assert not chip.read(RTC, 0x00, 1)[0] & board.RTC_BIT_ST
    assert chip.read(RTC, 0x20, 1) == [0x00]


def test_kernel_driver_holds_the_rtc(clock):
    chip = vb.VirtualBoard(vb.default_state(rtc_driver_bound=True, now=clock()), clock=clock)
    with pytest.raises(EnvironmentError) as exc:
        chip.read(RTC, 0x00, 1)
    assert exc.value.errno == errno.EBUSY
    assert chip.read(RTC, 0x00, 1, force=True) == [0x00]


def test_12_hour_mode_is_decoded():
    regs = [0x00, 0x30, board.RTC_BIT_12H | board.RTC_BIT_PM | 0x11, 0x01, 0x02, 0x03, 0x26]
    assert vb.decode_time(regs) == datetime.datetime(2026, 3, 2, 23, 30, 0)
    assert vb.encode_time(datetime.datetime(2026, 3, 2, 23, 30, 0), regs)[2] == regs[2]


def test_state_is_shared_between_bus_objects(tmp_path):
    path = str(tmp_path / 'board.json')
    vb.save_state(path, vb.default_state())
    one, two = vb.VirtualBus(path), vb.VirtualBus(path)
    one.write(DS, 0xF4, [0x01])
    one.write(DS, 0xF2, [0xAB])
    assert two.read(DS, 0xF2, 1) == [0xAB]


@pytest.mark.parametrize('content', ['not json', '[]', '{"format": 99}'])
def test_a_file_that_is_not_a_board_is_refused(tmp_path, content):
    path = tmp_path / 'board.json'
    path.write_text(content)
    with pytest.raises(vb.CMBError) as exc:
        vb.VirtualBus(str(path)).read(DS, 0xF2, 1)
    assert 'is not a virtual Turing Pi board state' in str(exc.value)
    assert path.read_text() == content  # left as it was


def test_only_a_creating_transaction_makes_a_board(tmp_path):
    path = str(tmp_path / 'board.json')
    with pytest.raises(vb.BoardNotFoundError) as exc:
        with vb.transaction(path):
            pass
    assert 'only turingpi.cluster.virtual_board creates boards' in str(exc.value)
    assert os.listdir(str(tmp_path)) == []  # not even the transaction's lock file
    with vb.transaction(path, create=True) as chip:
        assert chip.read(DS, 0xF2, 1) == [0xFF]
    assert vb.load_state(path)['format'] == vb.STATE_FORMAT


def test_a_board_removed_under_a_bus_is_not_made_again(tmp_path):
    path = str(tmp_path / 'board.json')
    vb.save_state(path, vb.default_state())
    bus = vb.VirtualBus(path)
    os.remove(path)
    with pytest.raises(vb.BoardNotFoundError):
        bus.read(DS, 0xF2, 1)
    assert not os.path.exists(path)
