# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""bmaptool's XML block map (format 1.x and 2.x): parsed and checked."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import re
import xml.etree.ElementTree as ET

from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import BmapError


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
