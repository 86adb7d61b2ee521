# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The collection's inventory contract: every rule about a board, in one place.

Two readers share it:
- the ``turingpi.cluster.board`` inventory plugin turns a board file into hosts and their
  ``turingpi_*`` variables (``load_boards``);
- the ``turingpi.cluster.board_plan`` filter turns any inventory's ``turingpi_*`` variables
  (from a board file or written by hand) into the plan the playbooks follow (``plan_cluster``):
  for each master the nodes it drives, per node its slot, module type, boot source, image, power,
  address, MAC and serial, and the router and netboot entries the master's roles need.

The rules: one host name rule (``hostname_problem``), one address rule (``default_address``),
which master drives a node (``_master_of``), the normalisation of MACs, serials, module types,
boot sources and power states, which module can boot from where (``module_boot_problem``) and
whether an image fits a module (``image_problems``, over what ``turingpi.cluster.image_info``
returns). docs/inventory.md documents the variables.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.turingpi.cluster.plugins.module_utils._board import DEFAULT_BUS as BUS_NUMBER, MASTER_NODE, NODES

SLOTS = NODES
MASTER_SLOT = MASTER_NODE
NODE_SLOTS = tuple(s for s in SLOTS if s != MASTER_SLOT)
BOOT_SOURCES = ('emmc', 'sd', 'netboot')
DEFAULT_BOOT = 'emmc'
POWER_STATES = ('on', 'off')
DEFAULT_POWER = 'on'
JUMP_MODES = ('auto', 'always', 'never')
MASTER_GROUP = 'turingpi_master'
NODES_GROUP = 'turingpi_nodes'
RESERVED_GROUPS = ('all', 'ungrouped', MASTER_GROUP, NODES_GROUP)
DEFAULT_SUBNET = '10.77.0.0/24'
DEFAULT_NODE_OFFSET = 10
DEFAULT_SSH_PORT = 22
DEFAULT_BUS = str(BUS_NUMBER)  # the bus option's form of the board's default bus

# Compute module types (docs/hardware.md "Compute modules"). The key is the name the inventory
# uses (turingpi_module, the board file's module key); family is what the firmware sees (the
# Lite variant of a module loads the same kernel); filters are the config.txt model filters the
# module reads; board_type is its revision-code type for [board-type=...].
MODULE_TYPES = {
    'cm1': {'label': 'CM1', 'family': 'cm1', 'soc': 'BCM2835', 'cpu': 'ARM1176JZF-S (ARMv6, 32-bit only)',
            'lite': False, 'netboot': False, 'board_type': 0x06, 'filters': ('pi1', 'cm1')},
    'cm3': {'label': 'CM3', 'family': 'cm3', 'soc': 'BCM2837', 'cpu': 'Cortex-A53 (ARMv8, 32 or 64-bit)',
            'lite': False, 'netboot': True, 'board_type': 0x0A, 'filters': ('pi3', 'cm3')},
    'cm3-lite': {'label': 'CM3 Lite', 'family': 'cm3', 'soc': 'BCM2837', 'cpu': 'Cortex-A53 (ARMv8, 32 or 64-bit)',
                 'lite': True, 'netboot': True, 'board_type': 0x0A, 'filters': ('pi3', 'cm3')},
    'cm3plus': {'label': 'CM3+', 'family': 'cm3plus', 'soc': 'BCM2837B0', 'cpu': 'Cortex-A53 (ARMv8, 32 or 64-bit)',
                'lite': False, 'netboot': True, 'board_type': 0x10, 'filters': ('pi3', 'pi3+', 'cm3+')},
    'cm3plus-lite': {'label': 'CM3+ Lite', 'family': 'cm3plus', 'soc': 'BCM2837B0', 'cpu': 'Cortex-A53 (ARMv8, 32 or 64-bit)',
                     'lite': True, 'netboot': True, 'board_type': 0x10, 'filters': ('pi3', 'pi3+', 'cm3+')},
}
MODULES = ('cm1', 'cm3', 'cm3-lite', 'cm3plus', 'cm3plus-lite')
MODULE_FAMILIES = ('cm1', 'cm3', 'cm3plus')
MODULE_RULE = "cm1, cm3, cm3-lite, cm3plus or cm3plus-lite (also written CM3+, CM3L, CM3+ Lite, ...)"

