# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: a virtual board that records every bus transaction, a module runner, and a
fake sysfs tree with USB devices and disks."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.turingpi.cluster.plugins.module_utils import _cmb_module
from ansible_collections.turingpi.cluster.plugins.module_utils._image import digest as image_digest
from ansible_collections.turingpi.cluster.plugins.module_utils import _virtual_board
from ansible_collections.turingpi.cluster.plugins.module_utils._virtual_board import VirtualBus


class RecordingBus(VirtualBus):
    """The virtual board, with a log of every transfer that reached it."""

    def __init__(self, path, **kwargs):
        super(RecordingBus, self).__init__(path, **kwargs)
        self.log = []

    def _raw_read(self, addr, reg, length):
        self.log.append(('read', addr, reg, length))
        return super(RecordingBus, self)._raw_read(addr, reg, length)

    def _raw_write(self, addr, reg, data):
        self.log.append(('write', addr, reg, list(data)))
        return super(RecordingBus, self)._raw_write(addr, reg, data)

    def writes(self, addr=None, reg=None):
        return [entry for entry in self.log if entry[0] == 'write'
                and (addr is None or entry[1] == addr) and (reg is None or entry[2] == reg)]


@pytest.fixture
def board_path(tmp_path):
    """A virtual board fresh from the factory (as turingpi.cluster.virtual_board creates it)."""
    path = str(tmp_path / 'board.json')
    _virtual_board.save_state(path, _virtual_board.default_state())
    return path


@pytest.fixture
def recording_bus(board_path, monkeypatch):
    """Every module opened in the test gets this bus (whatever its ``bus`` option says)."""
    bus = RecordingBus(board_path)
    monkeypatch.setattr(_cmb_module, 'open_bus', lambda spec, retries=5: bus)
    monkeypatch.setattr(bus, 'close', lambda: None)
    return bus


@pytest.fixture
def run_module(capsys):
    """Run a module's main() with the given args; return (exit code, parsed JSON result)."""

    def run(module, args, check_mode=False, diff=False):
        args = dict(args)
        if check_mode:
            args['_ansible_check_mode'] = True
        if diff:
            args['_ansible_diff'] = True
        with patch_module_args(args):
            with pytest.raises(SystemExit) as exc:
                module.main()
        out = capsys.readouterr().out
        return exc.value.code, json.loads(out)

    return run


class FakeSysfs(object):
    """A sysfs tree in a temporary directory, shaped like the kernel's for USB devices
    (devices/.../usb1/<port> with idVendor, idProduct, serial; bus/usb/devices/<port> links) and
    the disks of USB mass-storage interfaces (.../host3/.../block/<name>/size; block/<name> links)."""

    def __init__(self, root):
        self.root = root
        (root / 'bus' / 'usb' / 'devices').mkdir(parents=True)
        (root / 'block').mkdir()

    def __str__(self):
        return str(self.root)

    def usb_device(self, port, vid, pid, serial=None):
        d = self.root / 'devices' / 'pci0000:00' / '0000:00:14.0' / 'usb1' / port
        d.mkdir(parents=True)
        (d / 'idVendor').write_text(vid + '\n')
        (d / 'idProduct').write_text(pid + '\n')
        if serial:
            (d / 'serial').write_text(serial + '\n')
        os.symlink(str(d), str(self.root / 'bus' / 'usb' / 'devices' / port))
        return d

    def usb_disk(self, device_dir, name, sectors):
        blk = device_dir / (device_dir.name + ':1.0') / 'host3' / 'target3:0:0' / '3:0:0:0' / 'block' / name
        blk.mkdir(parents=True)
        (blk / 'size').write_text('%d\n' % sectors)
        os.symlink(str(blk), str(self.root / 'block' / name))
        return blk


@pytest.fixture
def sysfs(tmp_path):
    """An empty fake sysfs tree (see FakeSysfs) under tmp_path/sys."""
    return FakeSysfs(tmp_path / 'sys')


class DigestWhenWaited(image_digest.DigestJob):
    """The image's SHA-256, computed only when the engine waits for it: the slowest possible hash
    (a large image on a fast target)."""

    def _start(self):
        pass

    def result(self):
        if not self.thread.is_alive() and not self.done.is_set():
            self.thread.start()
        return super(DigestWhenWaited, self).result()


@pytest.fixture
def digest_when_waited(monkeypatch):
    """image_write's digest thread replaced by one that hashes only when waited for."""
    monkeypatch.setattr(image_digest, 'DigestJob', DigestWhenWaited)
