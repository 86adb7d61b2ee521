# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The write engine of turingpi.cluster.image_write.

Reads an OS image (raw or xz/gzip/bzip2/zstd compressed, local or streamed from a URL),
compares it with the target chunk by chunk, writes only the blocks that differ, fsyncs,
drops the target's cached pages and reads back what it wrote. The source's SHA-256 is computed
in the same pass (a local file on a thread of its own), not in a pass before it.

Resuming is a property of the design, not a state file: an interrupted write leaves the
blocks it reached on the target, and the next run compares before it writes, so it only
writes what is still missing.

Every failure after the first byte was written says how much was written and that the target
must be written again; a failure while the image is streamed with nothing written says so.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import hashlib
import os
import queue
import threading
import time

from ansible_collections.turingpi.cluster.plugins.module_utils._image import digest
from ansible_collections.turingpi.cluster.plugins.module_utils._image.blockio import (
    READAHEAD_WINDOW, ReadAhead, Syncer, drop_cache, read_extents,
)
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import (
    DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_SIZE, MiB, BmapError, ChecksumError, ImageError, RefusedError, SourceError, VerifyError, human,
)
from ansible_collections.turingpi.cluster.plugins.module_utils._image.progress import ProgressFile, Stats
from ansible_collections.turingpi.cluster.plugins.module_utils._image.regions import STAGE_MAX, Producer, RangeVerifier
from ansible_collections.turingpi.cluster.plugins.module_utils._image.targets import check_target, inspect_target

# The bmap pre-check (ImageWriter._bmap_precheck) gives up once PRECHECK_BUDGET mapped bytes in
# a row did not match their checksums (a module holding another image), or PRECHECK_BLANK_BUDGET
# of them read as one byte repeated (a blank module: zeros, or 0xFF).
PRECHECK_BUDGET = 16 * MiB
PRECHECK_BLANK_BUDGET = 1 * MiB
# Adaptive compare (ImageWriter._consume_chunks): after BLIND_AFTER bytes in a row that were
# compared and differed in every block, the next pieces are written without reading the target;
# one block is read (a probe) after every PROBE_EVERY bytes written that way, and a probe that
# finds its block in place goes back to comparing every piece.
BLIND_AFTER = 1 * MiB
PROBE_EVERY = 4 * MiB


def diff_runs(data, current, base, block_size):
    """Runs (offset_in_chunk, length) of block_size blocks (aligned to absolute offsets)
    where data differs from current; adjacent differing blocks are merged."""
    return _runs(data, base, block_size, lambda start, end: data[start:end] != current[start:end])


def block_digests(data, base, block_size):
    """{absolute offset: (length, sha256 digest)} of the pieces of data cut at multiples of
    block_size (the blocks diff_runs compares)."""
    out = {}
    pos = 0
    n = len(data)
    while pos < n:
        end = min(n, pos + block_size - ((base + pos) % block_size))
        out[base + pos] = (end - pos, hashlib.sha256(data[pos:end]).digest())
        pos = end
    return out


def digest_runs(data, base, block_size, digests):
    """diff_runs against a target known only by its block_digests (which are used up)."""
    def differs(start, end):
        known = digests.pop(base + start, None)
        return known is None or known[0] != end - start or known[1] != hashlib.sha256(data[start:end]).digest()
    return _runs(data, base, block_size, differs)


_ZEROS = [b'']


def is_zeros(data):
    """Whether data is all zero bytes (a memcmp against a zero buffer kept for the last size)."""
    if len(_ZEROS[0]) != len(data):
        _ZEROS[0] = bytes(len(data))
    return data == _ZEROS[0]


