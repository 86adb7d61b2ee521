# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The superblock of an ext2, ext3 or ext4 file system in a disk image, read without mounting it.

``read_superblock(disk, offset)`` reads the 1024 bytes at byte 1024 of the file system (one
bounded read through ``fat.Disk``) and returns what it says: the file system's kind, its block
size, its blocks and free blocks, and the bytes in use. The layout is that of the kernel's
Documentation/filesystems/ext4/super.rst (``struct ext4_super_block``): offsets below are from
its table.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import struct

from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import ImageError

SUPERBLOCK_OFFSET = 1024   # from the start of the file system, whatever its block size
SUPERBLOCK_SIZE = 1024
MAGIC = 0xEF53             # s_magic at 0x38

# s_feature_compat, s_feature_incompat, s_feature_ro_compat bits (super.rst, super_compat_ ...)
COMPAT_HAS_JOURNAL = 0x4
INCOMPAT_FILETYPE = 0x2
INCOMPAT_RECOVER = 0x4
INCOMPAT_META_BG = 0x10
INCOMPAT_64BIT = 0x80      # s_*_count_hi words are valid
RO_COMPAT_EXT2 = 0x1 | 0x2 | 0x4  # SPARSE_SUPER, LARGE_FILE, BTREE_DIR: what ext2 and ext3 know
INCOMPAT_EXT2 = INCOMPAT_FILETYPE | INCOMPAT_META_BG
INCOMPAT_EXT3 = INCOMPAT_EXT2 | INCOMPAT_RECOVER


class ExtError(ImageError):
    """An ext2/3/4 superblock whose numbers cannot be right."""


def looks_like_ext(data):
    """Whether the 1024 bytes of a superblock carry the ext2/3/4 magic."""
    return len(data) >= 0x3A and struct.unpack_from('<H', data, 0x38)[0] == MAGIC


def _kind(compat, incompat, ro_compat):
    """ext2, ext3 or ext4, as blkid tells them: a feature only ext4 knows makes it ext4."""
    if ro_compat & ~RO_COMPAT_EXT2:
        return 'ext4'
    if compat & COMPAT_HAS_JOURNAL:
        return 'ext3' if not incompat & ~INCOMPAT_EXT3 else 'ext4'
    return 'ext2' if not incompat & ~INCOMPAT_EXT2 else 'ext4'


def parse_superblock(data, where='the file system'):
    """The superblock's facts as a dict, from its 1024 bytes; ExtError if they do not add up."""
    if not looks_like_ext(data):
        raise ExtError('%s: no ext2/3/4 superblock (no magic 0xEF53 at byte 0x38 of the superblock)' % where)
    # s_blocks_count_lo, s_r_blocks_count_lo, s_free_blocks_count_lo
    blocks_lo, dummy, free_lo = struct.unpack_from('<III', data, 0x4)
    log_block_size = struct.unpack_from('<I', data, 0x18)[0]
    compat, incompat, ro_compat = struct.unpack_from('<III', data, 0x5C)
    blocks, free = blocks_lo, free_lo
    if incompat & INCOMPAT_64BIT:
        blocks_hi, dummy, free_hi = struct.unpack_from('<III', data, 0x150)  # the same three, high words
        blocks |= blocks_hi << 32
        free |= free_hi << 32
    # Block size is 2 ^ (10 + s_log_block_size): 1 KiB to 64 KiB are the sizes that exist.
    if log_block_size > 6:
        raise ExtError('%s: the superblock gives a block size of 2^%d bytes' % (where, 10 + log_block_size))
    block_size = 1024 << log_block_size
    if not blocks or free > blocks:
        raise ExtError('%s: the superblock gives %d free blocks of %d' % (where, free, blocks))
    return {
        'filesystem': _kind(compat, incompat, ro_compat),
        'block_size': block_size,
        'blocks': blocks,
        'free_blocks': free,
        # s_r_blocks_count (0x8) is held back for root but still free: not counted as used.
        'used_bytes': (blocks - free) * block_size,
        'size': blocks * block_size,
        'needs_recovery': bool(incompat & INCOMPAT_RECOVER),
    }


def read_superblock(disk, offset):
    """parse_superblock of the file system at byte offset of a fat.Disk (or anything with pread)."""
    data = disk.pread(offset + SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE)
    return parse_superblock(data, '%s: the file system at byte %d' % (disk.path, offset))
