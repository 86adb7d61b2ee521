# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The bytes each partition's file system uses (image_info's used_bytes), on real file systems:
ext2/3/4 made by mke2fs -d (with and without 64bit, 1 KiB and 4 KiB blocks) against what
dumpe2fs -h, e2fsck -fn and blkid say, and FAT12/16/32 made by mkfs.vfat and mcopy against what
fsck.fat -n -v says; never against the reader's own arithmetic."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import struct
import subprocess

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils._image.ext4 import ExtError, parse_superblock
from ansible_collections.turingpi.cluster.plugins.module_utils._image.fat import Disk, FatFS
from ansible_collections.turingpi.cluster.plugins.module_utils._image.firmware import inspect_image
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils.fat_images import (
    MiB, _tool, make_disk, make_ext, make_fat, raspios_arm64,
)

# Known content: files of several clusters and blocks, a subdirectory, an empty file.
FILES = {
    'etc/hostname': b'node1\n',
    'usr/bin/tool': bytes(bytearray(range(256))) * 1200,   # 300 KiB
    'var/lib/big.bin': os.urandom(1024 * 1024 + 5),
    'empty': b'',
}


def run(*args):
    proc = subprocess.run([_tool(args[0])] + list(args[1:]), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, check=False)
    return proc.returncode, proc.stdout


def dumpe2fs_used(path):
    """(used bytes, block size, features) from the superblock as dumpe2fs -h prints it."""
    rc, out = run('dumpe2fs', '-h', path)
    assert rc == 0, out
    fields = dict(line.split(':', 1) for line in out.splitlines() if ':' in line)
    blocks, free, size = (int(fields[k]) for k in ('Block count', 'Free blocks', 'Block size'))
    return (blocks - free) * size, size, fields['Filesystem features'].split()


def e2fsck_used_blocks(path):
    """The blocks in use as e2fsck counts them from the block bitmaps (the superblock's count is
    checked against them in pass 5: rc 0 means they agree)."""
    rc, out = run('e2fsck', '-fn', path)
    assert rc == 0, out
    return int(re.search(r' (\d+)/\d+ blocks', out).group(1))


def fsck_fat_used(path):
    """The bytes before the data area plus the clusters in use, as fsck.fat -n -v reports them."""
    rc, out = run('fsck.fat', '-n', '-v', path)
    assert rc == 0, out
    data_start = int(re.search(r'Data area starts at byte (\d+)', out).group(1))
    cluster = int(re.search(r'(\d+) bytes per cluster', out).group(1))
    used = int(re.search(r'files, (\d+)/\d+ clusters', out).group(1))
    return data_start + used * cluster


def blkid_type(path):
    rc, out = run('blkid', '-p', '-o', 'value', '-s', 'TYPE', path)
    assert rc == 0, out
    return out.strip()


# --- ext2/3/4 ------------------------------------------------------------------------------

@pytest.mark.parametrize('kind,block_size,features,has_64bit', [
    ('ext4', 4096, ('64bit',), True),
    ('ext4', 1024, ('^64bit',), False),
    ('ext3', 1024, (), False),
    ('ext2', 4096, (), False),
])
def test_ext_used_bytes_as_dumpe2fs_and_e2fsck_count_them(tmp_path, kind, block_size, features, has_64bit):
    root = make_ext(str(tmp_path / 'root.ext'), FILES, kind, size_mib=16, block_size=block_size, features=features)
    used, size, dumped_features = dumpe2fs_used(root)
    assert size == block_size and ('64bit' in dumped_features) is has_64bit
    assert used == e2fsck_used_blocks(root) * block_size
    assert used > sum(len(d) for d in FILES.values())  # the files are in it

    info = inspect_image(make_disk(tmp_path, raspios_arm64(), root=root))
    part = info['partitions'][1]
    assert (part['type'], part['filesystem'], part['used_bytes']) == ('0x83', blkid_type(root), used)
    assert part['filesystem'] == kind and info['notes'] == []


