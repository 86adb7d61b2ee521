# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The base of every CMB module: shared connection options, the bus, the lock, the errors."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import (
    BusLock,
    CMBError,
    MissingLibraryError,
    default_lock_path,
    open_bus,
    parse_bus,
)

# Documented once, in the turingpi.cluster._cmb doc fragment.
CMB_COMMON_ARGS = dict(
    bus=dict(type='str', default=str(board.DEFAULT_BUS)),
    lock_file=dict(type='path'),
    lock_timeout=dict(type='float', default=30.0),
    retries=dict(type='int', default=5),
)


class CMBModule(AnsibleModule):
    """AnsibleModule with the shared bus options merged into its argument spec."""

    def __init__(self, argument_spec, **kwargs):
        spec = dict(CMB_COMMON_ARGS)
        spec.update(argument_spec)
        super(CMBModule, self).__init__(argument_spec=spec, **kwargs)

    def fail_cmb(self, exc, **result):
        if isinstance(exc, MissingLibraryError):
            self.fail_json(msg=missing_required_lib(exc.library), exception=exc.exception, **result)
        self.fail_json(msg=str(exc), **result)

    @contextlib.contextmanager
    def bus(self, lock=True):
        """Open the bus named by ``bus`` and hold the lock for the whole block.

        Any CMBError inside the block ends the module with its message.
        """
        handle = None
        try:
            try:
                kind, path = parse_bus(self.params['bus'])
            except ValueError as exc:
                raise CMBError(str(exc))
            handle = open_bus(self.params['bus'], retries=self.params['retries'])
            if lock:
                lock_path = self.params['lock_file'] or default_lock_path(kind, path)
                with BusLock(lock_path, self.params['lock_timeout']):
                    yield handle
            else:
                yield handle
        except CMBError as exc:
            self.fail_cmb(exc)
        finally:
            if handle is not None:
                handle.close()
