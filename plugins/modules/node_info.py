#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: node_info
short_description: Read what a cluster node is and how it is set up, in one pass
version_added: 1.0.0
description:
  - On a compute module (or any Linux host that plays one), reads what the C(turingpi.cluster.node) role needs
    to decide what to change, and what C(playbooks/bootstrap.yml) checks afterwards. The module's serial number
    and model, how it booted and from which root, whether it runs in a container, the kernel command line it runs
    with and the one on its boot partition, swap, the install state of some packages, the state of some systemd
    units, the static host name, the node's local facts file and how some names resolve.
  - One module run instead of a dozen small reads. Every task costs a Python start on the node, which on a CM3 is
    most of the task's time.
  - Reads only; changes nothing.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  packages:
    description:
      - Packages whose install state to report, asked in one C(dpkg-query) (Debian family) or C(rpm -q) call.
    type: list
    elements: str
    default: []
  units:
    description:
      - systemd units whose state to report, asked in one C(systemctl show) call.
    type: list
    elements: str
    default: []
  cmdline_paths:
    description:
      - Where the Raspberry Pi boot partition's C(cmdline.txt) may be; the first that exists is read.
    type: list
    elements: path
    default: [/boot/firmware/cmdline.txt, /boot/cmdline.txt]
  facts_file:
    description: The local facts file that the node role writes; its JSON is returned as RV(local_facts).
    type: path
    default: /etc/ansible/facts.d/turingpi.fact
  resolve:
    description: Names to resolve the way the node's programs do (C(getaddrinfo), so C(/etc/hosts) and DNS).
    type: list
    elements: str
    default: []
  directories:
    description: Directories whose owner and mode to report (symbolic links followed), as RV(directories).
    type: list
    elements: path
    default: []
  fs_root:
    description:
      - Where the node's file system is mounted. Tests point it at a fake tree; the commands
        (C(dpkg-query), C(rpm), C(systemctl)) always ask the running system.
    type: path
    default: /
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.INFO_MODULE
notes:
  - The serial number comes from C(/proc/cpuinfo) or the device tree; containers and virtual machines have none
    and return an empty string.
seealso:
  - module: turingpi.cluster.cmb_info
'''

EXAMPLES = r'''
- name: Read the node
  turingpi.cluster.node_info:
  register: node

- name: Show the directory its boot ROM asks TFTP for
  ansible.builtin.debug:
    msg: "{{ node.netboot_serial }}"

- name: Read the state of the time client and whether the master's name resolves
  turingpi.cluster.node_info:
    packages: [chrony]
    units: [chrony.service]
    resolve: [master]
  register: node
'''

RETURN = r'''
serial:
  description: The module's serial number (C(/proc/cpuinfo) or the device tree), or an empty string.
  returned: success
  type: str
  sample: "00000000a1b2c3d4"
netboot_serial:
  description: The last 8 hex digits of RV(serial) in lower case, the TFTP directory the boot ROM asks for; empty without a serial.
  returned: success
  type: str
  sample: a1b2c3d4
model:
  description: The model (device tree, C(/proc/cpuinfo), or the DMI product name), or an empty string.
  returned: success
  type: str
  sample: Raspberry Pi Compute Module 3 Plus Rev 1.0
container:
  description: Whether the node runs in a container.
  returned: success
  type: bool
virtualization:
  description: The container type (as systemd names it) when RV(container) is true, otherwise an empty string.
  returned: success
  type: str
  sample: systemd-nspawn
root:
  description: What is mounted on C(/).
  returned: success
  type: dict
  sample: {device: "10.0.0.1:/srv/netboot/nfs/node2", fstype: nfs}
boot_source:
  description: How the node booted, from its root file system.
  returned: success
  type: str
  choices: [netboot, mmc, usb, container, unknown]
  sample: netboot
nodename:
  description: The running host name (C(uname -n)).
  returned: success
  type: str
  sample: node2
hostname:
  description: The static host name in C(/etc/hostname), or an empty string.
  returned: success
  type: str
  sample: node2
kernel_cmdline:
  description: The parameters the running kernel booted with (C(/proc/cmdline)).
  returned: success
  type: list
  elements: str
boot_cmdline:
  description: The first O(cmdline_paths) entry that exists and its parameters; C(path) is empty when none exists.
  returned: success
  type: dict
  sample: {path: /boot/firmware/cmdline.txt, params: [console=serial0,115200, root=PARTUUID=0ee3e8a8-02, rootwait]}
swap:
  description:
    - C(active), the swap devices in use (C(/proc/swaps)); C(fstab), the swap lines of C(/etc/fstab) that are not
      commented out; C(zram_generator), whether systemd's zram generator is installed.
  returned: success
  type: dict
  sample: {active: [/var/swap], fstab: ["/var/swap none swap sw 0 0"], zram_generator: false}
packages:
  description: For each of O(packages), whether it is installed; null when the node has neither dpkg nor rpm.
  returned: success
  type: dict
  sample: {chrony: true, sudo: false}
