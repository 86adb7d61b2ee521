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
    C(turingpi_serial), C(turingpi_boot), C(turingpi_image), C(turingpi_power), C(turingpi_address), C(turingpi_subnet),
    C(turingpi_router), C(turingpi_master), and C(ansible_host).
  - Nodes get a fixed address on the cluster subnet, by default the network address plus
    O(boards[].network.node_offset) plus the slot number (V(10.77.0.12) for slot 2 of V(10.77.0.0/24)).
  - When the controller reaches the master on its uplink address and the nodes sit behind the
    master's NAT, every node's C(ansible_ssh_common_args) carries C(-o ProxyJump=user@master:port).
  - The master gets C(turingpi_board_nodes), the list of its board's nodes (name, slot, MAC, address,
    serial, boot source, image, power) that the router and netboot roles need for static leases.
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
        description: Defaults for the nodes (slots 2 to 7) of this board, with the slot keys V(boot), V(image), V(power), V(user) and V(port).
        type: dict
      vars:
        description: Host variables for every host of this board (master and nodes); the V(vars) of a slot win.
        type: dict
      slots:
        description:
          - The populated slots, a dictionary from slot number (V(1) to V(7)) to a dictionary with the keys
            V(hostname), V(mac), V(serial) (the last 8 hex digits of C(Serial) in C(/proc/cpuinfo), which network boot needs),
            V(boot) (V(emmc), V(sd) or V(netboot); default V(emmc)), V(image),
            V(power) (V(on) or V(off); default V(on)), V(address) (nodes only), V(user), V(port) (nodes only)
            and V(vars).
          - Slot 1 is the master; its connection comes from O(boards[].master) and its cluster address is
            O(boards[].network.router). It is added to the inventory even when not listed.
          - V(mac) is required for slots 2 to 7, the router hands out their fixed addresses by MAC.
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

import ipaddress
import re

from ansible.errors import AnsibleParserError
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.inventory import BaseInventoryPlugin, Constructable
from ansible.utils.vars import combine_vars

SLOTS = (1, 2, 3, 4, 5, 6, 7)
MASTER_SLOT = 1
BOOT_SOURCES = ('emmc', 'sd', 'netboot')
POWER_STATES = ('on', 'off')
JUMP_MODES = ('auto', 'always', 'never')
MASTER_GROUP = 'turingpi_master'
NODES_GROUP = 'turingpi_nodes'
RESERVED_GROUPS = ('all', 'ungrouped', MASTER_GROUP, NODES_GROUP)

BOARD_KEYS = ('name', 'master', 'network', 'bus', 'defaults', 'vars', 'slots')
MASTER_KEYS = ('address', 'user', 'port', 'jump', 'jump_ssh_args')
NETWORK_KEYS = ('subnet', 'router', 'node_offset')
DEFAULT_KEYS = ('boot', 'image', 'power', 'user', 'port')
SLOT_KEYS = ('hostname', 'mac', 'serial', 'boot', 'image', 'power', 'address', 'user', 'port', 'vars')
MASTER_SLOT_KEYS = ('hostname', 'mac', 'serial', 'boot', 'image', 'power', 'vars')

SERIAL_RE = re.compile(r'^([0-9a-f]{8}){1,2}$')
MAC_RE = re.compile(r'^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$')
HOSTNAME_RE = re.compile(r'^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$', re.IGNORECASE)

DEFAULT_SUBNET = '10.77.0.0/24'
DEFAULT_NODE_OFFSET = 10
DEFAULT_SSH_PORT = 22


class BoardError(Exception):
    """A problem in the board file, with a message that names where and what to fix."""


def _check_keys(where, data, known):
    if not isinstance(data, dict):
        raise BoardError("%s: expected a dictionary, got %s" % (where, type(data).__name__))
    for key in data:
        if key not in known:
            raise BoardError("%s: unknown key '%s' (known keys: %s)" % (where, key, ', '.join(known)))


def _text(where, key, value):
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BoardError("%s: '%s' must be a non-empty string, got %r" % (where, key, value))
    return to_text(value).strip()


def _port(where, key, value):
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) and not (isinstance(value, str) and value.isdigit()):
        raise BoardError("%s: '%s' must be a port number from 1 to 65535, got %r" % (where, key, value))
    port = int(value)
    if not 1 <= port <= 65535:
        raise BoardError("%s: '%s' must be a port number from 1 to 65535, got %r" % (where, key, value))
    return port


def parse_slot(where, value):
    """Slot number 1-7 from an int or a string such as '3' or 'node3'."""
    text = to_text(value).strip().lower()
    if text.startswith('node'):
        text = text[4:]
    if isinstance(value, bool) or not text.isdigit() or int(text) not in SLOTS:
        raise BoardError("%s: unknown slot '%s': the Turing Pi V1 has slots 1 to 7" % (where, value))
    return int(text)


