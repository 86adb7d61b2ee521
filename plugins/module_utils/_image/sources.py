# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""What image_write reads: a local file or a URL, raw or compressed, as one sequential stream."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bz2
import gzip
import hashlib
import lzma
import os
import re
import struct
import subprocess
import threading
import traceback
import zlib

from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import DEFAULT_CHUNK_SIZE, MiB, ImageError, MissingZstdError, SourceError

ZSTANDARD_IMPORT_ERROR = None
try:
    import zstandard
except ImportError:
    zstandard = None
    ZSTANDARD_IMPORT_ERROR = traceback.format_exc()

POSIX_FADV_SEQUENTIAL = getattr(os, 'POSIX_FADV_SEQUENTIAL', 2)

MAGIC = (
    (b'\xfd7zXZ\x00', 'xz'),
    (b'\x1f\x8b', 'gzip'),
    (b'BZh', 'bzip2'),
    (b'\x28\xb5\x2f\xfd', 'zstd'),
)
COMPRESSIONS = ('auto', 'none', 'xz', 'gzip', 'bzip2', 'zstd')
URL_RE = re.compile(r'^(https?|ftp|file)://', re.IGNORECASE)


def is_url(src):
    return bool(URL_RE.match(src or ''))


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


class _XzReader(object):
    """The xz streams of a file one after the other, with the stream padding (null bytes) the
    format allows after each: lzma.LZMAFile takes padding for trailing garbage and stops there
    without an error, which would write part of the image as if it were all of it."""

    def __init__(self, raw):
        self.raw = raw
        self.decompressor = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        self.pending = b''  # compressed bytes not given to a decompressor yet
        self.finished = False

    def _next_stream(self):
        """After the end of a stream: skips the padding; a new decompressor for the next stream,
        or finished at the end of the file."""
        self.pending = self.decompressor.unused_data + self.pending
        while True:
            self.pending = self.pending.lstrip(b'\0')
            if self.pending:
                self.decompressor = lzma.LZMADecompressor(lzma.FORMAT_XZ)
                return
            self.pending = self.raw.read(MiB)
            if not self.pending:
                self.finished = True
                return

    def read(self, n):
        out = []
        got = 0
        while got < n and not self.finished:
            if self.decompressor.eof is True:
                self._next_stream()
                continue
            data = b''
            if self.decompressor.needs_input is True:
                data, self.pending = self.pending or self.raw.read(MiB), b''
                if not data:
                    raise EOFError('Compressed file ended before the end-of-stream marker was reached')
            piece = self.decompressor.decompress(data, n - got)
            out.append(piece)
            got += len(piece)
        return b''.join(out)

    def close(self):
        pass


class ImageStream(object):
    """The decompressed image as a sequential stream with ``read_exact``."""

    def __init__(self, reader, compression, zstd_program=None, use_zstandard=True):
        self.reader = reader
        self.compression = compression
        self._proc = None
        if compression == 'none':
            self._f = reader
        elif compression == 'xz':
            self._f = _XzReader(reader)
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

    def seekable(self):
        # A raw local file that needs no hashing is not read where it is not needed.
        return self.compression == 'none' and self.reader.hash is None and hasattr(self.reader.raw, 'seek')

    def skip(self, n):
        if self.seekable() and n > 0:
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
        if self.seekable():
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


XZ_HEADER_MAGIC = b'\xfd7zXZ\x00'
XZ_FOOTER_MAGIC = b'YZ'


def _xz_varint(buf, pos):
    value = 0
    shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise ValueError('bad xz varint')
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _crc_ok(data, crc):
    return zlib.crc32(data) & 0xFFFFFFFF == struct.unpack('<I', crc)[0]


def xz_layout(path):
    """(uncompressed size, None) of a complete .xz file, or (None, what is wrong).

    Walks the file from its end, stream by stream (an .xz file is one or more streams, each
    followed by optional stream padding): each stream footer and its index are checked
    (magic bytes and CRC32), the index says how large the stream's blocks are, and the stream
    header must sit exactly where they begin; the last (first) stream must begin at byte 0.
    Reads only the footers, indexes and headers. A file cut short (a truncated download) has
    no valid footer at its end, so it is found before anything is decompressed."""
    try:
        with open(path, 'rb') as f:
            f.seek(0, os.SEEK_END)
            pos = f.tell()
            total = 0
            while pos > 0:
                while pos >= 4:  # stream padding: groups of four null bytes, after a stream
                    f.seek(pos - 4)
                    if f.read(4) != b'\0\0\0\0':
                        break
                    pos -= 4
                if pos == 0:
                    return None, 'null bytes before the first stream'
                if pos < 24:
                    return None, 'no complete stream'
                f.seek(pos - 12)
                footer = f.read(12)
                if footer[10:12] != XZ_FOOTER_MAGIC or not _crc_ok(footer[4:10], footer[0:4]):
                    return None, 'no valid stream footer at byte %d' % (pos - 12)
                backward = (struct.unpack('<I', footer[4:8])[0] + 1) * 4
                index_start = pos - 12 - backward
                if index_start < 12:
                    return None, 'the stream index does not fit in the file'
                f.seek(index_start)
                index = f.read(backward)
                if index[0:1] != b'\x00' or not _crc_ok(index[:-4], index[-4:]):
                    return None, 'no valid stream index at byte %d' % index_start
                records, i = _xz_varint(index, 1)
                blocks = 0
                while records > 0:
                    unpadded, i = _xz_varint(index, i)
                    uncompressed, i = _xz_varint(index, i)
                    blocks += (unpadded + 3) // 4 * 4
                    total += uncompressed
                    records -= 1
                if (i + 3) // 4 * 4 + 4 != len(index) or index[i:len(index) - 4].strip(b'\0'):
                    return None, 'no valid stream index at byte %d' % index_start
                start = index_start - blocks - 12
                if start < 0:
                    return None, 'the stream blocks do not fit in the file'
                f.seek(start)
                header = f.read(12)
                if header[:6] != XZ_HEADER_MAGIC or not _crc_ok(header[6:8], header[8:12]) or header[6:8] != footer[8:10]:
                    return None, 'no stream header at byte %d where its index says' % start
                pos = start
            return total, None
    except (IOError, OSError) as exc:
        return None, str(exc)
    except (ValueError, struct.error):
        return None, 'no valid stream index'


def xz_uncompressed_size(path):
    """Uncompressed size of a complete .xz file (every stream), or None."""
    return xz_layout(path)[0]


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
        self._xz = None  # xz_layout() of a local xz src, once read

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
        """Uncompressed image size when it is certain before reading (a raw file, a complete xz
        file), else None."""
        if self.url:
            return None
        compression = self.detect()
        if compression == 'none':
            return self.local_size
        if compression == 'xz':
            return self._xz_layout()[0]
        return None

    def _xz_layout(self):
        if self._xz is None:
            self._xz = xz_layout(self.src)
        return self._xz

    def incomplete(self):
        """A SourceError when a local src is certainly incomplete before reading it (an xz file
        whose end is not a valid stream footer: cut short), else None."""
        if self.url or self.detect() != 'xz':
            return None
        size, problem = self._xz_layout()
        if size is None:
            return SourceError('src %s is not a complete xz file (%s): the file or download is truncated or corrupt; '
                               'fetch it again' % (self.src, problem))
        return None