SERIAL_RE = re.compile(r'^([0-9a-f]{8}){1,2}$')
MAC_RE = re.compile(r'^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$')

# One host name rule for every place that names a node: the inventory, the router's leases,
# the netboot directories and the node's /etc/hostname. A single DNS label (RFC 1123): letters,
# digits and '-', 1 to 63 characters, not starting or ending with '-'. No dots: the name is
# also a directory on the master and the node's short host name.
HOSTNAME_RE = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$')
HOSTNAME_RULE = "letters, digits and '-', 1 to 63 characters, not starting or ending with '-', no dots"


class BoardError(Exception):
    """A problem in the inventory, with a message that names where and what to fix."""


def hostname_problem(name):
    """None when name is a valid node host name, else a sentence that says what is wrong."""
    if not isinstance(name, str) or not name:
        return "a host name must be a non-empty string (%s), got %r" % (HOSTNAME_RULE, name)
    if not HOSTNAME_RE.match(name):
        return "'%s' is not a valid host name (%s)" % (name, HOSTNAME_RULE)
    return None


def is_valid_hostname(name):
    return hostname_problem(name) is None


def check_hostname(where, name):
    problem = hostname_problem(name)
    if problem:
        raise BoardError('%s: %s' % (where, problem))
    return name


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_slot(where, value):
    """Slot number 1-7 from an int or a string such as '3' or 'node3'."""
    text = str(value).strip().lower()
    if text.startswith('node'):
        text = text[4:]
    if isinstance(value, bool) or not text.isdigit() or int(text) not in SLOTS:
        raise BoardError("%s: unknown slot '%s': the Turing Pi V1 has slots 1 to 7" % (where, value))
    return int(text)


def normalize_mac(where, value):
    if _is_int(value):
        # YAML 1.1 reads an unquoted 11:22:33:44:55:66 as a base-60 number.
        raise BoardError("%s: the MAC address was read as the number %d: quote it, such as mac: '11:22:33:44:55:66'" % (where, value))
    text = str(value).strip().lower()
    if not MAC_RE.match(text):
        raise BoardError("%s: '%s' is not a MAC address (six hex pairs separated by ':' or '-', such as dc:a6:32:01:02:03)" % (where, value))
    return text.replace('-', ':')


def normalize_serial(where, value):
    """The serial the boot ROM asks TFTP for: the last 8 hex digits of Serial in /proc/cpuinfo."""
    text = str(value).strip().lower()
    if not SERIAL_RE.match(text):
        hint = ': quote it, YAML read it as a number' if _is_int(value) else ''
        raise BoardError("%s: serial '%s' is not 8 (or 16) hex digits as in /proc/cpuinfo%s" % (where, value, hint))
    return text[-8:]


def normalize_boot(where, value):
    text = str(value).strip().lower()
    if text not in BOOT_SOURCES:
        raise BoardError("%s: boot must be one of %s, got '%s'" % (where, ', '.join(BOOT_SOURCES), value))
    return text


def normalize_module(where, value):
    """The module type in its canonical name (MODULES), from the spellings people use:
    'CM3+', 'cm3plus', 'CM3+ Lite', 'cm3l', 'CM3Lite', 'cm3-lite', 'compute module 3+'. None stays None."""
    if value is None:
        return None
    text = str(value).strip().lower()
    for noise in ('compute module', 'computemodule', ' ', '_', '-'):
        text = text.replace(noise, '')
    if text and text[0].isdigit():
        text = 'cm' + text
    text = text.replace('+', 'plus')
    if text.startswith('cm3p') and not text.startswith('cm3plus'):
        text = 'cm3plus' + text[4:]
    lite = False
    for suffix in ('lite', 'l'):
        if text.endswith(suffix) and text[:-len(suffix)] in ('cm1', 'cm3', 'cm3plus'):
            text, lite = text[:-len(suffix)], True
            break
    if text == 'cm1' and lite:
        raise BoardError("%s: module '%s': the Compute Module 1 has no Lite variant (every CM1 has 4 GB of eMMC); use module: cm1" % (where, value))
    name = text + ('-lite' if lite else '')
    if name not in MODULE_TYPES:
        raise BoardError("%s: module must be one of %s, got '%s'" % (where, MODULE_RULE, value))
    return name


