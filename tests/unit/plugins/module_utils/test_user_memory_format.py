# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _user_memory as memory


def test_crc16_ccitt_false_check_value():
    assert memory.crc16(b'123456789') == 0x29B1


def test_record_layout():
    image = memory.encode('eeprom', {'a': 1})
    assert bytes(image[:4]) == b'TP\x01\x07'
    assert bytes(image[4:11]) == b'{"a":1}'
    crc = memory.crc16(image[:11])
    assert list(image[11:13]) == [crc >> 8, crc & 0xFF]
    assert list(image[13:]) == [0xFF] * 51
    assert list(memory.encode('sram', {'a': 1})[13:]) == [0x00] * 51


def test_round_trip():
    data = {'name': 'rack-a', 'id': 7, 'tags': ['x']}
    assert memory.decode('sram', memory.encode('sram', data)) == {'state': 'valid', 'data': data}


def test_largest_payload_fits_and_one_more_byte_does_not():
    assert memory.decode('eeprom', memory.encode('eeprom', 'x' * 56))['data'] == 'x' * 56  # 58 bytes with quotes
    with pytest.raises(ValueError) as exc:
        memory.encode('eeprom', 'x' * 57)
    assert str(exc.value).startswith('the data takes 59 bytes as JSON but the eeprom holds at most 58')


@pytest.mark.parametrize('offset', range(0, 20))
def test_any_torn_byte_is_detected(offset):
    image = memory.encode('eeprom', {'name': 'rack-a'})
    image[offset] ^= 0x10
    assert memory.decode('eeprom', image)['state'] in ('corrupt', 'foreign')


def test_empty_and_foreign():
    assert memory.decode('eeprom', bytearray([0xFF] * 64))['state'] == 'empty'
    assert memory.decode('sram', bytearray(64))['state'] == 'empty'
    assert memory.decode('eeprom', bytearray(b'hello' + b'\xff' * 59))['state'] == 'foreign'


def test_only_differing_pages():
    before = memory.encode('eeprom', {'name': 'rack-a'})
    after = memory.encode('eeprom', {'name': 'rack-b'})
    # {"name":"rack-a"} is 17 bytes at offset 4; 'a' at 19, CRC at 21-22: pages 16 only
    assert memory.changed_pages('eeprom', before, after) == [16]


def test_a_header_marked_as_being_written_reads_as_torn():
    image = memory.encode('eeprom', {'name': 'rack-a'})
    image[2] |= memory.WRITING
    assert memory.decode('eeprom', image) == {
        'state': 'torn', 'data': None,
        'reason': 'a write of this record was interrupted (its header still says it is being written): write it '
                  'again with turingpi.cluster.user_memory'}


@pytest.mark.parametrize('area', ['eeprom', 'sram'])
def test_several_pages_header_marked_first_and_written_last(area):
    before = memory.erased_image(area)
    after = memory.encode(area, {'name': 'rack-a'})  # 4 + 17 + 2 = 23 bytes: pages 0, 8, 16
    marked = bytearray(b'TP\x81') + after[3:8]
    assert memory.plan_writes(area, before, after) == [(0, marked), (8, after[8:16]), (16, after[16:24]), (0, after[0:8])]


def test_a_header_already_marked_is_not_marked_again():
    after = memory.encode('eeprom', {'name': 'rack-a'})
    torn = memory.erased_image('eeprom')
    torn[0:8] = memory.marked_header('eeprom', after)
    torn[8:16] = after[8:16]
    assert memory.plan_writes('eeprom', torn, after) == [(16, after[16:24]), (0, after[0:8])]


def test_erasing_several_pages_marks_the_header_too():
    before = memory.encode('sram', {'name': 'rack-a'})
    after = memory.erased_image('sram')
    plan = memory.plan_writes('sram', before, after)
    assert [offset for offset, data in plan] == [0, 8, 16, 0]
    assert memory.decode('sram', bytearray(plan[0][1]) + before[8:])['state'] == 'torn'


def test_one_page_is_written_alone():
    before = memory.encode('eeprom', {'name': 'rack-a'})
    after = memory.encode('eeprom', {'name': 'rack-b'})
    assert memory.plan_writes('eeprom', before, after) == [(16, after[16:24])]
    assert memory.plan_writes('eeprom', after, after) == []
