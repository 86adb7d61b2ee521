# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: board
short_description: Turing Pi V1 boards described in one YAML file
version_added: 1.0.0
description:
  - Builds the inventory of one or more Turing Pi V1 boards from a small YAML file, the master
    (the module in slot 1, which routes the cluster subnet) and the compute modules in slots 2 to 7.
  - Every host gets the C(turingpi_*) variables of the collection's inventory contract
    (see C(docs/inventory.md)), namely C(turingpi_board), C(turingpi_slot), C(turingpi_role), C(turingpi_mac),
    C(turingpi_serial), C(turingpi_module), C(turingpi_boot), C(turingpi_image), C(turingpi_power), C(turingpi_address), C(turingpi_subnet),
    C(turingpi_router), C(turingpi_master), and C(ansible_host).
  - Nodes get a fixed address on the cluster subnet, by default the network address plus
    O(boards[].network.node_offset) plus the slot number (V(10.77.0.12) for slot 2 of V(10.77.0.0/24)).
  - When the controller reaches the master on its uplink address and the nodes sit behind the
    master's NAT, every node's C(ansible_ssh_common_args) carries C(-o ProxyJump=user@master:port).
  - The playbooks read these variables through the P(turingpi.cluster.board_plan#filter) filter, which
    applies the same rules to a static inventory; a board file and the static inventory that sets the
    same variables give the same plan.
  - Hosts are put in the groups C(turingpi_master) and C(turingpi_nodes) and in one group per board,
    named after the board (sanitized to a valid group name).
  - The file is validated as a whole before any host is added; errors name the board, the slot and
    what to fix.
  - The file name must end in C(turingpi.yml) or C(turingpi.yaml), for example C(board.turingpi.yml).
author:
  - turingpi.cluster maintainers (@turingpi-cluster)
extends_documentation_fragment:
  - ansible.builtin.constructed
options:
  plugin:
    description: The name of this plugin. Must be V(turingpi.cluster.board) for the file to be used.
    type: str
    required: true
    choices: ['turingpi.cluster.board']
  boards:
    description:
      - The boards, each a dictionary with the keys below.
      - Host names must be unique across all boards, MAC addresses must be unique and the cluster
        subnets of the boards must not overlap.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the board. The board's group is this name sanitized to a valid group name.
          - Also the default prefix of host names, V(<name>-node<slot>).
        type: str
        required: true
      master:
        description: How the controller reaches the master (slot 1).
        type: dict
        suboptions:
          address:
            description:
              - Address or name of the master as the controller sees it (usually its uplink address).
              - Defaults to the master's cluster address O(boards[].network.router), for a controller
                that sits on the cluster segment itself.
            type: str
          user:
            description: SSH user on the master (C(ansible_user)), also used for the jump to the nodes.
            type: str
          port:
            description: SSH port of the master (C(ansible_port)).
            type: int
            default: 22
          jump:
            description:
              - Whether the nodes are reached through the master with C(ProxyJump).
              - V(auto) jumps when O(boards[].master.address) is set and lies outside the cluster subnet.
            type: str
            choices: ['auto', 'always', 'never']
            default: auto
          jump_ssh_args:
            description:
              - Options for the SSH hop to the master, such as V(-i ~/.ssh/lab_key -o StrictHostKeyChecking=accept-new).
              - A C(ProxyJump) hop uses the controller's C(~/.ssh/config) and none of Ansible's SSH settings; with this
                option the nodes get C(-o ProxyCommand="ssh -W %h:%p -p PORT ARGS user@master") instead.
            type: str
      network:
        description: The cluster subnet that the master routes for the nodes.
        type: dict
        suboptions:
          subnet:
            description: Cluster subnet in CIDR notation.
            type: str
            default: 10.77.0.0/24
          router:
            description: The master's address on the cluster subnet, the nodes' gateway. Defaults to the first host address.
            type: str
          node_offset:
            description: A node's default address is the network address plus this offset plus the slot number.
            type: int
            default: 10
      bus:
        description:
          - The Cluster Management Bus the master uses for node power, as the O(turingpi.cluster.power#module:bus)
            option (V(1), V(/dev/i2c-1) or V(virtual:/path/board.json)). Set as C(turingpi_bus) on the master.
        type: str
      defaults:
        description:
          - Defaults for the nodes (slots 2 to 7) of this board, with the slot keys V(module), V(boot), V(image), V(power), V(user)
            and V(port).
          - V(image) set here is the board's image; a slot's V(image) is that node's own.
        type: dict
      vars:
        description: Host variables for every host of this board (master and nodes); the V(vars) of a slot win.
        type: dict
      slots:
        description:
          - The populated slots, a dictionary from slot number (V(1) to V(7)) to a dictionary with the keys
            V(hostname), V(mac), V(serial) (the last 8 hex digits of C(Serial) in C(/proc/cpuinfo), which network boot needs),
            V(module) (the compute module in the slot, V(cm1), V(cm3), V(cm3-lite), V(cm3plus) or V(cm3plus-lite); spellings
            such as V(CM3+), V(CM3L) or V(CM3+ Lite) are accepted; unset when unknown),
            V(boot) (V(emmc), V(sd) or V(netboot); default V(emmc)), V(image) (the name of the OS image the node runs),
            V(power) (V(on) or V(off); default V(on)), V(address) (nodes only), V(user), V(port) (nodes only)
            and V(vars).
          - Slot 1 is the master; its connection comes from O(boards[].master) and its cluster address is
            O(boards[].network.router). It is added to the inventory even when not listed.
          - V(mac) is required for slots 2 to 7, the router hands out their fixed addresses by MAC.
          - V(hostname) follows the collection's one host name rule, a single DNS label (letters, digits and
            V(-), 1 to 63 characters, not starting or ending with V(-), no dots), since a node's name is also
            its short host name and a directory on the master.
          - A key given twice in one mapping (a slot listed twice, for example) is an error, not a warning.
          - V(module) and V(boot) must agree, since the hardware decides where a module can boot from (see C(docs/hardware.md),
            "Compute modules"); a CM1 cannot network boot (BCM2835), a Lite module has no eMMC (it boots V(sd) or V(netboot)),
            and a module with eMMC cannot boot from the slot's microSD card (eMMC and card share one SD interface).
        type: dict
        required: true
notes:
  - Plain static inventories that set the same C(turingpi_*) variables work with the collection's roles and
    playbooks just as well; see C(docs/inventory.md).
'''

EXAMPLES = r'''
# board.turingpi.yml
plugin: turingpi.cluster.board
boards:
  - name: rack-a
    master:
      address: 192.168.1.50
      user: pi
    network:
      subnet: 10.77.0.0/24
    defaults:
      user: admin
    slots:
      1:
        hostname: tp-master
      2:
        hostname: tp-node2
        mac: dc:a6:32:00:00:02
        module: cm3plus-lite
        boot: netboot
        image: raspios-lite-arm64
      3:
        hostname: tp-node3
        mac: dc:a6:32:00:00:03
        power: 'off'
keyed_groups:
  - key: turingpi_boot
    prefix: boot
compose:
  node_timezone: "'Europe/Berlin'"
'''

import yaml

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_native, to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.utils.vars import combine_vars

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import (
    MASTER_GROUP,
    NODES_GROUP,
    BoardError,
    load_boards,
)


def duplicate_keys(text):
    """Keys given twice in one YAML mapping, as 'key (line N)': YAML keeps the last and drops the others."""
    found = []
    try:
        root = yaml.compose(text, Loader=getattr(yaml, 'CSafeLoader', yaml.SafeLoader))
    except yaml.YAMLError:
        return found  # the regular loader reports syntax errors
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    if key.value in seen:
                        found.append("'%s' (line %d)" % (key.value, key.start_mark.line + 1))
                    seen.add(key.value)
                stack.append(value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return found


class InventoryModule(BaseInventoryPlugin, Constructable):
    """Hosts and groups of one or more Turing Pi V1 boards."""

    NAME = 'turingpi.cluster.board'

    def verify_file(self, path):
        if not super(InventoryModule, self).verify_file(path):
            return False
        return to_text(path).endswith(('turingpi.yml', 'turingpi.yaml'))

    def parse(self, inventory, loader, path, cache=True):
        super(InventoryModule, self).parse(inventory, loader, path, cache=cache)
        self._read_config_data(path)
        try:
            with open(to_native(path), 'rb') as stream:
                twice = duplicate_keys(stream.read())
            if twice:
                raise BoardError("a key is given twice in one mapping, and YAML would keep only the last: %s;"
                                 " merge the entries (a slot listed twice loses a node)" % ', '.join(twice))
            boards = load_boards(self.get_option('boards'), self._sanitize_group_name)
        except BoardError as exc:
            raise AnsibleParserError('%s: %s' % (to_text(path), to_text(exc)))

        self.inventory.add_group(MASTER_GROUP)
        self.inventory.add_group(NODES_GROUP)
        for board in boards:
            self._add_board(board)

        strict = self.get_option('strict')
        for board in boards:
            for host in board.hosts:
                self._construct(host['name'], strict)

    def _add_board(self, board):
        group = self.inventory.add_group(board.group)
        for host in board.hosts:
            name = self.inventory.add_host(host['name'], group=group)
            self.inventory.add_child(MASTER_GROUP if host['role'] == 'master' else NODES_GROUP, name)
            for key, value in board.hostvars(host).items():
                self.inventory.set_variable(name, key, value)

    def _construct(self, name, strict):
        host = self.inventory.get_host(name)
        variables = host.get_vars()
        if self.get_option('use_extra_vars'):
            variables = combine_vars(variables, self._vars)
        self._set_composite_vars(self.get_option('compose'), variables, name, strict=strict)
        variables = host.get_vars()
        if self.get_option('use_extra_vars'):
            variables = combine_vars(variables, self._vars)
        self._add_host_to_composed_groups(self.get_option('groups'), variables, name, strict=strict, fetch_hostvars=False)
        self._add_host_to_keyed_groups(self.get_option('keyed_groups'), variables, name, strict=strict, fetch_hostvars=False)