def module_boot_problem(module, boot):
    """None when a module of this type can boot from this source, else a sentence that says why not
    and what to do (docs/hardware.md "Compute modules")."""
    if module is None or boot is None:
        return None
    info = MODULE_TYPES[module]
    if boot == 'netboot' and not info['netboot']:
        return ("a %s (%s) cannot network boot: network boot is in the boot ROM of the BCM2837 only (CM3, CM3+);"
                " boot it from its eMMC (boot: emmc) or put a CM3 or CM3+ in this slot" % (info['label'], info['soc']))
    if boot == 'emmc' and info['lite']:
        return ("a %s has no eMMC: it boots from the microSD card of its slot (boot: sd) or from the network (boot: netboot)"
                % info['label'])
    if boot == 'sd' and not info['lite']:
        return ("a %s has eMMC on the SD interface the slot's microSD card would use, so it cannot boot from a card:"
                " boot it from its eMMC (boot: emmc)%s, or use a Lite module for the card"
                % (info['label'], ' or from the network (boot: netboot)' if info['netboot'] else ''))
    return None


def check_module_boot(where, module, boot):
    problem = module_boot_problem(module, boot)
    if problem:
        raise BoardError('%s: %s' % (where, problem))


def image_problems(info, module=None, boot=None):
    """Why an image does not fit a node, as a list of sentences (empty: it fits).

    info: what turingpi.cluster.image_info returned for the image (its modules, problems);
    module: the node's module type (turingpi_module, any spelling normalize_module takes), or None
    when the inventory does not say: then the image must fit at least one module type;
    boot: the node's boot source, to check the module can boot from it (the plan checks it too).
    """
    if not isinstance(info, dict) or not isinstance(info.get('modules'), dict):
        raise BoardError('image_problems: expected the result of turingpi.cluster.image_info (a dictionary with modules), got %s'
                         % type(info).__name__)
    problems = list(info.get('problems') or [])
    modules = info['modules']
    if module is not None:
        module = normalize_module('module', module)
        boot_problem = module_boot_problem(module, normalize_boot('boot', boot) if boot is not None else None)
        if boot_problem:
            problems.append(boot_problem)
        entry = modules.get(MODULE_TYPES[module]['family'])
        if entry is not None:
            problems.extend(p for p in entry.get('problems') or [] if p not in problems)
    elif modules and not any(entry.get('runs') for entry in modules.values()):
        problems.append('no module of the Turing Pi V1 (CM1, CM3, CM3+) can run this image: %s'
                        % '; '.join('%s: %s' % (MODULE_TYPES[f]['label'], (modules[f].get('problems') or ['?'])[0])
                                    for f in MODULE_FAMILIES if f in modules))
    return problems


def normalize_power(where, value):
    # Unquoted on/off in YAML 1.1 are booleans.
    if value is True:
        return 'on'
    if value is False:
        return 'off'
    text = str(value).strip().lower()
    if text not in POWER_STATES:
        raise BoardError("%s: power must be 'on' or 'off', got '%s'" % (where, value))
    return text


def parse_subnet(where, value):
    text = str(value).strip() if value is not None else DEFAULT_SUBNET
    try:
        subnet = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise BoardError("%s: '%s' is not a subnet in CIDR notation with the host bits zero, such as 10.77.0.0/24 (%s)" % (where, text, exc))
    if subnet.num_addresses < 4:
        raise BoardError("%s: subnet %s is too small for a board" % (where, subnet))
    return subnet


def address_in_subnet(where, key, value, subnet):
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise BoardError("%s: %s '%s' is not an IP address" % (where, key, value))
    if subnet is not None:
        if address not in subnet:
            raise BoardError("%s: %s %s is outside the cluster subnet %s" % (where, key, address, subnet))
        if address in (subnet.network_address, subnet.broadcast_address):
            raise BoardError("%s: %s %s is the network or broadcast address of %s" % (where, key, address, subnet))
    return address


def default_router(subnet):
    """The master's cluster address when none is given: the subnet's first host address."""
    return subnet.network_address + 1


def default_address(where, subnet, node_offset, slot):
    """The one address rule: a node's address is the network address + node_offset + slot."""
    address = subnet.network_address + node_offset + slot
    if address not in subnet or address == subnet.broadcast_address:
        raise BoardError("%s: the default address %s (network + node_offset %d + slot) is outside the cluster subnet %s;"
                         " set the node's address or the node offset" % (where, address, node_offset, subnet))
    return address


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


