# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: image_problems
short_description: Why an OS image does not fit a node's compute module, from what image_info read
version_added: 1.0.0
description:
  - Takes the result of M(turingpi.cluster.image_info) for an image and a node's module type
    (C(turingpi_module)) and boot source (C(turingpi_boot)), and returns the reasons the node cannot boot
    that image, one sentence each; an empty list when it can.
  - The reasons are those of the image (no firmware partition, a GPT disk), of the module type (an arm64 image
    for a CM1, no kernel the module runs, a missing initramfs, no C(bootcode.bin)) and of the boot source
    (a CM1 cannot network boot, a Lite module has no eMMC, a module with eMMC cannot boot from a card).
  - Without a module type (the inventory does not say), the image must fit at least one module type of the
    Turing Pi V1 (CM1, CM3, CM3+).
  - The same rules as the inventory (the P(turingpi.cluster.board_plan#filter) filter) and
    M(turingpi.cluster.image_info) with O(turingpi.cluster.image_info#module:module); see C(docs/inventory.md).
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
positional: module, boot
options:
  _input:
    description: The registered result of M(turingpi.cluster.image_info) for the image.
    type: dict
    required: true
  module:
    description: The node's module type (C(turingpi_module)), or null when unknown.
    type: str
  boot:
    description: The node's boot source (C(turingpi_boot)), or null.
    type: str
'''

EXAMPLES = r'''
- name: Read the image once
  turingpi.cluster.image_info:
    path: "{{ flash_image_path }}"
    fail_on_mismatch: false
  register: flash_image_info

- name: Refuse before anything is written
  ansible.builtin.assert:
    that: problems | length == 0
    fail_msg: "{{ inventory_hostname }}: {{ problems | join('; ') }}"
    quiet: true
  vars:
    problems: "{{ flash_image_info | turingpi.cluster.image_problems(turingpi_module | default(none), turingpi_boot | default(none)) }}"
'''

RETURN = r'''
_value:
  description: The reasons, each a sentence that says what to do; empty when the image fits.
  type: list
  elements: str
'''

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import BoardError, image_problems


def _image_problems(info, module=None, boot=None):
    try:
        return image_problems(info, module, boot)
    except BoardError as exc:
        raise AnsibleFilterError(to_native(exc))


class FilterModule(object):

    def filters(self):
        return {'image_problems': _image_problems}
