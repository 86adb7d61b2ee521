# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""Read-only access to a disk image's partition table and FAT file systems, in pure Python.

No mounts, no loop devices, no mtools: an image file or a block device is opened read-only and
read with bounded ``pread`` calls. Only what is asked for is read: the partition table, a file
system's boot sector, the FAT sectors a cluster chain passes through (cached), directories and
the first bytes of a file up to a limit the caller gives.

- ``Disk(path)``: the partition table, MBR (with extended partitions) or GPT (a protective MBR
  entry of type 0xee), or none (a file system on the whole disk, a "superfloppy").
- ``FatFS(disk, offset, size)``: FAT12, FAT16 or FAT32 with long file names; ``listdir``,
  ``walk``, ``stat``, ``read``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct

from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import ImageError

SECTOR = 512

# MBR partition types of FAT file systems.
FAT_TYPES = {0x01: 'FAT12', 0x04: 'FAT16', 0x06: 'FAT16', 0x0B: 'FAT32', 0x0C: 'FAT32 (LBA)', 0x0E: 'FAT16 (LBA)',
             0xEF: 'EFI system'}
MBR_TYPE_NAMES = dict(FAT_TYPES)
MBR_TYPE_NAMES.update({0x05: 'extended', 0x0F: 'extended (LBA)', 0x85: 'Linux extended', 0x82: 'Linux swap',
                       0x83: 'Linux', 0x8E: 'Linux LVM', 0xEE: 'GPT protective', 0xDA: 'non-FS data'})
EXTENDED_TYPES = (0x05, 0x0F, 0x85)
GPT_PROTECTIVE = 0xEE

GPT_TYPE_NAMES = {
    'c12a7328-f81f-11d2-ba4b-00a0c93ec93b': 'EFI system',
    'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7': 'Microsoft basic data',
    '0fc63daf-8483-4772-8e79-3d69d8477de4': 'Linux filesystem',
    '0657fd6d-a4ab-43c4-84e5-0933c84b4f4f': 'Linux swap',
    'b921b045-1df0-41c3-af44-4c6f280d3fae': 'Linux root (arm64)',
    '69dad710-2ce4-4e3c-b16c-21a1d49abed3': 'Linux root (arm)',
}
GPT_FAT_TYPES = ('c12a7328-f81f-11d2-ba4b-00a0c93ec93b', 'ebd0a0a2-b9e5-4433-87c0-68b6b72699c7')

MAX_LOGICAL = 64         # logical partitions followed in an extended partition
MAX_GPT_ENTRIES = 256
MAX_DIR_ENTRIES = 65536  # entries read from one directory
MAX_WALK_ENTRIES = 20000
MAX_DEPTH = 16
FAT_CACHE_SECTORS = 4096  # FAT sectors kept (2 MiB of 512-byte sectors)
FAT_SCAN_BYTES = 1024 * 1024  # FAT read at once to count the clusters in use


class FatError(ImageError):
    """The image is not what it claims to be: no partition table, a broken file system."""


def _u16(data, off):
    return struct.unpack_from('<H', data, off)[0]


def _u32(data, off):
    return struct.unpack_from('<I', data, off)[0]


def _guid(raw):
    a, b, c = struct.unpack_from('<IHH', raw, 0)
    return '%08x-%04x-%04x-%s-%s' % (a, b, c, bytes(raw[8:10]).hex(), bytes(raw[10:16]).hex())