def _ip_or_none(value):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None  # a DNS name


# ---------------------------------------------------------------------------------------
# The board file (turingpi.cluster.board inventory plugin)
# ---------------------------------------------------------------------------------------
BOARD_KEYS = ('name', 'master', 'network', 'bus', 'defaults', 'vars', 'slots')
MASTER_KEYS = ('address', 'user', 'port', 'jump', 'jump_ssh_args')
NETWORK_KEYS = ('subnet', 'router', 'node_offset')
DEFAULT_KEYS = ('module', 'boot', 'image', 'power', 'user', 'port')
SLOT_KEYS = ('hostname', 'mac', 'serial', 'module', 'boot', 'image', 'power', 'address', 'user', 'port', 'vars')
MASTER_SLOT_KEYS = ('hostname', 'mac', 'serial', 'module', 'boot', 'image', 'power', 'vars')


def _check_keys(where, data, known):
    if not isinstance(data, dict):
        raise BoardError("%s: expected a dictionary, got %s" % (where, type(data).__name__))
    for key in data:
        if key not in known:
            raise BoardError("%s: unknown key '%s' (known keys: %s)" % (where, key, ', '.join(known)))


def _check_vars(where, data):
    if not isinstance(data, dict):
        raise BoardError("%s: expected a dictionary of variables, got %s" % (where, type(data).__name__))


def _text(where, key, value):
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise BoardError("%s: '%s' must be a non-empty string, got %r" % (where, key, value))
    return value.strip()


def _port(where, key, value):
    if value is None:
        return None
    if isinstance(value, bool) or not _is_int(value) and not (isinstance(value, str) and value.isdigit()):
        raise BoardError("%s: '%s' must be a port number from 1 to 65535, got %r" % (where, key, value))
    port = int(value)
    if not 1 <= port <= 65535:
        raise BoardError("%s: '%s' must be a port number from 1 to 65535, got %r" % (where, key, value))
    return port


