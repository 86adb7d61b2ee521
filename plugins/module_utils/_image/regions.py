# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The image's regions, read from the source stream on a thread of their own.

A region is a mapped range of the bmap (or the whole image without one). A range with a
checksum is read whole and checked before any byte of it is handed to the writer, so a range
that does not match its checksum is never written: ranges up to STAGE_MAX bytes are held in
memory until checked; a larger one is checked first by reading it from a second stream of the
same local file (RangeVerifier). A URL cannot be read twice: its ranges larger than STAGE_MAX
are checked as they are written, at their end.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import queue
import threading
import traceback

from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import MiB, BmapError, SourceError

# A checksummed range up to this size is held in memory until its checksum is checked.
STAGE_MAX = 32 * MiB


def range_mismatch(start, end, checksum_type, actual, expected):
    return BmapError('bmap checksum mismatch for image bytes %d-%d (%s %s, bmap says %s): the bmap does not belong to this image'
                     % (start, end - 1, checksum_type, actual, expected))


def _ended_before(position, start):
    return SourceError('src ended at image byte %d, before the mapped range at %d: the image is truncated or the bmap belongs '
                       'to another image' % (position, start))


def _ended_in(position, end):
    return SourceError('src ended at image byte %d but the image is %d bytes: the file or download is truncated; fetch it again'
                       % (position, end))


class RangeVerifier(object):
    """Checks a range too large to hold in memory before any of it is written: reads it from a
    second stream of the same local src (a raw file seeks to it; a compressed one is decompressed
    a second time up to it). Ranges come in order, so the second stream only moves forward."""

    def __init__(self, source, checksum_type, chunk_size):
        self.source = source
        self.checksum_type = checksum_type
        self.chunk_size = chunk_size
        self.stream = None
        self.pos = 0

    def check(self, start, end, expected):
        if self.stream is None:
            self.stream = self.source.open(hashing=False)
        if start > self.pos:
            if not self.stream.skip(start - self.pos):
                raise _ended_before(self.stream.position, start)
            self.pos = start
        h = hashlib.new(self.checksum_type)
        while self.pos < end:
            data = self.stream.read_exact(min(self.chunk_size, end - self.pos))
            if not data:
                raise _ended_in(self.pos, end)
            h.update(data)
            self.pos += len(data)
        if h.hexdigest() != expected:
            raise range_mismatch(start, end, self.checksum_type, h.hexdigest(), expected)

    def close(self):
        if self.stream is not None:
            self.stream.close()


class Producer(threading.Thread):
    """Reads the image regions on its own thread (decompression and hashing release the GIL) and
    puts ('data', offset, bytes) pieces on the queue, then ('end', image end, None), or
    ('error', exception, traceback). A piece never crosses a multiple of chunk_size or the end of
    a region."""

    def __init__(self, stream, regions, chunk_size, bmap_checksum_type, q, stop, verifier=None):
        threading.Thread.__init__(self)
        self.daemon = True
        self.stream = stream
        self.regions = regions
        self.chunk_size = chunk_size
        self.checksum_type = bmap_checksum_type
        self.q = q
        self.stop = stop
        self.verifier = verifier
        self.end_of_image = None

    def _put(self, item):
        while not self.stop.is_set():
            try:
                self.q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run(self):
        try:
            self._run()
        except Exception as exc:
            self._put(('error', exc, traceback.format_exc()))
        finally:
            if self.verifier is not None:
                self.verifier.close()

    def _run(self):
        pos = 0
        for start, end, chk in self.regions:
            if start > pos:
                if not self.stream.skip(start - pos):
                    raise _ended_before(self.stream.position, start)
                pos = start
            h = hashlib.new(self.checksum_type) if chk else None
            staged = None
            if chk:
                if end - start <= STAGE_MAX or self.verifier is None:
                    staged = [] if end - start <= STAGE_MAX else None
                else:
                    self.verifier.check(start, end, chk)
            while end is None or pos < end:
                want = self.chunk_size - (pos % self.chunk_size)
                if end is not None:
                    want = min(want, end - pos)
                data = self.stream.read_exact(want)
                if h is not None:
                    h.update(data)
                if data:
                    if staged is not None:
                        staged.append((pos, data))
                    elif not self._put(('data', pos, data)):
                        return
                    pos += len(data)
                if len(data) < want:
                    if end is not None:
                        raise _ended_in(pos, end)
                    break
            if h is not None and h.hexdigest() != chk:
                raise range_mismatch(start, end, self.checksum_type, h.hexdigest(), chk)
            for offset, data in staged or ():
                if not self._put(('data', offset, data)):
                    return
        self.end_of_image = pos
        self.stream.drain()
        self._put(('end', pos, None))
