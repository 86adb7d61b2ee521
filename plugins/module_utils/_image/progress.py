# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""What a run did (the module's result) and its progress while it runs (a JSON file)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import threading
import time


class Stats(object):
    """The counters of a run; as_dict() is the module's result (with elapsed and throughput)."""

    RESULT = ('image_size', 'bytes_compared', 'bytes_read', 'bytes_written', 'bytes_skipped', 'bytes_unmapped',
              'bytes_verified', 'bytes_uncompared', 'source_bytes', 'writes', 'first_difference', 'sha256', 'digest_cached')

    def __init__(self):
        self.image_size = None
        self.bytes_compared = self.bytes_read = self.bytes_written = self.bytes_skipped = 0
        self.bytes_unmapped = self.bytes_verified = self.bytes_uncompared = self.source_bytes = 0
        self.writes = 0
        self.first_difference = None
        self.sha256 = None
        self.digest_cached = False
        self.elapsed = 0.0
        self.phase = 'starting'

    def as_dict(self):
        out = dict((name, getattr(self, name)) for name in self.RESULT)
        out.update(elapsed=round(self.elapsed, 3),
                   throughput=int((self.image_size or 0) / self.elapsed) if self.elapsed > 0 else 0)
        return out


class ProgressFile(object):
    """Writes the engine's progress as JSON (atomically) at most once a second."""

    def __init__(self, path, interval=1.0):
        self.path = path
        self.interval = interval
        self.last = 0.0
        self.start = time.time()

    def update(self, stats, total, done, force=False):
        if not self.path:
            return
        now = time.time()
        if not force and now - self.last < self.interval:
            return
        self.last = now
        elapsed = max(now - self.start, 1e-6)
        rate = done / elapsed
        data = dict(phase=stats.phase, done=done, total=total, bytes_written=stats.bytes_written,
                    bytes_skipped=stats.bytes_skipped, rate=int(rate), elapsed=round(elapsed, 1), pid=os.getpid(),
                    percent=round(100.0 * done / total, 1) if total else None,
                    eta=int((total - done) / rate) if total and rate > 0 else None)
        tmp = '%s.tmp.%d.%d' % (self.path, os.getpid(), threading.current_thread().ident or 0)
        try:
            with open(tmp, 'w') as f:
                json.dump(data, f)
            os.rename(tmp, self.path)
        except (IOError, OSError):
            pass
