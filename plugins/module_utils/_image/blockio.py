# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""Reading and syncing the target: dropping its cache, read-ahead, fsync on a thread."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import threading

# ioctl(BLKFLSBUF): flush and invalidate a block device's buffer cache (linux/fs.h _IO(0x12, 97)).
BLKFLSBUF = 0x1261
POSIX_FADV_DONTNEED = getattr(os, 'POSIX_FADV_DONTNEED', 4)
POSIX_FADV_WILLNEED = getattr(os, 'POSIX_FADV_WILLNEED', 3)
POSIX_FADV_SEQUENTIAL = getattr(os, 'POSIX_FADV_SEQUENTIAL', 2)
READAHEAD_WINDOW = 32 * 1024 * 1024


def drop_cache(fd, is_block):
    """Makes the next reads come from the device: fsync, posix_fadvise(DONTNEED) and,
    for block devices, ioctl(BLKFLSBUF)."""
    try:
        os.fsync(fd)
    except OSError:
        pass
    if hasattr(os, 'posix_fadvise'):
        try:
            os.posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        except OSError:
            pass
    if is_block:
        try:
            fcntl.ioctl(fd, BLKFLSBUF, 0)
        except (IOError, OSError):
            pass


class Syncer(threading.Thread):
    """fsyncs the target on its own thread whenever the writer says it wrote something, so the
    device writes while the next chunks are read and compared instead of everything waiting in
    the page cache for one fsync at the end (bmaptool fsyncs every few MiB for the same reason,
    but on the writing thread). The final fsync then has little left to do."""

    def __init__(self, fd):
        threading.Thread.__init__(self)
        self.daemon = True
        self.fd = fd
        self.pending = threading.Event()
        self.stopping = False
        self.error = None

    def kick(self):
        if self.error is not None:
            raise self.error
        self.pending.set()

    def run(self):
        while True:
            self.pending.wait()
            self.pending.clear()
            if self.stopping:
                return
            try:
                os.fsync(self.fd)
            except OSError as exc:
                self.error = exc
                return

    def finish(self):
        self.stopping = True
        self.pending.set()
        self.join()


def read_extents(fd, extents, chunk_size):
    """Reads extents (start, end or None for "to the end of the file", ...) in pieces of at most
    chunk_size bytes, with the kernel reading ahead over all of them; yields (extent index,
    offset, data). An extent ends early at the end of the file (short read)."""
    extents = [(e[0], e[1]) for e in extents]
    ahead = ReadAhead(fd, extents)
    for i, (start, end) in enumerate(extents):
        pos = start
        while end is None or pos < end:
            ahead.advance(pos)
            data = os.pread(fd, chunk_size if end is None else min(chunk_size, end - pos), pos)
            if not data:
                break
            yield i, pos, data
            pos += len(data)


class ReadAhead(object):
    """Asks the kernel to read the target ahead (posix_fadvise WILLNEED) over the extents
    about to be read: a sequence of synchronous 4 MiB reads then keeps the device busy, which
    about doubles read throughput on a cold target."""

    def __init__(self, fd, extents, window=READAHEAD_WINDOW):
        self.fd = fd
        self.extents = [(e[0], e[1]) for e in extents]
        self.window = window
        self.i = 0
        self.hinted = 0
        self.enabled = fd is not None and hasattr(os, 'posix_fadvise')

    def advance(self, pos):
        if not self.enabled:
            return
        limit = pos + self.window
        while self.i < len(self.extents):
            start, end = self.extents[self.i]
            begin = max(start, self.hinted, pos)
            if begin >= limit:
                return
            stop = limit if end is None else min(end, limit)
            if stop > begin:
                try:
                    os.posix_fadvise(self.fd, begin, stop - begin, POSIX_FADV_WILLNEED)
                except OSError:
                    self.enabled = False
                    return
                self.hinted = stop
            if end is None or stop < end:
                return
            self.i += 1
