# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The bus interface, its real back end (smbus2 on /dev/i2c-N), the lock and the retries.

The virtual board (_virtual_board.py) is the other back end. ``open_bus`` picks one from the
modules' ``bus`` option and never falls back from one to the other.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import os
import re
import time
import traceback

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board

SMBUS2_IMPORT_ERROR = None
try:
    import smbus2
except ImportError:
    smbus2 = None
    SMBUS2_IMPORT_ERROR = traceback.format_exc()

VIRTUAL_PREFIX = 'virtual:'
# Where a bus number's device lives: bus N is DEV_DIR/i2c-N.
DEV_DIR = '/dev'
# I2C block transfers carry at most 32 bytes (SMBus / i2c-dev limit).
MAX_BLOCK = 32
# errno values a NACK or a stretched clock turns into, depending on the adapter driver
# (the BCM2835 controller: EREMOTEIO; PIIX4: ENXIO; i2c-stub for an address it does not serve: ENODEV).
TRANSIENT_ERRNOS = frozenset([errno.EREMOTEIO, errno.ENXIO, errno.ENODEV, errno.EIO, errno.EAGAIN, errno.ETIMEDOUT])
# The end of an EEPROM write cycle (the DS4520 does not acknowledge for up to 20 ms): wait five
# times the datasheet's maximum AND probe at least this many times, so that a process descheduled
# for longer than the whole wait still probes again before it gives up.
WRITE_CYCLE_TIMEOUT = 5 * board.DS4520_EEPROM_WRITE_TIME
WRITE_CYCLE_MIN_PROBES = 10
WRITE_CYCLE_POLL = 0.002


class CMBError(Exception):
    """Any failure talking to the Cluster Management Bus; the message says what to do."""


class MissingLibraryError(CMBError):
    def __init__(self, library, exception):
        super(MissingLibraryError, self).__init__(library)
        self.library = library
        self.exception = exception


class BusNotFoundError(CMBError):
    pass


class BusPermissionError(CMBError):
    pass


class DeviceNotRespondingError(CMBError):
    pass


class DeviceBusyError(CMBError):
    """A kernel driver owns the address (i2cdetect shows UU)."""


class LockTimeoutError(CMBError):
    pass


class LockFileError(CMBError):
    """The lock file cannot be opened (a directory, not writable, ...)."""


class VerifyError(CMBError):
    pass


class Bus(object):
    """Register-level access to the devices on one I2C bus.

    Back ends implement the four ``_raw_*`` methods; this class adds chunking, bounded retries
    for NACKs (an EEPROM write cycle NACKs for up to 20 ms) and errors that name the device.
    """

    name = 'bus'

    def __init__(self, retries=5, retry_delay=0.005):
        self.retries = max(0, int(retries))
        self.retry_delay = retry_delay
        self.force = set()

    # -- back-end primitives -------------------------------------------------------------
    def _raw_read(self, addr, reg, length):
        raise NotImplementedError

    def _raw_write(self, addr, reg, data):
        raise NotImplementedError

    def _raw_probe(self, addr):
        raise NotImplementedError

    def close(self):
        pass

    # -- public API ----------------------------------------------------------------------
    def read(self, addr, reg, length=1):
        """Read ``length`` bytes starting at register ``reg``; returns a list of ints."""
        data = []
        while len(data) < length:
            chunk = min(MAX_BLOCK, length - len(data))
            data.extend(self._retry(addr, self._raw_read, addr, reg + len(data), chunk))
        return data

    def read_byte(self, addr, reg):
        return self.read(addr, reg, 1)[0]

    def write(self, addr, reg, data):
        """One write transaction: ``data`` (at most 32 bytes) starting at register ``reg``."""
        data = [int(b) & 0xFF for b in data]
        if not data or len(data) > MAX_BLOCK:
            raise ValueError('an I2C write carries 1 to %d bytes, not %d' % (MAX_BLOCK, len(data)))
        self._retry(addr, self._raw_write, addr, reg, data)

    def write_byte(self, addr, reg, value):
        self.write(addr, reg, [value])

    def probe(self, addr):
        """True when a device acknowledges ``addr``; False when nothing answers."""
        try:
            self._retry(addr, self._raw_probe, addr)
        except DeviceNotRespondingError:
            return False
        except DeviceBusyError:
            return True  # a kernel driver holds it, so it is there
        return True

    def wait_ready(self, addr, timeout=WRITE_CYCLE_TIMEOUT, min_probes=WRITE_CYCLE_MIN_PROBES):
        """Poll until ``addr`` acknowledges again (end of an EEPROM write cycle).

        Gives up only when ``timeout`` seconds have passed AND ``min_probes`` probes went
        unanswered. Returns the number of probes it took.
        """
        start = time.monotonic()
        probes = 0
        while True:
            probes += 1
            try:
                self._raw_probe(addr)
                return probes
            except EnvironmentError as exc:
                if exc.errno not in TRANSIENT_ERRNOS:
                    raise self._translate(addr, exc)
                waited = time.monotonic() - start
                if probes >= min_probes and waited >= timeout:
                    raise DeviceNotRespondingError(
                        'no device answered at 0x%02x on %s for %.3f s (%d probes) after an EEPROM write, '
                        'which takes at most %.3f s (%s): check that nothing else drives the bus and that '
                        'this node is on a Turing Pi V1'
                        % (addr, self.name, waited, probes, board.DS4520_EEPROM_WRITE_TIME, os.strerror(exc.errno)))
            time.sleep(WRITE_CYCLE_POLL)

    def _retry(self, addr, func, *args):
        attempt = 0
        while True:
            try:
                return func(*args)
            except EnvironmentError as exc:
                if exc.errno in TRANSIENT_ERRNOS and attempt < self.retries:
                    attempt += 1
                    time.sleep(self.retry_delay * attempt)
                    continue
                raise self._translate(addr, exc, attempt)

    def _translate(self, addr, exc, attempts=0):
        if exc.errno == errno.EBUSY:
            return DeviceBusyError(
                'device 0x%02x on %s is held by a kernel driver (i2cdetect shows UU there)' % (addr, self.name))
        if exc.errno in TRANSIENT_ERRNOS:
            return DeviceNotRespondingError(
                'no device answered at 0x%02x on %s after %d attempts (%s): check that this node is on '
                'a Turing Pi V1 and that the bus is the Cluster Management Bus'
                % (addr, self.name, attempts + 1, os.strerror(exc.errno)))
        return CMBError('I2C transfer to 0x%02x on %s failed: %s' % (addr, self.name, exc))


