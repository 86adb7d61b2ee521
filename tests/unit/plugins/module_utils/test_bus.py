# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _bus


class FlakyBus(_bus.Bus):
    """NACKs a given number of times, then answers."""

    name = 'flaky'

    def __init__(self, failures, err=errno.EREMOTEIO, retries=3):
        super(FlakyBus, self).__init__(retries=retries, retry_delay=0)
        self.failures = failures
        self.err = err
        self.calls = 0

    def _raw_read(self, addr, reg, length):
        self.calls += 1
        if self.calls <= self.failures:
            raise EnvironmentError(self.err, 'nack')
        return [reg + i for i in range(length)]

    def _raw_probe(self, addr):
        return self._raw_read(addr, 0, 1)


def test_nacks_are_retried():
    bus = FlakyBus(failures=2)
    assert bus.read(0x57, 0xF2) == [0xF2]
    assert bus.calls == 3


def test_retries_are_bounded_and_the_error_names_the_device():
    bus = FlakyBus(failures=10)
    with pytest.raises(_bus.DeviceNotRespondingError) as exc:
        bus.read(0x57, 0xF2)
    assert bus.calls == 4
    assert str(exc.value).startswith('no device answered at 0x57 on flaky after 4 attempts')


def test_busy_means_a_kernel_driver_and_is_not_retried():
    bus = FlakyBus(failures=10, err=errno.EBUSY)
    with pytest.raises(_bus.DeviceBusyError) as exc:
        bus.read(0x6F, 0)
    assert bus.calls == 1
    assert 'held by a kernel driver' in str(exc.value)


def test_reads_are_split_into_32_byte_blocks():
    bus = FlakyBus(failures=0)
    data = bus.read(0x57, 0x00, 64)
    assert data == list(range(64))
    assert bus.calls == 2


def test_probe():
    assert FlakyBus(failures=0).probe(0x57)
    assert not FlakyBus(failures=10).probe(0x57)
    assert not FlakyBus(failures=10, err=errno.ENODEV).probe(0x5C)  # i2c-stub, nothing at the address
    assert FlakyBus(failures=10, err=errno.EBUSY).probe(0x6F)


@pytest.mark.parametrize('spec, parsed', [
    ('1', ('i2c', '/dev/i2c-1')),
    (1, ('i2c', '/dev/i2c-1')),
    ('/dev/i2c-3', ('i2c', '/dev/i2c-3')),
    ('virtual:/tmp/b.json', ('virtual', '/tmp/b.json')),
])
def test_parse_bus(spec, parsed):
    assert _bus.parse_bus(spec) == parsed


@pytest.mark.parametrize('spec', ['i2c-1', 'virtual:', '/dev/sda', 'x'])
def test_parse_bus_rejects(spec):
    with pytest.raises(ValueError):
        _bus.parse_bus(spec)


def test_missing_bus_says_how_to_enable_it(monkeypatch):
    monkeypatch.setattr(_bus, 'smbus2', object())
    with pytest.raises(_bus.BusNotFoundError) as exc:
        _bus.SMBus2Bus('/dev/i2c-97')
    assert str(exc.value).startswith("/dev/i2c-97 not found: enable the Cluster Management Bus with 'dtoverlay=i2c1,pins_44_45'")


def test_missing_smbus2_is_reported(monkeypatch):
    monkeypatch.setattr(_bus, 'smbus2', None)
    with pytest.raises(_bus.MissingLibraryError):
        _bus.SMBus2Bus('/dev/i2c-1')


def test_virtual_board_only_when_named(tmp_path, monkeypatch):
    monkeypatch.setattr(_bus, 'smbus2', None)
    with pytest.raises(_bus.MissingLibraryError):
        _bus.open_bus('1')  # never falls back to the virtual board
    assert type(_bus.open_bus('virtual:%s/b.json' % tmp_path)).__name__ == 'VirtualBus'


def test_lock_times_out_with_advice(tmp_path):
    path = str(tmp_path / 'cmb.lock')
    with _bus.BusLock(path, 1):
        with pytest.raises(_bus.LockTimeoutError) as exc:
            with _bus.BusLock(path, 0.1):
                pass
    assert 'raise lock_timeout' in str(exc.value)
    with _bus.BusLock(path, 0.1):
        pass  # released