def is_fill(data, fill):
    """Whether data is the one byte fill repeated (a blank module reads so: zeros, or 0xFF).
    Three bytes first, so that data (the usual case) costs nothing to tell."""
    n = len(data)
    if data[n - 1:] != fill or data[n // 2:n // 2 + 1] != fill or data[:1] != fill:
        return False
    return data.count(fill) == n


def _runs(data, base, block_size, differs):
    runs = []
    n = len(data)
    pos = 0
    run_start = None
    while pos < n:
        # Align block boundaries to absolute offsets so runs are the same on every run.
        end = min(n, pos + block_size - ((base + pos) % block_size))
        if differs(pos, end):
            if run_start is None:
                run_start = pos
        elif run_start is not None:
            runs.append((run_start, pos - run_start))
            run_start = None
        pos = end
    if run_start is not None:
        runs.append((run_start, n - run_start))
    return runs


class ImageWriter(object):
    def __init__(self, source, dest, sha256=None, bmap=None, block_size=DEFAULT_BLOCK_SIZE,
                 chunk_size=DEFAULT_CHUNK_SIZE, verify=True, check_mode=False, force=False,
                 progress_file=None, sysfs='/sys', mountinfo='/proc/self/mountinfo', swaps='/proc/swaps',
                 digest_memo=None):
        if block_size < 512 or block_size & (block_size - 1):
            raise ImageError('block_size must be a power of two of at least 512, not %d' % block_size)
        if chunk_size < block_size or chunk_size % block_size:
            raise ImageError('chunk_size must be a multiple of block_size (%d), not %d' % (block_size, chunk_size))
        self.source = source
        self.dest = dest
        self.sha256 = sha256
        self.bmap = bmap
        self.block_size = block_size
        self.chunk_size = chunk_size
        self.verify = verify
        self.check_mode = check_mode
        self.force = force
        self.progress = ProgressFile(progress_file)
        self.sysfs = sysfs
        self.mountinfo = mountinfo
        self.swaps = swaps
        self.digest_memo = digest_memo  # a digest.DigestMemo, or None to hash every time
        self.stats = Stats()
        self.target = None
        self._raw_src = None  # fd of a raw local image, the reference for the read-back
        self._extend_to = None  # a regular file shorter than the image is extended to this size
        self._written = []  # (offset, length, sha256 digest) of every write, for the read-back
        self._digest = None  # the DigestJob of a local src
        self._digest_checked = False
        self._target_blocks = {}  # block_digests of the target's ranges the pre-check read and found different
        self._streaming = False  # the image is being read: a failure from here on says what was written
        self._touched = False  # a write (or an extension of the file) reached the target
        self._bytes_on_target = 0  # bytes the target accepted (os.pwrite), whatever came after

    # -- steps -----------------------------------------------------------------------
    def plan(self):
        """Checks everything that can be checked before reading the image; writes nothing."""
        problem = self.source.incomplete()
        if problem:
            raise problem
        size = self.source.known_size()
        if self.bmap is not None:
            # A raw file's size and a complete xz file's (from its indexes) are certain.
            if size is not None and size != self.bmap.image_size:
                raise BmapError('bmap ImageSize is %d but src is %d bytes: the bmap belongs to another image'
                                % (self.bmap.image_size, size))
            size = self.bmap.image_size
        self.stats.image_size = size
        self.target = inspect_target(self.dest, self.sysfs, self.mountinfo, self.swaps)
        check_target(self.target, size, self.force)
        return self.target

    def _start_digest(self):
        """Starts the SHA-256 of a local src on its own thread, unless an earlier successful check
        of this very file is remembered (the flash role writes one image to seven modules)."""
        if self.source.url:
            return None  # hashed in the stream
        if self.sha256 is not None and self.digest_memo is not None and self.digest_memo.lookup(self.source.src) == self.sha256:
            self.stats.sha256 = self.sha256
            self.stats.digest_cached = True
            return None
        return digest.DigestJob(self.source.src)

    def _digest_error(self, actual):
        what = 'the download does not match' if self.source.url else \
            'the image is corrupt, incomplete or not the one you meant'
        return ChecksumError('sha256 of %s is %s, expected %s: %s' % (self.source.src, actual, self.sha256, what))

    def _check_digest_early(self):
        """Before each write of a local src with a digest to check: the first write waits for the
        hashing thread, so a wrong digest fails the run with nothing written. Everything before
        the first write (the bmap pre-check, the compare of chunks already in place) overlaps
        with the hashing, so a re-write of an unchanged image, which writes nothing, never waits
        here. Once checked, nothing more to do."""
        job = self._digest
        if job is None or self.sha256 is None or self._digest_checked:
            return
        actual = job.result()  # raises SourceError (nothing written) if src cannot be read
        self._digest_checked = True
        if actual != self.sha256:
            self.stats.sha256 = actual
            raise self._digest_error(actual)

    def _finish_digest(self):
        """After the last write (and its fsync) and before the read-back: the digest must match."""
        job = self._digest
        if job is None:
            return
        actual = job.result()
        self.stats.sha256 = actual
        if self.sha256 is None:
            return
        if actual != self.sha256:
            raise self._digest_error(actual)
        if self.digest_memo is not None and job.key is not None:
            self.digest_memo.remember(self.source.src, actual, job.key)

    def _open_dest(self):
        t = self.target
        if self.check_mode:
            if t.kind == 'missing':
                return None
            return os.open(self.dest, os.O_RDONLY)
        flags = os.O_RDWR
        if t.kind == 'block':
            flags |= os.O_EXCL
        elif t.kind == 'missing':
            flags |= os.O_CREAT
        try:
            return os.open(self.dest, flags, 0o644)
        except OSError as exc:
            if exc.errno == errno.EBUSY:
                raise RefusedError('dest %s is busy (the kernel holds it: mounted, swap or device-mapper); release it first' % self.dest)
            raise ImageError('cannot open dest %s for writing: %s' % (self.dest, exc))

    def _say_what_was_written(self, exc):
        """The failure's message, followed by what it left on the target: nothing, or how much
        was written and that the target must be written again."""
        if self._touched and not self.check_mode:
            n = self._bytes_on_target
            note = ('%s (%d bytes) of dest %s were already written: the target now holds part of an image; '
                    'write it again before booting it' % (human(n), n, self.dest))
        elif self._streaming:
            note = 'nothing was written'
        else:
            return exc
        new = type(exc)('%s; %s' % (exc, note))
        new.__cause__ = exc
        return new

    def run(self):
        started = time.time()
        self.plan()
        stats = self.stats
        is_block = self.target.kind == 'block'
        regions = self.bmap.extents() if self.bmap is not None else [(0, stats.image_size, None)]
        if self.bmap is not None:
            stats.bytes_unmapped = self.bmap.image_size - self.bmap.mapped_bytes
        total = self.bmap.mapped_bytes if self.bmap is not None else stats.image_size

        # A local src is hashed on its own thread while the target is checked (the bmap pre-check,
        # the compare of what is already in place); the first write waits for the digest, so a
        # wrong one fails the run with nothing written (a re-write of an unchanged image writes
        # nothing and never waits for it there). A URL is hashed as it streams and checked at
        # the end (download first: the flash role does).
        self._digest = self._start_digest()
        try:
            return self._run(started, is_block, regions, total)
        except ImageError as exc:
            raise self._say_what_was_written(exc)
        except (IOError, OSError) as exc:
            raise self._say_what_was_written(ImageError('writing %s failed: %s' % (self.dest, exc)))
        finally:
            if self._digest is not None:
                self._digest.cancel()

    def _run(self, started, is_block, regions, total):
        stats = self.stats
        prechecked = False
        if self.bmap is not None and self.target.kind != 'missing':
            ro_fd = os.open(self.dest, os.O_RDONLY)
            try:
                # Compare against the device, not what the page cache remembers.
                drop_cache(ro_fd, is_block)
                regions = self._bmap_precheck(ro_fd, regions, total)
                prechecked = True
            finally:
                os.close(ro_fd)

        stream = self.source.open(hashing=self.source.url)
        try:
            fd = self._open_dest()
        except Exception:
            stream.close()
            raise
        try:
            if self.verify and not self.source.url and self.source.compression == 'none':
                self._raw_src = os.open(self.source.src, os.O_RDONLY)
            if fd is not None and not prechecked:
                # Compare against the device, not what the page cache remembers (the pre-check
                # just read what it left in the cache from the device).
                drop_cache(fd, is_block)
            q = queue.Queue(maxsize=4)
            stop = threading.Event()
            checksum_type = self.bmap.checksum_type if self.bmap else 'sha256'
            verifier = None if self.source.url or self.bmap is None else RangeVerifier(self.source, checksum_type, self.chunk_size)
            producer = Producer(stream, regions, self.chunk_size, checksum_type, q, stop, verifier=verifier)
            stats.phase = 'writing' if not self.check_mode else 'comparing'
            self._streaming = True
            producer.start()
            try:
                end = self._consume(q, fd, is_block, total, regions)
            finally:
                stop.set()
                producer.join(10)
            if stats.image_size is None:
                stats.image_size = end
            known = None if stream.seekable() else self.source.known_size()
            if known is not None and stream.position != known:
                raise SourceError('src %s holds %d bytes of image but its xz index says %d: the file is corrupt; fetch it again'
                                  % (self.source.src, stream.position, known))
            stats.source_bytes = stream.reader.count
            if stream.reader.hash is not None:
                stats.sha256 = stream.reader.hexdigest()
                if self.sha256 is not None and stats.sha256 != self.sha256:
                    raise self._digest_error(stats.sha256)
            if self._extend_to and not self.check_mode and os.fstat(fd).st_size < self._extend_to:
                self._check_digest_early()  # extending the file is a write too
                self._touched = True
                os.ftruncate(fd, self._extend_to)
                stats.writes += 1
            synced = fd is not None and not self.check_mode and stats.bytes_written
            if synced:
                # The fsync waits for the device; the digest thread gets the CPU meanwhile.
                stats.phase = 'syncing'
                self.progress.update(stats, total, total, force=True)
                try:
                    os.fsync(fd)
                except OSError as exc:
                    raise ImageError('fsync of %s failed: %s (the device may have been unplugged)' % (self.dest, exc))
            self._finish_digest()
            if synced and self.verify:
                self._verify(fd, is_block)
        finally:
            if fd is not None:
                os.close(fd)
            if self._raw_src is not None:
                os.close(self._raw_src)
                self._raw_src = None
            stream.close()
        stats.phase = 'done'
        stats.elapsed = time.time() - started
        stats.bytes_skipped = (stats.image_size or 0) - stats.bytes_written
        self.progress.update(stats, total, total, force=True)
        return stats

    def _bmap_precheck(self, fd, regions, total):
        """Drops the mapped ranges the target already holds, found by hashing the target's range
        and comparing with the bmap's checksum: those need no source read at all (re-flashing an
        unchanged image reads only the target). A range found different leaves the digests of
        its blocks (block_digests), so the write pass knows which of its blocks differ without
        reading it again. Gives up once PRECHECK_BUDGET bytes in a row did not match (a module
        holding another image), or PRECHECK_BLANK_BUDGET of them held one byte repeated (a
        blank module); the rest go through the normal compare-and-write pass. A module holding
        the image with a few ranges changed (the flash role's identity) goes on to the end.

        The kernel is asked to read ahead (ReadAhead) no further than the blank budget at first;
        every range in place doubles that, up to READAHEAD_WINDOW, and a range that differs
        shrinks it to what is left of the budgets: a blank module is not read beyond them."""
        stats = self.stats
        stats.phase = 'checking'
        checked = [r for r in regions if r[2] is not None]
        keep = [r for r in regions if r[2] is None]
        ahead = ReadAhead(fd, checked, window=PRECHECK_BLANK_BUDGET)
        mismatched = 0  # bytes in a row that did not match
        blank = 0  # of those, bytes in ranges that held one byte repeated
        i = 0
        while i < len(checked) and mismatched < PRECHECK_BUDGET and blank < PRECHECK_BLANK_BUDGET:
            start, end, chk = checked[i]
            h = hashlib.new(self.bmap.checksum_type)
            # The target's pieces of this range, kept (up to STAGE_MAX bytes) until the range is
            # decided; beyond that, the digests of their blocks are taken as they are read.
            pieces, held, blocks = [], 0, {}
            fill = None  # the byte the range held throughout so far, if it did (a blank module)
            pos = start
            while pos < end:
                ahead.advance(pos)
                # Pieces cut where the write pass cuts them (multiples of chunk_size, see Producer).
                data = os.pread(fd, min(self.chunk_size - pos % self.chunk_size, end - pos), pos)
                if not data:
                    break
                stats.bytes_read += len(data)
                h.update(data)
                if pos == start:
                    fill = data[:1]
                if fill is not None and not is_fill(data, fill):
                    fill = None
                pieces.append((pos, data))
                held += len(data)
                if held > STAGE_MAX:
                    for offset, piece in pieces:
                        blocks.update(block_digests(piece, offset, self.block_size))
                    pieces, held = [], 0
                pos += len(data)
            if pos == end and h.hexdigest() == chk:
                stats.bytes_compared += end - start
                self.progress.update(stats, total, stats.bytes_compared)
                mismatched = blank = 0
                ahead.window = min(2 * ahead.window, READAHEAD_WINDOW)
            else:
                keep.append(checked[i])
                mismatched += end - start
                if fill is not None:
                    blank += end - start
                ahead.window = max(1, min(PRECHECK_BLANK_BUDGET - blank, PRECHECK_BUDGET - mismatched))
                if pos == end:
                    for offset, piece in pieces:
                        blocks.update(block_digests(piece, offset, self.block_size))
                    self._target_blocks.update(blocks)
            i += 1
        keep.extend(checked[i:])
        keep.sort(key=lambda r: r[0])
        return keep

    def _consume(self, q, fd, is_block, total, regions):
        syncer = Syncer(fd) if fd is not None and not self.check_mode else None
        if syncer is not None:
            syncer.start()
        try:
            return self._consume_chunks(q, fd, is_block, total, regions, syncer)
        finally:
            if syncer is not None:
                syncer.finish()

    def _consume_chunks(self, q, fd, is_block, total, regions, syncer):
        """Compares each piece with the target and writes the blocks that differ.

        A piece of a range the bmap pre-check read and found different is compared with the
        digests of its blocks (no second read). Any other piece is read from the target first.

        Adaptive compare: on a blank module (or one holding another image) every block differs,
        so reading the target first costs a read and saves nothing. After BLIND_AFTER bytes in a
        row that were compared and differed in every block, the pieces are written whole without
        reading the target, except for one block (a probe) after every PROBE_EVERY bytes written
        that way: a probe that finds its block in place compares its whole piece and goes back to
        comparing every piece. A piece of zeros (empty space in an image without a bmap) is
        compared even then, never written blind (a blank module holds it already, and a read
        costs less than a write), and says nothing about the target either way. An unchanged or
        slightly changed target has no pieces that differ everywhere, so nothing is written
        blind there. Check mode always compares."""
        stats = self.stats
        dest_limit = self.target.size if is_block else None
        streak = 0  # bytes in a row compared and found different in every block
        blind = False  # writing without comparing
        since_probe = 0  # bytes written blind since the last probe
        # Read ahead (the device stays busy while a piece is compared) only once the target was
        # found holding part of the image, and only while every piece is compared: a blank
        # module is not read ahead.
        in_place_seen = False
        ahead = ReadAhead(fd, regions, window=2 * self.chunk_size)
        done = 0
        while True:
            kind, pos, data = q.get()
            if kind == 'error':
                raise pos
            if kind == 'end':
                return pos
            n = len(data)
            written_before = stats.bytes_written
            if dest_limit is not None and pos + n > dest_limit:
                raise RefusedError('dest %s holds %d bytes (%s) but the image is larger: use a larger device'
                                   % (self.dest, dest_limit, human(dest_limit)))
            differs_everywhere = None  # unknown (written without comparing), or no evidence (zeros)
            if pos in self._target_blocks:
                runs = digest_runs(data, pos, self.block_size, self._target_blocks)
                stats.bytes_compared += n
                for off, length in runs:
                    self._write(fd, data, pos, off, length)
                differs_everywhere = runs == [(0, n)]
            elif blind and is_zeros(data):
                self._compare_and_write(fd, data, pos, is_block, None)
            elif blind and since_probe < PROBE_EVERY:
                self._write(fd, data, pos, 0, n)
                stats.bytes_uncompared += n
                since_probe += n
            elif blind and not self._probe_in_place(fd, data, pos, is_block):
                self._write(fd, data, pos, 0, n)
                stats.bytes_uncompared += n
                since_probe = n
            else:
                runs = self._compare_and_write(fd, data, pos, is_block, ahead if in_place_seen and not streak else None)
                differs_everywhere = runs == [(0, n)]
            if differs_everywhere and not self.check_mode:
                streak += n
                if streak >= BLIND_AFTER and not blind:
                    blind, since_probe = True, 0
            elif differs_everywhere is False:
                streak, blind, in_place_seen = 0, False, True
            if stats.bytes_written > written_before and syncer is not None:
                try:
                    syncer.kick()
                except OSError as exc:
                    raise ImageError('write to %s failed: %s (the device may have been unplugged)' % (self.dest, exc))
            done += n
            self.progress.update(stats, total, done)

    def _compare_and_write(self, fd, data, pos, is_block, ahead):
        """Reads the target where the piece goes, writes the blocks that differ; returns their runs."""
        stats = self.stats
        n = len(data)
        if ahead is not None:
            ahead.advance(pos)
        current = os.pread(fd, n, pos) if fd is not None else b''
        stats.bytes_read += len(current)
        if len(current) < n and not is_block:
            # Past the end of a regular file: the file is extended (with zeros) at the end,
            # so only the non-zero blocks need writing.
            current += bytes(n - len(current))
            self._extend_to = pos + n
        stats.bytes_compared += n
        runs = diff_runs(data, current, pos, self.block_size) if current != data else []
        for off, length in runs:
            self._write(fd, data, pos, off, length)
        return runs

    def _probe_in_place(self, fd, data, pos, is_block):
        """Reads the first block of the piece at pos; whether the target holds it already."""
        length = min(len(data), self.block_size - pos % self.block_size)
        current = os.pread(fd, length, pos)
        self.stats.bytes_read += len(current)
        if len(current) < length and not is_block:
            current += bytes(length - len(current))  # past the end of a regular file: zeros
        return current == data[:length]

    def _write(self, fd, data, pos, off, length):
        """Writes data[off:off + length] at pos + off (counts it only, in check mode)."""
        stats = self.stats
        if stats.first_difference is None:
            stats.first_difference = pos + off
        if not self.check_mode:
            self._check_digest_early()
            piece = memoryview(data)[off:off + length]
            self._pwrite(fd, piece, pos + off)
            if self.verify:
                # A raw local image is its own reference (compared again at verify time);
                # anything else is remembered by its digest.
                reference = None if self._raw_src else hashlib.sha256(piece).digest()
                self._written.append((pos + off, length, reference))
        stats.bytes_written += length
        stats.writes += 1

    def _pwrite(self, fd, data, offset):
        view = memoryview(data)
        done = 0
        self._touched = True
        while done < len(data):
            try:
                n = os.pwrite(fd, view[done:], offset + done)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise RefusedError('dest %s is full at byte %d: the image does not fit' % (self.dest, offset + done))
                raise ImageError('write to %s at byte %d failed: %s (the device may have been unplugged)'
                                 % (self.dest, offset + done, exc))
            done += n
            self._bytes_on_target += n

    def _verify(self, fd, is_block):
        """Reads back every extent written, in large sequential reads, and compares it with the raw
        image or with the SHA-256 of what was written."""
        stats = self.stats
        stats.phase = 'verifying'
        drop_cache(fd, is_block)
        total = sum(length for dummy, length, dummy2 in self._written)
        extents = [(offset, offset + length) for offset, length, dummy in self._written]
        checked = 0  # extents read back completely and found equal
        h = None
        for i, pos, got in read_extents(fd, extents, self.chunk_size):
            if i != checked:  # the extent before ended early: the device is shorter than written
                break
            offset, length, digest = self._written[i]
            stats.bytes_read += len(got)
            stats.bytes_verified += len(got)
            complete = pos + len(got) == offset + length
            if digest is None:
                if got != os.pread(self._raw_src, len(got), pos):
                    break
            else:
                if pos == offset:
                    h = hashlib.sha256()
                h.update(got)
                if complete and h.digest() != digest:
                    break
            if complete:
                checked += 1
            self.progress.update(stats, total, stats.bytes_verified)
        if checked < len(self._written):
            offset, length, dummy = self._written[checked]
            raise VerifyError('read-back of %s differs from what was written at bytes %d-%d: the device is failing or '
                              'something else writes to it (replace the module if it repeats)'
                              % (self.dest, offset, offset + length - 1))