class Disk(object):
    """An image file or block device, opened read-only, with its partition table."""

    def __init__(self, path):
        self.path = path
        try:
            self.fd = os.open(path, os.O_RDONLY)
        except (IOError, OSError) as exc:
            raise FatError('cannot open %s: %s' % (path, exc.strerror or exc))
        try:
            self.size = os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.size = os.fstat(self.fd).st_size
        self.bytes_read = 0
        self.table = None        # 'mbr', 'gpt' or None
        self.partitions = []
        self.disk_id = None
        self.notes = []
        try:
            self._read_table()
        except Exception:
            self.close()
            raise

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def pread(self, offset, length):
        """Exactly length bytes at offset, or FatError (a truncated image)."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise FatError('%s: a read at byte %d (%d bytes) goes past the end of the image (%d bytes): the image is truncated or not a disk image'
                           % (self.path, offset, length, self.size))
        data = b''
        while len(data) < length:
            chunk = os.pread(self.fd, length - len(data), offset + len(data))
            if not chunk:
                raise FatError('%s: short read at byte %d' % (self.path, offset + len(data)))
            data += chunk
        self.bytes_read += len(data)
        return data

    # --- partition tables -------------------------------------------------------------
    def _read_table(self):
        if self.size < SECTOR:
            raise FatError('%s: %d bytes is too small for a disk image' % (self.path, self.size))
        mbr = self.pread(0, SECTOR)
        if mbr[510:512] != b'\x55\xaa':
            raise FatError('%s: no partition table (no boot signature 55 aa at byte 510): not a raw disk image'
                           ' (a compressed image must be decompressed first)' % self.path)
        if looks_like_fat_boot_sector(mbr):
            self.table = None
            self.partitions = [self._partition(1, 0, self.size // SECTOR, None, 'whole disk')]
            self.notes.append('no partition table: a file system fills the whole disk')
            return
        entries = []
        for i in range(4):
            e = bytearray(mbr[446 + 16 * i:446 + 16 * (i + 1)])
            ptype, start, count = e[4], _u32(e, 8), _u32(e, 12)
            if ptype == 0 or count == 0:
                continue
            entries.append((i + 1, ptype, start, count, bool(e[0] & 0x80)))
        self.disk_id = '%08x' % _u32(mbr, 440)
        if any(e[1] == GPT_PROTECTIVE for e in entries) and self._read_gpt():
            self.mbr_entries = [self._mbr_partition(*e) for e in entries]
            return
        self.table = 'mbr'
        for number, ptype, start, count, active in entries:
            part = self._mbr_partition(number, ptype, start, count, active)
            self.partitions.append(part)
            if ptype in EXTENDED_TYPES:
                self._read_logical(start)
        self.mbr_entries = list(self.partitions)

    def _mbr_partition(self, number, ptype, start, count, active):
        part = self._partition(number, start, count, '0x%02x' % ptype, MBR_TYPE_NAMES.get(ptype, 'unknown'))
        part['bootable'] = active
        part['fat_type'] = ptype in FAT_TYPES
        return part

    def _partition(self, number, start, count, ptype, type_name):
        return {'number': number, 'start': start * SECTOR, 'size': count * SECTOR, 'type': ptype, 'type_name': type_name,
                'fat_type': ptype is None}

    def _read_logical(self, ext_start):
        ebr_lba, number = ext_start, 5
        seen = set()
        while number < 5 + MAX_LOGICAL and ebr_lba not in seen:
            seen.add(ebr_lba)
            ebr = self.pread(ebr_lba * SECTOR, SECTOR)
            if ebr[510:512] != b'\x55\xaa':
                self.notes.append('extended partition: no boot signature at sector %d' % ebr_lba)
                return
            e1, e2 = bytearray(ebr[446:462]), bytearray(ebr[462:478])
            if e1[4] and _u32(e1, 12):
                self.partitions.append(self._mbr_partition(number, e1[4], ebr_lba + _u32(e1, 8), _u32(e1, 12), bool(e1[0] & 0x80)))
                number += 1
            if not e2[4] or not _u32(e2, 12):
                return
            ebr_lba = ext_start + _u32(e2, 8)

    def _read_gpt(self):
        header = self.pread(SECTOR, SECTOR)
        if header[0:8] != b'EFI PART':
            self.notes.append('a protective MBR entry (0xee) but no GPT header at sector 1')
            return False
        entries_lba = struct.unpack_from('<Q', header, 72)[0]
        count = min(_u32(header, 80), MAX_GPT_ENTRIES)
        entry_size = _u32(header, 84)
        if entry_size < 128 or entry_size > 4096:
            raise FatError('%s: GPT header gives partition entries of %d bytes' % (self.path, entry_size))
        self.table = 'gpt'
        self.disk_id = _guid(header[56:72])
        raw = self.pread(entries_lba * SECTOR, count * entry_size)
        for i in range(count):
            e = raw[i * entry_size:(i + 1) * entry_size]
            type_guid = _guid(e[0:16])
            if type_guid == '00000000-0000-0000-0000-000000000000':
                continue
            first, last = struct.unpack_from('<QQ', e, 32)
            name = e[56:128].decode('utf-16-le', 'replace').split('\x00', 1)[0]
            part = self._partition(i + 1, first, last - first + 1, type_guid, GPT_TYPE_NAMES.get(type_guid, 'unknown'))
            part['name'] = name
            part['fat_type'] = type_guid in GPT_FAT_TYPES
            self.partitions.append(part)
        return True

    def describe(self):
        return [dict((k, v) for k, v in p.items()) for p in self.partitions]


def looks_like_fat_boot_sector(sector):
    """Whether a 512-byte sector is a FAT boot sector with a plausible BPB."""
    data = bytearray(sector)
    if data[0] not in (0xEB, 0xE9):
        return False
    bps, spc, reserved, fats = _u16(data, 11), data[13], _u16(data, 14), data[16]
    if bps not in (512, 1024, 2048, 4096) or spc == 0 or spc & (spc - 1) or reserved == 0 or fats not in (1, 2):
        return False
    return data[54:57] == b'FAT' or data[82:87] == b'FAT32' or data[82:85] == b'FAT'


class FatFS(object):
    """One FAT file system at offset (bytes) in a Disk, read-only."""

    def __init__(self, disk, offset, size=None):
        self.disk = disk
        self.offset = offset
        bs = bytearray(disk.pread(offset, SECTOR))
        if bs[510:512] != b'\x55\xaa' or not looks_like_fat_boot_sector(bs):
            raise FatError('%s: no FAT file system at byte %d (no FAT boot sector)' % (disk.path, offset))
        self.bytes_per_sector = _u16(bs, 11)
        self.sectors_per_cluster = bs[13]
        self.reserved = _u16(bs, 14)
        self.num_fats = bs[16]
        self.root_entries = _u16(bs, 17)
        total = _u16(bs, 19) or _u32(bs, 32)
        fat_size = _u16(bs, 22) or _u32(bs, 36)
        if not total or not fat_size:
            raise FatError('%s: the FAT boot sector at byte %d gives no size' % (disk.path, offset))
        self.cluster_size = self.bytes_per_sector * self.sectors_per_cluster
        root_dir_sectors = (self.root_entries * 32 + self.bytes_per_sector - 1) // self.bytes_per_sector
        self.fat_start = offset + self.reserved * self.bytes_per_sector
        self.fat_bytes = fat_size * self.bytes_per_sector
        self.root_start = self.fat_start + self.num_fats * self.fat_bytes
        self.data_start = self.root_start + root_dir_sectors * self.bytes_per_sector
        data_sectors = total - (self.reserved + self.num_fats * fat_size + root_dir_sectors)
        self.clusters = data_sectors // self.sectors_per_cluster
        if self.clusters < 4085:
            self.fat_type = 'FAT12'
        elif self.clusters < 65525:
            self.fat_type = 'FAT16'
        else:
            self.fat_type = 'FAT32'
        self.root_cluster = _u32(bs, 44) if self.fat_type == 'FAT32' else None
        label_at = 71 if self.fat_type == 'FAT32' else 43
        self.label = bytes(bs[label_at:label_at + 11]).decode('ascii', 'replace').strip() or None
        self.volume_id = '%08x' % _u32(bs, label_at - 4)
        self.size = total * self.bytes_per_sector
        if size is not None and self.size > size:
            disk.notes.append('the FAT file system at byte %d is larger (%d bytes) than its partition (%d bytes)' % (offset, self.size, size))
        self._fat_cache = {}
        self._eoc = {'FAT12': 0xFF8, 'FAT16': 0xFFF8, 'FAT32': 0x0FFFFFF8}[self.fat_type]

    # --- the FAT --------------------------------------------------------------------
    def _fat_bytes(self, byte_offset, length):
        sector_size = self.bytes_per_sector
        out = b''
        pos = byte_offset
        while len(out) < length:
            index = pos // sector_size
            sector = self._fat_cache.get(index)
            if sector is None:
                if len(self._fat_cache) >= FAT_CACHE_SECTORS:
                    self._fat_cache.clear()
                sector = self.disk.pread(self.fat_start + index * sector_size, sector_size)
                self._fat_cache[index] = sector
            start = pos - index * sector_size
            piece = sector[start:start + length - len(out)]
            out += piece
            pos += len(piece)
        return out

    def next_cluster(self, cluster):
        if self.fat_type == 'FAT12':
            value = _u16(self._fat_bytes(cluster + cluster // 2, 2), 0)
            return value >> 4 if cluster & 1 else value & 0xFFF
        if self.fat_type == 'FAT16':
            return _u16(self._fat_bytes(cluster * 2, 2), 0)
        return _u32(self._fat_bytes(cluster * 4, 4), 0) & 0x0FFFFFFF

    def chain(self, first):
        """The clusters of a file from its first cluster; stops at the end mark, a free or bad
        cluster, or a loop (never more than the file system's clusters)."""
        cluster, steps = first, 0
        while 2 <= cluster < self.clusters + 2 and steps <= self.clusters:
            yield cluster
            steps += 1
            cluster = self.next_cluster(cluster)
            if cluster >= self._eoc:
                return

    def used_clusters(self):
        """Data clusters whose FAT entry is not 0 (free): those of files and directories, and bad
        ones. The whole first FAT is read, in bounded pieces (512 KiB for a 512 MiB FAT32 of
        4 KiB clusters), past the cache."""
        entries = self.clusters + 2  # entries 0 and 1 are reserved, the first cluster is 2
        end = {'FAT12': (entries * 3 + 1) // 2, 'FAT16': entries * 2, 'FAT32': entries * 4}[self.fat_type]
        if end > self.fat_bytes:
            raise FatError('%s: the FAT at byte %d holds %d bytes, too few for %d clusters: the file system is damaged'
                           % (self.disk.path, self.fat_start, self.fat_bytes, self.clusters))
        if self.fat_type == 'FAT12':  # at most 6 KiB: two entries in every three bytes
            data = bytearray(self.disk.pread(self.fat_start, end))
            return sum(1 for c in range(2, entries) if (_u16(data, c + c // 2) >> (4 if c & 1 else 0)) & 0xFFF)
        width, code, mask = (2, 'H', 0xFFFF) if self.fat_type == 'FAT16' else (4, 'I', 0x0FFFFFFF)  # FAT32's top 4 bits are reserved
        used, pos = 0, 2 * width
        while pos < end:
            n = min(FAT_SCAN_BYTES, end - pos)
            values = struct.unpack('<%d%s' % (n // width, code), self.disk.pread(self.fat_start + pos, n))
            used += sum(1 for v in values if v & mask)
            pos += n
        return used

    def used_bytes(self):
        """Bytes of the file system that are not free: the reserved sectors, the FATs and the
        FAT12/16 root directory (all of the file system before its first cluster), and the
        clusters in use (used_clusters). The free clusters, and the sectors after the last whole
        cluster, are the rest."""
        return self.data_start - self.offset + self.used_clusters() * self.cluster_size

    def _cluster_offset(self, cluster):
        return self.data_start + (cluster - 2) * self.cluster_size

    # --- directories ----------------------------------------------------------------
    def _dir_chunks(self, cluster):
        if cluster is None:  # FAT12/16 root directory
            size = self.root_entries * 32
            pos = 0
            while pos < size:
                n = min(64 * 1024, size - pos)
                yield self.disk.pread(self.root_start + pos, n)
                pos += n
            return
        for c in self.chain(cluster):
            yield self.disk.pread(self._cluster_offset(c), self.cluster_size)

    def _entries(self, cluster):
        """(name, attributes, first cluster, size) of one directory, long names joined."""
        lfn, count = {}, 0
        for chunk in self._dir_chunks(cluster):
            for pos in range(0, len(chunk) - 31, 32):
                e = bytearray(chunk[pos:pos + 32])
                count += 1
                if count > MAX_DIR_ENTRIES or e[0] == 0x00:
                    return
                if e[0] == 0xE5:
                    lfn = {}
                    continue
                attr = e[11]
                if attr & 0x3F == 0x0F:
                    seq = e[0] & 0x1F
                    if e[0] & 0x40:
                        lfn = {'checksum': e[13]}
                    lfn[seq] = bytes(e[1:11] + e[14:26] + e[28:32])
                    continue
                short = bytes(e[0:11])
                if e[0] == 0x05:
                    short = b'\xe5' + short[1:]
                name = None
                if lfn and lfn.get('checksum') == _lfn_checksum(short):
                    raw = b''.join(lfn[k] for k in sorted(k for k in lfn if k != 'checksum'))
                    name = raw.decode('utf-16-le', 'replace').split('\x00', 1)[0].rstrip('\uffff')
                lfn = {}
                if attr & 0x08:  # volume label
                    continue
                if name is None:
                    name = _short_name(short, e[12])
                if name in ('.', '..'):
                    continue
                first = _u16(e, 26) | ((_u16(e, 20) << 16) if self.fat_type == 'FAT32' else 0)
                yield name, attr, first, _u32(e, 28)

    def listdir(self, path=''):
        """The entries of a directory: a list of dicts with name, dir, size."""
        cluster = self._dir_cluster(path)
        return [{'name': n, 'dir': bool(a & 0x10), 'size': 0 if a & 0x10 else s} for n, a, dummy, s in self._entries(cluster)]

    def walk(self, path='', limit=MAX_WALK_ENTRIES):
        """Every file and directory under path as (relative path, is_dir, size), directories first
        as they are met; at most limit entries, MAX_DEPTH levels."""
        out = []
        todo = [(path.strip('/'), self._dir_cluster(path), 0)]
        while todo and len(out) < limit:
            base, cluster, depth = todo.pop(0)
            for name, attr, first, size in self._entries(cluster):
                rel = '%s/%s' % (base, name) if base else name
                is_dir = bool(attr & 0x10)
                out.append((rel, is_dir, 0 if is_dir else size))
                if is_dir and depth + 1 < MAX_DEPTH and first:
                    todo.append((rel, first, depth + 1))
                if len(out) >= limit:
                    break
        return out

    def _lookup(self, path):
        """(attributes, first cluster, size) of a path, case-insensitive as FAT is; None if absent."""
        parts = [p for p in path.replace('\\', '/').split('/') if p and p != '.']
        cluster, attr, size = self.root_cluster, 0x10, 0
        if not parts:
            return attr, cluster, size
        for i, part in enumerate(parts):
            if i and not attr & 0x10:
                return None
            wanted = part.lower()
            for name, a, first, s in self._entries(cluster):
                if name.lower() == wanted:
                    attr, cluster, size = a, first, s
                    break
            else:
                return None
        return attr, cluster, size

    def _dir_cluster(self, path):
        found = self._lookup(path)
        if found is None or not found[0] & 0x10:
            raise FatError('%s: no directory %s in the FAT file system' % (self.disk.path, path or '/'))
        if not path.strip('/'):
            return self.root_cluster
        return found[1] or self.root_cluster

    def stat(self, path):
        """None, or {'dir': bool, 'size': int} of a file or directory."""
        found = self._lookup(path)
        if found is None:
            return None
        return {'dir': bool(found[0] & 0x10), 'size': 0 if found[0] & 0x10 else found[2]}

    def exists(self, path):
        found = self._lookup(path)
        return found is not None and not found[0] & 0x10

    def read(self, path, limit):
        """The first min(size, limit) bytes of a file, and whether that is all of it; FatError if absent."""
        found = self._lookup(path)
        if found is None or found[0] & 0x10:
            raise FatError('%s: no file %s in the FAT file system' % (self.disk.path, path))
        first, size = found[1], found[2]
        want = min(size, limit)
        out = []
        got = 0
        if want:
            for c in self.chain(first):
                n = min(self.cluster_size, want - got)
                out.append(self.disk.pread(self._cluster_offset(c), n))
                got += n
                if got >= want:
                    break
        data = b''.join(out)
        if len(data) < want:
            raise FatError('%s: %s is %d bytes long but its cluster chain ends after %d' % (self.disk.path, path, size, len(data)))
        return data, size <= limit


def _lfn_checksum(short):
    total = 0
    for c in bytearray(short):
        total = (((total & 1) << 7) + (total >> 1) + c) & 0xFF
    return total


def _short_name(short, case_bits):
    base = short[0:8].decode('cp437', 'replace').rstrip()
    ext = short[8:11].decode('cp437', 'replace').rstrip()
    if case_bits & 0x08:
        base = base.lower()
    if case_bits & 0x10:
        ext = ext.lower()
    return '%s.%s' % (base, ext) if ext else base
