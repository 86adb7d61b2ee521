# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The block engine of turingpi.cluster.image_write.

Reads an OS image (raw or xz/gzip/bzip2/zstd compressed, local or streamed from a URL),
compares it with the target chunk by chunk, writes only the blocks that differ, fsyncs,
drops the target's cached pages and reads back what it wrote. The source's SHA-256 is computed
in the same pass (a local file on a thread of its own), not in a pass before it.

Resuming is a property of the design, not a state file: an interrupted write leaves the
blocks it reached on the target, and the next run compares before it writes, so it only
writes what is still missing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bz2
import errno
import fcntl
import gzip
import hashlib
import itertools
import json
import lzma
import os
import re
import stat
import struct
import subprocess
import threading
import time
import traceback
import xml.etree.ElementTree as ET

try:
    import queue
except ImportError:  # pragma: no cover - Python 2 is not supported by the module anyway
    import Queue as queue

ZSTANDARD_IMPORT_ERROR = None
try:
    import zstandard
except ImportError:
    zstandard = None
    ZSTANDARD_IMPORT_ERROR = traceback.format_exc()

MiB = 1024 * 1024
DEFAULT_BLOCK_SIZE = 64 * 1024
DEFAULT_CHUNK_SIZE = 4 * MiB
# ioctl(BLKFLSBUF): flush and invalidate a block device's buffer cache (linux/fs.h _IO(0x12, 97)).
BLKFLSBUF = 0x1261
POSIX_FADV_DONTNEED = getattr(os, 'POSIX_FADV_DONTNEED', 4)
POSIX_FADV_WILLNEED = getattr(os, 'POSIX_FADV_WILLNEED', 3)
POSIX_FADV_SEQUENTIAL = getattr(os, 'POSIX_FADV_SEQUENTIAL', 2)
READAHEAD_WINDOW = 32 * 1024 * 1024

# Mapped bytes in a row that may fail the bmap pre-check before it gives up (see _bmap_precheck).
PRECHECK_BUDGET = 16 * MiB
# Adaptive compare (see ImageWriter._consume): after BLIND_AFTER compared chunks in a row in which
# every block differed, the next chunks are written without reading the target first, 1, 2, 4,
# ... chunks between two compared ones, at most BLIND_MAX bytes.
BLIND_AFTER = 2
BLIND_MAX = 128 * MiB
# Bytes per read when hashing a local file.
HASH_CHUNK = 4 * MiB

MAGIC = (
    (b'\xfd7zXZ\x00', 'xz'),
    (b'\x1f\x8b', 'gzip'),
    (b'BZh', 'bzip2'),
    (b'\x28\xb5\x2f\xfd', 'zstd'),
)
COMPRESSIONS = ('auto', 'none', 'xz', 'gzip', 'bzip2', 'zstd')
URL_RE = re.compile(r'^(https?|ftp|file)://', re.IGNORECASE)


class ImageError(Exception):
    """Any failure of the engine; the message names the resource and says what to do."""


class RefusedError(ImageError):
    """The target is unsafe to write; nothing was written."""


class ChecksumError(ImageError):
    pass


class SourceError(ImageError):
    pass


class BmapError(ImageError):
    pass


class VerifyError(ImageError):
    pass


class MissingZstdError(ImageError):
    pass


def human(n):
    n = float(n)
    for unit in ('B', 'KiB', 'MiB', 'GiB'):
        if abs(n) < 1024 or unit == 'GiB':
            return ('%d %s' % (n, unit)) if unit == 'B' else ('%.1f %s' % (n, unit))
        n /= 1024
    return '%.1f TiB' % n  # pragma: no cover


def is_url(src):
    return bool(URL_RE.match(src or ''))


def parse_sha256(value):
    """Returns the lower-case hex digest, or None for the explicit opt-out V(skip)."""
    if value is None:
        raise ChecksumError('sha256 is required: give the SHA-256 digest of src (as published next to the image), '
                            'or sha256=skip to write an unverified image')
    value = value.strip()
    if value.lower() == 'skip':
        return None
    if value.lower().startswith('sha256:'):
        value = value[7:]
    if not re.match(r'^[0-9a-fA-F]{64}$', value):
        raise ChecksumError('sha256 must be 64 hexadecimal digits (optionally prefixed with sha256:) or skip, not %r' % value)
    return value.lower()


# ---------------------------------------------------------------------------------------
# bmap (bmaptool's XML block map, format 1.x and 2.x)
# ---------------------------------------------------------------------------------------
class Bmap(object):
    def __init__(self, image_size, block_size, blocks_count, mapped_count, checksum_type, ranges):
        self.image_size = image_size
        self.block_size = block_size
        self.blocks_count = blocks_count
        self.mapped_count = mapped_count
        self.checksum_type = checksum_type
        # (first_block, last_block, checksum or None), sorted, inclusive.
        self.ranges = ranges

    def extents(self):
        """Byte extents (start, end_exclusive, checksum) of the mapped ranges."""
        out = []
        for first, last, chk in self.ranges:
            start = first * self.block_size
            end = min((last + 1) * self.block_size, self.image_size)
            out.append((start, end, chk))
        return out

    @property
    def mapped_bytes(self):
        return sum(end - start for start, end, dummy in self.extents())