class Board(object):
    """One validated board of a board file: its network and the hosts it contributes."""

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
        self.bus = _text(self.where, 'bus', str(bus) if _is_int(bus) else bus)

        defaults = data.get('defaults') or {}
        _check_keys('%s defaults' % self.where, defaults, DEFAULT_KEYS)
        self.defaults = defaults
        self.vars = data.get('vars') or {}
        _check_vars('%s vars' % self.where, self.vars)

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
        self.subnet = parse_subnet(where, _text(where, 'subnet', network.get('subnet')))
        offset = network.get('node_offset', DEFAULT_NODE_OFFSET)
        if not _is_int(offset) or offset < 0:
            raise BoardError("%s: 'node_offset' must be a whole number of 0 or more, got %r" % (where, offset))
        self.node_offset = offset
        router = _text(where, 'router', network.get('router'))
        self.router = address_in_subnet(where, 'router', router, self.subnet) if router else default_router(self.subnet)

    def _parse_master(self, master):
        where = '%s master' % self.where
        _check_keys(where, master, MASTER_KEYS)
        self.master_address = _text(where, 'address', master.get('address'))
        self.master_user = _text(where, 'user', master.get('user'))
        self.master_port = _port(where, 'port', master.get('port')) or DEFAULT_SSH_PORT
        self.jump_ssh_args = _text(where, 'jump_ssh_args', master.get('jump_ssh_args'))
        if self.jump_ssh_args and '"' in self.jump_ssh_args:
            raise BoardError("%s: jump_ssh_args must not contain double quotes (it goes inside ProxyCommand=\"...\")" % where)
        jump = str(master.get('jump', 'auto')).strip().lower()
        if jump not in JUMP_MODES:
            raise BoardError("%s: jump must be one of %s, got '%s'" % (where, ', '.join(JUMP_MODES), master.get('jump')))
        address = _ip_or_none(self.master_address) if self.master_address else None
        if jump == 'auto':
            self.jump = bool(self.master_address) and (address is None or address not in self.subnet)
        else:
            self.jump = jump == 'always'

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
        check_hostname(where, hostname)
        mac = merged.get('mac')
        if mac is None and slot != MASTER_SLOT:
            raise BoardError("%s: 'mac' is required: the router hands out the node's fixed address by MAC" % where)
        host = {
            'name': hostname,
            'slot': slot,
            'role': 'master' if slot == MASTER_SLOT else 'node',
            'mac': normalize_mac(where, mac) if mac is not None else None,
            'serial': normalize_serial(where, merged['serial']) if merged.get('serial') is not None else None,
            'module': normalize_module(where, merged.get('module')),
            'boot': normalize_boot(where, merged.get('boot', DEFAULT_BOOT)),
            'image': _text(where, 'image', merged.get('image')),
            'power': normalize_power(where, merged.get('power', DEFAULT_POWER)),
            'vars': data.get('vars') or {},
        }
        check_module_boot(where, host['module'], host['boot'])
        _check_vars('%s vars' % where, host['vars'])
        if slot == MASTER_SLOT:
            if host['power'] != 'on':
                raise BoardError("%s: the master cannot be declared off: it drives the bus and routes the nodes" % where)
            host['address'] = self.router
            host['user'] = self.master_user
            host['port'] = self.master_port
            return host
        if merged.get('address') is not None:
            host['address'] = address_in_subnet(where, 'address', merged['address'], self.subnet)
        else:
            host['address'] = default_address(where, self.subnet, self.node_offset, slot)
        if host['address'] == self.router:
            raise BoardError("%s: address %s is the router's (the master's) address" % (where, host['address']))
        if self.master_address and _ip_or_none(self.master_address) == host['address']:
            raise BoardError("%s: address %s is the master's own address (master.address)" % (where, host['address']))
        host['user'] = _text(where, 'user', merged.get('user'))
        host['port'] = _port(where, 'port', merged.get('port'))
        return host

    def hostvars(self, host):
        """The turingpi_* variables (and connection variables) of one host of this board."""
        hostvars = {
            'turingpi_board': self.name,
            'turingpi_board_group': self.group,
            'turingpi_slot': host['slot'],
            'turingpi_role': host['role'],
            'turingpi_mac': host['mac'],
            'turingpi_serial': host['serial'],
            'turingpi_module': host['module'],
            'turingpi_boot': host['boot'],
            'turingpi_image': host['image'],
            'turingpi_power': host['power'],
            'turingpi_address': str(host['address']),
            'turingpi_subnet': str(self.subnet),
            'turingpi_router': str(self.router),
            'turingpi_master': self.master['name'],
        }
        if host['role'] == 'master':
            hostvars['ansible_host'] = self.master_address or str(self.router)
            if self.bus is not None:
                hostvars['turingpi_bus'] = self.bus
        else:
            hostvars['ansible_host'] = str(host['address'])
            if self.jump:
                jump_host = self.master_address or str(self.router)
                hostvars['ansible_ssh_common_args'] = proxy_jump(self.master_user, jump_host, self.master_port, self.jump_ssh_args)
        if host['user']:
            hostvars['ansible_user'] = host['user']
        if host['port']:
            hostvars['ansible_port'] = host['port']
        hostvars.update(self.vars)
        hostvars.update(host['vars'])
        return hostvars


def load_boards(boards, sanitize):
    """Validate a whole board file: every board, then what must be unique across boards."""
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
            _unique(macs, host['mac'], where, 'MAC', host['name'])
            _unique(serials, host['serial'], where, 'serial', host['name'])
        names[board.name] = True
        groups[board.group] = board.name
        parsed.append(board)
    for name, where in hostnames.items():
        if name in groups or name in RESERVED_GROUPS:
            raise BoardError("%s: hostname '%s' is also the name of a group; rename the host or the board" % (where, name))
    return parsed


def _unique(seen, value, where, what, name):
    if value is None:
        return
    if value in seen:
        raise BoardError("%s: %s %s is already used by %s" % (where, what, value, seen[value]))
    seen[value] = "%s (%s)" % (name, where)


# ---------------------------------------------------------------------------------------
# The plan of any inventory (turingpi.cluster.board_plan filter)
# ---------------------------------------------------------------------------------------
# Settings of the master's netboot role that the inventory contract supplies when the master does
# not set them: its cluster address and subnet.
NETBOOT_FROM_CONTRACT = {'netboot_server_address': 'router', 'netboot_network': 'subnet'}


def _get(hostvars, key, default=None):
    value = hostvars.get(key, default)
    return default if value is None else value


