# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: valid_hostname
short_description: Whether a name is a valid host name for a Turing Pi node
version_added: 1.0.0
description:
  - The collection's one host name rule, the same in the inventory plugin, the roles and the modules;
    a single DNS label (letters, digits and V(-), 1 to 63 characters, not starting or ending with V(-),
    no dots), since a node's name is also its short host name and a directory on the master.
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
options:
  _input:
    description: The name.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: Check the names of the router's leases
  ansible.builtin.assert:
    that: item.name is turingpi.cluster.valid_hostname
  loop: "{{ router_nodes }}"
'''

RETURN = r'''
_value:
  description: V(true) when the name follows the rule.
  type: bool
'''

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import is_valid_hostname


class TestModule(object):

    def tests(self):
        return {'valid_hostname': is_valid_hostname}