def _int_text(root, tag, required=True):
    node = root.find(tag)
    if node is None or node.text is None or not node.text.strip():
        if required:
            raise BmapError('bmap has no <%s>: it is not a bmaptool block map' % tag)
        return None
    try:
        return int(node.text.strip())
    except ValueError:
        raise BmapError('bmap <%s> is not a number: %r' % (tag, node.text.strip()))


def parse_bmap(text):
    """Parses and checks a bmap file (bytes or str). Raises BmapError with what is wrong."""
    if isinstance(text, bytes):
        raw = text
        text = text.decode('utf-8', 'replace')
    else:
        raw = text.encode('utf-8')
    try:
        root = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise BmapError('bmap is not valid XML (%s): give the .bmap file that belongs to the image' % exc)
    if root.tag != 'bmap':
        raise BmapError('bmap root element is <%s>, not <bmap>' % root.tag)
    version = root.get('version', '')
    major = version.split('.')[0]
    if major not in ('1', '2'):
        raise BmapError('bmap format version %r is not supported (1.x and 2.x are)' % version)
    image_size = _int_text(root, 'ImageSize')
    block_size = _int_text(root, 'BlockSize')
    blocks_count = _int_text(root, 'BlocksCount')
    mapped_count = _int_text(root, 'MappedBlocksCount')
    if block_size <= 0 or image_size < 0:
        raise BmapError('bmap has a block size of %d and an image size of %d' % (block_size, image_size))
    if blocks_count != (image_size + block_size - 1) // block_size:
        raise BmapError('bmap BlocksCount %d does not match ImageSize %d / BlockSize %d' % (blocks_count, image_size, block_size))

    if major == '1':
        checksum_type = 'sha1'
        file_tag = 'BmapFileSHA1'
    else:
        node = root.find('ChecksumType')
        checksum_type = (node.text or '').strip().lower() if node is not None else ''
        file_tag = 'BmapFileChecksum'
    if checksum_type not in ('sha1', 'sha256', 'md5'):
        raise BmapError('bmap ChecksumType %r is not supported (sha256, sha1 or md5)' % checksum_type)
    hexlen = hashlib.new(checksum_type).digest_size * 2

    # The file's own checksum is computed with its value replaced by ASCII zeros.
    node = root.find(file_tag)
    if node is not None and node.text and node.text.strip():
        expected = node.text.strip().lower()
        if len(expected) != hexlen:
            raise BmapError('bmap %s has %d digits, %s needs %d' % (file_tag, len(expected), checksum_type, hexlen))
        zeroed = text.replace(node.text.strip(), '0' * hexlen, 1)
        actual = hashlib.new(checksum_type, zeroed.encode('utf-8')).hexdigest()
        if actual != expected:
            raise BmapError('bmap file checksum mismatch (%s %s, expected %s): the .bmap file is corrupt or edited; download it again'
                            % (checksum_type, actual, expected))

    block_map = root.find('BlockMap')
    if block_map is None:
        raise BmapError('bmap has no <BlockMap>')
    ranges = []
    count = 0
    prev_last = -1
    for node in block_map.findall('Range'):
        spec = (node.text or '').strip()
        m = re.match(r'^(\d+)(?:\s*-\s*(\d+))?$', spec)
        if not m:
            raise BmapError('bmap range %r is not "N" or "N-M"' % spec)
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        if last < first or first <= prev_last or last >= blocks_count:
            raise BmapError('bmap range %s is out of order, overlapping or beyond block %d' % (spec, blocks_count - 1))
        chk = node.get('chksum') or node.get('sha1')
        if chk is not None:
            chk = chk.strip().lower()
            if len(chk) != hexlen:
                raise BmapError('bmap range %s has a %d-digit checksum, %s needs %d' % (spec, len(chk), checksum_type, hexlen))
        ranges.append((first, last, chk))
        count += last - first + 1
        prev_last = last
    if count != mapped_count:
        raise BmapError('bmap MappedBlocksCount is %d but its ranges map %d blocks' % (mapped_count, count))
    return Bmap(image_size, block_size, blocks_count, mapped_count, checksum_type, ranges)


# ---------------------------------------------------------------------------------------
# Sources
# ---------------------------------------------------------------------------------------
class HashingReader(object):
    """Wraps the raw source: counts the bytes, hashes them (the digest of src as given),
    and lets the caller peek at the first bytes to detect the compression."""

    def __init__(self, raw, hashing=True):
        self.raw = raw
        self.hash = hashlib.sha256() if hashing else None
        self.count = 0
        self._pushback = b''

    def peek(self, n):
        while len(self._pushback) < n:
            data = self.raw.read(n - len(self._pushback))
            if not data:
                break
            self._account(data)
            self._pushback += data
        return self._pushback[:n]

    def _account(self, data):
        self.count += len(data)
        if self.hash is not None:
            self.hash.update(data)

    def read(self, n=-1):
        if self._pushback:
            if n is None or n < 0:
                data = self._pushback + self._read_raw(-1)
            else:
                data = self._pushback[:n]
                self._pushback = self._pushback[len(data):]
                if len(data) < n:
                    data += self._read_raw(n - len(data))
                return data
            self._pushback = b''
            return data
        return self._read_raw(n)

    def _read_raw(self, n):
        data = self.raw.read(n) if n is not None and n >= 0 else self.raw.read()
        if data:
            self._account(data)
        return data

    def readable(self):
        return True

    def close(self):
        try:
            self.raw.close()
        except Exception:
            pass

    def hexdigest(self):
        return self.hash.hexdigest() if self.hash is not None else None


