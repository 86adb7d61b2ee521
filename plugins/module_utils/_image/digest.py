# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The SHA-256 of the source: the sha256 option, hashing a local file on a thread, and
remembering a digest that matched (DigestMemo)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import re
import threading

from ansible_collections.turingpi.cluster.plugins.module_utils._image.blockio import read_extents
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import MiB, ChecksumError, SourceError

# Bytes per read when hashing a local file.
HASH_CHUNK = 4 * MiB


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


def hash_file(path, progress=None, stop=None):
    """SHA-256 of a local file; progress(done, total) is called now and then. Returns None when
    the threading.Event stop is set before the end."""
    h = hashlib.sha256()
    total = os.path.getsize(path)
    done = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        for piece in read_extents(fd, [(0, None)], HASH_CHUNK):
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


def file_key(st):
    """What tells that a file is unchanged without reading it, from os.stat(): device, inode,
    size and mtime, which user space can put back (os.utime), and the change time (ctime),
    which it cannot: the kernel sets it on every change of the file's data or metadata, a
    put-back mtime included."""
    return [st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


class DigestJob(object):
    """The SHA-256 of a local src, computed on its own thread while the engine checks the target
    (hashlib releases the GIL): the bmap pre-check and the compare of what is already in place
    overlap with it; the first write waits for it (ImageWriter._check_digest_early).

    key is the file_key() of src from before the hash, or None if it was different after it
    (src changed while it was read): only a digest with a key is remembered."""

    def __init__(self, path):
        self.path = path
        self.digest = None
        self.error = None
        self.key = None
        self.stop = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run)
        self.thread.daemon = True
        self._start()

    def _start(self):
        self.thread.start()

    def _run(self):
        try:
            before = file_key(os.stat(self.path))
            self.digest = hash_file(self.path, stop=self.stop)
            if self.digest is not None and file_key(os.stat(self.path)) == before:
                self.key = before
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


def default_memo_dir():
    """Where image_write remembers digests: /var/cache/turingpi.cluster/image_write for root,
    else the user's cache directory."""
    if os.geteuid() == 0:
        return '/var/cache/turingpi.cluster/image_write'
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'turingpi.cluster', 'image_write')


class DigestMemo(object):
    """The SHA-256 digests of local image files that matched the sha256 they were given, so that
    writing the same file to the next module needs no hashing: one small JSON record per file,
    named by its device and inode, holding its file_key() and digest, in a directory of its own.

    A record counts only while the file's file_key() is the one taken before it was hashed:
    any change to the file, even with its mtime put back, changes its ctime and so costs a new
    hash. The record is not kept in an extended attribute of the image: setting one changes the
    file's ctime, so the record could never hold the ctime it leaves behind."""

    def __init__(self, directory):
        self.directory = directory

    def _record(self, st):
        return os.path.join(self.directory, '%d-%d.json' % (st.st_dev, st.st_ino))

    def lookup(self, path):
        """The digest remembered for path, or None."""
        try:
            st = os.stat(path)
            with open(self._record(st)) as f:
                record = json.load(f)
        except (IOError, OSError, ValueError):
            return None
        if not isinstance(record, dict) or record.get('key') != file_key(st):
            return None
        value = record.get('sha256')
        return value if isinstance(value, str) and re.match(r'^[0-9a-f]{64}$', value) else None

    def remember(self, path, digest, key):
        """Records digest for path if the file is still as it was when hashed (its file_key() is
        key). Returns whether it was recorded; a directory that cannot be written only means
        the next run hashes again."""
        try:
            st = os.stat(path)
            if file_key(st) != key:
                return False
            if not os.path.isdir(self.directory):
                os.makedirs(self.directory, 0o700)
            record = self._record(st)
            tmp = '%s.tmp.%d' % (record, os.getpid())
            with open(tmp, 'w') as f:
                json.dump(dict(path=os.path.abspath(path), key=key, sha256=digest), f)
            os.rename(tmp, record)
        except (IOError, OSError):
            return False
        return True