def test_ext_used_bytes_grow_with_the_files(tmp_path):
    small = make_ext(str(tmp_path / 'small.ext'), {'a': b'x'}, features=('64bit',))
    large = make_ext(str(tmp_path / 'large.ext'), {'a': b'x', 'b': os.urandom(3 * MiB)}, features=('64bit',))
    used = [inspect_image(make_disk(tmp_path, raspios_arm64(), root=r, name=os.path.basename(r) + '.img'))['partitions'][1]['used_bytes']
            for r in (small, large)]
    assert used == [dumpe2fs_used(small)[0], dumpe2fs_used(large)[0]]
    assert 3 * MiB <= used[1] - used[0] < 3 * MiB + 64 * 1024  # the file's blocks and its extent tree


def _superblock(path):
    with open(path, 'rb') as f:
        f.seek(1024)
        return bytearray(f.read(1024))


def test_ext_high_words_count_only_with_64bit(tmp_path):
    """super.rst: s_blocks_count_hi (0x150) and s_free_blocks_count_hi (0x158) hold the high 32
    bits when INCOMPAT_64BIT is set. No test file system has 2^32 blocks, so the high words are
    set here in the superblock of real ones."""
    sb64 = _superblock(make_ext(str(tmp_path / 'a.ext'), {}, features=('64bit',)))
    sb32 = _superblock(make_ext(str(tmp_path / 'b.ext'), {}, features=('^64bit',)))
    base64, base32 = parse_superblock(bytes(sb64))['used_bytes'], parse_superblock(bytes(sb32))['used_bytes']
    assert base64 == dumpe2fs_used(str(tmp_path / 'a.ext'))[0] and base32 == dumpe2fs_used(str(tmp_path / 'b.ext'))[0]
    for sb in (sb64, sb32):
        struct.pack_into('<I', sb, 0x150, 1)
    assert parse_superblock(bytes(sb64))['used_bytes'] == base64 + (1 << 32) * 4096
    assert parse_superblock(bytes(sb32))['used_bytes'] == base32  # not a 64bit file system: the words are not read
    struct.pack_into('<I', sb64, 0x158, 1)  # as many more free blocks
    assert parse_superblock(bytes(sb64))['used_bytes'] == base64


def test_ext_superblock_that_cannot_be_right(tmp_path):
    root = make_ext(str(tmp_path / 'root.ext'), FILES)
    path = make_disk(tmp_path, raspios_arm64(), root=root)
    start = inspect_image(path)['partitions'][1]['start']
    with open(path, 'r+b') as f:
        f.seek(start + 1024 + 0x18)
        f.write(struct.pack('<I', 9))   # s_log_block_size: 512 KiB blocks
    info = inspect_image(path)
    assert (info['partitions'][1]['filesystem'], info['partitions'][1]['used_bytes']) == (None, None)
    assert info['notes'] == ['partition 2: used_bytes unknown: %s: partition 2: the superblock gives a block size of 2^19 bytes' % path]
    with pytest.raises(ExtError) as exc:
        parse_superblock(b'\x00' * 1024)
    assert str(exc.value) == 'the file system: no ext2/3/4 superblock (no magic 0xEF53 at byte 0x38 of the superblock)'


def test_ext_that_needs_journal_recovery(tmp_path):
    root = make_ext(str(tmp_path / 'root.ext'), FILES)
    used = dumpe2fs_used(root)[0]
    sb = _superblock(root)
    struct.pack_into('<I', sb, 0x60, struct.unpack_from('<I', sb, 0x60)[0] | 0x4)  # INCOMPAT_RECOVER
    path = make_disk(tmp_path, raspios_arm64(), root=root)
    start = inspect_image(path)['partitions'][1]['start']
    with open(path, 'r+b') as f:
        f.seek(start + 1024)
        f.write(sb)
    info = inspect_image(path)
    assert info['partitions'][1]['used_bytes'] == used
    assert info['notes'] == ['partition 2: its ext4 journal needs recovery (it was not unmounted cleanly): used_bytes is what'
                             ' its superblock says before the journal is replayed']