def detect_compression(head):
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    return 'none'


class _ZstdProcess(object):
    """``zstd -dc`` as a pipe: a thread feeds it the source (so the digest still covers it)."""

    def __init__(self, reader, program):
        # run_command() collects the whole output in memory; a decompressed image (gigabytes)
        # has to stream through a pipe, so this is the one place that starts a process itself,
        # still with an argument list and no shell.
        try:
            self.proc = subprocess.Popen(  # pylint: disable=ansible-bad-function
                [program, '-dc'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            raise MissingZstdError('cannot run %s (%s): install the zstd program or the zstandard Python library' % (program, exc))
        self.reader = reader
        self.feed_error = None
        self.thread = threading.Thread(target=self._feed)
        self.thread.daemon = True
        self.thread.start()

    def _feed(self):
        try:
            while True:
                data = self.reader.read(MiB)
                if not data:
                    break
                self.proc.stdin.write(data)
        except Exception as exc:  # broken pipe when zstd stops early, or a source error
            self.feed_error = exc
        finally:
            try:
                self.proc.stdin.close()
            except Exception:
                pass

    def read(self, n):
        data = self.proc.stdout.read(n)
        if not data:
            self.thread.join()
            err = self.proc.stderr.read().decode('utf-8', 'replace').strip()
            rc = self.proc.wait()
            if rc != 0:
                raise SourceError('zstd -dc failed (rc=%d): %s: the image is truncated or not zstd data' % (rc, err))
            if self.feed_error is not None and not isinstance(self.feed_error, (IOError, OSError)):
                raise SourceError('reading src failed: %s' % self.feed_error)
        return data

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.thread.join(5)


def _which(name):
    for directory in os.environ.get('PATH', os.defpath).split(os.pathsep):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    for directory in ('/usr/bin', '/usr/local/bin', '/bin'):
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


class ImageStream(object):
    """The decompressed image as a sequential stream with ``read_exact``."""

    def __init__(self, reader, compression, zstd_program=None, use_zstandard=True):
        self.reader = reader
        self.compression = compression
        self._proc = None
        if compression == 'none':
            self._f = reader
        elif compression == 'xz':
            self._f = lzma.LZMAFile(reader)
        elif compression == 'gzip':
            self._f = gzip.GzipFile(fileobj=reader, mode='rb')
        elif compression == 'bzip2':
            self._f = bz2.BZ2File(reader)
        elif compression == 'zstd':
            if zstandard is not None and use_zstandard:
                dctx = zstandard.ZstdDecompressor()
                try:
                    self._f = dctx.stream_reader(reader, read_across_frames=True)
                except TypeError:  # older zstandard
                    self._f = dctx.stream_reader(reader)
            else:
                program = zstd_program or _which('zstd')
                if not program:
                    raise MissingZstdError('src is zstd-compressed but neither the zstandard Python library nor the zstd program '
                                           'is available: install python3-zstandard (pip install zstandard) or zstd')
                self._proc = _ZstdProcess(reader, program)
                self._f = self._proc
        else:
            raise SourceError('unknown compression %r' % compression)
        self.position = 0

    def read(self, n):
        try:
            data = self._f.read(n)
        except EOFError as exc:
            raise SourceError('src ended early at image byte %d (%s): the file or download is truncated; fetch it again'
                              % (self.position, exc))
        except (IOError, OSError, lzma.LZMAError, ValueError) as exc:
            if isinstance(exc, SourceError):
                raise
            raise SourceError('cannot read src as %s at image byte %d: %s' % (self.compression, self.position, exc))
        except Exception as exc:
            if isinstance(exc, ImageError):
                raise
            raise SourceError('cannot read src as %s at image byte %d: %s' % (self.compression, self.position, exc))
        self.position += len(data)
        return data

    def read_exact(self, n):
        parts = []
        got = 0
        while got < n:
            data = self.read(n - got)
            if not data:
                break
            parts.append(data)
            got += len(data)
        return b''.join(parts)

    def _seekable(self):
        # A raw local file that needs no hashing is not read where it is not needed.
        return self.compression == 'none' and self.reader.hash is None and hasattr(self.reader.raw, 'seek')

    def skip(self, n):
        if self._seekable() and n > 0:
            pushed = min(n, len(self.reader._pushback))
            self.reader._pushback = self.reader._pushback[pushed:]
            raw = self.reader.raw
            here = raw.seek(n - pushed, os.SEEK_CUR)
            if here > os.fstat(raw.fileno()).st_size:
                return False
            self.position += n
            return True
        while n > 0:
            data = self.read(min(n, DEFAULT_CHUNK_SIZE))
            if not data:
                return False
            n -= len(data)
        return True

    def drain(self):
        """Reads to the end (so the digest covers the whole source); returns the byte count."""
        extra = 0
        if self._seekable():
            return extra
        while True:
            data = self.read(DEFAULT_CHUNK_SIZE)
            if not data:
                return extra
            extra += len(data)

    def close(self):
        if self._proc is not None:
            self._proc.close()
        try:
            if self._f is not self.reader:
                self._f.close()
        except Exception:
            pass
        self.reader.close()


def hash_file(path, progress=None, stop=None):
    """SHA-256 of a local file; progress(done, total) is called now and then. Returns None when
    the threading.Event stop is set before the end."""
    h = hashlib.sha256()
    total = os.path.getsize(path)
    done = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for piece in _read_extents(fd, [(0, None)], HASH_CHUNK):
            data = piece[2]
            if stop is not None and stop.is_set():
                return None
            h.update(data)
            done += len(data)
            if progress:
                progress(done, total)
    finally:
        os.close(fd)
    return h.hexdigest()


class _DigestJob(object):
    """The SHA-256 of a local src, computed on its own thread while the engine checks the target
    (hashlib releases the GIL): the bmap pre-check and the compare of what is already in place
    overlap with it; the first write waits for it (ImageWriter._check_digest_early)."""

    def __init__(self, path):
        self.path = path
        self.digest = None
        self.error = None
        self.stop = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.daemon = True
        self.thread.start()

    def _run(self):
        try:
            self.digest = hash_file(self.path, stop=self.stop)
        except Exception as exc:
            self.error = exc
        finally:
            self.done.set()

    def result(self):
        """Waits for the digest; raises SourceError if src could not be read."""
        self.thread.join()
        if self.error is not None:
            raise SourceError('cannot read src %s to check its sha256: %s' % (self.path, self.error))
        return self.digest

    def cancel(self):
        self.stop.set()


XATTR = 'user.turingpi.sha256'


def _digest_key(path):
    st = os.stat(path)
    return '%d:%d:%d' % (st.st_size, st.st_mtime_ns, st.st_ino)


def verified_digest(path):
    """The SHA-256 recorded by an earlier successful check of this very file (same size, mtime
    and inode), from the extended attribute user.turingpi.sha256, or None."""
    try:
        value = os.getxattr(path, XATTR).decode('ascii')
        digest, key = value.split(' ', 1)
        return digest if key == _digest_key(path) else None
    except (AttributeError, OSError, ValueError, UnicodeDecodeError):
        return None


def remember_digest(path, digest):
    """Records a verified digest so flashing the next module skips re-hashing the image."""
    try:
        os.setxattr(path, XATTR, ('%s %s' % (digest, _digest_key(path))).encode('ascii'))
    except (AttributeError, OSError):
        pass


def _xz_varint(buf, pos):
    value = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError('bad xz varint')
        byte = buf[pos]
        if not isinstance(byte, int):  # pragma: no cover - Python 2
            byte = ord(byte)
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def xz_uncompressed_size(path):
    """Uncompressed size of a single-stream .xz file from its index, or None if unknown."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            if size < 24:
                return None
            f.seek(size - 12)
            footer = f.read(12)
            if footer[10:12] != b'YZ':
                return None
            backward_size = (struct.unpack('<I', footer[4:8])[0] + 1) * 4
            if backward_size > size - 24:
                return None
            f.seek(size - 12 - backward_size)
            index = f.read(backward_size)
        if index[0:1] != b'\x00':
            return None
        records, pos = _xz_varint(index, 1)
        total = 0
        while records > 0:
            dummy_unpadded, pos = _xz_varint(index, pos)
            uncompressed, pos = _xz_varint(index, pos)
            records -= 1
            total += uncompressed
        return total
    except (IOError, OSError, ValueError, struct.error):
        return None


class Source(object):
    """What image_write reads: opens src, detects the compression, knows the size if it can."""

    def __init__(self, src, compression='auto', opener=None, zstd_program=None, use_zstandard=True):
        self.src = src
        self.url = is_url(src)
        self.requested = compression
        self.opener = opener
        self.zstd_program = zstd_program
        self.use_zstandard = use_zstandard
        self.local_size = None
        if not self.url:
            if not os.path.exists(src):
                raise SourceError('src %s does not exist: give the path of the image file or an http(s) URL' % src)
            if not os.path.isfile(src):
                raise SourceError('src %s is not a regular file' % src)
            self.local_size = os.path.getsize(src)
        self.compression = None

    def _open_raw(self):
        if self.url:
            if self.opener is None:
                raise SourceError('src %s is a URL but no URL opener was given' % self.src)
            try:
                return self.opener(self.src)
            except Exception as exc:
                raise SourceError('cannot download %s: %s' % (self.src, exc))
        try:
            f = open(self.src, 'rb')
        except (IOError, OSError) as exc:
            raise SourceError('cannot open src %s: %s' % (self.src, exc))
        if hasattr(os, 'posix_fadvise'):
            try:
                os.posix_fadvise(f.fileno(), 0, 0, POSIX_FADV_SEQUENTIAL)
            except OSError:
                pass
        return f

    def open(self, hashing=True):
        reader = HashingReader(self._open_raw(), hashing=hashing)
        head = reader.peek(8)
        detected = detect_compression(head)
        compression = detected if self.requested == 'auto' else self.requested
        self.compression = compression
        return ImageStream(reader, compression, zstd_program=self.zstd_program, use_zstandard=self.use_zstandard)

    def detect(self):
        """Compression of a local src without reading it all."""
        if self.requested != 'auto':
            return self.requested
        if self.url:
            return None
        with open(self.src, 'rb') as f:
            return detect_compression(f.read(8))

    def known_size(self):
        """Uncompressed image size when it can be known before reading, else None."""
        if self.url:
            return None
        compression = self.detect()
        if compression == 'none':
            return self.local_size
        if compression == 'xz':
            return xz_uncompressed_size(self.src)
        return None


# ---------------------------------------------------------------------------------------
# Targets and the refusals
# ---------------------------------------------------------------------------------------
class Target(object):
    def __init__(self):
        self.path = None
        self.kind = None  # block, file, missing
        self.size = None
        self.name = None  # sysfs name of the whole disk (sda, loop3)
        self.devnum = None
        self.removable = None
        self.usb = False
        self.loop = False
        self.devnums = set()  # the disk and its partitions, as "major:minor"
        self.partitions = []

    def describe(self):
        if self.kind == 'block':
            return '%s (%s, %s%s)' % (self.path, human(self.size or 0),
                                      'USB' if self.usb else ('loop' if self.loop else 'fixed'),
                                      ', removable' if self.removable else '')
        return self.path


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except (IOError, OSError):
        return default


def _devnum_str(rdev):
    return '%d:%d' % (os.major(rdev), os.minor(rdev))


def _disk_dir(sysfs, devnum):
    """sysfs directory of the whole disk holding block device devnum ("8:1" -> .../sda)."""
    link = os.path.join(sysfs, 'dev', 'block', devnum)
    if not os.path.exists(link):
        return None
    real = os.path.realpath(link)
    if os.path.exists(os.path.join(real, 'partition')):
        real = os.path.dirname(real)
    return real


def _base_disks(sysfs, disk_dir, depth=0):
    """The physical disks under a disk (follows dm/md slaves), as sysfs directory names."""
    if disk_dir is None:
        return set()
    slaves_dir = os.path.join(disk_dir, 'slaves')
    names = set([os.path.basename(disk_dir)])
    if depth < 8 and os.path.isdir(slaves_dir):
        for slave in os.listdir(slaves_dir):
            slave_real = os.path.realpath(os.path.join(slaves_dir, slave))
            if os.path.exists(os.path.join(slave_real, 'partition')):
                slave_real = os.path.dirname(slave_real)
            names |= _base_disks(sysfs, slave_real, depth + 1)
    return names


def parse_mountinfo(text):
    """[(devnum, mount_point)] from /proc/self/mountinfo."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        mount_point = fields[4].replace('\\040', ' ')
        out.append((fields[2], mount_point))
    return out


def inspect_target(path, sysfs='/sys', mountinfo='/proc/self/mountinfo', swaps='/proc/swaps'):
    t = Target()
    t.path = path
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            t.kind = 'missing'
            t.size = 0
            return t
        raise RefusedError('cannot stat dest %s: %s' % (path, exc))
    if stat.S_ISREG(st.st_mode):
        t.kind = 'file'
        t.size = st.st_size
        return t
    if not stat.S_ISBLK(st.st_mode):
        raise RefusedError('dest %s is neither a block device nor a regular file' % path)
    t.kind = 'block'
    t.devnum = _devnum_str(st.st_rdev)
    link = os.path.join(sysfs, 'dev', 'block', t.devnum)
    if not os.path.exists(link):
        raise RefusedError('dest %s (%s) is not in %s/dev/block: cannot check that it is safe to write' % (path, t.devnum, sysfs))
    real = os.path.realpath(link)
    if os.path.exists(os.path.join(real, 'partition')):
        disk = os.path.basename(os.path.dirname(real))
        raise RefusedError('dest %s is partition %s of /dev/%s: write the image to the whole disk /dev/%s'
                           % (path, os.path.basename(real), disk, disk))
    t.name = os.path.basename(real)
    t.removable = _read(os.path.join(real, 'removable')) == '1'
    t.usb = '/usb' in real
    t.loop = t.name.startswith('loop')
    sectors = _read(os.path.join(real, 'size'))
    t.size = int(sectors) * 512 if sectors and sectors.isdigit() else None
    t.devnums.add(t.devnum)
    for entry in sorted(os.listdir(real)):
        if entry.startswith(t.name) and os.path.exists(os.path.join(real, entry, 'partition')):
            t.partitions.append(entry)
            dev = _read(os.path.join(real, entry, 'dev'))
            if dev:
                t.devnums.add(dev)
    t.holders = []
    for d in [real] + [os.path.join(real, p) for p in t.partitions]:
        hdir = os.path.join(d, 'holders')
        if os.path.isdir(hdir):
            t.holders.extend(sorted(os.listdir(hdir)))
    t.mountinfo = _read(mountinfo, '')
    t.swaps = _read(swaps, '')
    t.sysfs = sysfs
    return t


def check_target(t, image_size, force):
    """Raises RefusedError when dest must not be written. Nothing is written before this passes."""
    if t.kind != 'block':
        return
    mounts = parse_mountinfo(t.mountinfo)
    root_dev = None
    for devnum, mount_point in mounts:
        if mount_point == '/':
            root_dev = devnum
    if root_dev is not None and not root_dev.startswith('0:'):
        root_disks = _base_disks(t.sysfs, _disk_dir(t.sysfs, root_dev))
        if t.name in root_disks:
            raise RefusedError('dest %s is the disk this system runs from (it holds /): refusing to overwrite it; '
                               'check the device name (the module in slot 1 appears as a new USB disk)' % t.path)
    for devnum, mount_point in mounts:
        if devnum in t.devnums:
            raise RefusedError('dest %s is in use: %s (device %s) is mounted on %s; unmount it first (umount %s)'
                               % (t.path, t.path, devnum, mount_point, mount_point))
    for line in t.swaps.splitlines()[1:]:
        fields = line.split()
        if fields and os.path.basename(fields[0]).startswith(t.name):
            raise RefusedError('dest %s is in use as swap (%s); swapoff %s first' % (t.path, fields[0], fields[0]))
    if t.holders:
        raise RefusedError('dest %s is in use by %s (device-mapper, RAID or LVM); release it first' % (t.path, ', '.join(t.holders)))
    if image_size is not None and t.size is not None and t.size < image_size:
        raise RefusedError('dest %s holds %d bytes (%s) but the image is %d bytes (%s): use a larger device'
                           % (t.path, t.size, human(t.size), image_size, human(image_size)))
    if not (t.removable or t.usb) and not force:
        kind = 'a loop device' if t.loop else 'a fixed (non-removable, non-USB) disk'
        raise RefusedError('dest %s is %s: refusing without force=true (a compute module in flash mode is a USB disk); '
                           'set force=true only if you are sure' % (t.path, kind))


# ---------------------------------------------------------------------------------------
# The engine
# ---------------------------------------------------------------------------------------
class Stats(object):
    def __init__(self):
        self.image_size = None
        self.bytes_compared = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.bytes_skipped = 0
        self.bytes_unmapped = 0
        self.bytes_verified = 0
        self.bytes_uncompared = 0
        self.source_bytes = 0
        self.writes = 0
        self.first_difference = None
        self.sha256 = None
        self.digest_cached = False
        self.elapsed = 0.0
        self.phase = 'starting'

    def as_dict(self):
        return dict(
            image_size=self.image_size,
            bytes_compared=self.bytes_compared,
            bytes_read=self.bytes_read,
            bytes_written=self.bytes_written,
            bytes_skipped=self.bytes_skipped,
            bytes_unmapped=self.bytes_unmapped,
            bytes_verified=self.bytes_verified,
            bytes_uncompared=self.bytes_uncompared,
            source_bytes=self.source_bytes,
            writes=self.writes,
            first_difference=self.first_difference,
            sha256=self.sha256,
            digest_cached=self.digest_cached,
            elapsed=round(self.elapsed, 3),
            throughput=int((self.image_size or 0) / self.elapsed) if self.elapsed > 0 else 0,
        )


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


def _diff_runs(data, current, base, block_size):
    """Runs (offset_in_chunk, length) of block_size blocks (aligned to absolute offsets)
    where data differs from current; adjacent differing blocks are merged."""
    runs = []
    n = len(data)
    pos = 0
    run_start = None
    while pos < n:
        # Align block boundaries to absolute offsets so runs are the same on every run.
        end = min(n, pos + block_size - ((base + pos) % block_size))
        if data[pos:end] != current[pos:end]:
            if run_start is None:
                run_start = pos
        elif run_start is not None:
            runs.append((run_start, pos - run_start))
            run_start = None
        pos = end
    if run_start is not None:
        runs.append((run_start, n - run_start))
    return runs


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


class _Syncer(threading.Thread):
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


def _read_extents(fd, extents, chunk_size):
    """Reads extents (start, end or None for "to the end of the file", ...) in pieces of at most
    chunk_size bytes, with the kernel reading ahead over all of them; yields (extent index,
    offset, data). An extent ends early at the end of the file (short read)."""
    extents = [(e[0], e[1]) for e in extents]
    ahead = _ReadAhead(fd, extents)
    for i, (start, end) in enumerate(extents):
        pos = start
        while end is None or pos < end:
            ahead.advance(pos)
            data = os.pread(fd, chunk_size if end is None else min(chunk_size, end - pos), pos)
            if not data:
                break
            yield i, pos, data
            pos += len(data)


class _ReadAhead(object):
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


class _Producer(threading.Thread):
    """Reads the image regions on its own thread (decompression and hashing release the GIL)."""

    def __init__(self, stream, regions, chunk_size, bmap_checksum_type, q, stop):
        threading.Thread.__init__(self)
        self.daemon = True
        self.stream = stream
        self.regions = regions
        self.chunk_size = chunk_size
        self.checksum_type = bmap_checksum_type
        self.q = q
        self.stop = stop
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
            pos = 0
            for start, end, chk in self.regions:
                if start > pos:
                    if not self.stream.skip(start - pos):
                        raise SourceError('src ended at image byte %d, before the mapped range at %d: the image is truncated '
                                          'or the bmap belongs to another image' % (self.stream.position, start))
                    pos = start
                h = hashlib.new(self.checksum_type) if chk else None
                while end is None or pos < end:
                    want = self.chunk_size - (pos % self.chunk_size)
                    if end is not None:
                        want = min(want, end - pos)
                    data = self.stream.read_exact(want)
                    if h is not None:
                        h.update(data)
                    if data:
                        if not self._put(('data', pos, data)):
                            return
                        pos += len(data)
                    if len(data) < want:
                        if end is not None:
                            raise SourceError('src ended at image byte %d but the image is %d bytes: the file or download is '
                                              'truncated; fetch it again' % (pos, end))
                        break
                if h is not None and h.hexdigest() != chk:
                    raise BmapError('bmap checksum mismatch for image bytes %d-%d (%s %s, bmap says %s): '
                                    'the bmap does not belong to this image' % (start, end - 1, self.checksum_type, h.hexdigest(), chk))
            self.end_of_image = pos
            self.stream.drain()
            self._put(('end', pos, None))
        except Exception as exc:
            self._put(('error', exc, traceback.format_exc()))


class ImageWriter(object):
    def __init__(self, source, dest, sha256=None, bmap=None, block_size=DEFAULT_BLOCK_SIZE,
                 chunk_size=DEFAULT_CHUNK_SIZE, verify=True, check_mode=False, force=False,
                 progress_file=None, sysfs='/sys', mountinfo='/proc/self/mountinfo', swaps='/proc/swaps'):
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
        self.stats = Stats()
        self.target = None
        self._raw_src = None  # fd of a raw local image, the reference for the read-back
        self._extend_to = None  # a regular file shorter than the image is extended to this size
        self._written = []  # (offset, length, sha256 digest) of every write, for the read-back
        self._digest = None  # the _DigestJob of a local src
        self._digest_checked = False

    # -- steps -----------------------------------------------------------------------
    def plan(self):
        """Checks everything that can be checked before reading the image; writes nothing."""
        size = self.source.known_size()
        if self.bmap is not None:
            # Only a raw file's size is certain (an xz index could be one of several streams).
            if size is not None and size != self.bmap.image_size and self.source.detect() == 'none':
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
        if self.sha256 is not None and verified_digest(self.source.src) == self.sha256:
            self.stats.sha256 = self.sha256
            self.stats.digest_cached = True
            return None
        return _DigestJob(self.source.src)

    def _digest_error(self, actual):
        what = 'the download does not match' if self.source.url else \
            'the image is corrupt, incomplete or not the one you meant'
        if not self.stats.bytes_written or self.check_mode:
            return ChecksumError('sha256 of %s is %s, expected %s: %s; nothing was written'
                                 % (self.source.src, actual, self.sha256, what))
        return ChecksumError('sha256 of %s is %s, expected %s: %s; dest %s was written from it (%d bytes) and is now '
                             'inconsistent: do not boot it; run again with the right image (only the blocks that differ '
                             'are rewritten)' % (self.source.src, actual, self.sha256, what, self.dest, self.stats.bytes_written))

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
        remember_digest(self.source.src, actual)

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
            producer = _Producer(stream, regions, self.chunk_size, self.bmap.checksum_type if self.bmap else 'sha256', q, stop)
            stats.phase = 'writing' if not self.check_mode else 'comparing'
            producer.start()
            try:
                end = self._consume(q, fd, is_block, total, regions)
            finally:
                stop.set()
                producer.join(10)
            if stats.image_size is None:
                stats.image_size = end
            stats.source_bytes = stream.reader.count
            if stream.reader.hash is not None:
                stats.sha256 = stream.reader.hexdigest()
                if self.sha256 is not None and stats.sha256 != self.sha256:
                    raise self._digest_error(stats.sha256)
            if self._extend_to and not self.check_mode and os.fstat(fd).st_size < self._extend_to:
                self._check_digest_early()  # extending the file is a write too
                os.ftruncate(fd, self._extend_to)
                stats.writes += 1
            synced = fd is not None and not self.check_mode and stats.bytes_written
            if synced:
                # The fsync waits for the device; the digest thread gets the CPU meanwhile.
                stats.phase = 'syncing'
                self.progress.update(stats, total, total, force=True)
                os.fsync(fd)
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
        unchanged image reads only the target). Gives up once PRECHECK_BUDGET bytes in a row did
        not match (a blank or different module); the rest go through the normal compare-and-write
        pass."""
        stats = self.stats
        stats.phase = 'checking'
        checked = [r for r in regions if r[2] is not None]
        keep = [r for r in regions if r[2] is None]
        digests = {}  # region index -> [hash, bytes read]
        decided = 0  # regions before this index are decided
        mismatched = 0  # bytes in a row that did not match
        # The sentinel (len(checked), ...) decides the last regions.
        for piece in itertools.chain(_read_extents(fd, checked, self.chunk_size), [(len(checked), 0, b'')]):
            i, data = piece[0], piece[2]
            while decided < i:
                start, end, chk = checked[decided]
                h, got = digests.pop(decided, (None, 0))
                if h is not None and got == end - start and h.hexdigest() == chk:
                    stats.bytes_compared += end - start
                    self.progress.update(stats, total, stats.bytes_compared)
                    mismatched = 0
                else:
                    keep.append(checked[decided])
                    mismatched += end - start
                decided += 1
                if mismatched > PRECHECK_BUDGET:
                    break
            if mismatched > PRECHECK_BUDGET or i == len(checked):
                break
            entry = digests.setdefault(i, [hashlib.new(self.bmap.checksum_type), 0])
            entry[0].update(data)
            entry[1] += len(data)
            stats.bytes_read += len(data)
        keep.extend(checked[decided:])
        keep.sort(key=lambda r: r[0])
        return keep

    def _consume(self, q, fd, is_block, total, regions):
        syncer = _Syncer(fd) if fd is not None and not self.check_mode else None
        if syncer is not None:
            syncer.start()
        try:
            return self._consume_chunks(q, fd, is_block, total, regions, syncer)
        finally:
            if syncer is not None:
                syncer.finish()

    def _consume_chunks(self, q, fd, is_block, total, regions, syncer):
        """Compares each chunk with the target and writes the blocks that differ.

        Adaptive compare: on a blank module (or one holding another image) every block differs,
        so reading the target first costs a read and saves nothing. After BLIND_AFTER compared
        chunks in a row in which every block differed, the next 1, 2, 4, ... chunks (at most
        BLIND_MAX bytes) are written whole without reading the target; the chunk after them is
        compared again (a probe), and the first probe that finds a block in place goes back to
        comparing every chunk. An unchanged or slightly changed target has no chunks that differ
        everywhere, so nothing is written blind there. Check mode always compares."""
        stats = self.stats
        dest_limit = self.target.size if is_block else None
        blind_cap = max(1, BLIND_MAX // self.chunk_size)
        streak = 0  # compared chunks in a row in which every block differed
        blind_left = 0  # chunks still to write without comparing
        done = 0
        # Read ahead a little (the device stays busy while a chunk is compared), only while every
        # chunk is compared: never over chunks that will be written blind.
        ahead = _ReadAhead(fd, regions, window=2 * self.chunk_size)
        while True:
            kind, pos, data = q.get()
            if kind == 'error':
                raise pos
            if kind == 'end':
                return pos
            n = len(data)
            written_before = stats.bytes_written
            if dest_limit is not None and pos + n > dest_limit:
                raise RefusedError('dest %s holds %d bytes (%s) but the image is larger: use a larger device%s'
                                   % (self.dest, dest_limit, human(dest_limit),
                                      '' if self.check_mode or not stats.bytes_written else ' (dest was partly written)'))
            if blind_left > 0:
                blind_left -= 1
                self._write(fd, data, pos, 0, n)
                stats.bytes_uncompared += n
            else:
                if not streak:
                    ahead.advance(pos)
                current = os.pread(fd, n, pos) if fd is not None else b''
                stats.bytes_read += len(current)
                if len(current) < n and not is_block:
                    # Past the end of a regular file: the file is extended (with zeros) at the end,
                    # so only the non-zero blocks need writing.
                    current += bytes(n - len(current))
                    self._extend_to = pos + n
                stats.bytes_compared += n
                runs = _diff_runs(data, current, pos, self.block_size) if current != data else []
                for off, length in runs:
                    self._write(fd, data, pos, off, length)
                if runs == [(0, n)] and not self.check_mode:
                    streak += 1
                    if streak >= BLIND_AFTER:
                        blind_left = min(1 << (streak - BLIND_AFTER), blind_cap)
                else:
                    streak = 0
            if stats.bytes_written > written_before and syncer is not None:
                try:
                    syncer.kick()
                except OSError as exc:
                    raise ImageError('write to %s failed: %s (the device may have been unplugged; run again to resume)'
                                     % (self.dest, exc))
            done += n
            self.progress.update(stats, total, done)

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
                digest = None if self._raw_src else hashlib.sha256(piece).digest()
                self._written.append((pos + off, length, digest))
        stats.bytes_written += length
        stats.writes += 1

    def _pwrite(self, fd, data, offset):
        view = memoryview(data)
        done = 0
        while done < len(data):
            try:
                done += os.pwrite(fd, view[done:], offset + done)
            except OSError as exc:
                if exc.errno == errno.ENOSPC:
                    raise RefusedError('dest %s is full at byte %d: the image does not fit' % (self.dest, offset + done))
                raise ImageError('write to %s at byte %d failed: %s (the device may have been unplugged; run again to resume)'
                                 % (self.dest, offset + done, exc))

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
        for i, pos, got in _read_extents(fd, extents, self.chunk_size):
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
                              'something else writes to it; run again, and replace the module if it repeats'
                              % (self.dest, offset, offset + length - 1))
