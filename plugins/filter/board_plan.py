# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: board_plan
short_description: What the inventory says about each Turing Pi board, as the playbooks follow it
version_added: 1.0.0
description:
  - Reads the C(turingpi_*) variables of the inventory's masters and nodes (set by the
    P(turingpi.cluster.board#inventory) inventory plugin or written by hand, see C(docs/inventory.md))
    and returns the plan the collection's playbooks follow.
  - For each master, the nodes it drives. A node is driven by the master named in its C(turingpi_master);
    without it, by the one master with the same C(turingpi_board); an inventory with a single master whose
    nodes name no board is one board.
  - The same rules as the inventory plugin (host names, slots, addresses, MACs, serials, boot sources, power
    states); an inventory that breaks one fails with a message that names the host and what to fix.
  - The netboot settings of each master are its own C(netboot_*) variables, else the contract's values
    (its cluster address and subnet), else the C(turingpi.cluster.netboot) role's defaults, read from the role.
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
positional: groups, master_group, nodes_group
options:
  _input:
    description: The C(hostvars) of the play.
    type: dict
    required: true
  groups:
    description: The C(groups) of the play.
    type: dict
    required: true
  master_group:
    description: The group of the masters (slot 1 of each board).
    type: str
    default: turingpi_master
  nodes_group:
    description: The group of the nodes (slots 2 to 7).
    type: str
    default: turingpi_nodes
'''

EXAMPLES = r'''
- name: The nodes this master drives, and their declared power
  vars:
    plan: "{{ hostvars | turingpi.cluster.board_plan(groups) }}"
  ansible.builtin.debug:
    msg: "{{ plan.masters[inventory_hostname].declared_power }}"

- name: The master that drives this node
  ansible.builtin.debug:
    msg: "{{ (hostvars | turingpi.cluster.board_plan(groups)).nodes[inventory_hostname].master }}"
'''

RETURN = r'''
_value:
  description: The plan.
  type: dict
  contains:
    masters:
      description:
        - Per master (inventory name) its V(name), V(board), V(bus) (default V('1')), V(persist)
          (C(turingpi_power_persist)), V(subnet), V(prefix), V(router) (its cluster address), V(node_offset),
          V(power) (its own declared power or null), V(module) (its module type or null).
        - V(nodes), the nodes it drives sorted by slot (as under RV(_value.nodes)); V(slots), slot to node name.
        - V(declared_power), slot to V(on)/V(off) for its nodes (and itself when it declares C(turingpi_power));
          V(local_power) and V(netboot_power), the same split by boot source.
        - V(router_nodes), V({name, mac, ip}) per node with a MAC (the router role's C(router_nodes));
          V(netboot_nodes), V({name, serial, image, module}) per network-boot node with a serial (the netboot
          role's C(netboot_nodes)); V(netboot_without_serial),
          the names of network-boot nodes that have none; V(names), the names the router gives the master.
        - V(netboot), the master's netboot settings that a node's play needs when it runs the netboot role
          delegated to its master.
      type: dict
    nodes:
      description:
        - Per node (inventory name) its V(name), V(master), V(board), V(bus) (its master's), V(slot), V(module)
          (C(cm1), C(cm3), C(cm3-lite), C(cm3plus), C(cm3plus-lite) or null), V(boot), V(image), V(power), V(address),
          V(mac) and V(serial), normalised.
      type: dict
'''

import os

import yaml

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import (
    MASTER_GROUP,
    NODES_GROUP,
    BoardError,
    plan_cluster,
)

# The netboot role's defaults, read from the role that ships with this plugin.
NETBOOT_DEFAULTS = os.path.join(os.path.dirname(__file__), '..', '..', 'roles', 'netboot', 'defaults', 'main.yml')
_defaults_cache = {}


def role_defaults(path):
    if path not in _defaults_cache:
        with open(path, 'rb') as stream:
            _defaults_cache[path] = yaml.safe_load(stream) or {}
    return _defaults_cache[path]


def board_plan(hostvars, groups, master_group=None, nodes_group=None):
    if not hasattr(hostvars, 'get') or not hasattr(groups, 'get'):
        raise AnsibleFilterError('board_plan: use it as hostvars | turingpi.cluster.board_plan(groups)')
    masters = list(groups.get(master_group or MASTER_GROUP) or [])
    nodes = list(groups.get(nodes_group or NODES_GROUP) or [])
    try:
        return plan_cluster(hostvars, masters, nodes, role_defaults(NETBOOT_DEFAULTS))
    except BoardError as exc:
        raise AnsibleFilterError('The inventory does not describe a Turing Pi board the collection can drive: %s' % to_native(exc))


class FilterModule(object):

    def filters(self):
        return {'board_plan': board_plan}