# --- FAT12/16/32 -------------------------------------------------------------------------------

@pytest.mark.parametrize('fat,size_mib', [(12, 4), (16, 16), (32, 40)])
def test_fat_used_bytes_as_fsck_fat_counts_them(tmp_path, fat, size_mib):
    path = make_fat(str(tmp_path / 'fs.img'), FILES if fat != 12 else dict((k, v[:200000]) for k, v in FILES.items()), fat, size_mib)
    expected = fsck_fat_used(path)
    with Disk(path) as disk:
        fs = FatFS(disk, 0)
        assert fs.fat_type == 'FAT%d' % fat
        assert fs.used_bytes() == expected
    info = inspect_image(path)  # a file system on the whole disk
    assert info['partitions'][0]['used_bytes'] == info['firmware_partition']['used_bytes'] == expected
    assert info['partitions'][0]['filesystem'] == 'FAT%d' % fat


def test_fat_empty_has_only_its_metadata_and_root_in_use(tmp_path):
    for fat, size_mib in ((16, 16), (32, 40)):
        path = make_fat(str(tmp_path / ('empty%d.img' % fat)), {}, fat, size_mib)
        rc, out = run('fsck.fat', '-n', '-v', path)
        in_use = int(re.search(r'files, (\d+)/\d+ clusters', out).group(1))
        assert in_use == (1 if fat == 32 else 0)  # FAT32's root directory is a cluster chain
        assert inspect_image(path)['partitions'][0]['used_bytes'] == fsck_fat_used(path)


def test_image_partitions_and_firmware(tmp_path):
    root = make_ext(str(tmp_path / 'root.ext'), FILES, features=('64bit',))
    path = make_disk(tmp_path, raspios_arm64(), root=root)
    boot = str(tmp_path / 'boot.fat')
    with open(path, 'rb') as f, open(boot, 'wb') as out:  # the firmware partition, where make_disk puts it
        f.seek(4 * MiB)
        out.write(f.read(40 * MiB))
    info = inspect_image(path)
    assert [(p['number'], p['filesystem'], p['used_bytes']) for p in info['partitions']] == [
        (1, 'FAT32', fsck_fat_used(boot)), (2, 'ext4', dumpe2fs_used(root)[0])]
    assert info['firmware_partition']['used_bytes'] == fsck_fat_used(boot)
    assert info['notes'] == []
    gpt = inspect_image(make_disk(tmp_path, raspios_arm64(), table='gpt', root=root, name='gpt.img'))
    assert [(p['filesystem'], p['used_bytes']) for p in gpt['partitions']] == [('FAT32', fsck_fat_used(boot)), ('ext4', dumpe2fs_used(root)[0])]


def test_partitions_without_a_file_system_it_reads(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_arm64(), table='extended'))
    assert [(p['number'], p['type'], p['filesystem'], p['used_bytes']) for p in info['partitions']] == [
        (1, '0x0c', 'FAT32', info['firmware_partition']['used_bytes']), (2, '0x0f', None, None), (5, '0x83', None, None),
        (6, '0x82', None, None)]
    assert info['notes'] == []


def test_truncated_image_says_what_it_could_not_read(tmp_path):
    path = make_disk(tmp_path, raspios_arm64())
    with open(path, 'r+b') as f:
        f.truncate(4 * MiB + 512)
    info = inspect_image(path)
    assert [(p['filesystem'], p['used_bytes']) for p in info['partitions']] == [(None, None), (None, None)]
    assert [n.split(': ', 2)[:2] for n in info['notes']] == [['partition 1', 'used_bytes unknown'], ['partition 2', 'used_bytes unknown']]
    assert all('goes past the end of the image (%d bytes)' % (4 * MiB + 512) in n for n in info['notes'])
