# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.image_write through main(): results, check mode, diff and exact messages."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import os

import pytest

from ansible_collections.turingpi.cluster.plugins.modules import image_write

BS = 4096


@pytest.fixture(autouse=True)
def memo_dir(tmp_path, monkeypatch):
    """The module remembers digests in a directory of the test's own."""
    path = str(tmp_path / 'memo')
    monkeypatch.setattr(image_write, 'default_memo_dir', lambda: path)
    return path


def image_bytes(size=64 * 1024):
    out = bytearray()
    h = b'seed'
    while len(out) < size:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:size])


def setup(tmp_path, data=None):
    data = image_bytes() if data is None else data
    src = tmp_path / 'img.raw'
    src.write_bytes(data)
    return data, str(src), str(tmp_path / 'dest.img'), hashlib.sha256(data).hexdigest()


def args(src, dest, digest, **kw):
    a = dict(src=src, dest=dest, sha256=digest, block_size=BS, chunk_size=4 * BS)
    a.update(kw)
    return a


def test_write_then_idempotent(tmp_path, run_module):
    data, src, dest, digest = setup(tmp_path)
    rc, result = run_module(image_write, args(src, dest, digest))
    assert rc == 0 and result['changed']
    assert result['bytes_written'] == len(data) == result['bytes_verified']
    assert result['sha256'] == digest and result['compression'] == 'none'
    assert result['target']['kind'] == 'file'
    assert open(dest, 'rb').read() == data
    rc, result = run_module(image_write, args(src, dest, 'sha256:' + digest.upper()))
    assert rc == 0 and not result['changed']
    assert (result['bytes_written'], result['bytes_skipped'], result['bytes_read']) == (0, len(data), len(data))


def test_digest_is_remembered_until_the_file_changes(tmp_path, run_module, memo_dir):
    """The second module written from one file skips the hash; a byte changed with the mtime put
    back is found, and the run fails with nothing written."""
    data, src, dest, digest = setup(tmp_path)
    rc, first = run_module(image_write, args(src, dest, digest))
    assert rc == 0 and not first['digest_cached'] and len(os.listdir(memo_dir)) == 1
    dest2 = str(tmp_path / 'dest2.img')
    rc, second = run_module(image_write, args(src, dest2, digest))
    assert rc == 0 and second['digest_cached'] and second['bytes_written'] == len(data)
    # digest_cache: another directory, which knows nothing yet
    cache = tmp_path / 'cache'
    rc, other = run_module(image_write, args(src, str(tmp_path / 'dest4.img'), digest, digest_cache=str(cache)))
    assert rc == 0 and not other['digest_cached'] and len(os.listdir(str(cache))) == 1
    st = os.stat(src)
    with open(src, 'r+b') as f:
        f.write(b'\0')
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    rc, third = run_module(image_write, args(src, str(tmp_path / 'dest3.img'), digest))
    assert rc == 1 and third['msg'].endswith('the image is corrupt, incomplete or not the one you meant; nothing was written')
    assert not os.path.exists(str(tmp_path / 'dest3.img')) or os.path.getsize(str(tmp_path / 'dest3.img')) == 0


def test_truncated_gzip_message_says_what_was_written(tmp_path, run_module):
    data = image_bytes(256 * 1024)
    packed = gzip.compress(data)
    (tmp_path / 'cut.gz').write_bytes(packed[:len(packed) // 2])
    dest = tmp_path / 'dest.img'
    dest.write_bytes(b'\xee' * len(data))
    rc, result = run_module(image_write, args(str(tmp_path / 'cut.gz'), str(dest), 'skip'))
    out = dest.read_bytes()
    written = sum(BS for i in range(0, len(out), BS) if out[i:i + BS] != b'\xee' * BS)
    assert rc == 1 and 0 < written < len(data)
    assert result['msg'].startswith('src ended early at image byte ')
    assert result['msg'].endswith('; %.1f KiB (%d bytes) of dest %s were already written: the target now holds part of an image; '
                                  'write it again before booting it' % (written / 1024.0, written, dest))


def test_check_mode_and_diff(tmp_path, run_module):
    data, src, dest, digest = setup(tmp_path)
    old = bytearray(data)
    old[BS * 3] ^= 1
    open(dest, 'wb').write(bytes(old))
    rc, result = run_module(image_write, args(src, dest, digest), check_mode=True, diff=True)
    assert rc == 0 and result['changed'] and result['bytes_written'] == BS
    assert result['diff'] == {'before': '%s: %d of %d image bytes differ from the image\n' % (dest, BS, len(data)),
                              'after': '%s: holds the image (sha256 %s)\n' % (dest, digest)}
    assert open(dest, 'rb').read() == bytes(old)


def test_gzip_source(tmp_path, run_module):
    data = image_bytes()
    packed = gzip.compress(data)
    (tmp_path / 'img.gz').write_bytes(packed)
    dest = str(tmp_path / 'out')
    rc, result = run_module(image_write, args(str(tmp_path / 'img.gz'), dest, 'skip'))
    assert rc == 0 and result['compression'] == 'gzip'
    assert result['sha256'] == hashlib.sha256(packed).hexdigest()
    assert open(dest, 'rb').read() == data


def test_bad_digest_message(tmp_path, run_module, digest_when_waited):
    data, src, dest, digest = setup(tmp_path)
    with open(dest, 'wb') as f:
        f.write(b'old')
    rc, result = run_module(image_write, args(src, dest, 'f' * 64))
    assert rc == 1 and result['failed']
    assert result['msg'] == ('sha256 of %s is %s, expected %s: the image is corrupt, incomplete or not the one you meant; '
                             'nothing was written' % (src, digest, 'f' * 64))
    with open(dest, 'rb') as f:
        assert f.read() == b'old'   # the first write waited for the digest: nothing written


def test_malformed_digest_message(tmp_path, run_module):
    data, src, dest, digest = setup(tmp_path)
    rc, result = run_module(image_write, args(src, dest, 'abc'))
    assert rc == 1
    assert result['msg'] == "sha256 must be 64 hexadecimal digits (optionally prefixed with sha256:) or skip, not 'abc'"


def test_missing_bmap_message(tmp_path, run_module):
    data, src, dest, digest = setup(tmp_path)
    rc, result = run_module(image_write, args(src, dest, digest, bmap=str(tmp_path / 'x.bmap')))
    assert rc == 1
    assert result['msg'].startswith('cannot read bmap %s: ' % (tmp_path / 'x.bmap'))


def test_char_device_refused(tmp_path, run_module):
    data, src, dest, digest = setup(tmp_path)
    rc, result = run_module(image_write, args(src, '/dev/null', digest))
    assert rc == 1 and result['msg'] == 'dest /dev/null is neither a block device nor a regular file'


def test_bad_block_size(tmp_path, run_module):
    data, src, dest, digest = setup(tmp_path)
    rc, result = run_module(image_write, args(src, dest, digest, block_size=3000))
    assert rc == 1 and result['msg'] == 'block_size must be a power of two of at least 512, not 3000'
