# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The block engine of image_write: compare, skip, adaptive compare, bmap ranges, compressed
streams, torn input, short targets, bad digests and the refusals. Targets are regular files (no
root needed)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

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

from ansible_collections.turingpi.cluster.plugins.module_utils import _image as image

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


class DigestFirst(image._DigestJob):
    """The digest of src is known before the first write (a small or fast-hashing image)."""

    def __init__(self, path):
        super(DigestFirst, self).__init__(path)
        self.thread.join()


def write_image(tmp_path, data, name='img.raw'):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def run(src, dest, digest=None, bmap=None, check_mode=False, verify=True, compression='auto', **kw):
    writer = image.ImageWriter(image.Source(src, compression), dest, sha256=digest, bmap=bmap, block_size=BS,
                               chunk_size=CHUNK, verify=verify, check_mode=check_mode, **kw)
    return writer.run()


def bmap_for(data, block=BS, checksum_type='sha256', zero_file_checksum=False):
    """A bmaptool-style block map of the non-zero blocks of data."""
    blocks = (len(data) + block - 1) // block
    mapped = [i for i in range(blocks) if data[i * block:(i + 1) * block].strip(b'\0')]
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
    for first, last in ranges:
        chk = hashlib.new(checksum_type, data[first * block:min((last + 1) * block, len(data))]).hexdigest()
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
    assert image._diff_runs(data, cur, 0, 8) == [(8, 12)]
    assert image._diff_runs(data, cur, 4, 8) == [(4, 16)]
    assert image._diff_runs(data, data, 0, 8) == []


# -- digests ------------------------------------------------------------------------------
def test_bad_digest_known_before_the_first_write_changes_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(image, '_DigestJob', DigestFirst)
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(b'old')
    with pytest.raises(image.ChecksumError) as exc:
        run(src, str(dest), '0' * 64)
    assert str(exc.value) == ('sha256 of %s is %s, expected %s: the image is corrupt, incomplete or not the one you meant; '
                              'nothing was written' % (src, sha(data), '0' * 64))
    assert dest.read_bytes() == b'old'
    assert image.verified_digest(src) is None


def test_bad_digest_known_only_when_waited_for_still_writes_nothing(tmp_path, digest_when_waited):
    """The slowest possible hash (it starts only when waited for): the first write waits for it,
    so a bad digest fails the run with the target untouched; the right digest then writes it."""
    data = make_image()
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    with pytest.raises(image.ChecksumError) as exc:
        run(src, str(dest), '0' * 64)
    assert str(exc.value) == ('sha256 of %s is %s, expected %s: the image is corrupt, incomplete or not the one you meant; '
                              'nothing was written' % (src, sha(data), '0' * 64))
    assert dest.read_bytes() == bytes(len(data))
    assert image.verified_digest(src) is None
    # the right digest: written, verified, and the digest is remembered (where xattrs work)
    again = run(src, str(dest), sha(data))
    assert again.bytes_written > 0 and again.sha256 == sha(data)
    assert dest.read_bytes() == data


def test_first_write_waits_for_the_digest(tmp_path, monkeypatch):
    """A hash slower than the compare: no byte is written before the digest is known, and the
    chunks already in place are compared while it runs (that overlap is the gain)."""
    events = []

    class DigestSlow(image._DigestJob):
        def _run(self):
            time.sleep(0.3)
            events.append('hashed')
            super(DigestSlow, self)._run()
    monkeypatch.setattr(image, '_DigestJob', DigestSlow)
    data = random_image(8)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(data[:4 * CHUNK] + bytes(4 * CHUNK))   # the first half is in place
    real_pwrite = image.ImageWriter._pwrite

    def pwrite(self, fd, piece, offset):
        events.append(('write', offset, self._digest.done.is_set(), self.stats.bytes_compared))
        real_pwrite(self, fd, piece, offset)
    monkeypatch.setattr(image.ImageWriter, '_pwrite', pwrite)
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data and stats.bytes_written == 4 * CHUNK
    writes = [e for e in events if e != 'hashed']
    assert events[0] == 'hashed' and all(done for dummy, dummy2, done, dummy3 in writes)
    assert writes[0] == ('write', 4 * CHUNK, True, 5 * CHUNK)   # the half in place compared first
    # the same with a bad digest: the target is left as it was
    dest.write_bytes(data[:4 * CHUNK] + bytes(4 * CHUNK))
    del events[:]
    with pytest.raises(image.ChecksumError) as exc:
        run(src, str(dest), '0' * 64)
    assert str(exc.value).endswith('; nothing was written')
    assert events == ['hashed']
    assert dest.read_bytes() == data[:4 * CHUNK] + bytes(4 * CHUNK)


