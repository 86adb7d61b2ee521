#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netboot_info
short_description: Tell how far network-boot nodes got in booting, and why they stopped
version_added: 1.0.0
description:
  - Runs on the master that serves network boot. For each node given, reads what the master's
    own services saw of it and reports the boot stages it reached, in order, with their times
    (docs/boot-diagnostics.md).
  - The stages are C(dhcp-discover) (the boot ROM asked for an address), C(dhcp-offer) (the
    server answered), C(bootcode.bin) (sent over TFTP), C(start.elf) (C(<serial>/start.elf) sent),
    C(kernel) (C(cmdline.txt) and the kernel sent), C(root-exported) (the master exports the
    node's NFS root), C(kernel-dhcp) (the kernel's own DHCP, after TFTP) and C(ssh) (the node
    answers on its SSH port).
  - DHCP and TFTP come from the netboot server's journal (dnsmasq, C(journalctl -u dnsmasq -o json));
    the export from C(/etc/exports), C(/etc/exports.d) and, when it runs, C(exportfs -v); SSH from
    a TCP connection to the node's address.
  - For the first stage not reached it names the likely cause and what to do, as RV(nodes) C(cause)
    and C(advice).
  - Reads only; changes nothing.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  nodes:
    description: The network-boot nodes to report on.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The node's name, the key of RV(nodes).
        type: str
        required: true
      mac:
        description: The MAC address of the node's Ethernet, as its DHCP requests carry it.
        type: str
        required: true
      serial:
        description: The node's serial number as the inventory has it (8 hex digits), the TFTP directory it should ask for.
        type: str
      ip:
        description:
          - The node's address (its fixed lease). Without it, the address the server offered the node.
        type: str
      root:
        description:
          - The path of the node's NFS root on the master (the path of C(nfsroot=) in its C(cmdline.txt)).
          - Without it the export is not checked.
        type: str
      since:
        description:
          - When the node got power (seconds since the epoch). Only what happened since counts. Without it, O(since).
        type: float
  since:
    description:
      - When the nodes got power (seconds since the epoch), for the nodes that do not give their own.
      - Without it every event of the journal read counts.
    type: float
  until:
    description:
      - Only what happened before this time (seconds since the epoch) counts, to report on a past boot.
      - Without it, everything up to now.
    type: float
  history:
    description:
      - Seconds of the journal to read before the earliest C(since), to see whether the netboot
        server was stopped or started around the node's power-on.
    type: float
    default: 3600
  unit:
    description: The systemd unit of the netboot server (dnsmasq) whose journal is read.
    type: str
    default: dnsmasq
  tftp_root:
    description: The server's TFTP root (C(tftp-root)); dnsmasq logs full paths.
    type: path
    default: /srv/netboot/tftp
  log_file:
    description:
      - Read the journal from this file instead (lines as C(journalctl -u UNIT -o json) prints them).
    type: path
  exports:
    description:
      - Files and directories of NFS exports. In a directory, the C(*.exports) files count.
    type: list
    elements: path
    default: [/etc/exports, /etc/exports.d]
  exportfs:
    description: Also ask C(exportfs -v) what the server exports now, when it is installed and answers.
    type: bool
    default: true
  ssh_port:
    description: The port of the nodes' SSH server.
    type: int
    default: 22
  ssh_timeout:
    description: Seconds to wait for a node's SSH port to accept a connection.
    type: float
    default: 3
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.INFO_MODULE
notes:
  - dnsmasq logs DHCP and TFTP by default (not with C(quiet-dhcp) or C(quiet-tftp)). The boot ROM and the
    kernel use the same MAC; the kernel's DHCP is the one that follows the TFTP transfers.
  - The time a node got power is not in any log of the master; pass it as C(since) (the time the power
    was switched on). Without it the report still names the stages, and whether the server was restarted.
seealso:
  - module: turingpi.cluster.power
  - module: turingpi.cluster.netboot_root
'''

EXAMPLES = r'''
- name: Report how far node3 got
  turingpi.cluster.netboot_info:
    nodes:
      - name: node3
        mac: "02:00:00:00:00:03"
        serial: "0000aa03"
        ip: 10.77.0.3
        root: /srv/netboot/nfs/node3
        since: "{{ power_on_time }}"
  register: boot
  delegate_to: master

- name: Show it
  ansible.builtin.debug:
    msg: "{{ boot.nodes.node3.last_stage }}: {{ boot.nodes.node3.cause }} {{ boot.nodes.node3.advice }}"