def normalize_mac(where, value):
    if isinstance(value, int):
        # YAML 1.1 reads an unquoted 11:22:33:44:55:66 as a base-60 number.
        raise BoardError("%s: the MAC address was read as the number %d: quote it, such as mac: '11:22:33:44:55:66'" % (where, value))
    text = to_text(value).strip().lower()
    if not MAC_RE.match(text):
        raise BoardError("%s: '%s' is not a MAC address (six hex pairs separated by ':' or '-', such as dc:a6:32:01:02:03)" % (where, value))
    return text.replace('-', ':')


def normalize_serial(where, value):
    """The serial the boot ROM asks TFTP for: the last 8 hex digits of Serial in /proc/cpuinfo."""
    text = to_text(value).strip().lower()
    if not SERIAL_RE.match(text):
        hint = ': quote it, YAML read it as a number' if isinstance(value, int) and not isinstance(value, bool) else ''
        raise BoardError("%s: serial '%s' is not 8 (or 16) hex digits as in /proc/cpuinfo%s" % (where, value, hint))
    return text[-8:]


def normalize_boot(where, value):
    text = to_text(value).strip().lower()
    if text not in BOOT_SOURCES:
        raise BoardError("%s: boot must be one of %s, got '%s'" % (where, ', '.join(BOOT_SOURCES), value))
    return text


def normalize_power(where, value):
    # Unquoted on/off in YAML 1.1 are booleans.
    if value is True:
        return 'on'
    if value is False:
        return 'off'
    text = to_text(value).strip().lower()
    if text not in POWER_STATES:
        raise BoardError("%s: power must be 'on' or 'off', got '%s'" % (where, value))
    return text


def proxy_jump(user, address, port, ssh_args=None):
    """ssh options that reach a node through the master: ProxyJump, or ProxyCommand when the hop needs options."""
    if ssh_args:
        target = '%s@%s' % (user, address) if user else address
        return '-o ProxyCommand="ssh -W %%h:%%p -p %d %s %s"' % (port or DEFAULT_SSH_PORT, ssh_args, target)
    host = '[%s]' % address if ':' in address else address
    target = '%s@%s' % (user, host) if user else host
    if port and port != DEFAULT_SSH_PORT:
        target = '%s:%d' % (target, port)
    return '-o ProxyJump=%s' % target


