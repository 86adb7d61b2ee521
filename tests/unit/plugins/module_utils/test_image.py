# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The block engine of image_write: compare, skip, adaptive compare, bmap ranges, compressed
streams, torn input, short targets, bad digests and the refusals. Targets are regular files (no
root needed)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import shutil
import time

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils._image import blockio, digest, engine, regions, sources
from ansible_collections.turingpi.cluster.plugins.module_utils._image.bmap import parse_bmap
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import (
    BmapError, ChecksumError, ImageError, MissingZstdError, RefusedError, SourceError, VerifyError, human,
)

BS = 4096
CHUNK = 4 * BS


def make_image(size=256 * 1024, seed=1):
    """Deterministic data with runs of zeros, like an OS image."""
    out = bytearray(size)
    h = hashlib.sha256(str(seed).encode()).digest()
    for pos in range(0, size, 32):
        if (pos // 8192) % 3 != 2:
            h = hashlib.sha256(h).digest()
            out[pos:pos + 32] = h[:min(32, size - pos)]
    return bytes(out)


def random_image(chunks, seed=b'r'):
    """Data without a single zero block: on a blank target every block differs."""
    out = bytearray()
    h = seed
    while len(out) < chunks * CHUNK:
        h = hashlib.sha256(h).digest()
        out += h
    return bytes(out[:chunks * CHUNK])


def sha(data):
    return hashlib.sha256(data).hexdigest()


class DigestFirst(digest.DigestJob):
    """The digest of src is known before the first write (a small or fast-hashing image)."""

    def __init__(self, path):
        super(DigestFirst, self).__init__(path)
        self.thread.join()


def write_image(tmp_path, data, name='img.raw'):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def run(src, dest, sha256=None, bmap=None, check_mode=False, verify=True, compression='auto', **kw):
    writer = engine.ImageWriter(sources.Source(src, compression), dest, sha256=sha256, bmap=bmap, block_size=BS,
                                chunk_size=CHUNK, verify=verify, check_mode=check_mode, **kw)
    return writer.run()


@pytest.fixture
def memo(tmp_path):
    """Where the tests remember digests: a directory of their own."""
    return digest.DigestMemo(str(tmp_path / 'memo'))


def partly(dest, n):
    """The end of every failure message after n bytes reached dest."""
    return ('; %s (%d bytes) of dest %s were already written: the target now holds part of an image; '
            'write it again before booting it' % (human(n), n, dest))


def bytes_changed(path, fill):
    """Bytes of the file at path in BS blocks that no longer hold only the fill byte."""
    data = open(str(path), 'rb').read()
    return sum(BS for i in range(0, len(data), BS) if data[i:i + BS] != bytes([fill]) * BS)


def bmap_for(data, block=BS, checksum_type='sha256', zero_file_checksum=False, mapped_if=None, wrong=()):
    """A bmaptool-style block map of the non-zero blocks of data (or of the blocks i for which
    mapped_if(i) is true), with a wrong checksum for the ranges numbered in wrong."""
    blocks = (len(data) + block - 1) // block
    mapped = [i for i in range(blocks) if (mapped_if(i) if mapped_if else data[i * block:(i + 1) * block].strip(b'\0'))]
    ranges = []
    for i in mapped:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    hexlen = hashlib.new(checksum_type).digest_size * 2
    lines = ['<?xml version="1.0" ?>', '<bmap version="2.0">',
             '<ImageSize> %d </ImageSize>' % len(data), '<BlockSize> %d </BlockSize>' % block,
             '<BlocksCount> %d </BlocksCount>' % blocks, '<MappedBlocksCount> %d </MappedBlocksCount>' % len(mapped),
             '<ChecksumType> %s </ChecksumType>' % checksum_type,
             '<BmapFileChecksum> %s </BmapFileChecksum>' % ('0' * hexlen), '<BlockMap>']
    for n, (first, last) in enumerate(ranges):
        chk = hashlib.new(checksum_type, data[first * block:min((last + 1) * block, len(data))]).hexdigest()
        if n in wrong:
            chk = '0' * hexlen
        spec = '%d' % first if first == last else '%d-%d' % (first, last)
        lines.append('<Range chksum="%s"> %s </Range>' % (chk, spec))
    lines += ['</BlockMap>', '</bmap>']
    text = '\n'.join(lines) + '\n'
    if not zero_file_checksum:
        text = text.replace('0' * hexlen, hashlib.new(checksum_type, text.encode()).hexdigest(), 1)
    return text, ranges


# -- compare and skip ---------------------------------------------------------------------
def test_first_write_then_rewrite_writes_nothing(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    dest = str(tmp_path / 'dest')
    stats = run(src, dest, sha(data))
    assert open(dest, 'rb').read() == data
    # the zero blocks of a new file are not written, the file is extended instead
    nonzero = sum(1 for i in range(0, len(data), BS) if data[i:i + BS].strip(b'\0')) * BS
    assert stats.bytes_written == nonzero
    assert stats.bytes_verified == nonzero
    assert stats.sha256 == sha(data)
    again = run(src, dest, sha(data))
    assert again.bytes_written == 0 and again.writes == 0
    assert again.bytes_skipped == len(data)
    assert again.bytes_read == len(data)


def test_only_changed_blocks_are_written(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    broken = bytearray(data)
    for off in (5, 3 * BS + 17, 40 * BS + BS - 1):   # three bytes in three blocks
        broken[off] ^= 0xFF
    dest.write_bytes(bytes(broken))
    stats = run(src, str(dest), sha(data))
    assert stats.bytes_written == 3 * BS
    assert stats.writes == 3
    assert stats.first_difference == 0
    assert dest.read_bytes() == data


def test_adjacent_blocks_are_one_write(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    broken = bytearray(data)
    broken[BS * 5:BS * 8] = b"\x55" * (BS * 3)  # inside one chunk (blocks 4-7)
    dest.write_bytes(bytes(broken))
    stats = run(src, str(dest), sha(data))
    assert (stats.bytes_written, stats.writes) == (3 * BS, 1)
    assert dest.read_bytes() == data


def test_check_mode_counts_and_writes_nothing(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    old = bytes(len(data))
    dest.write_bytes(old)
    stats = run(src, str(dest), sha(data), check_mode=True)
    nonzero = sum(1 for i in range(0, len(data), BS) if data[i:i + BS].strip(b'\0')) * BS
    assert stats.bytes_written == nonzero
    assert stats.bytes_verified == 0
    assert dest.read_bytes() == old


def test_check_mode_on_missing_file_creates_nothing(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    stats = run(src, str(tmp_path / 'nope'), sha(data), check_mode=True)
    assert stats.bytes_written > 0
    assert not (tmp_path / 'nope').exists()


def test_interrupted_write_resumes_with_only_the_rest(tmp_path):
    """What an interrupted run leaves: the first part written. The next run writes the rest only."""
    data = make_image(seed=7)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    cut = 96 * 1024
    dest.write_bytes(data[:cut] + bytes(len(data) - cut))
    stats = run(src, str(dest), sha(data))
    rest = sum(1 for i in range(cut, len(data), BS) if data[i:i + BS].strip(b'\0')) * BS
    assert stats.bytes_written == rest
    assert stats.first_difference >= cut
    assert dest.read_bytes() == data


def test_longer_file_target_keeps_its_tail(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)) + b'TAIL')
    run(src, str(dest), sha(data))
    assert dest.read_bytes() == data + b'TAIL'


def test_progress_file_ends_done(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    progress = tmp_path / 'progress.json'
    run(src, str(tmp_path / 'dest'), sha(data), progress_file=str(progress))
    state = json.loads(progress.read_text())
    assert state['phase'] == 'done' and state['done'] == state['total'] == len(data)
    assert state['percent'] == 100.0


def test_diff_runs_align_to_absolute_blocks():
    data = b'a' * 10 + b'b' * 10
    cur = b'a' * 10 + b'c' * 10
    assert engine.diff_runs(data, cur, 0, 8) == [(8, 12)]
    assert engine.diff_runs(data, cur, 4, 8) == [(4, 16)]
    assert engine.diff_runs(data, data, 0, 8) == []


# -- digests ------------------------------------------------------------------------------
def test_bad_digest_known_before_the_first_write_changes_nothing(tmp_path, monkeypatch, memo):
    monkeypatch.setattr(digest, 'DigestJob', DigestFirst)
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(b'old')
    with pytest.raises(ChecksumError) as exc:
        run(src, str(dest), '0' * 64, digest_memo=memo)
    assert str(exc.value) == ('sha256 of %s is %s, expected %s: the image is corrupt, incomplete or not the one you meant; '
                              'nothing was written' % (src, sha(data), '0' * 64))
    assert dest.read_bytes() == b'old'
    assert memo.lookup(src) is None


def test_bad_digest_known_only_when_waited_for_still_writes_nothing(tmp_path, digest_when_waited, memo):
    """The slowest possible hash (it starts only when waited for): the first write waits for it,
    so a bad digest fails the run with the target untouched; the right digest then writes it."""
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    with pytest.raises(ChecksumError) as exc:
        run(src, str(dest), '0' * 64, digest_memo=memo)
    assert str(exc.value) == ('sha256 of %s is %s, expected %s: the image is corrupt, incomplete or not the one you meant; '
                              'nothing was written' % (src, sha(data), '0' * 64))
    assert dest.read_bytes() == bytes(len(data))
    assert memo.lookup(src) is None
    # the right digest: written, verified, and the digest is remembered
    again = run(src, str(dest), sha(data), digest_memo=memo)
    assert again.bytes_written > 0 and again.sha256 == sha(data)
    assert dest.read_bytes() == data
    assert memo.lookup(src) == sha(data)


def test_first_write_waits_for_the_digest(tmp_path, monkeypatch):
    """A hash slower than the compare: no byte is written before the digest is known, and the
    chunks already in place are compared while it runs (that overlap is the gain)."""
    events = []

    class DigestSlow(digest.DigestJob):
        def _run(self):
            time.sleep(0.3)
            events.append('hashed')
            super(DigestSlow, self)._run()
    monkeypatch.setattr(digest, 'DigestJob', DigestSlow)
    data = random_image(8)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(data[:4 * CHUNK] + bytes(4 * CHUNK))   # the first half is in place
    real_pwrite = engine.ImageWriter._pwrite

    def pwrite(self, fd, piece, offset):
        events.append(('write', offset, self._digest.done.is_set(), self.stats.bytes_compared))
        real_pwrite(self, fd, piece, offset)
    monkeypatch.setattr(engine.ImageWriter, '_pwrite', pwrite)
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data and stats.bytes_written == 4 * CHUNK
    writes = [e for e in events if e != 'hashed']
    assert events[0] == 'hashed' and all(done for dummy, dummy2, done, dummy3 in writes)
    assert writes[0] == ('write', 4 * CHUNK, True, 5 * CHUNK)   # the half in place compared first
    # the same with a bad digest: the target is left as it was
    dest.write_bytes(data[:4 * CHUNK] + bytes(4 * CHUNK))
    del events[:]
    with pytest.raises(ChecksumError) as exc:
        run(src, str(dest), '0' * 64)
    assert str(exc.value).endswith('; nothing was written')
    assert events == ['hashed']
    assert dest.read_bytes() == data[:4 * CHUNK] + bytes(4 * CHUNK)


@pytest.mark.parametrize('use_bmap', [False, True])
@pytest.mark.parametrize('size', [CHUNK, 64 * CHUNK])
def test_bad_digest_of_a_local_file_always_writes_nothing(tmp_path, monkeypatch, use_bmap, size):
    """The real hashing thread, on a file system a little slow to read: a bad digest for a local
    file always fails with "nothing was written" and leaves every byte of the target as it was."""
    real = digest.hash_file

    def slow(path, progress=None, stop=None):
        time.sleep(0.05)
        return real(path, progress, stop)
    monkeypatch.setattr(digest, 'hash_file', slow)
    data = random_image(size // CHUNK)
    src = write_image(tmp_path, data)
    bm = parse_bmap(bmap_for(data)[0]) if use_bmap else None
    for before in (b'', b'old', bytes(len(data)), data[:len(data) // 2]):
        dest = tmp_path / 'dest'
        dest.write_bytes(before)
        with pytest.raises(ChecksumError) as exc:
            run(src, str(dest), '0' * 64, bmap=bm)
        assert str(exc.value).endswith('; nothing was written')
        assert 'were already written' not in str(exc.value)
        assert dest.read_bytes() == before


def test_bad_digest_of_an_image_that_only_extends_the_file_writes_nothing(tmp_path, digest_when_waited):
    """An all-zero image longer than an empty target file needs no block written, only the file
    extended: that too waits for the digest."""
    data = bytes(4 * CHUNK)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(b'')
    with pytest.raises(ChecksumError) as exc:
        run(src, str(dest), '0' * 64)
    assert str(exc.value).endswith('; nothing was written')
    assert dest.read_bytes() == b''
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data and stats.bytes_written == 0


def test_digest_is_hashed_alongside_not_before(tmp_path, monkeypatch, memo):
    """One pass: the local file is hashed on its own thread (hash_file once); the stream itself
    reads only the mapped ranges; the good digest is remembered for the next module."""
    data = make_image()
    text, dummy = bmap_for(data)
    bm = parse_bmap(text)
    src = write_image(tmp_path, data)
    calls = []
    real = digest.hash_file

    def counting(path, progress=None, stop=None):
        calls.append(path)
        return real(path, progress, stop)
    monkeypatch.setattr(digest, 'hash_file', counting)
    stats = run(src, str(tmp_path / 'dest'), sha(data), bmap=bm, digest_memo=memo)
    assert calls == [src]
    assert stats.sha256 == sha(data) and not stats.digest_cached
    assert stats.source_bytes < len(data)
    again = run(src, str(tmp_path / 'dest'), sha(data), bmap=bm, digest_memo=memo)
    assert calls == [src] and again.digest_cached


def test_digest_of_compressed_source_is_of_the_file_as_given(tmp_path):
    data = make_image()
    packed = gzip.compress(data)
    src = write_image(tmp_path, packed, 'img.gz')
    with pytest.raises(ChecksumError):
        run(src, str(tmp_path / 'dest'), sha(data))
    stats = run(src, str(tmp_path / 'dest'), sha(packed))
    assert stats.sha256 == sha(packed)
    assert (tmp_path / 'dest').read_bytes() == data


def test_skip_still_reports_the_digest(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    stats = run(src, str(tmp_path / 'dest'), None)
    assert stats.sha256 == sha(data)


@pytest.mark.parametrize('value, expected', [
    ('skip', None), ('SKIP', None), ('sha256:' + 'AB' * 32, 'ab' * 32), ('cd' * 32, 'cd' * 32),
])
def test_parse_sha256(value, expected):
    assert digest.parse_sha256(value) == expected


def test_parse_sha256_rejects_garbage():
    with pytest.raises(ChecksumError) as exc:
        digest.parse_sha256('md5:abc')
    assert str(exc.value) == "sha256 must be 64 hexadecimal digits (optionally prefixed with sha256:) or skip, not 'md5:abc'"


def test_remembered_digest_is_dropped_when_the_file_changes(tmp_path, memo):
    data = make_image()
    src = write_image(tmp_path, data)
    run(src, str(tmp_path / 'dest'), sha(data), digest_memo=memo)
    assert memo.lookup(src) == sha(data)
    with open(src, 'r+b') as f:
        f.write(b'X')
    assert memo.lookup(src) is None


def test_a_change_with_the_mtime_put_back_is_hashed_again(tmp_path, memo):
    """A byte of the image changed and its mtime put back with os.utime (size and inode stay):
    the remembered digest no longer counts (the ctime changed), so the file is hashed again and
    the stale digest fails the run with nothing written."""
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    run(src, str(dest), sha(data), digest_memo=memo)
    assert memo.lookup(src) == sha(data)
    st = os.stat(src)
    changed = bytearray(data)
    changed[5 * BS] ^= 0xFF
    with open(src, 'r+b') as f:
        f.seek(5 * BS)
        f.write(bytes(changed[5 * BS:5 * BS + 1]))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    after = os.stat(src)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (st.st_size, st.st_mtime_ns, st.st_ino)
    assert memo.lookup(src) is None
    with pytest.raises(ChecksumError) as exc:
        run(src, str(dest), sha(data), digest_memo=memo)
    assert str(exc.value) == ('sha256 of %s is %s, expected %s: the image is corrupt, incomplete or not the one you meant; '
                              'nothing was written' % (src, sha(bytes(changed)), sha(data)))
    assert dest.read_bytes() == data
    # the new digest is checked and remembered in its turn
    stats = run(src, str(dest), sha(bytes(changed)), digest_memo=memo)
    assert (stats.bytes_written, stats.digest_cached) == (BS, False)
    assert memo.lookup(src) == sha(bytes(changed))


def test_a_file_changed_while_it_is_hashed_is_not_remembered(tmp_path, monkeypatch, memo):
    data = make_image()
    src = write_image(tmp_path, data)
    real = digest.hash_file

    def hash_then_touch(path, progress=None, stop=None):
        value = real(path, progress, stop)
        os.utime(path, ns=(1, 1))
        return value
    monkeypatch.setattr(digest, 'hash_file', hash_then_touch)
    stats = run(src, str(tmp_path / 'dest'), sha(data), digest_memo=memo)
    assert stats.sha256 == sha(data)
    assert memo.lookup(src) is None


def test_digest_memo_records(tmp_path, memo):
    src = write_image(tmp_path, b'abc')
    key = digest.file_key(os.stat(src))
    assert memo.remember(src, 'ab' * 32, key) and memo.lookup(src) == 'ab' * 32
    assert not memo.remember(src, 'cd' * 32, key[:-1] + [0]) and memo.lookup(src) == 'ab' * 32
    for garbage in ('{', '[]', '{"key": %s, "sha256": "nothex"}' % json.dumps(key)):
        for name in os.listdir(memo.directory):
            (tmp_path / 'memo' / name).write_text(garbage)
        assert memo.lookup(src) is None
    # a directory that cannot be made: not remembered, no error
    assert not digest.DigestMemo(str(tmp_path / 'img.raw' / 'memo')).remember(src, 'ab' * 32, key)


# -- compressed streams ---------------------------------------------------------------------
@pytest.mark.parametrize('name, pack', [
    ('xz', lzma.compress),
    ('gzip', gzip.compress),
    ('bzip2', bz2.compress),
])
def test_compressed_sources(tmp_path, name, pack):
    data = make_image()
    packed = pack(data)
    src = write_image(tmp_path, packed, 'img.' + name)
    dest = tmp_path / 'dest'
    stats = run(src, str(dest), sha(packed))
    assert dest.read_bytes() == data
    assert stats.image_size == len(data)
    assert stats.source_bytes == len(packed)
    assert run(src, str(dest), sha(packed)).bytes_written == 0


def zstd_image(tmp_path):
    """An image, its raw file and its bytes compressed by the zstd program (raw + '.zst')."""
    data = make_image()
    raw = write_image(tmp_path, data)
    os.system('zstd -q -f %s -o %s' % (raw, raw + '.zst'))
    with open(raw + '.zst', 'rb') as f:
        return data, raw, f.read()


@pytest.mark.skipif(not shutil.which('zstd'), reason='needs the zstd program')
def test_zstd_through_the_program(tmp_path):
    data, raw, packed = zstd_image(tmp_path)
    dest = tmp_path / 'dest'
    stream_src = sources.Source(raw + '.zst')
    stream_src.use_zstandard = False
    stats = engine.ImageWriter(stream_src, str(dest), sha256=sha(packed), block_size=BS, chunk_size=CHUNK).run()
    assert stream_src.compression == 'zstd'
    assert dest.read_bytes() == data and stats.image_size == len(data)


@pytest.mark.skipif(not shutil.which('zstd'), reason='needs the zstd program')
def test_truncated_zstd_fails(tmp_path):
    packed = zstd_image(tmp_path)[2]
    (tmp_path / 'cut.zst').write_bytes(packed[:len(packed) // 2])
    src = sources.Source(str(tmp_path / 'cut.zst'))
    src.use_zstandard = False
    with pytest.raises(SourceError) as exc:
        engine.ImageWriter(src, str(tmp_path / 'dest'), block_size=BS, chunk_size=CHUNK).run()
    assert str(exc.value).startswith('zstd -dc failed (rc=1): ')


def test_zstd_without_library_or_program(tmp_path, monkeypatch):
    (tmp_path / 'img.zst').write_bytes(b'\x28\xb5\x2f\xfd' + b'\0' * 64)
    monkeypatch.setattr(sources, 'zstandard', None)
    monkeypatch.setattr(sources, '_which', lambda name: None)
    with pytest.raises(MissingZstdError) as exc:
        run(str(tmp_path / 'img.zst'), str(tmp_path / 'dest'))
    assert str(exc.value) == ('src is zstd-compressed but neither the zstandard Python library nor the zstd program is available: '
                              'install python3-zstandard (pip install zstandard) or zstd')
    assert not (tmp_path / 'dest').exists() or (tmp_path / 'dest').read_bytes() == b''


@pytest.mark.parametrize('pack', [gzip.compress, bz2.compress])
def test_torn_compressed_input_fails_clearly(tmp_path, pack):
    data = make_image()
    packed = pack(data)
    src = write_image(tmp_path, packed[:len(packed) * 2 // 3], 'torn')
    with pytest.raises(SourceError) as exc:
        run(src, str(tmp_path / 'dest'))
    msg = str(exc.value)
    assert msg.startswith('src ended early at image byte ') or msg.startswith('cannot read src as ')
    assert 'truncated' in msg or 'cannot read src' in msg


@pytest.mark.parametrize('digest_of', ['skip', 'the broken file'])
@pytest.mark.parametrize('how', ['truncated', 'corrupt'])
def test_a_broken_gzip_says_how_much_it_wrote(tmp_path, digest_of, how):
    """A gzip file cut short or with a byte changed cannot be known broken before it is
    decompressed: what was written before the break is said, with what to do."""
    data = random_image(16)
    packed = gzip.compress(data)
    if how == 'truncated':
        broken = packed[:len(packed) // 2]
    else:
        broken = bytearray(packed)
        broken[len(packed) // 2] ^= 0x55
        broken = bytes(broken)
    src = write_image(tmp_path, broken, 'img.gz')
    dest = tmp_path / 'dest'
    dest.write_bytes(b'\xee' * len(data))
    with pytest.raises(SourceError) as exc:
        run(src, str(dest), None if digest_of == 'skip' else sha(broken))
    written = bytes_changed(dest, 0xEE)
    assert 0 < written
    assert str(exc.value).endswith(partly(dest, written))
    if how == 'truncated':   # (a corrupt stream may decompress to other data before its CRC fails)
        out = dest.read_bytes()
        assert written < len(data) and out[:written] == data[:written] and out[written:] == b'\xee' * (len(data) - written)


def test_a_truncated_xz_file_writes_nothing(tmp_path):
    """An xz file ends in a stream footer: one cut short is known before anything is written."""
    data = random_image(16)
    packed = lzma.compress(data)
    src = write_image(tmp_path, packed[:len(packed) - 100], 'img.xz')
    dest = tmp_path / 'dest'
    dest.write_bytes(b'\xee' * len(data))
    for sha256 in (None, sha(packed[:len(packed) - 100])):
        with pytest.raises(SourceError) as exc:
            run(src, str(dest), sha256)
        assert str(exc.value) == ('src %s is not a complete xz file (no valid stream footer at byte %d): the file or download '
                                  'is truncated or corrupt; fetch it again' % (src, len(packed) - 112))
        assert dest.read_bytes() == b'\xee' * len(data)


# 16 KiB of zeros as "xz -9 -T1 --check=crc32 --block-size=4096" writes them: one stream of four blocks.
XZ_FOUR_BLOCKS = base64.b64decode(
    '/Td6WFoAAAFpIt42AgAhARwAAAAQz1jM4A//ABldAABv/f//o7f/Rz5IFXI5YVG4kijmo4SeKUYAAAAAEQAcxwIAIQEcAAAAEM9YzOAP/wAZXQAAb/3//6O3'
    '/0c+SBVyOWFRuJIo5qOEnilGAAAAABEAHMcCACEBHAAAABDPWMzgD/8AGV0AAG/9//+jt/9HPkgVcjlhUbiSKOajhJ4pRgAAAAARABzHAgAhARwAAAAQz1jM'
    '4A//ABldAABv/f//o7f/Rz5IFXI5YVG4kijmo4SeKUYAAAAAEQAcxwAEMYAgMYAgMYAgMYAgAACvt93qI9NUXQQAAAAAAVla')


@pytest.mark.parametrize('layout', ['one stream', 'four blocks', 'streams and padding'])
def test_xz_layout_of_complete_files(tmp_path, layout):
    data = make_image()
    if layout == 'one stream':
        packed = lzma.compress(data)
    elif layout == 'four blocks':
        data, packed = bytes(16384), XZ_FOUR_BLOCKS
    else:
        # (lzma.decompress and lzma.LZMAFile stop at the padding without an error)
        packed = lzma.compress(data[:1000]) + b'\0' * 8 + lzma.compress(data[1000:]) + b'\0' * 4
    src = write_image(tmp_path, packed, 'img.xz')
    assert sources.xz_layout(src) == (len(data), None)
    dest = tmp_path / 'dest'
    run(src, str(dest), sha(packed))
    assert dest.read_bytes().ljust(len(data), b'\0') == data


@pytest.mark.parametrize('cut, problem', [
    (lambda p: p[:-1], 'no valid stream footer at byte %d'),
    (lambda p: p[:20], 'no complete stream'),
    (lambda p: p[:12] + b'\0' * 4 + p[12:], 'no stream header at byte %d where its index says'),
    (lambda p: p[:12] + p[16:], 'the stream blocks do not fit in the file'),
    (lambda p: p[:-20] + bytes([p[-20] ^ 1]) + p[-19:], 'no valid stream index at byte %d'),
    (lambda p: b'\0' * 4 + p, 'null bytes before the first stream'),
    (lambda p: p + b'\0' * 3, 'no valid stream footer at byte %d'),
])
def test_xz_layout_of_broken_files(tmp_path, cut, problem):
    packed = lzma.compress(make_image())
    broken = cut(packed)
    size, found = sources.xz_layout(write_image(tmp_path, broken, 'img.xz'))
    assert size is None
    assert found.split(' at byte ')[0] == problem.split(' at byte ')[0]


def test_xz_size_known_from_index(tmp_path):
    data = make_image()
    src = write_image(tmp_path, lzma.compress(data), 'img.xz')
    assert sources.xz_uncompressed_size(src) == len(data)
    assert sources.Source(src).known_size() == len(data)
    assert sources.Source(write_image(tmp_path, gzip.compress(data), 'img.gz')).known_size() is None


def test_detect_compression():
    assert sources.detect_compression(b'\xfd7zXZ\x00\x00') == 'xz'
    assert sources.detect_compression(b'\x1f\x8b\x08') == 'gzip'
    assert sources.detect_compression(b'BZh9') == 'bzip2'
    assert sources.detect_compression(b'\x28\xb5\x2f\xfd') == 'zstd'
    assert sources.detect_compression(b'\xfa\xb8\x00\x10') == 'none'


def test_hashing_reader_peek_is_not_lost():
    r = sources.HashingReader(io.BytesIO(b'0123456789'))
    assert r.peek(4) == b'0123'
    assert r.read(2) + r.read(100) == b'0123456789'
    assert r.hexdigest() == sha(b'0123456789') and r.count == 10


# -- bmap -----------------------------------------------------------------------------------
def test_bmap_writes_only_mapped_ranges(tmp_path):
    data = make_image()
    text, ranges = bmap_for(data)
    bm = parse_bmap(text)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    garbage = b'\xee' * len(data)
    dest.write_bytes(garbage)
    stats = run(src, str(dest), sha(data), bmap=bm)
    out = dest.read_bytes()
    mapped = sum((last - first + 1) * BS for first, last in ranges)
    assert stats.bytes_written == mapped == bm.mapped_bytes
    assert stats.bytes_unmapped == len(data) - mapped
    for first, last in ranges:
        assert out[first * BS:(last + 1) * BS] == data[first * BS:(last + 1) * BS]
    # unmapped blocks are left alone
    unmapped = [i for i in range(len(data) // BS) if not any(f <= i <= la for f, la in ranges)]
    assert unmapped and all(out[i * BS:(i + 1) * BS] == b'\xee' * BS for i in unmapped)


def test_bmap_from_compressed_stream(tmp_path):
    data = make_image()
    text, dummy = bmap_for(data)
    packed = lzma.compress(data)
    src = write_image(tmp_path, packed, 'img.xz')
    dest = tmp_path / 'dest'
    stats = run(src, str(dest), sha(packed), bmap=parse_bmap(text))
    assert stats.bytes_written == parse_bmap(text).mapped_bytes
    assert dest.read_bytes().rstrip(b'\0') == data.rstrip(b'\0')


def test_bmap_range_checksum_mismatch(tmp_path):
    data = make_image()
    text, ranges = bmap_for(data)
    other = bytearray(data)
    other[ranges[0][0] * BS] ^= 1
    src = write_image(tmp_path, bytes(other))
    with pytest.raises(BmapError) as exc:
        run(src, str(tmp_path / 'dest'), None, bmap=parse_bmap(text))
    assert 'bmap checksum mismatch for image bytes 0-' in str(exc.value)
    assert str(exc.value).endswith('the bmap does not belong to this image; nothing was written')
    assert not (tmp_path / 'dest').exists() or (tmp_path / 'dest').read_bytes() == b''


def another_image(data, how):
    """An image of the same size as data whose mapped ranges differ: a byte in the first mapped
    range, or in every range."""
    text, ranges = bmap_for(data)
    other = bytearray(data)
    for first, last in ranges if how == 'every range' else ranges[:1]:
        other[(first + last) // 2 * BS + 7] ^= 0x5A
    return bytes(other)


@pytest.mark.parametrize('pack, name', [(None, 'img.raw'), (gzip.compress, 'img.gz'), (lzma.compress, 'img.xz')])
@pytest.mark.parametrize('other', ['size', 'first range', 'every range'])
def test_a_bmap_of_another_image_writes_nothing(tmp_path, pack, name, other):
    """Whatever the compression, a bmap that belongs to another image (another size, or the
    same size with other data) fails before the first byte is written: the size (raw or xz)
    before anything is read, a range's checksum on the range read ahead, before it is written."""
    data = make_image()
    text, ranges = bmap_for(data)
    image = another_image(data, 'first range' if other == 'size' else other) + (bytes(BS) if other == 'size' else b'')
    src = write_image(tmp_path, pack(image) if pack else image, name)
    dest = tmp_path / 'dest'
    dest.write_bytes(b'\xee' * len(data))
    with pytest.raises(BmapError) as exc:
        run(src, str(dest), None, bmap=parse_bmap(text))
    if other == 'size' and name != 'img.gz':
        assert str(exc.value) == ('bmap ImageSize is %d but src is %d bytes: the bmap belongs to another image'
                                  % (len(data), len(image)))
    else:
        first, last = ranges[0]
        assert str(exc.value).startswith('bmap checksum mismatch for image bytes %d-%d (sha256 ' % (first * BS, (last + 1) * BS - 1))
        assert str(exc.value).endswith('the bmap does not belong to this image; nothing was written')
    assert dest.read_bytes() == b'\xee' * len(data)


def test_a_range_that_does_not_match_is_never_written(tmp_path):
    """Range 3 of the image differs from its bmap checksum: ranges 0-2 were checked and
    written, range 3 is not written, and the message says how much was."""
    data = random_image(16)
    text, ranges = bmap_for(data, mapped_if=lambda i: i % 3 != 2, wrong=(3,))   # every third block unmapped
    bm = parse_bmap(text)
    src = write_image(tmp_path, gzip.compress(data), 'img.gz')
    dest = tmp_path / 'dest'
    dest.write_bytes(b'\xee' * len(data))
    with pytest.raises(BmapError) as exc:
        run(src, str(dest), None, bmap=bm)
    first, last = ranges[3]
    written = sum((b - a + 1) * BS for a, b in ranges[:3])
    assert str(exc.value) == ('bmap checksum mismatch for image bytes %d-%d (sha256 %s, bmap says %s): the bmap does not '
                              'belong to this image' % (first * BS, (last + 1) * BS - 1, sha(data[first * BS:(last + 1) * BS]), '0' * 64)
                              + partly(dest, written))
    out = dest.read_bytes()
    assert bytes_changed(dest, 0xEE) == written
    assert out[:ranges[2][1] * BS + BS] == b''.join(
        data[i * BS:(i + 1) * BS] if i % 3 != 2 else b'\xee' * BS for i in range(ranges[2][1] + 1))


@pytest.mark.parametrize('name', ['img.raw', 'img.gz', 'url'])
def test_a_range_too_large_to_hold_is_checked_before_it_is_written(tmp_path, monkeypatch, name):
    """A range larger than STAGE_MAX is not held in memory: a local src reads it first from a
    second stream, so a mismatch still writes nothing; a URL cannot be read twice, so its large
    ranges are checked at their end, after they were written (the message says how much)."""
    monkeypatch.setattr(regions, 'STAGE_MAX', BS)
    data = make_image()
    text, ranges = bmap_for(data)
    image = another_image(data, 'first range')
    blob = gzip.compress(image) if name != 'img.raw' else image
    dest = tmp_path / 'dest'
    dest.write_bytes(b'\xee' * len(data))
    if name == 'url':
        source = sources.Source('https://example.invalid/img.gz', opener=lambda url: io.BytesIO(blob))
    else:
        source = sources.Source(write_image(tmp_path, blob, name))
    writer = engine.ImageWriter(source, str(dest), bmap=parse_bmap(text), block_size=BS, chunk_size=CHUNK)
    with pytest.raises(BmapError) as exc:
        writer.run()
    assert str(exc.value).startswith('bmap checksum mismatch for image bytes 0-%d ' % ((ranges[0][1] + 1) * BS - 1))
    if name == 'url':
        assert str(exc.value).endswith(partly(dest, (ranges[0][1] + 1) * BS))
    else:
        assert str(exc.value).endswith('; nothing was written')
        assert dest.read_bytes() == b'\xee' * len(data)
    # and the right image, through the second stream: written and verified
    blob = gzip.compress(data) if name != 'img.raw' else data
    if name == 'url':
        source = sources.Source('https://example.invalid/img.gz', opener=lambda url: io.BytesIO(blob))
    else:
        source = sources.Source(write_image(tmp_path, blob, name))
    stats = engine.ImageWriter(source, str(dest), bmap=parse_bmap(text), block_size=BS, chunk_size=CHUNK).run()
    assert stats.bytes_verified == stats.bytes_written > 0
    out = dest.read_bytes()
    assert all(out[a * BS:(b + 1) * BS] == data[a * BS:(b + 1) * BS] for a, b in ranges)


def test_bmap_file_checksum_is_checked():
    text, dummy = bmap_for(make_image())
    edited = text.replace('<MappedBlocksCount>', '<MappedBlocksCount> ', 1)
    with pytest.raises(BmapError) as exc:
        parse_bmap(edited)
    assert str(exc.value).startswith('bmap file checksum mismatch (sha256 ')


def test_bmap_real_bmaptool_sample():
    # ranges as bmaptool 3.6 writes them: a range and a single block
    data = bytearray(1048576)
    data[3 * 4096:5 * 4096] = b'\x01' * 8192
    data[100 * 4096:101 * 4096] = b'\x02' * 4096
    text, ranges = bmap_for(bytes(data))
    bm = parse_bmap(text)
    assert ranges == [[3, 4], [100, 100]]
    assert bm.extents()[1][:2] == (100 * 4096, 101 * 4096)
    assert (bm.image_size, bm.block_size, bm.blocks_count, bm.mapped_count) == (1048576, 4096, 256, 3)


@pytest.mark.parametrize('mutate, message', [
    (lambda t: t.replace('<ChecksumType> sha256 </ChecksumType>', '<ChecksumType> crc32 </ChecksumType>'),
     "bmap ChecksumType 'crc32' is not supported (sha256, sha1 or md5)"),
    (lambda t: t.replace('<bmap version="2.0">', '<bmap version="3.0">'),
     "bmap format version '3.0' is not supported (1.x and 2.x are)"),
    (lambda t: t.replace('<BlocksCount> 64 </BlocksCount>', '<BlocksCount> 65 </BlocksCount>'),
     'bmap BlocksCount 65 does not match ImageSize 262144 / BlockSize 4096'),
    (lambda t: t.replace('</BlockMap>', '<Range chksum="%s"> 70 </Range></BlockMap>' % ('a' * 64)),
     'bmap range 70 is out of order, overlapping or beyond block 63'),
    (lambda t: t[:40], None),
])
def test_bad_bmaps(mutate, message):
    text, dummy = bmap_for(make_image(), zero_file_checksum=True)
    text = text.replace('<BmapFileChecksum> %s </BmapFileChecksum>' % ('0' * 64), '')
    with pytest.raises(BmapError) as exc:
        parse_bmap(mutate(text))
    if message:
        assert str(exc.value) == message
    else:
        assert str(exc.value).startswith('bmap is not valid XML')


def test_bmap_size_must_match_source(tmp_path):
    data = make_image()
    text, dummy = bmap_for(data)
    src = write_image(tmp_path, data + b'\0' * BS)
    with pytest.raises(BmapError) as exc:
        run(src, str(tmp_path / 'dest'), None, bmap=parse_bmap(text))
    assert str(exc.value) == ('bmap ImageSize is %d but src is %d bytes: the bmap belongs to another image'
                              % (len(data), len(data) + BS))


def test_truncated_source_with_bmap(tmp_path):
    data = make_image()
    text, dummy = bmap_for(data)
    src = write_image(tmp_path, gzip.compress(data[:len(data) // 2]), 'half.gz')
    with pytest.raises(SourceError) as exc:
        run(src, str(tmp_path / 'dest'), None, bmap=parse_bmap(text))
    assert 'truncated' in str(exc.value)


# -- targets and refusals (the refusals themselves: test_image_targets.py) ----------------------


def test_stream_longer_than_device_is_stopped(tmp_path, monkeypatch):
    """gzip: size unknown up front; the write stops at the end of the device."""
    data = make_image()
    src = write_image(tmp_path, gzip.compress(data), 'img.gz')
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(64 * 1024))
    writer = engine.ImageWriter(sources.Source(src), str(dest), block_size=BS, chunk_size=CHUNK)
    real_plan = writer.plan

    def plan():
        t = real_plan()
        t.kind, t.size = 'block', 64 * 1024   # pretend it is a 64 KiB device
        t.mountinfo, t.swaps, t.holders, t.sysfs, t.usb = '', '', [], '/nonexistent', True
        return t
    monkeypatch.setattr(writer, 'plan', plan)
    monkeypatch.setattr(engine, 'drop_cache', lambda fd, is_block: None)
    with pytest.raises(RefusedError) as exc:
        writer.run()
    written = sum(1 for i in range(0, 64 * 1024, BS) if data[i:i + BS].strip(b'\0')) * BS
    assert str(exc.value) == ('dest %s holds 65536 bytes (64.0 KiB) but the image is larger: use a larger device' % dest
                              + partly(dest, written))


def test_bad_sizes():
    with pytest.raises(ImageError) as exc:
        engine.ImageWriter(None, '/x', block_size=1000)
    assert str(exc.value) == 'block_size must be a power of two of at least 512, not 1000'
    with pytest.raises(ImageError) as exc:
        engine.ImageWriter(None, '/x', block_size=4096, chunk_size=6144)
    assert str(exc.value) == 'chunk_size must be a multiple of block_size (4096), not 6144'


def test_missing_source(tmp_path):
    with pytest.raises(SourceError) as exc:
        sources.Source(str(tmp_path / 'no.img'))
    assert str(exc.value) == ('src %s does not exist: give the path of the image file or an http(s) URL' % (tmp_path / 'no.img'))


def test_url_source_streams_and_checks_at_the_end(tmp_path):
    data = make_image()
    packed = gzip.compress(data)
    src = sources.Source('https://example.invalid/img.gz', opener=lambda url: io.BytesIO(packed))
    dest = tmp_path / 'dest'
    stats = engine.ImageWriter(src, str(dest), sha256=sha(packed), block_size=BS, chunk_size=CHUNK).run()
    assert dest.read_bytes() == data and stats.sha256 == sha(packed)
    src = sources.Source('https://example.invalid/img.gz', opener=lambda url: io.BytesIO(packed))
    (tmp_path / 'dest2').write_bytes(b'')
    with pytest.raises(ChecksumError) as exc:
        engine.ImageWriter(src, str(tmp_path / 'dest2'), sha256='1' * 64, block_size=BS, chunk_size=CHUNK).run()
    assert str(exc.value) == ('sha256 of https://example.invalid/img.gz is %s, expected %s: the download does not match'
                              % (sha(packed), '1' * 64)
                              + partly(tmp_path / 'dest2', sum(1 for i in range(0, len(data), BS) if data[i:i + BS].strip(b'\0')) * BS))


def test_bmap_rewrite_of_unchanged_target_reads_no_source(tmp_path):
    data = make_image()
    text, dummy = bmap_for(data)
    bm = parse_bmap(text)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    run(src, str(dest), sha(data), bmap=bm)
    again = run(src, str(dest), sha(data), bmap=bm)
    assert again.bytes_written == 0
    assert again.bytes_read == bm.mapped_bytes       # the target's mapped ranges, hashed
    assert again.source_bytes < BS                   # only the compression sniffing
    # one changed block: only its range goes through the source
    broken = bytearray(dest.read_bytes())
    first, last, dummy = bm.ranges[1]
    broken[first * BS] ^= 1
    dest.write_bytes(bytes(broken))
    fixed = run(src, str(dest), sha(data), bmap=bm)
    assert fixed.bytes_written == BS
    assert fixed.source_bytes <= (last - first + 1) * BS + BS
    assert dest.read_bytes() == data


def test_write_killed_half_way_resumes(tmp_path, monkeypatch):
    """A run that dies mid-write (device unplugged, process killed) leaves what it wrote; the
    next run writes only the rest."""
    data = make_image(seed=3)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    real_pwrite = engine.ImageWriter._pwrite
    calls = []

    def dying_pwrite(self, fd, piece, offset):
        if len(calls) == 5:
            raise ImageError('unplugged')
        calls.append(len(piece))
        real_pwrite(self, fd, piece, offset)
    monkeypatch.setattr(engine.ImageWriter, '_pwrite', dying_pwrite)
    with pytest.raises(ImageError) as exc:
        run(src, str(dest), sha(data))
    monkeypatch.setattr(engine.ImageWriter, '_pwrite', real_pwrite)
    done_before = sum(calls)
    assert str(exc.value) == 'unplugged' + partly(dest, done_before)
    nonzero = sum(1 for i in range(0, len(data), BS) if data[i:i + BS].strip(b'\0')) * BS
    again = run(src, str(dest), sha(data))
    assert 0 < done_before < nonzero
    assert again.bytes_written == nonzero - done_before
    assert dest.read_bytes() == data


@pytest.mark.parametrize('packed', [False, True])
def test_verify_catches_a_device_that_does_not_keep_writes(tmp_path, monkeypatch, packed):
    data = make_image()
    blob = gzip.compress(data) if packed else data
    src = write_image(tmp_path, blob, 'img.gz' if packed else 'img.raw')
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    real_pwrite = engine.ImageWriter._pwrite

    def lossy_pwrite(self, fd, piece, offset):
        piece = bytes(piece)
        real_pwrite(self, fd, piece[:-1] + b'\x00' if piece[-1:] != b'\x00' else piece[:-1] + b'\x01', offset)
    monkeypatch.setattr(engine.ImageWriter, '_pwrite', lossy_pwrite)
    with pytest.raises(VerifyError) as exc:
        run(src, str(dest), sha(blob))
    assert str(exc.value).startswith('read-back of %s differs from what was written at bytes 0-' % dest)
    assert str(exc.value).endswith('(replace the module if it repeats)' + partly(dest, bytes_changed(dest, 0)))


def test_a_failing_device_says_how_much_it_took(tmp_path, monkeypatch):
    """The device fails in the middle of a write: the message names the byte and says how much
    the target took before it."""
    data = random_image(8)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(b'\xee' * len(data))
    real = os.pwrite

    def failing(fd, piece, offset):
        if offset >= 5 * CHUNK + BS:
            raise OSError(5, 'Input/output error')
        return real(fd, bytes(piece)[:BS], offset)   # the device takes a block at a time
    monkeypatch.setattr(os, 'pwrite', failing)
    with pytest.raises(ImageError) as exc:
        run(src, str(dest), None)
    monkeypatch.setattr(os, 'pwrite', real)
    assert str(exc.value) == ('write to %s at byte %d failed: [Errno 5] Input/output error (the device may have been unplugged)'
                              % (dest, 5 * CHUNK + BS) + partly(dest, 5 * CHUNK + BS))
    assert bytes_changed(dest, 0xEE) == 5 * CHUNK + BS


# -- adaptive compare -------------------------------------------------------------------------
@pytest.fixture
def small_steps(monkeypatch):
    """Adaptive compare in test-sized steps: blind after 2 chunks that differ everywhere, a probe
    after every 4 chunks written blind."""
    monkeypatch.setattr(engine, 'BLIND_AFTER', 2 * CHUNK)
    monkeypatch.setattr(engine, 'PROBE_EVERY', 4 * CHUNK)


def test_blank_target_is_written_without_comparing_after_two_differing_chunks(tmp_path, small_steps):
    """Chunks 0 and 1 differ everywhere: the rest is written without comparing, with a one-block
    probe after every 4 chunks written that way (chunks 6, 10 and 14). Every byte is still
    written once and read back."""
    data = random_image(16)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data
    assert stats.bytes_compared == 2 * CHUNK
    assert stats.bytes_uncompared == 14 * CHUNK
    assert stats.bytes_written == stats.bytes_verified == 16 * CHUNK
    assert stats.bytes_read == 2 * CHUNK + 3 * BS + 16 * CHUNK  # the compares, the probes and the read-back


def test_a_probe_that_finds_the_image_goes_back_to_comparing(tmp_path, small_steps):
    """A target that holds the image from chunk 8 on: the probe at chunk 10 finds its block in
    place, so chunks 10-31 are compared and not written; chunks 8 and 9 were written blind (the
    price)."""
    data = random_image(32)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(8 * CHUNK) + data[8 * CHUNK:])
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data
    assert stats.bytes_written == 10 * CHUNK          # chunks 0-9
    assert stats.bytes_uncompared == 8 * CHUNK        # chunks 2-9
    assert stats.bytes_compared == 24 * CHUNK         # 0, 1 and 10-31
    assert stats.bytes_read == 24 * CHUNK + 2 * BS + 10 * CHUNK


def test_zeros_are_compared_not_written_blind(tmp_path, small_steps):
    """An image without a bmap, empty space (zeros) between its data, on a blank module: once
    blind, the data is written without reading the target, the zeros are compared (and found in
    place), and nothing else is written."""
    data = random_image(2) + bytes(2 * CHUNK) + random_image(2, seed=b's') + bytes(4 * CHUNK) + random_image(1, seed=b't')
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data
    assert stats.bytes_written == stats.bytes_verified == 5 * CHUNK
    assert stats.bytes_uncompared == 3 * CHUNK
    assert stats.bytes_compared == 2 * CHUNK + 6 * CHUNK     # chunks 0 and 1, and the zeros


def test_probe_interval(tmp_path, small_steps, monkeypatch):
    monkeypatch.setattr(engine, 'PROBE_EVERY', 2 * CHUNK)
    data = random_image(16)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data
    assert stats.bytes_uncompared == 14 * CHUNK
    assert stats.bytes_read == 2 * CHUNK + 6 * BS + 16 * CHUNK   # probes at chunks 4, 6, 8, 10, 12, 14


def test_check_mode_and_a_partly_different_target_always_compare(tmp_path, small_steps):
    data = random_image(16)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    stats = run(src, str(dest), sha(data), check_mode=True)
    assert (stats.bytes_compared, stats.bytes_uncompared, stats.bytes_written) == (16 * CHUNK, 0, 16 * CHUNK)
    assert dest.read_bytes() == bytes(len(data))
    # one block in place in every chunk: never blind, that block never written
    old = bytearray(len(data))
    for c in range(16):
        old[c * CHUNK:c * CHUNK + BS] = data[c * CHUNK:c * CHUNK + BS]
    dest.write_bytes(bytes(old))
    stats = run(src, str(dest), sha(data))
    assert (stats.bytes_compared, stats.bytes_uncompared, stats.bytes_written) == (16 * CHUNK, 0, 16 * (CHUNK - BS))
    assert dest.read_bytes() == data


def test_blank_module_first_write_reads_little_before_it_writes(tmp_path, monkeypatch):
    """The first write of a blank module, with a bmap and the engine's own sizes (64 KiB blocks,
    4 MiB chunks): the target is read (and read ahead) only for the first mapped range, which the
    pre-check finds different, and for one block of probe; then it is written, and read back.
    An unchanged re-write after it writes nothing."""
    mib = 1024 * 1024
    data = bytearray(16 * mib)
    for i in range(0, 16, 2):                    # 1 MiB of data in every 2, like an OS image
        data[i * mib:(i + 1) * mib] = random_image(mib // CHUNK, seed=b'%d' % i)
    data = bytes(data)
    text, ranges = bmap_for(data)
    bm = parse_bmap(text)
    assert len(ranges) == 8 and bm.mapped_bytes == 8 * mib
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    hinted = []
    real = os.posix_fadvise

    def fadvise(fd, offset, length, advice):
        if advice == blockio.POSIX_FADV_WILLNEED and os.readlink('/proc/self/fd/%d' % fd) == str(dest):
            hinted.append(length)
        return real(fd, offset, length, advice)
    monkeypatch.setattr(os, 'posix_fadvise', fadvise)
    writer = engine.ImageWriter(sources.Source(src), str(dest), sha256=sha(data), bmap=bm)
    stats = writer.run()
    assert dest.read_bytes() == data
    assert stats.bytes_written == stats.bytes_verified == 8 * mib
    assert stats.bytes_read - stats.bytes_verified == mib + 64 * 1024   # range 0, then one probe (at range 5)
    assert stats.bytes_uncompared == 7 * mib
    assert sum(hinted) <= mib + 8 * mib    # read ahead: range 0, and the read-back
    again = engine.ImageWriter(sources.Source(src), str(dest), sha256=sha(data), bmap=bm).run()
    assert (again.bytes_written, again.bytes_read, again.source_bytes) == (0, 8 * mib, 8)


# -- the bmap pre-check -----------------------------------------------------------------------
def test_bmap_precheck_gives_up_after_a_budget_of_mismatches_in_a_row(tmp_path, monkeypatch):
    data = make_image()
    text, ranges = bmap_for(data)
    bm = parse_bmap(text)
    size = (ranges[0][1] - ranges[0][0] + 1) * BS
    assert all((last - first + 1) * BS == size for first, last in ranges[:-1])
    monkeypatch.setattr(engine, 'PRECHECK_BUDGET', 3 * size)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    # another image: the pre-check reads 3 ranges (3 * size reaches the budget); the compare pass
    # knows them from their block digests and reads only the others
    dest.write_bytes(random_image(len(data) // CHUNK, seed=b'other'))
    stats = run(src, str(dest), sha(data), bmap=bm, check_mode=True)
    assert stats.bytes_read == bm.mapped_bytes
    assert stats.bytes_written == bm.mapped_bytes
    assert stats.source_bytes == bm.mapped_bytes
    # ranges 0, 1, 3 and 4 broken, 2 and the rest in place: 4 mismatches in all but never more
    # than 2 in a row, so the pre-check goes on to the end; the 4 broken ranges are read from the
    # image, compared with the digests of the target's blocks (not read again), and their 4
    # broken blocks written and read back
    broken = bytearray(data)
    for first in [r[0] for r in ranges[:2] + ranges[3:5]]:
        broken[first * BS] ^= 1
    dest.write_bytes(bytes(broken))
    stats = run(src, str(dest), sha(data), bmap=bm)
    assert stats.bytes_written == 4 * BS
    assert stats.source_bytes == 4 * size                # only the 4 broken ranges
    assert stats.bytes_read == bm.mapped_bytes + 4 * BS   # pre-check and read-back
    assert dest.read_bytes() == data


def test_bmap_precheck_reads_a_blank_module_no_further_than_its_budget(tmp_path, monkeypatch):
    """What the pre-check read of a blank module (2 ranges of zeros reach the blank budget):
    counted by the reads and the read-ahead hints on the target before the first write."""
    data = make_image()
    text, ranges = bmap_for(data)
    size = (ranges[0][1] - ranges[0][0] + 1) * BS
    monkeypatch.setattr(engine, 'PRECHECK_BLANK_BUDGET', 2 * size)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    seen = dict(read=0, hinted=0, written=False)
    real_pread, real_fadvise, real_pwrite = os.pread, os.posix_fadvise, engine.ImageWriter._pwrite

    def pread(fd, n, offset):
        data = real_pread(fd, n, offset)
        if not seen['written'] and os.readlink('/proc/self/fd/%d' % fd) == str(dest):
            seen['read'] += len(data)
        return data

    def fadvise(fd, offset, length, advice):
        if not seen['written'] and advice == blockio.POSIX_FADV_WILLNEED and os.readlink('/proc/self/fd/%d' % fd) == str(dest):
            seen['hinted'] += length
        return real_fadvise(fd, offset, length, advice)

    def pwrite(self, fd, piece, offset):
        seen['written'] = True
        return real_pwrite(self, fd, piece, offset)
    monkeypatch.setattr(os, 'pread', pread)
    monkeypatch.setattr(os, 'posix_fadvise', fadvise)
    monkeypatch.setattr(engine.ImageWriter, '_pwrite', pwrite)
    monkeypatch.setattr(engine, 'BLIND_AFTER', 2 * size)
    stats = run(src, str(dest), sha(data), bmap=parse_bmap(text))
    assert dest.read_bytes() == data
    assert seen['read'] == 2 * size and seen['hinted'] <= 2 * size
    assert stats.bytes_uncompared == stats.bytes_written - 2 * size   # all but the 2 ranges: blind


def test_read_extents_pieces_and_short_reads(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(bytes(range(256)) * 4)   # 1024 bytes
    fd = os.open(str(path), os.O_RDONLY)
    try:
        got = [(i, pos, len(data)) for i, pos, data in blockio.read_extents(fd, [(0, 300), (1000, 1100), (512, None)], 256)]
    finally:
        os.close(fd)
    assert got == [(0, 0, 256), (0, 256, 44), (1, 1000, 24), (2, 512, 256), (2, 768, 256)]
