# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""Small structured data in the board's user memory, with a header and a checksum.

Areas (docs/hardware.md, "Cluster Management Bus"): 64 B EEPROM in the DS4520 at 0x57
(0x00-0x3F, 8-byte pages, 10-20 ms write cycle) and 64 B battery-backed SRAM in the MCP7940N at
0x6F (0x20-0x5F).

Record layout, 64 bytes:
  0-1   magic 'TP'
  2     format version (1)
  3     payload length N (0-58)
  4..   payload: compact JSON, UTF-8
  4+N   CRC-16/CCITT-FALSE of bytes 0 .. 3+N, big-endian
  rest  the area's erased value (0xFF EEPROM, 0x00 SRAM)

Write order (``plan_writes``): a page write is the unit the chips complete or not, so a change
of one page is written as it is. A change of several pages first marks the header page as being
written (magic, then the version byte with WRITING set), then writes the other pages, and the
header page with the final header last. Interrupted before the first write, the old record is
intact; after it, the header says "being written" and the record reads as torn until a later
write completes (the next run with the same data writes what is missing). The CRC also catches
a page torn by a power loss inside its own write cycle.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils._bus import VerifyError

MAGIC = b'TP'
VERSION = 1
WRITING = 0x80  # set in the version byte while a record of several pages is being written
HEADER = 4
CRC_SIZE = 2


def crc16(data):
    crc = 0xFFFF
    for byte in bytearray(data):
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def area_info(area):
    addr, start, size, page, erased = board.MEMORY_AREAS[area]
    return addr, start, size, page, erased


def max_payload(area):
    return area_info(area)[2] - HEADER - CRC_SIZE


def to_payload(data):
    """The compact JSON bytes stored for ``data``."""
    return json.dumps(data, sort_keys=True, separators=(',', ':'), ensure_ascii=False).encode('utf-8')


def encode(area, data):
    """The area's full image holding ``data``; ValueError when it does not fit."""
    size, erased = area_info(area)[2], area_info(area)[4]
    payload = to_payload(data)
    if len(payload) > max_payload(area):
        raise ValueError('the data takes %d bytes as JSON but the %s holds at most %d: shorten keys or values'
                         % (len(payload), area, max_payload(area)))
    body = MAGIC + bytearray([VERSION, len(payload)]) + payload
    crc = crc16(body)
    image = bytearray(body) + bytearray([crc >> 8, crc & 0xFF])
    return bytearray(image) + bytearray([erased] * (size - len(image)))


def erased_image(area):
    size, erased = area_info(area)[2], area_info(area)[4]
    return bytearray([erased] * size)


def decode(area, image):
    """{'state': 'empty' | 'valid' | 'corrupt' | 'foreign', 'data': ..., 'reason': ...}"""
    image = bytearray(image)
    if image == erased_image(area) or image == bytearray(len(image)) or image == bytearray([0xFF] * len(image)):
        return dict(state='empty', data=None)
    if bytes(image[:2]) != MAGIC:
        return dict(state='foreign', data=None, reason='no turingpi.cluster header: written by something else')
    if image[2] == VERSION | WRITING:
        return dict(state='torn', data=None, reason='a write of this record was interrupted (its header still '
                                                    'says it is being written): write it again with turingpi.cluster.user_memory')
    length = image[3]
    if image[2] != VERSION or length > max_payload(area):
        return dict(state='corrupt', data=None, reason='header names format %d, length %d' % (image[2], length))
    end = HEADER + length
    stored = (image[end] << 8) | image[end + 1]
    if crc16(image[:end]) != stored:
        return dict(state='corrupt', data=None, reason='checksum mismatch: a write was interrupted or the memory decayed')
    try:
        data = json.loads(bytes(image[HEADER:end]).decode('utf-8'))
    except ValueError as exc:
        return dict(state='corrupt', data=None, reason='payload is not JSON: %s' % exc)
    return dict(state='valid', data=data)


def read_image(bus, area):
    addr, start, size = area_info(area)[:3]
    return bytearray(bus.read(addr, start, size))


def changed_pages(area, current, wanted):
    """Offsets of the pages that differ."""
    page = area_info(area)[3]
    return [offset for offset in range(0, len(wanted), page) if current[offset:offset + page] != wanted[offset:offset + page]]


def marked_header(area, wanted):
    """The header page of ``wanted`` marked as being written."""
    page = area_info(area)[3]
    marked = bytearray(wanted[:page])
    marked[0:3] = MAGIC + bytearray([VERSION | WRITING])
    return marked


def plan_writes(area, current, wanted):
    """[(offset, bytes)]: the page writes that turn ``current`` into ``wanted``, in order.

    One changed page is written alone. Several: the header page marked as being written first
    (unless it already is), the other changed pages, the header page with its final content last.
    """
    page = area_info(area)[3]
    pages = changed_pages(area, current, wanted)
    if len(pages) <= 1:
        return [(offset, bytearray(wanted[offset:offset + page])) for offset in pages]
    writes = []
    marked = marked_header(area, wanted)
    if current[:page] != marked:
        writes.append((0, marked))
    writes.extend((offset, bytearray(wanted[offset:offset + page])) for offset in pages if offset)
    writes.append((0, bytearray(wanted[:page])))
    return writes


def write_record(bus, area, writes, wanted):
    """Carry out ``plan_writes``, waiting out each EEPROM write cycle, then read back and verify."""
    addr, start = area_info(area)[:2]
    eeprom = area == 'eeprom'
    for offset, data in writes:
        bus.write(addr, start + offset, list(data))
        if eeprom:
            bus.wait_ready(addr)
    readback = read_image(bus, area)
    if readback != wanted:
        bad = changed_pages(area, readback, wanted)
        raise VerifyError('the %s did not read back as written (pages at offsets %s differ): another node may '
                          'be writing to it, or the memory is worn' % (area, ', '.join(str(p) for p in bad)))
