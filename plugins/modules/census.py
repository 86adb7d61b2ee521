#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: census
short_description: Learn which compute module sits in which Turing Pi V1 slot, from what it does on the wire
version_added: 1.0.0
description:
  - Runs on the master (slot 1), whose dnsmasq answers the modules' DHCP and TFTP requests. Powers the
    given slots one at a time through the Cluster Management Bus (the volatile shadow of register 0xF2
    only; never slot 1) and learns what each module does.
  - While a slot is on, reads the status register 0xF8 (bit = populated AND powered); a clear bit is an
    empty slot, switched off again at once.
  - The MAC is the first MAC that asks DHCP after the slot got power (MACs of other slots and O(ignore_macs)
    do not count). The serial is the directory of the boot ROM's TFTP request for C(<serial>/start.elf)
    from the address dnsmasq offered that MAC (see C(docs/hardware.md), "Network boot"). The slot goes off
    as soon as the serial is seen.
  - A module that asks DHCP but no TFTP within O(tftp_timeout) boots from its own storage (eMMC or SD card);
    with O(ssh_user) the module reads its serial and model from its C(/proc/cpuinfo) over SSH, from the master.
  - Slots that are on are not power-cycled unless O(restart_running=true); they are reported as RV(slots[].state=running).
  - Leaves every slot's power (0xF2) and the SEE bit (0xF4) as it found them, and verifies it.
  - The dnsmasq must answer boot ROMs it does not know (a dynamic range, option 43 and TFTP with
    C(bootcode.bin)) for the census' duration; the C(turingpi.cluster.census) playbook arranges it.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  slots:
    description: The slots to survey, 2 to 7.
    type: list
    elements: int
    default: [2, 3, 4, 5, 6, 7]
  restart_running:
    description:
      - V(true) power-cycles the slots that are on too, and switches them on again afterwards.
      - V(false) reads them as they run (RV(slots[].state=running)); the playbook reads those over SSH.
    type: bool
    default: false
  running:
    description:
      - What was read over SSH from nodes that run (the playbook does it), as a list of V(slot), V(mac) and either
        V(cpuinfo) (the text of C(/proc/cpuinfo)) or V(serial) and V(model); reported for those slots, and their
        MACs never count as another slot's module.
    type: list
    elements: dict
    default: []
  ignore_macs:
    description: MACs that never count as a slot's module (machines already running on the segment).
    type: list
    elements: str
    default: []
  unit:
    description: The systemd unit of the master's dnsmasq, whose journal the census reads.
    type: str
    default: dnsmasq
  tftp_root:
    description:
      - The TFTP root dnsmasq serves, to read the paths it logs relative to it.
      - With O(bootcode), the census puts C(bootcode.bin) there when it is missing (the boot ROM asks for it
        before C(<serial>/start.elf)) and removes it afterwards.
    type: path
  bootcode:
    description:
      - Where the C(bootcode.bin) to serve comes from, a path on the master. A C(bootcode.bin) file, or a raw OS
        image (such as the netboot role's C(netboot_image)) whose firmware partition holds one.
      - Used only when O(tftp_root) has no C(bootcode.bin).
    type: path
  log_file:
    description: Read the boot events from this file of journal JSON lines instead of the journal (tests).
    type: path
  settle:
    description: Seconds between switching a slot on and reading its status bit.
    type: float
    default: 0.5
  dhcp_timeout:
    description: Seconds to wait for a powered module's first DHCP request before it is reported as V(silent).
    type: float
    default: 30
  tftp_timeout:
    description: Seconds after its first DHCP request to wait for the module's C(<serial>/start.elf) request.
    type: float
    default: 10
  poll:
    description: Seconds between two reads of the journal.
    type: float
    default: 0.5
  off_time:
    description: Seconds a slot that was on is held off when O(restart_running=true).
    type: float
    default: 1.0
  ssh_user:
    description:
      - The user to log in as (from the master) on a module that boots from its own storage, to read its
        serial and model. Unset, those stay unknown.
    type: str
  ssh_private_key:
    description: The master's private key for O(ssh_user).
    type: path
  ssh_timeout:
    description: Seconds after power-on to keep trying SSH on a module that boots from its own storage.
    type: float
    default: 90
extends_documentation_fragment:
  - turingpi.cluster._cmb
  - turingpi.cluster._cmb.ACTIONGROUP_CMB
  - turingpi.cluster._attributes
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is powered; RV(plan) says which slots the census would power and which it would read.
  diff_mode:
    support: none
  idempotent:
    support: full
    details:
      - The power is left as found; C(changed) is V(true) when a slot was switched, to say the board was touched.
notes:
  - The bus lock is held for the whole census.
  - A module whose boot ROM does not ask the network (network boot not enabled, and no bootable storage) shows
    nothing on the wire, and is reported as V(silent).
'''

EXAMPLES = r'''
- name: Learn the modules of slots 2 to 7
  turingpi.cluster.census:
    bus: '1'
  register: census

- name: What the census would do
  turingpi.cluster.census:
    slots: [2, 3]
  check_mode: true
'''

RETURN = r'''
plan:
  description: Which slots are (or would be) powered one at a time, and which are read as they run.
  returned: always
  type: dict
  sample: {"probe": [2, 3, 4], "running": [5], "power_register": "0x22"}
slots:
  description: What each surveyed slot holds. Empty in check mode.
  returned: always
  type: list
  elements: dict
  contains:
    slot:
      description: The slot number.
      type: int
    state:
      description:
        - V(netboot) (the boot ROM asked for its serial's C(start.elf)), V(local) (DHCP, no TFTP),
          V(silent) (a module, nothing on the wire), V(empty) (no module), V(running) (was on, not cycled).
      type: str
    mac:
      description: The MAC of its DHCP requests, or null.
      type: str
    serial:
      description: Its serial (8 hex digits), or null.
      type: str
    model:
      description: The model from its C(/proc/cpuinfo) (read over SSH), or null.
      type: str
    boot:
      description: V(netboot), V(local) or null.
      type: str
    ip:
      description: The address dnsmasq offered it during the census.
      type: str
    tftp:
      description: The files it asked TFTP for.
      type: list
      elements: str
    seconds:
      description: How long the slot took.
      type: float
    note:
      description: Why its serial is unknown.
      type: str
      returned: when it is
  sample: [{"slot": 2, "state": "netboot", "mac": "02:00:00:00:00:02", "serial": "0000aa02", "boot": "netboot"}]
summary:
  description: One line per slot, for people.
  returned: always
  type: list
  elements: str
  sample: ["slot 2: netboot, MAC 02:00:00:00:00:02, serial 0000aa02 (2.1 s)", "slot 3: empty"]
power_register:
  description: Register 0xF2 after the census (the same as before).
  returned: always
  type: str
  sample: '0x02'
'''

import os

from ansible_collections.turingpi.cluster.plugins.module_utils import _boot_log as boot_log
from ansible_collections.turingpi.cluster.plugins.module_utils import _census as census
from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import NODE_SLOTS
from ansible_collections.turingpi.cluster.plugins.module_utils._cmb_module import CMBModule


def serve_bootcode(module, tftp_root, source):
    """Put bootcode.bin at the TFTP root when it is missing; returns its path when this run put it there."""
    if not tftp_root:
        return None
    if not source:
        if not os.path.exists(os.path.join(tftp_root, 'bootcode.bin')):
            module.warn('no bootcode.bin at the TFTP root %s and no bootcode to take it from: a boot ROM stops before it asks'
                        ' for <serial>/start.elf; set bootcode (the playbook: census_bootcode)' % tftp_root)
        return None
    target = os.path.join(tftp_root, 'bootcode.bin')
    if os.path.exists(target):
        return None
    data = census.bootcode_from(source)
    if not os.path.isdir(tftp_root):
        os.makedirs(tftp_root, 0o755)
    with open(target, 'wb') as handle:
        handle.write(data)
    os.chmod(target, 0o644)
    return target


def main():
    module = CMBModule(
        argument_spec=dict(
            slots=dict(type='list', elements='int', default=list(NODE_SLOTS)),
            restart_running=dict(type='bool', default=False),
            running=dict(type='list', elements='dict', default=[]),
            ignore_macs=dict(type='list', elements='str', default=[]),
            unit=dict(type='str', default='dnsmasq'),
            tftp_root=dict(type='path'),
            bootcode=dict(type='path'),
            log_file=dict(type='path'),
            settle=dict(type='float', default=0.5),
            dhcp_timeout=dict(type='float', default=30.0),
            tftp_timeout=dict(type='float', default=10.0),
            poll=dict(type='float', default=0.5),
            off_time=dict(type='float', default=1.0),
            ssh_user=dict(type='str'),
            ssh_private_key=dict(type='path'),
            ssh_timeout=dict(type='float', default=90.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    slots = sorted(set(params['slots']))
    bad = [s for s in slots if s not in NODE_SLOTS]
    if bad:
        module.fail_json(msg='slots %s: the census surveys the node slots 2 to 7 (slot 1 is the master, never switched)'
                         % ', '.join(str(s) for s in bad))

    def events(since):
        try:
            return boot_log.read_events(module.run_command, since=since, unit=params['unit'],
                                        tftp_root=params['tftp_root'], log_file=params['log_file'])
        except boot_log.BootLogError as exc:
            raise census.CensusError(str(exc))

    known = {}
    for entry in params['running']:
        try:
            info = dict((k, str(entry[k])) for k in ('mac', 'serial', 'model') if entry.get(k))
            if entry.get('cpuinfo'):
                serial, model = census.parse_cpuinfo(entry['cpuinfo'])
                info.update((k, v) for k, v in (('serial', serial), ('model', model)) if v)
            known[int(entry['slot'])] = info
        except (KeyError, TypeError, ValueError):
            module.fail_json(msg='running: each entry needs its slot (2 to 7), got %r' % (entry,))

    ssh = None
    if params['ssh_user']:
        def ssh(ip):
            argv = ['ssh', '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', '-o', 'StrictHostKeyChecking=no',
                    '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR']
            if params['ssh_private_key']:
                argv += ['-i', params['ssh_private_key']]
            rc, out, dummy = module.run_command(argv + ['%s@%s' % (params['ssh_user'], ip), 'cat /proc/cpuinfo'])
            return out if rc == 0 else None

    with module.bus() as bus:
        worker = census.Census(bus, events, ssh=ssh, settle=params['settle'], dhcp_timeout=params['dhcp_timeout'],
                               tftp_timeout=params['tftp_timeout'], ssh_timeout=params['ssh_timeout'], poll=params['poll'],
                               off_time=params['off_time'], restart_running=params['restart_running'],
                               ignore_macs=params['ignore_macs'], known=known)
        placed = None
        try:
            plan = worker.plan(slots)
            if module.check_mode:
                found, control = [], plan['control']
            else:
                placed = serve_bootcode(module, params['tftp_root'], params['bootcode'])
                try:
                    found = worker.run(slots)
                finally:
                    if placed:
                        os.remove(placed)
                control = worker.start_control
        except census.CensusError as exc:
            module.fail_json(msg=str(exc), slots=worker.found)
        except (IOError, OSError) as exc:
            module.fail_json(msg='cannot serve bootcode.bin in %s: %s' % (params['tftp_root'], exc), slots=worker.found)
    result = dict(
        changed=any(s['state'] != census.RUNNING for s in found) if found else bool(plan['probe']) and module.check_mode,
        plan=dict(probe=plan['probe'], running=plan['running'], power_register='0x%02x' % plan['control']),
        slots=found,
        summary=[census.summary_line(f) for f in found],
        power_register='0x%02x' % control,
    )
    module.exit_json(**result)


if __name__ == '__main__':
    main()