class Board(object):
    """One validated board: its network and the hosts it contributes."""

    def __init__(self, index, data, sanitize):
        where = 'board #%d' % index
        if not isinstance(data, dict):
            raise BoardError("%s: expected a dictionary with at least 'name' and 'slots', got %s" % (where, type(data).__name__))
        if data.get('name') is None:
            raise BoardError("%s: 'name' is required" % where)
        self.name = _text(where, 'name', data['name'])
        self.where = "board '%s'" % self.name
        _check_keys(self.where, data, BOARD_KEYS)
        self.group = sanitize(self.name)
        if self.group in RESERVED_GROUPS:
            raise BoardError("%s: the name gives the group '%s', which the inventory already uses; rename the board" % (self.where, self.group))

        self._parse_network(data.get('network') or {})
        self._parse_master(data.get('master') or {})
        bus = data.get('bus')
        self.bus = _text(self.where, 'bus', to_text(bus) if isinstance(bus, int) and not isinstance(bus, bool) else bus)

        defaults = data.get('defaults') or {}
        _check_keys('%s defaults' % self.where, defaults, DEFAULT_KEYS)
        self.defaults = defaults
        self.vars = data.get('vars') or {}
        _check_keys_free('%s vars' % self.where, self.vars)

        slots = data.get('slots')
        if slots is None:
            raise BoardError("%s: 'slots' is required (a dictionary from slot number 1-7 to the node in it)" % self.where)
        if not isinstance(slots, dict):
            raise BoardError("%s: 'slots' must be a dictionary from slot number 1-7 to the node in it, got %s" % (self.where, type(slots).__name__))
        parsed = {}
        for key, value in slots.items():
            slot = parse_slot(self.where, key)
            if slot in parsed:
                raise BoardError("%s: slot %d is listed twice" % (self.where, slot))
            parsed[slot] = value if value is not None else {}
        parsed.setdefault(MASTER_SLOT, {})
        self.hosts = [self._parse_slot(slot, parsed[slot]) for slot in sorted(parsed)]
        self.master = self.hosts[0]

        seen = {}
        for host in self.hosts:
            if host['address'] in seen:
                raise BoardError("%s slot %d: address %s is already used by slot %d" % (self.where, host['slot'], host['address'], seen[host['address']]))
            seen[host['address']] = host['slot']

    def _parse_network(self, network):
        where = '%s network' % self.where
        _check_keys(where, network, NETWORK_KEYS)
        subnet = _text(where, 'subnet', network.get('subnet')) or DEFAULT_SUBNET
        try:
            self.subnet = ipaddress.ip_network(subnet, strict=True)
        except ValueError as exc:
            raise BoardError("%s: '%s' is not a subnet in CIDR notation with the host bits zero, such as 10.77.0.0/24 (%s)" % (where, subnet, exc))
        if self.subnet.num_addresses < 4:
            raise BoardError("%s: subnet %s is too small for a board" % (where, self.subnet))
        offset = network.get('node_offset', DEFAULT_NODE_OFFSET)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise BoardError("%s: 'node_offset' must be a whole number of 0 or more, got %r" % (where, offset))
        self.node_offset = offset
        router = _text(where, 'router', network.get('router'))
        self.router = self._address_in_subnet(where, 'router', router) if router else self.subnet.network_address + 1

    def _parse_master(self, master):
        where = '%s master' % self.where
        _check_keys(where, master, MASTER_KEYS)
        self.master_address = _text(where, 'address', master.get('address'))
        self.master_user = _text(where, 'user', master.get('user'))
        self.master_port = _port(where, 'port', master.get('port')) or DEFAULT_SSH_PORT
        self.jump_ssh_args = _text(where, 'jump_ssh_args', master.get('jump_ssh_args'))
        if self.jump_ssh_args and '"' in self.jump_ssh_args:
            raise BoardError("%s: jump_ssh_args must not contain double quotes (it goes inside ProxyCommand=\"...\")" % where)
        jump = to_text(master.get('jump', 'auto')).strip().lower()
        if jump not in JUMP_MODES:
            raise BoardError("%s: jump must be one of %s, got '%s'" % (where, ', '.join(JUMP_MODES), master.get('jump')))
        if jump == 'auto':
            self.jump = bool(self.master_address) and not self._is_in_subnet(self.master_address)
        else:
            self.jump = jump == 'always'

    def _is_in_subnet(self, address):
        try:
            return ipaddress.ip_address(to_text(address)) in self.subnet
        except ValueError:
            return False  # a DNS name: the controller reaches it from outside

    def _address_in_subnet(self, where, key, value):
        try:
            address = ipaddress.ip_address(to_text(value))
        except ValueError:
            raise BoardError("%s: %s '%s' is not an IP address" % (where, key, value))
        if address not in self.subnet:
            raise BoardError("%s: %s %s is outside the cluster subnet %s" % (where, key, address, self.subnet))
        if address in (self.subnet.network_address, self.subnet.broadcast_address):
            raise BoardError("%s: %s %s is the network or broadcast address of %s" % (where, key, address, self.subnet))
        return address

    def _parse_slot(self, slot, data):
        where = '%s slot %d' % (self.where, slot)
        if slot == MASTER_SLOT:
            if isinstance(data, dict) and 'address' in data:
                raise BoardError("%s: slot 1 is the master: set its cluster address with network.router and how to reach it with master.address" % where)
            if isinstance(data, dict) and ('user' in data or 'port' in data):
                raise BoardError("%s: slot 1 is the master: set its SSH user and port under master" % where)
            _check_keys(where, data, MASTER_SLOT_KEYS)
        else:
            _check_keys(where, data, SLOT_KEYS)
        merged = dict(self.defaults) if slot != MASTER_SLOT else {}
        merged.update(data)

        hostname = _text(where, 'hostname', data.get('hostname')) or '%s-node%d' % (self.group.replace('_', '-'), slot)
        if not HOSTNAME_RE.match(hostname):
            raise BoardError("%s: '%s' is not a valid host name (letters, digits and '-', dot-separated labels)" % (where, hostname))
        mac = merged.get('mac')
        if mac is None and slot != MASTER_SLOT:
            raise BoardError("%s: 'mac' is required: the router hands out the node's fixed address by MAC" % where)
        host = {
            'name': hostname,
            'slot': slot,
            'role': 'master' if slot == MASTER_SLOT else 'node',
            'mac': normalize_mac(where, mac) if mac is not None else None,
            'serial': normalize_serial(where, merged['serial']) if merged.get('serial') is not None else None,
            'boot': normalize_boot(where, merged.get('boot', 'emmc')),
            'image': _text(where, 'image', merged.get('image')),
            'power': normalize_power(where, merged.get('power', 'on')),
            'vars': data.get('vars') or {},
        }
        _check_keys_free('%s vars' % where, host['vars'])
        if slot == MASTER_SLOT:
            if host['power'] != 'on':
                raise BoardError("%s: the master cannot be declared off: it drives the bus and routes the nodes" % where)
            host['address'] = self.router
            host['user'] = self.master_user
            host['port'] = self.master_port
        else:
            if merged.get('address') is not None:
                host['address'] = self._address_in_subnet(where, 'address', merged['address'])
            else:
                default = self.subnet.network_address + self.node_offset + slot
                if default not in self.subnet or default == self.subnet.broadcast_address:
                    raise BoardError("%s: the default address %s (network + node_offset %d + slot) is outside the cluster subnet %s;"
                                     " set 'address' or 'network.node_offset'" % (where, default, self.node_offset, self.subnet))
                host['address'] = default
            if host['address'] == self.router:
                raise BoardError("%s: address %s is the router's (the master's) address" % (where, host['address']))
            host['user'] = _text(where, 'user', merged.get('user'))
            host['port'] = _port(where, 'port', merged.get('port'))
        return host