@pytest.mark.parametrize('use_bmap', [False, True])
@pytest.mark.parametrize('size', [CHUNK, 64 * CHUNK])
def test_bad_digest_of_a_local_file_always_writes_nothing(tmp_path, monkeypatch, use_bmap, size):
    """The real hashing thread, on a file system a little slow to read: a bad digest for a local
    file always fails with "nothing was written" and leaves every byte of the target as it was."""
    real = image.hash_file

    def slow(path, progress=None, stop=None):
        time.sleep(0.05)
        return real(path, progress, stop)
    monkeypatch.setattr(image, 'hash_file', slow)
    data = random_image(size // CHUNK)
    src = write_image(tmp_path, data)
    bm = image.parse_bmap(bmap_for(data)[0]) if use_bmap else None
    for before in (b'', b'old', bytes(len(data)), data[:len(data) // 2]):
        dest = tmp_path / 'dest'
        dest.write_bytes(before)
        with pytest.raises(image.ChecksumError) as exc:
            run(src, str(dest), '0' * 64, bmap=bm)
        assert str(exc.value).endswith('; nothing was written')
        assert 'inconsistent' not in str(exc.value)
        assert dest.read_bytes() == before


def test_bad_digest_of_an_image_that_only_extends_the_file_writes_nothing(tmp_path, digest_when_waited):
    """An all-zero image longer than an empty target file needs no block written, only the file
    extended: that too waits for the digest."""
    data = bytes(4 * CHUNK)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(b'')
    with pytest.raises(image.ChecksumError) as exc:
        run(src, str(dest), '0' * 64)
    assert str(exc.value).endswith('; nothing was written')
    assert dest.read_bytes() == b''
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data and stats.bytes_written == 0


def test_digest_is_hashed_alongside_not_before(tmp_path, monkeypatch):
    """One pass: the local file is hashed on its own thread (hash_file once); the stream itself
    reads only the mapped ranges; the good digest is remembered for the next module."""
    data = make_image()
    text, dummy = bmap_for(data)
    bm = image.parse_bmap(text)
    src = write_image(tmp_path, data)
    calls = []
    real = image.hash_file

    def counting(path, progress=None, stop=None):
        calls.append(path)
        return real(path, progress, stop)
    monkeypatch.setattr(image, 'hash_file', counting)
    stats = run(src, str(tmp_path / 'dest'), sha(data), bmap=bm)
    assert calls == [src]
    assert stats.sha256 == sha(data) and not stats.digest_cached
    assert stats.source_bytes < len(data)
    if image.verified_digest(src) is not None:
        again = run(src, str(tmp_path / 'dest'), sha(data), bmap=bm)
        assert calls == [src] and again.digest_cached


def test_digest_of_compressed_source_is_of_the_file_as_given(tmp_path):
    data = make_image()
    packed = gzip.compress(data)
    src = write_image(tmp_path, packed, 'img.gz')
    with pytest.raises(image.ChecksumError):
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
    assert image.parse_sha256(value) == expected


def test_parse_sha256_rejects_garbage():
    with pytest.raises(image.ChecksumError) as exc:
        image.parse_sha256('md5:abc')
    assert str(exc.value) == "sha256 must be 64 hexadecimal digits (optionally prefixed with sha256:) or skip, not 'md5:abc'"


def test_remembered_digest_is_dropped_when_the_file_changes(tmp_path):
    data = make_image()
    src = write_image(tmp_path, data)
    run(src, str(tmp_path / 'dest'), sha(data))
    if image.verified_digest(src) is None:
        pytest.skip('this file system has no user extended attributes')  # only this one check
    assert image.verified_digest(src) == sha(data)
    with open(src, 'r+b') as f:
        f.write(b'X')
    assert image.verified_digest(src) is None


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
    stream_src = image.Source(raw + '.zst')
    stream_src.use_zstandard = False
    stats = image.ImageWriter(stream_src, str(dest), sha256=sha(packed), block_size=BS, chunk_size=CHUNK).run()
    assert stream_src.compression == 'zstd'
    assert dest.read_bytes() == data and stats.image_size == len(data)


@pytest.mark.skipif(not shutil.which('zstd'), reason='needs the zstd program')
def test_truncated_zstd_fails(tmp_path):
    packed = zstd_image(tmp_path)[2]
    (tmp_path / 'cut.zst').write_bytes(packed[:len(packed) // 2])
    src = image.Source(str(tmp_path / 'cut.zst'))
    src.use_zstandard = False
    with pytest.raises(image.SourceError) as exc:
        image.ImageWriter(src, str(tmp_path / 'dest'), block_size=BS, chunk_size=CHUNK).run()
    assert str(exc.value).startswith('zstd -dc failed (rc=1): ')


def test_zstd_without_library_or_program(tmp_path, monkeypatch):
    (tmp_path / 'img.zst').write_bytes(b'\x28\xb5\x2f\xfd' + b'\0' * 64)
    monkeypatch.setattr(image, 'zstandard', None)
    monkeypatch.setattr(image, '_which', lambda name: None)
    with pytest.raises(image.MissingZstdError) as exc:
        run(str(tmp_path / 'img.zst'), str(tmp_path / 'dest'))
    assert str(exc.value) == ('src is zstd-compressed but neither the zstandard Python library nor the zstd program is available: '
                              'install python3-zstandard (pip install zstandard) or zstd')
    assert not (tmp_path / 'dest').exists() or (tmp_path / 'dest').read_bytes() == b''


@pytest.mark.parametrize('pack', [lzma.compress, gzip.compress, bz2.compress])
def test_torn_compressed_input_fails_clearly(tmp_path, pack):
    data = make_image()
    packed = pack(data)
    src = write_image(tmp_path, packed[:len(packed) * 2 // 3], 'torn')
    with pytest.raises(image.SourceError) as exc:
        run(src, str(tmp_path / 'dest'))
    msg = str(exc.value)
    assert msg.startswith('src ended early at image byte ') or msg.startswith('cannot read src as ')
    assert 'truncated' in msg or 'cannot read src' in msg


def test_xz_size_known_from_index(tmp_path):
    data = make_image()
    src = write_image(tmp_path, lzma.compress(data), 'img.xz')
    assert image.xz_uncompressed_size(src) == len(data)
    assert image.Source(src).known_size() == len(data)
    assert image.Source(write_image(tmp_path, gzip.compress(data), 'img.gz')).known_size() is None


def test_detect_compression():
    assert image.detect_compression(b'\xfd7zXZ\x00\x00') == 'xz'
    assert image.detect_compression(b'\x1f\x8b\x08') == 'gzip'
    assert image.detect_compression(b'BZh9') == 'bzip2'
    assert image.detect_compression(b'\x28\xb5\x2f\xfd') == 'zstd'
    assert image.detect_compression(b'\xfa\xb8\x00\x10') == 'none'


def test_hashing_reader_peek_is_not_lost():
    r = image.HashingReader(io.BytesIO(b'0123456789'))
    assert r.peek(4) == b'0123'
    assert r.read(2) + r.read(100) == b'0123456789'
    assert r.hexdigest() == sha(b'0123456789') and r.count == 10


# -- bmap -----------------------------------------------------------------------------------
def test_bmap_writes_only_mapped_ranges(tmp_path):
    data = make_image()
    text, ranges = bmap_for(data)
    bm = image.parse_bmap(text)
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
    stats = run(src, str(dest), sha(packed), bmap=image.parse_bmap(text))
    assert stats.bytes_written == image.parse_bmap(text).mapped_bytes
    assert dest.read_bytes().rstrip(b'\0') == data.rstrip(b'\0')


def test_bmap_range_checksum_mismatch(tmp_path):
    data = make_image()
    text, ranges = bmap_for(data)
    other = bytearray(data)
    other[ranges[0][0] * BS] ^= 1
    src = write_image(tmp_path, bytes(other))
    with pytest.raises(image.BmapError) as exc:
        run(src, str(tmp_path / 'dest'), None, bmap=image.parse_bmap(text))
    assert 'bmap checksum mismatch for image bytes 0-' in str(exc.value)
    assert str(exc.value).endswith('the bmap does not belong to this image')


def test_bmap_file_checksum_is_checked():
    text, dummy = bmap_for(make_image())
    edited = text.replace('<MappedBlocksCount>', '<MappedBlocksCount> ', 1)
    with pytest.raises(image.BmapError) as exc:
        image.parse_bmap(edited)
    assert str(exc.value).startswith('bmap file checksum mismatch (sha256 ')


def test_bmap_real_bmaptool_sample():
    # ranges as bmaptool 3.6 writes them: a range and a single block
    data = bytearray(1048576)
    data[3 * 4096:5 * 4096] = b'\x01' * 8192
    data[100 * 4096:101 * 4096] = b'\x02' * 4096
    text, ranges = bmap_for(bytes(data))
    bm = image.parse_bmap(text)
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
    with pytest.raises(image.BmapError) as exc:
        image.parse_bmap(mutate(text))
    if message:
        assert str(exc.value) == message
    else:
        assert str(exc.value).startswith('bmap is not valid XML')


def test_bmap_size_must_match_source(tmp_path):
    data = make_image()
    text, dummy = bmap_for(data)
    src = write_image(tmp_path, data + b'\0' * BS)
    with pytest.raises(image.BmapError) as exc:
        run(src, str(tmp_path / 'dest'), None, bmap=image.parse_bmap(text))
    assert str(exc.value) == ('bmap ImageSize is %d but src is %d bytes: the bmap belongs to another image'
                              % (len(data), len(data) + BS))


def test_truncated_source_with_bmap(tmp_path):
    data = make_image()
    text, dummy = bmap_for(data)
    src = write_image(tmp_path, gzip.compress(data[:len(data) // 2]), 'half.gz')
    with pytest.raises(image.SourceError) as exc:
        run(src, str(tmp_path / 'dest'), None, bmap=image.parse_bmap(text))
    assert 'truncated' in str(exc.value)


# -- targets and refusals -------------------------------------------------------------------
def block_target(**kw):
    t = image.Target()
    t.path, t.kind, t.name, t.size = '/dev/sdz', 'block', 'sdz', 8 * 1024 ** 3
    t.devnum, t.devnums = '8:240', set(['8:240', '8:241', '8:242'])
    t.removable, t.usb, t.loop, t.holders = False, True, False, []
    t.mountinfo = '22 1 0:21 / /proc rw - proc proc rw\n30 1 254:0 / / rw - ext4 /dev/vda rw\n'
    t.swaps = 'Filename Type Size Used Priority\n'
    t.sysfs = '/nonexistent'
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def test_usb_disk_is_accepted():
    image.check_target(block_target(), 1024 ** 3, False)


def test_mounted_partition_is_refused():
    t = block_target(mountinfo='40 1 8:242 / /media/rootfs rw - ext4 /dev/sdz2 rw\n')
    with pytest.raises(image.RefusedError) as exc:
        image.check_target(t, 1024, True)
    assert str(exc.value) == ('dest /dev/sdz is in use: /dev/sdz (device 8:242) is mounted on /media/rootfs; '
                              'unmount it first (umount /media/rootfs)')


def test_fixed_disk_and_loop_need_force():
    with pytest.raises(image.RefusedError) as exc:
        image.check_target(block_target(usb=False), 1024, False)
    assert str(exc.value).startswith('dest /dev/sdz is a fixed (non-removable, non-USB) disk: refusing without force=true')
    with pytest.raises(image.RefusedError) as exc:
        image.check_target(block_target(usb=False, loop=True, name='loop3'), 1024, False)
    assert 'is a loop device: refusing without force=true' in str(exc.value)
    image.check_target(block_target(usb=False, loop=True), 1024, True)
    image.check_target(block_target(usb=False, removable=True), 1024, False)


def test_small_device_is_refused_even_with_force():
    with pytest.raises(image.RefusedError) as exc:
        image.check_target(block_target(size=4096), 8192, True)
    assert str(exc.value) == ('dest /dev/sdz holds 4096 bytes (4.0 KiB) but the image is 8192 bytes (8.0 KiB): '
                              'use a larger device')


def test_swap_and_holders_are_refused():
    with pytest.raises(image.RefusedError) as exc:
        image.check_target(block_target(swaps='Filename\n/dev/sdz1 partition 1 0 -2\n'), 1, True)
    assert str(exc.value) == 'dest /dev/sdz is in use as swap (/dev/sdz1); swapoff /dev/sdz1 first'
    with pytest.raises(image.RefusedError) as exc:
        image.check_target(block_target(holders=['dm-0']), 1, True)
    assert str(exc.value) == 'dest /dev/sdz is in use by dm-0 (device-mapper, RAID or LVM); release it first'


def test_root_disk_is_refused(tmp_path):
    # a fake sysfs where / lives on sdz2
    sysfs = tmp_path / 'sys'
    disk = sysfs / 'devices' / 'usb1' / 'block' / 'sdz'
    (disk / 'sdz2').mkdir(parents=True)
    (disk / 'sdz2' / 'partition').write_text('2')
    (sysfs / 'dev' / 'block').mkdir(parents=True)
    os.symlink(str(disk / 'sdz2'), str(sysfs / 'dev' / 'block' / '8:242'))
    t = block_target(sysfs=str(sysfs), mountinfo='30 1 8:242 / / rw - ext4 /dev/sdz2 rw\n', devnums=set(['8:240']))
    with pytest.raises(image.RefusedError) as exc:
        image.check_target(t, 1, True)
    assert str(exc.value).startswith('dest /dev/sdz is the disk this system runs from (it holds /): refusing to overwrite it')


def test_stream_longer_than_device_is_stopped(tmp_path, monkeypatch):
    """gzip: size unknown up front; the write stops at the end of the device."""
    data = make_image()
    src = write_image(tmp_path, gzip.compress(data), 'img.gz')
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(64 * 1024))
    writer = image.ImageWriter(image.Source(src), str(dest), block_size=BS, chunk_size=CHUNK)
    real_plan = writer.plan

    def plan():
        t = real_plan()
        t.kind, t.size = 'block', 64 * 1024   # pretend it is a 64 KiB device
        t.mountinfo, t.swaps, t.holders, t.sysfs, t.usb = '', '', [], '/nonexistent', True
        return t
    monkeypatch.setattr(writer, 'plan', plan)
    monkeypatch.setattr(image, 'drop_cache', lambda fd, is_block: None)
    with pytest.raises(image.RefusedError) as exc:
        writer.run()
    assert str(exc.value).startswith('dest %s holds 65536 bytes (64.0 KiB) but the image is larger: use a larger device' % dest)


def test_partition_and_char_device_are_refused(tmp_path):
    with pytest.raises(image.RefusedError) as exc:
        image.inspect_target('/dev/null')
    assert str(exc.value) == 'dest /dev/null is neither a block device nor a regular file'


def test_bad_sizes():
    with pytest.raises(image.ImageError) as exc:
        image.ImageWriter(None, '/x', block_size=1000)
    assert str(exc.value) == 'block_size must be a power of two of at least 512, not 1000'
    with pytest.raises(image.ImageError) as exc:
        image.ImageWriter(None, '/x', block_size=4096, chunk_size=6144)
    assert str(exc.value) == 'chunk_size must be a multiple of block_size (4096), not 6144'


def test_missing_source(tmp_path):
    with pytest.raises(image.SourceError) as exc:
        image.Source(str(tmp_path / 'no.img'))
    assert str(exc.value) == ('src %s does not exist: give the path of the image file or an http(s) URL' % (tmp_path / 'no.img'))


def test_url_source_streams_and_checks_at_the_end(tmp_path):
    data = make_image()
    packed = gzip.compress(data)
    src = image.Source('https://example.invalid/img.gz', opener=lambda url: io.BytesIO(packed))
    dest = tmp_path / 'dest'
    stats = image.ImageWriter(src, str(dest), sha256=sha(packed), block_size=BS, chunk_size=CHUNK).run()
    assert dest.read_bytes() == data and stats.sha256 == sha(packed)
    src = image.Source('https://example.invalid/img.gz', opener=lambda url: io.BytesIO(packed))
    (tmp_path / 'dest2').write_bytes(b'')
    with pytest.raises(image.ChecksumError) as exc:
        image.ImageWriter(src, str(tmp_path / 'dest2'), sha256='1' * 64, block_size=BS, chunk_size=CHUNK).run()
    assert str(exc.value) == ('sha256 of https://example.invalid/img.gz is %s, expected %s: the download does not match; '
                              'dest %s was written from it (%d bytes) and is now inconsistent: do not boot it; run again '
                              'with the right image (only the blocks that differ are rewritten)'
                              % (sha(packed), '1' * 64, tmp_path / 'dest2',
                                 sum(1 for i in range(0, len(data), BS) if data[i:i + BS].strip(b'\0')) * BS))


def test_bmap_rewrite_of_unchanged_target_reads_no_source(tmp_path):
    data = make_image()
    text, dummy = bmap_for(data)
    bm = image.parse_bmap(text)
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
    real_pwrite = image.ImageWriter._pwrite
    calls = []

    def dying_pwrite(self, fd, piece, offset):
        if len(calls) == 5:
            raise image.ImageError('unplugged')
        calls.append(len(piece))
        real_pwrite(self, fd, piece, offset)
    monkeypatch.setattr(image.ImageWriter, '_pwrite', dying_pwrite)
    with pytest.raises(image.ImageError):
        run(src, str(dest), sha(data))
    monkeypatch.setattr(image.ImageWriter, '_pwrite', real_pwrite)
    done_before = sum(calls)
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
    real_pwrite = image.ImageWriter._pwrite

    def lossy_pwrite(self, fd, piece, offset):
        piece = bytes(piece)
        real_pwrite(self, fd, piece[:-1] + b'\x00' if piece[-1:] != b'\x00' else piece[:-1] + b'\x01', offset)
    monkeypatch.setattr(image.ImageWriter, '_pwrite', lossy_pwrite)
    with pytest.raises(image.VerifyError) as exc:
        run(src, str(dest), sha(blob))
    assert str(exc.value).startswith('read-back of %s differs from what was written at bytes 0-' % dest)


# -- adaptive compare -------------------------------------------------------------------------
def test_blank_target_is_written_without_comparing_after_two_differing_chunks(tmp_path):
    """Chunks 0 and 1 differ everywhere: then 1 chunk blind, compare 3, 2 blind, compare 6, 4 blind,
    compare 11, the rest blind. Every byte is still written once and read back."""
    data = random_image(16)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data
    assert stats.bytes_compared == 5 * CHUNK        # chunks 0, 1, 3, 6, 11
    assert stats.bytes_uncompared == 11 * CHUNK
    assert stats.bytes_written == stats.bytes_verified == 16 * CHUNK
    assert stats.bytes_read == 5 * CHUNK + 16 * CHUNK  # the compares and the read-back


def test_a_probe_that_finds_the_image_goes_back_to_comparing(tmp_path):
    """A target that holds the image from chunk 8 on: the probe at chunk 11 finds it in place, so
    chunks 12-31 are compared and not written; chunks 8-10 were written blind (the price)."""
    data = random_image(32)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(8 * CHUNK) + data[8 * CHUNK:])
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data
    assert stats.bytes_written == 11 * CHUNK          # chunks 0-10
    assert stats.bytes_uncompared == 7 * CHUNK        # chunks 2, 4, 5, 7, 8, 9, 10
    assert stats.bytes_compared == 25 * CHUNK         # 0, 1, 3, 6 and 11-31


def test_blind_stretch_is_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(image, 'BLIND_MAX', 2 * CHUNK)
    data = random_image(16)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    dest.write_bytes(bytes(len(data)))
    stats = run(src, str(dest), sha(data))
    assert dest.read_bytes() == data
    assert stats.bytes_compared == 7 * CHUNK          # 0, 1, 3, 6, 9, 12, 15
    assert stats.bytes_uncompared == 9 * CHUNK


def test_check_mode_and_a_partly_different_target_always_compare(tmp_path):
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


# -- the bmap pre-check -----------------------------------------------------------------------
def test_bmap_precheck_gives_up_after_a_budget_of_mismatches_in_a_row(tmp_path, monkeypatch):
    data = make_image()
    text, ranges = bmap_for(data)
    bm = image.parse_bmap(text)
    size = (ranges[0][1] - ranges[0][0] + 1) * BS
    assert all((last - first + 1) * BS == size for first, last in ranges[:-1])
    monkeypatch.setattr(image, 'PRECHECK_BUDGET', 3 * size)
    src = write_image(tmp_path, data)
    dest = tmp_path / 'dest'
    # blank: the pre-check reads 4 ranges (4 * size > budget), then the compare pass reads all
    dest.write_bytes(bytes(len(data)))
    stats = run(src, str(dest), sha(data), bmap=bm, check_mode=True)
    assert stats.bytes_read == 4 * size + bm.mapped_bytes
    assert stats.bytes_written == bm.mapped_bytes
    # ranges 0, 1, 3 and 4 broken, 2 and the rest in place: 4 mismatches in all but never more
    # than 2 in a row, so the pre-check goes on to the end, and only the 4 broken ranges are
    # compared again (and their 4 broken blocks written and read back)
    broken = bytearray(data)
    for first in [r[0] for r in ranges[:2] + ranges[3:5]]:
        broken[first * BS] ^= 1
    dest.write_bytes(bytes(broken))
    stats = run(src, str(dest), sha(data), bmap=bm)
    assert stats.bytes_written == 4 * BS
    assert stats.source_bytes == 4 * size                             # only the 4 broken ranges
    assert stats.bytes_read == bm.mapped_bytes + 4 * size + 4 * BS   # pre-check, compare, read-back
    assert dest.read_bytes() == data


def test_read_extents_pieces_and_short_reads(tmp_path):
    path = tmp_path / 'f'
    path.write_bytes(bytes(range(256)) * 4)   # 1024 bytes
    fd = os.open(str(path), os.O_RDONLY)
    try:
        got = [(i, pos, len(data)) for i, pos, data in image._read_extents(fd, [(0, 300), (1000, 1100), (512, None)], 256)]
    finally:
        os.close(fd)
    assert got == [(0, 0, 256), (0, 256, 44), (1, 1000, 24), (2, 512, 256), (2, 768, 256)]
