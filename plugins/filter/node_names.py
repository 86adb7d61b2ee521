# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: node_names
short_description: Inventory names from a comma-separated string or a list
version_added: 1.0.0
description:
  - Turns V(node3, node5) or V([node3, node5]) into V([node3, node5]); blanks trimmed, empty entries and
    repeats dropped, the order kept. V(null) gives an empty list.
  - How C(playbooks/reprovision.yml) reads C(reprovision_nodes), for its checks and its host pattern alike.
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
options:
  _input:
    description: The names.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: The nodes asked for on the command line (-e nodes=node3,node5)
  ansible.builtin.debug:
    msg: "{{ nodes | default(none) | turingpi.cluster.node_names }}"
'''

RETURN = r'''
_value:
  description: The names.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import BoardError, node_names


def _node_names(value):
    try:
        return node_names(value)
    except BoardError as exc:
        raise AnsibleFilterError(to_native(exc))


class FilterModule(object):

    def filters(self):
        return {'node_names': _node_names}
