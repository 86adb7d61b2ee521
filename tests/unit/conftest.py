# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures: a virtual board that records every bus transaction, and a module runner."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.turingpi.cluster.plugins.module_utils import _cmb_module
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
    return str(tmp_path / 'board.json')


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