def _master_of(name, node, masters):
    """Which master drives a node: its turingpi_master, else the one master of its turingpi_board.

    An inventory with one master and nodes that name no board is one board.
    """
    where = "node '%s'" % name
    named = _get(node, 'turingpi_master')
    if named:
        named = str(named)
        if named not in masters:
            raise BoardError("%s: turingpi_master '%s' is not a host of the master group (%s)" % (where, named, ', '.join(sorted(masters)) or 'empty'))
        return named
    board = _get(node, 'turingpi_board')
    same = sorted(m for m, mv in masters.items() if _get(mv, 'turingpi_board') == board)
    if len(same) == 1:
        return same[0]
    if not same and board is None and len(masters) == 1:
        return next(iter(masters))
    if not same:
        raise BoardError("%s: no master drives it: set turingpi_master to the inventory name of the master (slot 1)"
                         " of its board, or the same turingpi_board on the node and its master" % where)
    raise BoardError("%s: masters %s share its board '%s': set turingpi_master to the one that drives it"
                     % (where, ', '.join(same), board or ''))


def _slot_of(where, hostvars, required):
    value = hostvars.get('turingpi_slot')
    if value is None:
        if required:
            raise BoardError("%s: turingpi_slot is not set: give every node its slot (2 to 7) on the board" % where)
        return None
    return parse_slot(where, value)


def _master_plan(name, hostvars, netboot_defaults):
    where = "master '%s'" % name
    slot = _slot_of(where, hostvars, required=False)
    if slot is not None and slot != MASTER_SLOT:
        raise BoardError("%s: turingpi_slot is %d, but the master sits in slot 1 (the slot that drives the bus)" % (where, slot))
    subnet_text = _get(hostvars, 'turingpi_subnet')
    subnet = parse_subnet(where, subnet_text) if subnet_text else None
    router = _get(hostvars, 'turingpi_router') or _get(hostvars, 'turingpi_address')
    if router:
        router = address_in_subnet(where, 'turingpi_router', router, subnet)
    elif subnet is not None:
        router = default_router(subnet)
    offset = _get(hostvars, 'turingpi_node_offset', DEFAULT_NODE_OFFSET)
    if not _is_int(offset) and not (isinstance(offset, str) and offset.isdigit()):
        raise BoardError("%s: turingpi_node_offset must be a whole number of 0 or more, got %r" % (where, offset))
    power = _get(hostvars, 'turingpi_power')
    module = normalize_module(where, _get(hostvars, 'turingpi_module'))
    boot = _get(hostvars, 'turingpi_boot')
    check_module_boot(where, module, normalize_boot(where, boot) if boot is not None else None)
    plan = {
        'name': name,
        'board': _get(hostvars, 'turingpi_board'),
        'module': module,
        'bus': str(_get(hostvars, 'turingpi_bus', DEFAULT_BUS)),
        'persist': bool(_get(hostvars, 'turingpi_power_persist', False)),
        'subnet': str(subnet) if subnet is not None else None,
        'prefix': subnet.prefixlen if subnet is not None else None,
        'router': str(router) if router else None,
        'node_offset': int(offset),
        'power': normalize_power(where, power) if power is not None else None,
        'nodes': [],
    }
    plan['_subnet'] = subnet
    plan['_own'] = set(a for a in (router, _ip_or_none(_get(hostvars, 'ansible_host', ''))) if a)
    plan['netboot'] = _netboot_settings(hostvars, plan, netboot_defaults or {})
    return plan


def _netboot_settings(hostvars, plan, defaults):
    """The master's netboot settings, one per default of the netboot role: the master's own
    variable, else the contract's value, else the role's default."""
    settings = {}
    for key in sorted(set(defaults) | set(NETBOOT_FROM_CONTRACT)):
        value = hostvars.get(key)
        if value is None and key in NETBOOT_FROM_CONTRACT:
            value = plan[NETBOOT_FROM_CONTRACT[key]]
        settings[key] = value if value is not None else defaults.get(key)
    return settings


