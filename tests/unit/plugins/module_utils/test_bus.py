# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _bus
from ansible_collections.turingpi.cluster.plugins.module_utils import _virtual_board as vb


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


def test_a_bus_number_names_a_device_in_dev_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(_bus, 'DEV_DIR', str(tmp_path))
    assert _bus.parse_bus('3') == ('i2c', str(tmp_path / 'i2c-3'))


def test_missing_bus_says_how_to_enable_it(tmp_path, monkeypatch):
    monkeypatch.setattr(_bus, 'smbus2', object())
    path = str(tmp_path / 'i2c-97')  # a path this test owns, so it surely does not exist
    with pytest.raises(_bus.BusNotFoundError) as exc:
        _bus.SMBus2Bus(path)
    assert str(exc.value).startswith("%s not found: enable the Cluster Management Bus with 'dtoverlay=i2c1,pins_44_45'" % path)


def test_missing_smbus2_is_reported(monkeypatch):
    monkeypatch.setattr(_bus, 'smbus2', None)
    with pytest.raises(_bus.MissingLibraryError):
        _bus.SMBus2Bus('/dev/i2c-1')


def test_virtual_board_only_when_named(tmp_path, monkeypatch):
    monkeypatch.setattr(_bus, 'smbus2', None)
    with pytest.raises(_bus.MissingLibraryError):
        _bus.open_bus('1')  # never falls back to the virtual board
    vb.save_state(str(tmp_path / 'b.json'), vb.default_state())
    assert type(_bus.open_bus('virtual:%s/b.json' % tmp_path)).__name__ == 'VirtualBus'


@pytest.mark.parametrize('where', ['board.json', 'missing/dir/board.json'])
def test_a_missing_virtual_board_is_refused_and_nothing_is_created(tmp_path, where):
    path = str(tmp_path / where)
    with pytest.raises(vb.BoardNotFoundError) as exc:
        _bus.open_bus('virtual:' + path)
    nor = '' if where == 'board.json' else ' (nor does its directory %s)' % os.path.dirname(path)
    assert str(exc.value) == (
        'virtual board %s does not exist%s: only turingpi.cluster.virtual_board creates boards, so run it first '
        'with path: %s; nothing was written' % (path, nor, path))
    assert os.listdir(str(tmp_path)) == []


class FakeTime(object):
    """time for _bus: a clock that moves only when the code sleeps or a probe takes long."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def time(self):
        return self.now

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


class WriteCycleBus(_bus.Bus):
    """NACKs ``busy`` probes, then answers; each probe takes ``probe_time`` on the fake clock."""

    name = 'cycle'

    def __init__(self, clock, busy, probe_time):
        super(WriteCycleBus, self).__init__(retries=0, retry_delay=0)
        self.clock, self.busy, self.probe_time, self.probes = clock, busy, probe_time, 0

    def _raw_probe(self, addr):
        self.probes += 1
        self.clock.now += self.probe_time
        if self.probes <= self.busy:
            raise EnvironmentError(errno.EREMOTEIO, 'nack')


def test_write_cycle_wait_survives_a_descheduled_process(monkeypatch):
    # Every probe comes back a whole second late (three busy loops on two cores): the wait must
    # not give up after the first late probe, but keep probing up to its minimum count.
    clock = FakeTime()
    monkeypatch.setattr(_bus, 'time', clock)
    bus = WriteCycleBus(clock, busy=3, probe_time=1.0)
    assert bus.wait_ready(0x57) == 4
    assert bus.probes == 4


def test_write_cycle_wait_lasts_its_time_even_with_fast_probes(monkeypatch):
    # Probes that answer at once: after the minimum count the wait still lasts its whole time.
    clock = FakeTime()
    monkeypatch.setattr(_bus, 'time', clock)
    bus = WriteCycleBus(clock, busy=40, probe_time=0.0)
    assert bus.wait_ready(0x57) == 41
    assert clock.now - 1000.0 == pytest.approx(40 * _bus.WRITE_CYCLE_POLL)
    assert _bus.WRITE_CYCLE_TIMEOUT == pytest.approx(0.1)  # five times the DS4520's 20 ms maximum


def test_write_cycle_wait_gives_up_after_its_time_and_its_probes(monkeypatch):
    clock = FakeTime()
    monkeypatch.setattr(_bus, 'time', clock)
    monkeypatch.setattr(_bus, 'WRITE_CYCLE_POLL', 1 / 32.0)  # exact in binary, so the count is exact
    bus = WriteCycleBus(clock, busy=1000, probe_time=0.0)
    with pytest.raises(_bus.DeviceNotRespondingError) as exc:
        bus.wait_ready(0x57, timeout=0.5)
    assert bus.probes == 17  # the first at once, then one every 1/32 s until 0.5 s have passed
    assert str(exc.value) == (
        'no device answered at 0x57 on cycle for 0.500 s (17 probes) after an EEPROM write, which takes at most '
        '0.020 s (Remote I/O error): check that nothing else drives the bus and that this node is on a Turing Pi V1')
    slow = WriteCycleBus(clock, busy=1000, probe_time=1.0)
    with pytest.raises(_bus.DeviceNotRespondingError):
        slow.wait_ready(0x57)
    assert slow.probes == _bus.WRITE_CYCLE_MIN_PROBES


def test_lock_times_out_with_advice(tmp_path):
    path = str(tmp_path / 'cmb.lock')
    with _bus.BusLock(path, 1):
        with pytest.raises(_bus.LockTimeoutError) as exc:
            with _bus.BusLock(path, 0.1):
                pass
    assert 'raise lock_timeout' in str(exc.value)
    with _bus.BusLock(path, 0.1):
        pass  # released


def test_a_lock_file_that_is_a_directory_says_what_to_do(tmp_path):
    path = str(tmp_path / 'lockdir')
    os.mkdir(path)
    with pytest.raises(_bus.LockFileError) as exc:
        with _bus.BusLock(path, 0.1):
            pass
    assert str(exc.value) == ('lock_file %s is a directory: set lock_file to the path of a file (it is created if '
                              'missing), or leave it unset for the default' % path)


def test_a_lock_file_that_cannot_be_written_says_what_to_do(tmp_path, monkeypatch):
    path = str(tmp_path / 'cmb.lock')
    real_open = os.open

    def denied(name, *args):
        if name == path:
            raise OSError(errno.EACCES, os.strerror(errno.EACCES), name)
        return real_open(name, *args)

    monkeypatch.setattr(_bus.os, 'open', denied)
    with pytest.raises(_bus.LockFileError) as exc:
        with _bus.BusLock(path, 0.1):
            pass
    assert str(exc.value) == ('cannot open the lock file %s for writing (Permission denied): run the task with '
                              'become: true, or set lock_file to a file in a directory this user can write' % path)


def test_a_lock_file_below_a_file_says_what_to_do(tmp_path):
    (tmp_path / 'plain').write_text('x')
    path = str(tmp_path / 'plain' / 'cmb.lock')
    with pytest.raises(_bus.LockFileError) as exc:
        with _bus.BusLock(path, 0.1):
            pass
    assert str(exc.value).startswith('cannot open the lock file %s (' % path)
    assert str(exc.value).endswith('): set lock_file to a file in a directory this user can write, or leave it '
                                   'unset for the default')