class SMBus2Bus(Bus):
    """The real bus: smbus2 on /dev/i2c-N."""

    def __init__(self, path, retries=5, retry_delay=0.005):
        super(SMBus2Bus, self).__init__(retries, retry_delay)
        self.name = path
        if smbus2 is None:
            raise MissingLibraryError('smbus2', SMBUS2_IMPORT_ERROR)
        if not os.path.exists(path):
            raise BusNotFoundError('%s not found: %s' % (path, board.ENABLE_BUS_HINT))
        try:
            self._smbus = smbus2.SMBus(path)
        except EnvironmentError as exc:
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise BusPermissionError(
                    'permission denied opening %s: run the task with become: true, or add the user '
                    'to the group that owns the device (i2c on Raspberry Pi OS)' % path)
            raise CMBError('cannot open %s: %s' % (path, exc))

    def _raw_read(self, addr, reg, length):
        force = addr in self.force
        if length == 1:
            return [self._smbus.read_byte_data(addr, reg, force=force)]
        return list(self._smbus.read_i2c_block_data(addr, reg, length, force=force))

    def _raw_write(self, addr, reg, data):
        force = addr in self.force
        if len(data) == 1:
            self._smbus.write_byte_data(addr, reg, data[0], force=force)
        else:
            self._smbus.write_i2c_block_data(addr, reg, data, force=force)

    def _raw_probe(self, addr):
        # A receive-byte, as i2cdetect does for EEPROM ranges: never a quick write.
        self._smbus.read_byte(addr, force=addr in self.force)

    def close(self):
        self._smbus.close()


class BusLock(object):
    """An advisory lock held around every read-modify-write, so two plays cannot lose an update.

    It only orders processes on this node: nothing arbitrates the bus between nodes.
    """

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self._fd = None

    def __enter__(self):
        self._fd = self._open()
        deadline = time.time() + self.timeout
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except EnvironmentError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    os.close(self._fd)
                    self._fd = None
                    raise LockFileError('cannot lock %s (%s): set lock_file to a file on a local file system'
                                        % (self.path, os.strerror(exc.errno)))
                if time.time() >= deadline:
                    os.close(self._fd)
                    self._fd = None
                    raise LockTimeoutError(
                        'another process held the bus lock %s for more than %s seconds: wait for the other '
                        'play to finish or raise lock_timeout' % (self.path, self.timeout))
                time.sleep(0.02)

    def _open(self):
        """The lock file's descriptor; its directory is created when missing."""
        directory = os.path.dirname(self.path)
        try:
            if directory and not os.path.isdir(directory):
                os.makedirs(directory)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o664)
        except EnvironmentError as exc:
            raise LockFileError(self._advice(exc))

    def _advice(self, exc):
        if os.path.isdir(self.path):
            return ('lock_file %s is a directory: set lock_file to the path of a file (it is created if '
                    'missing), or leave it unset for the default' % self.path)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            return ('cannot open the lock file %s for writing (%s): run the task with become: true, or set '
                    'lock_file to a file in a directory this user can write' % (self.path, os.strerror(exc.errno)))
        return ('cannot open the lock file %s (%s): set lock_file to a file in a directory this user can '
                'write, or leave it unset for the default' % (self.path, os.strerror(exc.errno)))

    def __exit__(self, *args):
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def parse_bus(spec):
    """Return ('i2c', '/dev/i2c-N') or ('virtual', '/path/state.json') for a ``bus`` option."""
    text = str(spec).strip()
    if text.startswith(VIRTUAL_PREFIX):
        path = text[len(VIRTUAL_PREFIX):]
        if not path:
            raise ValueError("bus 'virtual:' needs the path of the board's state file, e.g. virtual:/tmp/board.json")
        return 'virtual', os.path.abspath(os.path.expanduser(path))
    if re.match(r'^\d+$', text):
        return 'i2c', os.path.join(DEV_DIR, 'i2c-%s' % text)
    if re.match(r'^/dev/i2c-\d+$', text):
        return 'i2c', text
    raise ValueError(
        "bus '%s' is not valid: give an I2C bus number (1 on the Turing Pi), a path such as /dev/i2c-1, "
        "or virtual:/path/to/board.json for the virtual board" % text)


def default_lock_path(kind, path):
    if kind == 'virtual':
        return path + '.lock'
    lock_dir = '/run/lock' if os.path.isdir('/run/lock') else '/tmp'
    return os.path.join(lock_dir, 'turingpi-cmb-%s.lock' % os.path.basename(path))


def open_bus(spec, retries=5):
    """Open the back end named by ``spec``; the virtual board only when asked for by name."""
    kind, path = parse_bus(spec)
    if kind == 'virtual':
        from ansible_collections.turingpi.cluster.plugins.module_utils._virtual_board import VirtualBus
        return VirtualBus(path, retries=retries)
    return SMBus2Bus(path, retries=retries)