'''

RETURN = r'''
nodes:
  description: Per node name, its stages and the diagnosis.
  returned: always
  type: dict
  contains:
    stages:
      description:
        - The stages reached, in boot order, each with C(stage), C(time) (seconds since the epoch, or null for a
          state read now such as C(root-exported) and C(ssh)) and C(detail) (the log line or what was found).
      type: list
      elements: dict
    last_stage:
      description: The last stage reached, or C(none).
      type: str
      sample: start.elf
    missing_stage:
      description: The first stage not reached, or null when the node answers over SSH.
      type: str
      sample: kernel
    booted:
      description: Whether the node answers on its SSH port.
      type: bool
    cause:
      description: The likely cause of the stop, or null when it answers over SSH.
      type: str
      sample: "wrong serial in the inventory: the module asked TFTP for 0000aa03/start.elf, the inventory says 0000bb03"
    advice:
      description: What to do about it.
      type: str
    serial_asked:
      description: The serial directory the node asked TFTP for (from C(<serial>/start.elf)), or null.
      type: str
      sample: 0000aa03
  sample:
    node3:
      stages:
        - {stage: dhcp-discover, time: 1764669610.2, detail: "DHCPDISCOVER(eth0) 02:00:00:00:00:03"}
        - {stage: dhcp-offer, time: 1764669610.2, detail: "DHCPOFFER(eth0) 10.77.0.3 02:00:00:00:00:03"}
        - {stage: bootcode.bin, time: 1764669610.5, detail: "sent /srv/netboot/tftp/bootcode.bin to 10.77.0.3"}
      last_stage: bootcode.bin
      missing_stage: start.elf
      booted: false
      cause: "wrong serial in the inventory: the module asked TFTP for 0000aa03/start.elf, the inventory says 0000bb03"
      advice: "Set serial: 0000aa03 for node3 in the board file and run the playbook again."
      serial_asked: 0000aa03
server:
  description: The netboot server's starts and stops found in the journal read (seconds since the epoch).
  returned: always
  type: dict
  contains:
    starts:
      description: When it started.
      type: list
      elements: float
    stops:
      description: When it stopped.
      type: list
      elements: float
events:
  description: How many DHCP and TFTP events of the journal were read.
  returned: always
  type: int