units:
  description:
    - For each of O(units), C(load_state) (V(loaded), V(not-found), V(masked), ...), C(active_state),
      C(unit_file_state), C(condition_result) (whether its start conditions held when systemd last checked them)
      and C(conditions_checked) (whether systemd has checked them since boot). The values are null when the node
      has no running systemd.
  returned: success
  type: dict
  sample: {chrony.service: {load_state: loaded, active_state: inactive, unit_file_state: enabled, condition_result: false, conditions_checked: true}}
local_facts:
  description: The JSON in O(facts_file), or null when it is missing or not JSON.
  returned: success
  type: dict
directories:
  description:
    - For each of O(directories), C(exists) (a directory is there), C(mode) (octal string), C(uid) and C(gid);
      the last three are null when it does not exist.
  returned: success
  type: dict
  sample: {/etc/ssh/sshd_config.d: {exists: true, mode: "0755", uid: 0, gid: 0}}
resolved:
  description: For each of O(resolve), its addresses (an empty list when it does not resolve).
  returned: success
  type: dict
  sample: {master: [10.0.0.1]}
'''

import json
import os
import re
import socket
import stat

from ansible.module_utils.basic import AnsibleModule

# What the swap lines of /etc/fstab look like (the node role comments out the same lines).
FSTAB_SWAP = re.compile(r'^[^#\s]\S*\s+\S+\s+swap\s')
ZRAM_GENERATOR = '/usr/lib/systemd/system-generators/zram-generator'
CONTAINER_MARKERS = (('/.dockerenv', 'docker'), ('/run/.containerenv', 'podman'))
UNIT_PROPERTIES = ('LoadState', 'ActiveState', 'UnitFileState', 'ConditionResult', 'ConditionTimestampMonotonic')


class Node(object):
    """The node's files, read under fs_root."""

    def __init__(self, root):
        self.root = root

    def path(self, path):
        return os.path.join(self.root, path.lstrip('/'))

    def read(self, path, binary=False):
        try:
            with open(self.path(path), 'rb') as f:
                data = f.read()
        except (IOError, OSError):
            return None
        return data if binary else data.decode('utf-8', 'replace')

    def exists(self, path):
        return os.path.exists(self.path(path))


def _dt_string(data):
    """A device tree property: NUL-terminated text."""
    return data.replace(b'\x00', b'').decode('utf-8', 'replace').strip() if data else ''


def _cpuinfo_field(cpuinfo, name):
    match = re.search(r'^%s\s*:\s*(.+?)\s*$' % name, cpuinfo or '', re.MULTILINE)
    return match.group(1) if match else ''


def identity(node):
    cpuinfo = node.read('/proc/cpuinfo')
    serial = _cpuinfo_field(cpuinfo, 'Serial') or _dt_string(node.read('/sys/firmware/devicetree/base/serial-number', binary=True))
    if not re.match('^[0-9a-fA-F]+$', serial):
        serial = ''
    product = (node.read('/sys/class/dmi/id/product_name') or '').strip()
    model = (_dt_string(node.read('/sys/firmware/devicetree/base/model', binary=True))
             or _cpuinfo_field(cpuinfo, 'Model') or ('' if product == 'NA' else product))
    return dict(serial=serial, netboot_serial=serial[-8:].lower() if len(serial) >= 8 else '', model=model)


def virtualization(node):
    """The container type, the way systemd-detect-virt --container names it, or ''."""
    marker = (node.read('/run/systemd/container') or '').strip()
    if marker:
        return marker
    for path, name in CONTAINER_MARKERS:
        if node.exists(path):
            return name
    environ = node.read('/proc/1/environ', binary=True) or b''
    for entry in environ.split(b'\x00'):
        if entry.startswith(b'container='):
            return entry.split(b'=', 1)[1].decode('utf-8', 'replace') or 'container'
    return ''


def _unescape_mount(field):
    """/proc/mounts writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def root_mount(node):
    root = dict(device='', fstype='')
    for line in (node.read('/proc/self/mounts') or '').splitlines():
        fields = line.split()
        if len(fields) >= 3 and _unescape_mount(fields[1]) == '/':
            root = dict(device=_unescape_mount(fields[0]), fstype=fields[2])  # the last mount on / wins
    return root


def boot_source(root, container):
    if root['fstype'] in ('nfs', 'nfs4'):
        return 'netboot'
    if root['device'].startswith('/dev/mmcblk'):
        return 'mmc'
    if root['device'].startswith('/dev/sd'):
        return 'usb'
    return 'container' if container else 'unknown'


def boot_cmdline(node, paths):
    for path in paths:
        text = node.read(path)
        if text is not None:
            return dict(path=path, params=text.split())
    return dict(path='', params=[])


def swap(node):
    active = [line.split()[0] for line in (node.read('/proc/swaps') or '').splitlines()[1:] if line.strip()]
    fstab = [line for line in (node.read('/etc/fstab') or '').splitlines() if FSTAB_SWAP.match(line)]
    return dict(active=active, fstab=fstab, zram_generator=node.exists(ZRAM_GENERATOR))


def packages(module, names):
    if not names:
        return {}
    state = dict((name, None) for name in names)
    dpkg_query = module.get_bin_path('dpkg-query')
    rpm = module.get_bin_path('rpm')
    if dpkg_query:
        # rc 1 when some package is unknown: those are simply not installed.
        out = module.run_command([dpkg_query, '-W', '-f=${db:Status-Status} ${Package}\\n', '--'] + names)[1]
        installed = set(line.split()[1] for line in out.splitlines() if len(line.split()) == 2 and line.split()[0] == 'installed')
    elif rpm:
        out = module.run_command([rpm, '-q', '--qf', '%{NAME}\\n', '--'] + names)[1]
        installed = set(line.strip() for line in out.splitlines())
    else:
        return state
    return dict((name, name in installed) for name in names)


def units(module, names):
    if not names:
        return {}
    empty = dict(load_state=None, active_state=None, unit_file_state=None, condition_result=None, conditions_checked=None)
    state = dict((name, dict(empty)) for name in names)
    systemctl = module.get_bin_path('systemctl')
    if not systemctl:
        return state
    rc, out, err = module.run_command([systemctl, 'show', '--property=' + ','.join(UNIT_PROPERTIES), '--'] + names)
    if rc != 0:
        module.warn('systemctl show failed (%s): the units state is unknown' % (err or out).strip())
        return state
    # One block per unit, in the order asked, separated by empty lines.
    blocks = [b for b in re.split(r'\n\s*\n', out.strip()) if b.strip()]
    for name, block in zip(names, blocks):
        props = dict(line.split('=', 1) for line in block.splitlines() if '=' in line)
        state[name] = dict(
            load_state=props.get('LoadState') or None,
            active_state=props.get('ActiveState') or None,
            unit_file_state=props.get('UnitFileState', ''),
            condition_result=props.get('ConditionResult') == 'yes',
            conditions_checked=props.get('ConditionTimestampMonotonic', '0') not in ('', '0'),
        )
    return state


def local_facts(module, node, path):
    text = node.read(path)
    if text is None:
        return None
    try:
        facts = json.loads(text)
    except ValueError:
        module.warn('%s is not JSON: local_facts is null' % path)
        return None
    return facts if isinstance(facts, dict) else None


def directories(node, paths):
    found = {}
    for path in paths:
        try:
            st = os.stat(node.path(path))
        except OSError:
            st = None
        if st is None or not stat.S_ISDIR(st.st_mode):
            found[path] = dict(exists=False, mode=None, uid=None, gid=None)
        else:
            found[path] = dict(exists=True, mode='%04o' % stat.S_IMODE(st.st_mode), uid=st.st_uid, gid=st.st_gid)
    return found


def resolve(names):
    resolved = {}
    for name in names:
        try:
            infos = socket.getaddrinfo(name, None, 0, socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError):
            infos = []
        addresses = []
        for info in infos:
            if info[4][0] not in addresses:
                addresses.append(info[4][0])
        resolved[name] = addresses
    return resolved


def main():
    module = AnsibleModule(
        argument_spec=dict(
            packages=dict(type='list', elements='str', default=[]),
            units=dict(type='list', elements='str', default=[]),
            cmdline_paths=dict(type='list', elements='path', default=['/boot/firmware/cmdline.txt', '/boot/cmdline.txt']),
            facts_file=dict(type='path', default='/etc/ansible/facts.d/turingpi.fact'),
            resolve=dict(type='list', elements='str', default=[]),
            directories=dict(type='list', elements='path', default=[]),
            fs_root=dict(type='path', default='/'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not os.path.isdir(p['fs_root']):
        module.fail_json(msg='fs_root %s is not a directory: leave it at / on a node' % p['fs_root'])
    bad = [name for name in p['packages'] + p['units'] if not name or name.startswith('-') or any(c.isspace() for c in name)]
    if bad:
        module.fail_json(msg='not a package or unit name: %s' % ', '.join(repr(name) for name in bad))

    node = Node(p['fs_root'])
    kind = virtualization(node)
    root = root_mount(node)
    result = identity(node)
    result.update(
        changed=False,
        container=bool(kind),
        virtualization=kind,
        root=root,
        boot_source=boot_source(root, bool(kind)),
        nodename=os.uname()[1],
        hostname=(node.read('/etc/hostname') or '').strip(),
        kernel_cmdline=(node.read('/proc/cmdline') or '').split(),
        boot_cmdline=boot_cmdline(node, p['cmdline_paths']),
        swap=swap(node),
        packages=packages(module, p['packages']),
        units=units(module, p['units']),
        local_facts=local_facts(module, node, p['facts_file']),
        resolved=resolve(p['resolve']),
        directories=directories(node, p['directories']),
    )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