def _node_plan(name, hostvars, master):
    where = "node '%s'" % name
    check_hostname(where, name)
    slot = _slot_of(where, hostvars, required=True)
    if slot == MASTER_SLOT:
        raise BoardError("%s: turingpi_slot is 1, the master's slot; nodes sit in slots 2 to 7" % where)
    subnet = master['_subnet']
    address = _get(hostvars, 'turingpi_address')
    if address:
        address = address_in_subnet(where, 'turingpi_address', address, subnet)
    elif subnet is not None:
        address = default_address(where, subnet, master['node_offset'], slot)
    if address is not None and address in master['_own']:
        raise BoardError("%s: address %s is the master's own address; give the node another one (turingpi_address)" % (where, address))
    mac = _get(hostvars, 'turingpi_mac')
    serial = _get(hostvars, 'turingpi_serial')
    boot = normalize_boot(where, _get(hostvars, 'turingpi_boot', DEFAULT_BOOT))
    module = normalize_module(where, _get(hostvars, 'turingpi_module'))
    check_module_boot(where, module, boot)
    return {
        'name': name,
        'master': master['name'],
        'board': _get(hostvars, 'turingpi_board', master['board']),
        'bus': master['bus'],
        'slot': slot,
        'module': module,
        'boot': boot,
        'image': _get(hostvars, 'turingpi_image'),
        'power': normalize_power(where, _get(hostvars, 'turingpi_power', DEFAULT_POWER)),
        'address': str(address) if address is not None else None,
        'mac': normalize_mac(where, mac) if mac else None,
        'serial': normalize_serial(where, serial) if serial else None,
    }


def plan_cluster(hostvars, master_names, node_names, netboot_defaults=None):
    """The plan of a whole inventory, from the turingpi_* variables of its hosts.

    hostvars: a mapping from host name to that host's variables (only .get is used);
    master_names, node_names: the members of the master and node groups;
    netboot_defaults: the netboot role's defaults (read from the role, never copied).
    Raises BoardError naming the host and what to fix.
    """
    masters = {}
    for name in master_names:
        masters[name] = _master_plan(name, hostvars[name], netboot_defaults)
    nodes = {}
    for name in node_names:
        if name in masters or name in nodes:
            continue
        node_vars = hostvars[name]
        master = masters[_master_of(name, node_vars, dict((m, hostvars[m]) for m in masters))]
        nodes[name] = _node_plan(name, node_vars, master)
        master['nodes'].append(nodes[name])
    for master in masters.values():
        _finish_master(master)
    return {'masters': masters, 'nodes': nodes}


def _finish_master(master):
    where = "master '%s'" % master['name']
    master['nodes'].sort(key=lambda n: n['slot'])
    slots, addresses, macs, serials = {}, {}, {}, {}
    for node in master['nodes']:
        for seen, value, what in ((slots, node['slot'], 'slot'), (addresses, node['address'], 'address'),
                                  (macs, node['mac'], 'MAC'), (serials, node['serial'], 'serial')):
            if value is None:
                continue
            if value in seen:
                raise BoardError("%s: nodes '%s' and '%s' both have %s %s" % (where, seen[value], node['name'], what, value))
            seen[value] = node['name']
    declared = dict((n['slot'], n['power']) for n in master['nodes'])
    if master['power'] is not None:
        declared[MASTER_SLOT] = master['power']
    master['slots'] = dict((n['slot'], n['name']) for n in master['nodes'])
    master['declared_power'] = declared
    master['local_power'] = dict((n['slot'], n['power']) for n in master['nodes'] if n['boot'] != 'netboot')
    master['netboot_power'] = dict((n['slot'], n['power']) for n in master['nodes'] if n['boot'] == 'netboot')
    master['router_nodes'] = [{'name': n['name'], 'mac': n['mac'], 'ip': n['address']}
                              for n in master['nodes'] if n['mac'] and n['address']]
    # image: the name of the node's image (the netboot role's netboot_images key), or None;
    # module: its module type, or None (the role checks the image fits it).
    master['netboot_nodes'] = [{'name': n['name'], 'serial': n['serial'], 'image': n['image'], 'module': n['module']}
                               for n in master['nodes'] if n['boot'] == 'netboot' and n['serial']]
    master['netboot_without_serial'] = [n['name'] for n in master['nodes'] if n['boot'] == 'netboot' and not n['serial']]
    master['names'] = ['master'] + ([master['name'].split('.')[0]] if master['name'].split('.')[0] != 'master' else [])
    del master['_subnet']
    del master['_own']


def node_names(value):
    """A list of inventory names from a comma-separated string or a list (reprovision_nodes)."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(',')
    if not isinstance(value, (list, tuple)):
        raise BoardError("expected node names as a comma-separated string or a list, got %r" % (value,))
    names = []
    for item in value:
        text = str(item).strip()
        if text and text not in names:
            names.append(text)
    return names
