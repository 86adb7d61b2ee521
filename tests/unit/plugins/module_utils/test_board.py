# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board


@pytest.mark.parametrize('node, mask', [(1, 0x02), (2, 0x04), (3, 0x08), (4, 0x10), (5, 0x80), (6, 0x40), (7, 0x20)])
def test_node_to_bit_map_follows_v1_cmb(node, mask):
    # "Bits 76543210 / Slots 5674321x": bit 0 unused, nodes 5-7 reversed.
    assert board.NODE_MASK[node] == mask


def test_every_bit_but_bit0_is_a_node():
    assert board.mask_of(board.NODES) == board.ALL_NODES_MASK == 0xFE
    assert not board.ALL_NODES_MASK & board.UNUSED_BITS_MASK


def test_documented_status_example():
    # docs/hardware.md "DS4520 at 0x57": 0x0e means slots 1-3 populated and on
    assert board.nodes_in(0x0E) == [1, 2, 3]


@pytest.mark.parametrize('values, nodes', [
    (['all'], [1, 2, 3, 4, 5, 6, 7]),
    (['workers'], [2, 3, 4, 5, 6, 7]),
    (['3', 'node5', 3], [3, 5]),
    ([' 7 '], [7]),
])
def test_expand_nodes(values, nodes):
    assert board.expand_nodes(values) == nodes


@pytest.mark.parametrize('value, message', [
    ('8', 'node 8 does not exist: the Turing Pi V1 has slots 1 to 7'),
    ('0', 'node 0 does not exist: the Turing Pi V1 has slots 1 to 7'),
    ('master', "'master' is not a node: use a slot number from 1 to 7"),
])
def test_bad_nodes_are_named(value, message):
    with pytest.raises(ValueError) as exc:
        board.parse_node(value)
    assert str(exc.value) == message


def test_addresses_match_the_board_docs():
    assert (board.DS4520_ADDR, board.MCP7940N_ADDR) == (0x57, 0x6F)
    assert board.SWITCH_ADDRESSES == (0x5C, 0x04)
    assert board.MEMORY_AREAS['eeprom'][:3] == (0x57, 0x00, 64)
    assert board.MEMORY_AREAS['sram'][:3] == (0x6F, 0x20, 64)
