# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: power_wave_writes
short_description: The bus writes that switch one wave of nodes on, one per master
version_added: 1.0.0
description:
  - Takes the plan of the inventory (P(turingpi.cluster.board_plan#filter)) and the nodes of one wave (in a play over
    the nodes with C(serial), C(ansible_play_batch)) and returns, per master that drives one of them, the slots to
    switch on, for one P(turingpi.cluster.power#module) write each.
  - The wave's order comes from P(turingpi.cluster.power_waves#filter).
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
positional: batch
options:
  _input:
    description: The plan of the inventory, P(turingpi.cluster.board_plan#filter).
    type: dict
    required: true
  batch:
    description: The inventory names of the wave's nodes.
    type: list
    elements: str
    required: true
'''

EXAMPLES = r'''
- name: One write per master for this wave
  turingpi.cluster.power:
    bus: "{{ turingpi__plan.masters[item.master].bus }}"
    nodes: "{{ item.nodes }}"
  loop: "{{ turingpi__plan | turingpi.cluster.power_wave_writes(ansible_play_batch) }}"
  delegate_to: "{{ item.master }}"
  run_once: true
'''

RETURN = r'''
_value:
  description: A list of V({master, nodes}), sorted by master; V(nodes) a mapping of slot to V(on).
  type: list
  elements: dict
'''

from ansible.errors import AnsibleFilterError


def power_wave_writes(plan, batch):
    if not isinstance(plan, dict) or 'nodes' not in plan:
        raise AnsibleFilterError('power_wave_writes: use it on the plan, turingpi__plan | turingpi.cluster.power_wave_writes(ansible_play_batch)')
    writes = {}
    for name in batch or []:
        if name not in plan['nodes']:
            raise AnsibleFilterError("power_wave_writes: '%s' is not a node of the plan" % name)
        node = plan['nodes'][name]
        writes.setdefault(node['master'], {})[node['slot']] = 'on'
    return [{'master': master, 'nodes': writes[master]} for master in sorted(writes)]


class FilterModule(object):

    def filters(self):
        return {'power_wave_writes': power_wave_writes}