'''

import glob
import os
import re
import socket
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.turingpi.cluster.plugins.module_utils import _boot_log as boot_log

STAGES = ('dhcp-discover', 'dhcp-offer', 'bootcode.bin', 'start.elf', 'kernel', 'root-exported', 'kernel-dhcp', 'ssh')
BOOT_ROM_TRIES = 5  # docs/hardware.md "Network boot": DHCP tried 5 times 5 s apart, then the SoC sleeps
BOOT_ROM_PAUSE = 5
# Files of the firmware's boot directory that are not the kernel.
NOT_KERNEL_RE = re.compile(r'^(start[^/]*\.elf|fixup[^/]*\.dat|config\.txt|cmdline\.txt|bootcode\.bin|.*\.dtbo?|overlays/.*|dt-blob\.bin|'
                           r'bootcfg\.txt|recovery\.elf|initramfs.*|initrd.*)$')
DHCP_KINDS = (boot_log.DHCP_DISCOVER, boot_log.DHCP_OFFER, boot_log.DHCP_REQUEST, boot_log.DHCP_ACK, boot_log.PXE_PROXY)


def _when(epoch):
    return time.strftime('%H:%M:%S UTC', time.gmtime(epoch)) if epoch is not None else 'an unknown time'


def exported_paths(run_command, exports, use_exportfs):
    """The paths the export files list, and those exportfs -v says are exported (None when it cannot tell)."""
    listed = set()
    files = []
    for path in exports:
        if os.path.isdir(path):
            files.extend(sorted(glob.glob(os.path.join(path, '*.exports'))))
        elif os.path.exists(path):
            files.append(path)
    for name in files:
        try:
            with open(name) as handle:
                for line in handle:
                    line = line.split('#', 1)[0].strip()
                    if line:
                        listed.add(line.split()[0].strip('"').rstrip('/') or '/')
        except (IOError, OSError):
            continue
    live = None
    if use_exportfs:
        try:
            rc, out, dummy_err = run_command(['exportfs', '-v'])
        except (IOError, OSError):
            rc, out = 127, ''
        if rc == 0 and out.strip():
            # "PATH <tab> CLIENT(options)"; a long path stands alone on its line, the client on the next.
            live = set(line.split()[0].rstrip('/') or '/' for line in out.splitlines() if line.startswith('/'))
    return listed, live


def ssh_answers(address, port, timeout):
    if not address:
        return False, 'no address known'
    try:
        sock = socket.create_connection((address, port), timeout)
    except (socket.error, socket.timeout, OSError) as e:
        return False, '%s:%d: %s' % (address, port, e)
    try:
        banner = sock.recv(64).decode('ascii', 'replace').strip()
    except (socket.error, socket.timeout, OSError):
        banner = ''
    finally:
        sock.close()
    return True, '%s:%d answers%s' % (address, port, (': ' + banner) if banner else '')


class Diagnosis(object):
    """One node's stages, from the events of its boot since it got power."""

    def __init__(self, node, events, server, exports, ssh):
        self.node = node
        self.name = node['name']
        self.mac = node['mac'].lower().replace('-', ':')
        self.serial = (node.get('serial') or '').lower() or None
        self.since = node.get('since')
        self.server = server
        self.stages = []
        self.cause = self.advice = None
        self.serial_asked = None
        self.booted = False
        self._run(events, exports, ssh)

    def _reach(self, stage, event=None, detail=None):
        self.stages.append(dict(stage=stage, time=event.time if event is not None else None,
                                detail=detail if detail is not None else (event.message if event is not None else '')))

    def _stop(self, cause, advice):
        self.cause, self.advice = cause, advice

    def _first(self, events, start, test):
        for event in events:
            if event.time >= start and test(event):
                return event
        return None

    def _run(self, all_events, exports, ssh):
        since = self.since if self.since is not None else float('-inf')
        events = [e for e in all_events if e.time >= since]
        mine = [e for e in events if e.mac == self.mac]
        discover = self._first(mine, since, lambda e: e.kind in (boot_log.DHCP_DISCOVER, boot_log.DHCP_REQUEST))
        if discover is None:
            return self._no_dhcp(all_events)
        self._reach('dhcp-discover', discover)
        offer = self._first(mine, discover.time, lambda e: e.kind in (boot_log.DHCP_OFFER, boot_log.DHCP_ACK, boot_log.PXE_PROXY))
        if offer is None:
            refused = self._first(mine, discover.time, lambda e: e.kind in (boot_log.DHCP_NO_ADDRESS, boot_log.DHCP_IGNORED, boot_log.DHCP_NAK))
            return self._stop(
                'the netboot server saw its DHCP request but sent no offer%s' % (' (%s)' % refused.message if refused else ''),
                'Check that the router hands %s out a fixed address (its MAC %s in the board file) and that dnsmasq serves the '
                'cluster subnet (dhcp-range, dhcp-host).' % (self.name, self.mac))
        self._reach('dhcp-offer', offer)
        addresses = set(a for a in [self.node.get('ip')] + [e.ip for e in mine if e.kind in DHCP_KINDS] if a)
        tftp = [e for e in events if e.ip in addresses and e.kind in (boot_log.TFTP_SENT, boot_log.TFTP_MISSING, boot_log.TFTP_ERROR)
                and e.time >= offer.time]
        bootcode = self._first(tftp, offer.time, lambda e: e.kind == boot_log.TFTP_SENT and e.path == 'bootcode.bin')
        # A module with a bootcode.bin-only boot partition runs bootcode.bin from there: its
        # first TFTP read is <serial>/start.elf.
        local = self._first(tftp, offer.time, lambda e: e.path is not None and e.path.endswith('start.elf'))
        if bootcode is None and local is not None:
            self._reach('bootcode.bin', local, "bootcode.bin from the module's own boot partition (not read over TFTP)")
            bootcode = local
        elif bootcode is None:
            missing = self._first(tftp, offer.time, lambda e: e.path == 'bootcode.bin')
            if missing is not None:
                return self._stop('the boot ROM asked TFTP for bootcode.bin and did not get it (%s)' % missing.message,
                                  'Put bootcode.bin in the TFTP root of the master (the netboot role does) and check its permissions.')
            return self._stop(
                'DHCP answered but the boot ROM asked nothing over TFTP: the answer lacks the network-boot option 43 '
                '("Raspberry Pi Boot") or TFTP is off',
                'Check the master\'s dnsmasq: enable-tftp, tftp-root and pxe-service=0,"Raspberry Pi Boot   " (the netboot role '
                'writes them), and that the node\'s boot ROM network boots (OTP or a bootcode.bin-only boot partition).')
        else:
            self._reach('bootcode.bin', bootcode)
        after = [e for e in tftp if e.time >= bootcode.time]
        start = next((e for e in after if e.kind == boot_log.TFTP_SENT and e.path and e.path.endswith('/start.elf')
                      and boot_log.serial_of(e.path)), None)
        asked = next((e for e in after if e.path and e.path.endswith('/start.elf') and boot_log.serial_of(e.path)), None)
        self.serial_asked = boot_log.serial_of(asked.path) if asked is not None else None
        if start is None:
            return self._no_start_elf(after, asked)
        folder = start.path.rsplit('/', 1)[0] + '/'
        self._reach('start.elf', start)
        boot_files = [e for e in after if e.time >= start.time and e.path and e.path.startswith(folder)]
        cmdline = next((e for e in boot_files if e.kind == boot_log.TFTP_SENT and e.path == folder + 'cmdline.txt'), None)
        kernel = next((e for e in boot_files if e.kind == boot_log.TFTP_SENT and not NOT_KERNEL_RE.match(e.path[len(folder):])), None)
        if cmdline is None or kernel is None:
            lacking = [e.path for e in boot_files if e.kind != boot_log.TFTP_SENT]
            return self._stop(
                'start.elf was sent but not %s%s' % (' and '.join(n for n, e in (('cmdline.txt', cmdline), ('the kernel', kernel)) if e is None),
                                                     ' (asked for and missing: %s)' % ', '.join(lacking) if lacking else ''),
                'The boot files in %s/%s are incomplete: run the playbook again to rebuild the node\'s root (netboot role), '
                'or check the image\'s config.txt (kernel=) and cmdline.txt.' % (self.node.get('tftp_root', ''), folder.rstrip('/')))
        last = max((cmdline, kernel), key=lambda e: e.time)
        self._reach('kernel', last, 'sent %s and %s' % (cmdline.path, kernel.path))
        root = self.node.get('root')
        if root:
            listed, live = exports
            path = root.rstrip('/')
            if path not in listed or (live is not None and path not in live):
                where = 'not in /etc/exports or /etc/exports.d' if path not in listed else 'listed but not exported now (exportfs -v)'
                return self._stop('the kernel and cmdline.txt were sent but its root %s is %s' % (root, where),
                                  'Export %s to the cluster subnet (the netboot role does: run the playbook again), then exportfs -ra '
                                  'on the master.' % root)
            self._reach('root-exported', None, '%s exported%s' % (root, ' (exportfs -v)' if live is not None else ' (export files)'))
        kernel_dhcp = self._first(mine, last.time, lambda e: e.kind in DHCP_KINDS and e.time > last.time)
        if kernel_dhcp is None:
            return self._stop(
                'the boot files were sent but the kernel never asked DHCP: it did not start, or cmdline.txt lacks ip=dhcp',
                'Check the image: its kernel for this module (the image_info module), and root=/dev/nfs nfsroot=... ip=dhcp in '
                'its cmdline.txt.')
        self._reach('kernel-dhcp', kernel_dhcp)
        answers, detail = ssh
        if not answers:
            return self._stop(
                'the kernel took its lease but SSH does not answer (%s): the system did not come up on its NFS root' % detail,
                'Check the image (its first boot, SSH enabled, the NFS root mount: nfsroot= in cmdline.txt and the export options); '
                'reprovision the node to start from a fresh root.')
        self._reach('ssh', None, detail)
        self.booted = True

    def _no_dhcp(self, all_events):
        seen = [e for e in all_events if e.mac == self.mac and e.kind in DHCP_KINDS]
        ago = 'since %s' % _when(self.since) if self.since is not None else 'in the journal read'
        last_start = max(self.server['starts']) if self.server['starts'] else None
        if last_start is not None and not [e for e in seen if e.time >= last_start]:
            # The journal shows the server starting, and the node silent since: a boot ROM that
            # tried while it was not running has given up.
            stopped = [t for t in self.server['stops'] if t < last_start]
            window = ('was not running from %s to %s' % (_when(max(stopped)), _when(last_start)) if stopped
                      else 'started at %s' % _when(last_start))
            later = ' (after %s)' % _when(self.since) if self.since is not None and last_start >= self.since else ''
            return self._stop(
                'no DHCP request from %s %s; the netboot server %s%s and the node has asked nothing since it started: '
                'a boot ROM that got power while the server was not running tries DHCP %d times %d s apart, then gives up '
                'and sleeps until its power is cycled (else: no power or no cable)' % (
                    self.mac, ago, window, later, BOOT_ROM_TRIES, BOOT_ROM_PAUSE),
                'Power-cycle the node (turingpi.cluster.power state=restarted) now that the server runs; if it stays silent, '
                'check its Ethernet cable and that the slot holds a module that gets power (cmb_info).')
        return self._stop(
            'no DHCP request from %s %s: no power, no cable, or a boot ROM that does not network boot' % (self.mac, ago),
            'Check that the slot has power (cmb_info), the node\'s Ethernet cable, and that it network boots (OTP or a '
            'bootcode.bin-only boot partition); then power-cycle it (turingpi.cluster.power state=restarted).')

    def _no_start_elf(self, after, asked):
        if asked is not None and self.serial and self.serial_asked != self.serial:
            return self._stop(
                'wrong serial in the inventory: the module asked TFTP for %s, the inventory says %s' % (asked.path, self.serial),
                'Set serial: %s for %s in the board file and run the playbook again (its boot files are then served '
                'from %s/).' % (self.serial_asked, self.name, self.serial_asked))
        if asked is not None:
            return self._stop(
                'the module asked TFTP for %s and the master has no such file (%s)' % (asked.path, asked.message),
                'Run the playbook again to build the node\'s boot files under %s/ (netboot role), or check that its '
                'image has a start.elf.' % self.serial_asked)
        return self._stop('bootcode.bin was sent but the module asked for no <serial>/start.elf',
                          'Check bootcode.bin in the TFTP root (the one of the image the netboot role copies) and the node\'s power.')

    def result(self):
        reached = [s['stage'] for s in self.stages]
        missing = next((s for s in STAGES if s not in reached and (s != 'root-exported' or self.node.get('root'))), None)
        return dict(stages=self.stages, last_stage=reached[-1] if reached else 'none',
                    missing_stage=None if self.booted else missing, booted=self.booted,
                    cause=self.cause, advice=self.advice, serial_asked=self.serial_asked)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type='list', elements='dict', required=True, options=dict(
                name=dict(type='str', required=True),
                mac=dict(type='str', required=True),
                serial=dict(type='str'),
                ip=dict(type='str'),
                root=dict(type='str'),
                since=dict(type='float'),
            )),
            since=dict(type='float'),
            until=dict(type='float'),
            history=dict(type='float', default=3600),
            unit=dict(type='str', default='dnsmasq'),
            tftp_root=dict(type='path', default='/srv/netboot/tftp'),
            log_file=dict(type='path'),
            exports=dict(type='list', elements='path', default=['/etc/exports', '/etc/exports.d']),
            exportfs=dict(type='bool', default=True),
            ssh_port=dict(type='int', default=22),
            ssh_timeout=dict(type='float', default=3),
        ),
        supports_check_mode=True,
    )
    params = module.params
    nodes = []
    for node in params['nodes']:
        node = dict(node)
        if node['since'] is None:
            node['since'] = params['since']
        if not re.match(r'^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$', node['mac']):
            module.fail_json(msg='%s: mac %r is not a MAC address (aa:bb:cc:dd:ee:ff); give the MAC of the node\'s Ethernet.'
                             % (node['name'], node['mac']))
        if node['serial'] and not re.match(r'^[0-9a-fA-F]{8}$', node['serial']):
            module.fail_json(msg='%s: serial %r is not 8 hex digits (the last 8 of Serial in /proc/cpuinfo).' % (node['name'], node['serial']))
        node['tftp_root'] = params['tftp_root']
        nodes.append(node)
    sinces = [n['since'] for n in nodes if n['since'] is not None]
    read_from = min(sinces) - params['history'] if sinces and len(sinces) == len(nodes) else None
    try:
        events = boot_log.read_events(module.run_command, since=read_from, unit=params['unit'],
                                      tftp_root=params['tftp_root'], log_file=params['log_file'])
    except boot_log.BootLogError as e:
        module.fail_json(msg=str(e))
    if params['until'] is not None:
        events = [e for e in events if e.time <= params['until']]
    server = dict(starts=[e.time for e in events if e.kind == boot_log.SERVER_START],
                  stops=[e.time for e in events if e.kind == boot_log.SERVER_STOP])
    exports = exported_paths(module.run_command, params['exports'], params['exportfs'])
    report = {}
    for node in nodes:
        address = node['ip'] or next((e.ip for e in reversed(events) if e.mac == node['mac'].lower() and e.ip), None)
        ssh = ssh_answers(address, params['ssh_port'], params['ssh_timeout'])
        report[node['name']] = Diagnosis(node, events, server, exports, ssh).result()
    module.exit_json(changed=False, nodes=report, server=server,
                     events=len([e for e in events if e.kind not in (boot_log.SERVER_START, boot_log.SERVER_STOP)]))


if __name__ == '__main__':
    main()