def _check_keys_free(where, data):
    if not isinstance(data, dict):
        raise BoardError("%s: expected a dictionary of variables, got %s" % (where, type(data).__name__))


def load_boards(boards, sanitize):
    """Validate the whole file: every board, then what must be unique across boards."""
    if not isinstance(boards, list) or not boards:
        raise BoardError("'boards' must be a non-empty list of boards")
    parsed = []
    names, groups, hostnames, macs, serials = {}, {}, {}, {}, {}
    for index, data in enumerate(boards, start=1):
        board = Board(index, data, sanitize)
        if board.name in names:
            raise BoardError("%s: the board name is used twice" % board.where)
        if board.group in groups:
            raise BoardError("%s: its group name '%s' is the same as board '%s''s; rename one of them" % (board.where, board.group, groups[board.group]))
        for other in parsed:
            if board.subnet.version == other.subnet.version and board.subnet.overlaps(other.subnet):
                raise BoardError("%s: subnet %s overlaps subnet %s of board '%s'" % (board.where, board.subnet, other.subnet, other.name))
        for host in board.hosts:
            where = '%s slot %d' % (board.where, host['slot'])
            if host['name'] in hostnames:
                raise BoardError("%s: hostname '%s' is already used by %s; hostnames must be unique across boards"
                                 % (where, host['name'], hostnames[host['name']]))
            hostnames[host['name']] = where
            if host['mac'] is not None:
                if host['mac'] in macs:
                    raise BoardError("%s: MAC %s is already used by %s" % (where, host['mac'], macs[host['mac']]))
                macs[host['mac']] = "%s (%s)" % (host['name'], where)
            if host['serial'] is not None:
                if host['serial'] in serials:
                    raise BoardError("%s: serial %s is already used by %s" % (where, host['serial'], serials[host['serial']]))
                serials[host['serial']] = "%s (%s)" % (host['name'], where)
        names[board.name] = True
        groups[board.group] = board.name
        parsed.append(board)
    for name, where in hostnames.items():
        if name in groups or name in RESERVED_GROUPS:
            raise BoardError("%s: hostname '%s' is also the name of a group; rename the host or the board" % (where, name))
    return parsed


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
        nodes = [h for h in board.hosts if h['role'] == 'node']
        for host in board.hosts:
            name = self.inventory.add_host(host['name'], group=group)
            self.inventory.add_child(MASTER_GROUP if host['role'] == 'master' else NODES_GROUP, name)
            hostvars = {
                'turingpi_board': board.name,
                'turingpi_board_group': board.group,
                'turingpi_slot': host['slot'],
                'turingpi_role': host['role'],
                'turingpi_mac': host['mac'],
                'turingpi_serial': host['serial'],
                'turingpi_boot': host['boot'],
                'turingpi_image': host['image'],
                'turingpi_power': host['power'],
                'turingpi_address': str(host['address']),
                'turingpi_subnet': str(board.subnet),
                'turingpi_router': str(board.router),
                'turingpi_master': board.master['name'],
            }
            if host['role'] == 'master':
                hostvars['ansible_host'] = board.master_address or str(board.router)
                hostvars['turingpi_board_nodes'] = [
                    {'name': n['name'], 'slot': n['slot'], 'mac': n['mac'], 'ip': str(n['address']), 'serial': n['serial'],
                     'boot': n['boot'], 'image': n['image'], 'power': n['power']}
                    for n in nodes
                ]
                if board.bus is not None:
                    hostvars['turingpi_bus'] = board.bus
            else:
                hostvars['ansible_host'] = str(host['address'])
                if board.jump:
                    jump_host = board.master_address or str(board.router)
                    hostvars['ansible_ssh_common_args'] = proxy_jump(board.master_user, jump_host, board.master_port, board.jump_ssh_args)
            if host['user']:
                hostvars['ansible_user'] = host['user']
            if host['port']:
                hostvars['ansible_port'] = host['port']
            hostvars.update(board.vars)
            hostvars.update(host['vars'])
            for key, value in hostvars.items():
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
