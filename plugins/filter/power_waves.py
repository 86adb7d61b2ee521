# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: power_waves
short_description: The order in which nodes are switched on in waves
version_added: 1.0.0
description:
  - For switching nodes on in waves (C(turingpi_power_wave_size) of C(playbooks/bootstrap.yml) and C(playbooks/power.yml)),
    for power supplies that cannot start every module at once.
  - P(turingpi.cluster.power_waves#filter) takes the plan of the inventory (P(turingpi.cluster.board_plan#filter)) and
    returns the names of the nodes to switch on, in the order they get power, for a play over the nodes whose
    C(serial) is the wave size. eMMC and SD nodes first, network-boot nodes after them; within each, by master and slot.
  - Without O(slots), the nodes declared on (C(turingpi_power)). With O(slots), the nodes in those slots of every
    master, whatever they declare (the slot of the master itself is left out, it runs the play); a slot without a node
    in the inventory is an error.
  - P(turingpi.cluster.power_wave_writes#filter) gives each wave's bus writes.
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
positional: slots
options:
  _input:
    description: The plan of the inventory, P(turingpi.cluster.board_plan#filter).
    type: dict
    required: true
  slots:
    description: Slots to switch on (numbers, V(all), V(workers), a list or a comma-separated string), as the C(node) of
      C(playbooks/power.yml).
    type: raw
'''

EXAMPLES = r'''
# A play's hosts cannot come from the plan directly: queue them in a group, in this order, and run
# a play over the group with serial set to the wave size (playbooks/bootstrap.yml does so).
- name: Queue the nodes to switch on in waves
  ansible.builtin.add_host:
    name: "{{ item }}"
    groups: turingpi__power_waves
  loop: "{{ turingpi__plan | turingpi.cluster.power_waves }}"
  changed_when: false
'''

RETURN = r'''
_value:
  description: The node names, in power-on order.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board


def _check_plan(plan):
    if not isinstance(plan, dict) or 'masters' not in plan or 'nodes' not in plan:
        raise AnsibleFilterError('power_waves: use it on the plan, turingpi__plan | turingpi.cluster.power_waves')


def power_waves(plan, slots=None):
    _check_plan(plan)
    if slots is None:
        chosen = [node for node in plan['nodes'].values() if node['power'] == 'on']
    else:
        if isinstance(slots, (str, int)):
            slots = str(slots).split(',')
        try:
            wanted = [n for n in board.expand_nodes(s for s in slots if str(s).strip()) if n != board.MASTER_NODE]
        except (ValueError, KeyError) as exc:
            raise AnsibleFilterError('power_waves: %s' % to_native(exc))
        chosen = []
        for name in sorted(plan['masters']):
            master = plan['masters'][name]
            by_slot = dict((node['slot'], node) for node in master['nodes'])
            missing = [str(slot) for slot in wanted if slot not in by_slot]
            if missing:
                raise AnsibleFilterError(
                    "power_waves: slot %s of master '%s' has no node in the inventory, so it cannot be switched on in a "
                    "wave; give it a host (turingpi_slot), or switch it without waves (turingpi_power_wave_size=0)"
                    % (', '.join(missing), name))
            chosen.extend(by_slot[slot] for slot in wanted)
    # Local storage first: network-boot nodes need the netboot server, started last.
    chosen.sort(key=lambda node: (node['boot'] == 'netboot', node['master'], node['slot']))
    return [node['name'] for node in chosen]


class FilterModule(object):

    def filters(self):
        return {'power_waves': power_waves}
