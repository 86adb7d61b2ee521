# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The slot census: power one slot at a time and learn what its module does on the wire.

For each slot: switch it on (the volatile shadow of 0xF2 only), read 0xF8 while it is on (bit = the
slot is populated AND powered: 0 is an empty slot), then watch the master's dnsmasq (``_boot_log``)
for the first DHCP request from a MAC no other slot has, and for the boot ROM's TFTP request for
``<serial>/start.elf`` from the address dnsmasq offered that MAC (docs/hardware.md "Network boot").
The slot goes off as soon as the serial is seen. A module that asks DHCP but no TFTP boots from its
own storage: its serial and model come over SSH when it is reachable. Slots that were on are not
power-cycled unless asked; every slot's power is left as it was found.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils import _boot_log as boot_log
from ansible_collections.turingpi.cluster.plugins.module_utils import _power as power
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import ImageError
from ansible_collections.turingpi.cluster.plugins.module_utils._image.fat import Disk, FatFS
from ansible_collections.turingpi.cluster.plugins.module_utils._image.firmware import firmware_partition

# What a slot turned out to hold (result 'state').
NETBOOT = 'netboot'        # the boot ROM asked for <serial>/start.elf
LOCAL = 'local'            # DHCP, no TFTP: it boots from its eMMC or SD card
SILENT = 'silent'          # populated and powered, but nothing on the wire
EMPTY = 'empty'            # 0xF8 says no module
RUNNING = 'running'        # was on: not power-cycled
STATES = (NETBOOT, LOCAL, SILENT, EMPTY, RUNNING)

DHCP_KINDS = (boot_log.DHCP_DISCOVER, boot_log.DHCP_REQUEST, boot_log.DHCP_NO_ADDRESS, boot_log.DHCP_IGNORED)
ADDRESS_KINDS = (boot_log.DHCP_OFFER, boot_log.DHCP_ACK)
TFTP_KINDS = (boot_log.TFTP_SENT, boot_log.TFTP_MISSING, boot_log.TFTP_ERROR)
_CPU_SERIAL_RE = re.compile(r'^Serial\s*:\s*([0-9a-fA-F]+)\s*$', re.M)
_CPU_MODEL_RE = re.compile(r'^Model\s*:\s*(.+?)\s*$', re.M)


class CensusError(Exception):
    """The census cannot go on; the message says what to do."""


def parse_cpuinfo(text):
    """(serial, model) from /proc/cpuinfo: the serial's last 8 hex digits (what the boot ROM asks
    TFTP for), the Model line (Raspberry Pi kernels print it), None for what is not there."""
    serial = model = None
    match = _CPU_SERIAL_RE.search(text or '')
    if match and len(match.group(1)) >= 8:
        serial = match.group(1).lower()[-8:]
    match = _CPU_MODEL_RE.search(text or '')
    if match:
        model = match.group(1)
    return serial, model


# bootcode.bin is about 50 KiB; anything this large is an image, not the loader itself.
BOOTCODE_MAX = 1024 * 1024


def bootcode_from(path):
    """The bytes of bootcode.bin from a bootcode.bin file or an OS image's firmware partition."""
    try:
        size = os.path.getsize(path)
    except OSError as exc:
        raise CensusError('bootcode %s: %s; give a bootcode.bin or an OS image (.img) on the master' % (path, exc.strerror))
    if size <= BOOTCODE_MAX:
        with open(path, 'rb') as handle:
            return handle.read()
    try:
        with Disk(path) as disk:
            part, problem = firmware_partition(disk)
            if part is None:
                raise CensusError('bootcode %s: %s' % (path, problem))
            data, complete = FatFS(disk, part['start'], part['size']).read('bootcode.bin', BOOTCODE_MAX)
    except ImageError as exc:
        raise CensusError('bootcode %s: no bootcode.bin in its firmware partition (%s); give a bootcode.bin or a raw'
                          ' (uncompressed) Raspberry Pi OS image' % (path, exc))
    if not complete:
        raise CensusError('bootcode %s: its bootcode.bin is larger than %d bytes: not the boot ROM\'s loader' % (path, BOOTCODE_MAX))
    return data


def summary_line(found):
    """One slot's result, for people."""
    words = {NETBOOT: 'network boot', LOCAL: 'boots from its own storage', SILENT: 'a module, silent on the wire',
             EMPTY: 'empty', RUNNING: 'running, not power-cycled'}
    parts = [words.get(found['state'], found['state'])]
    parts += ['%s %s' % (label, found[key]) for key, label in (('mac', 'MAC'), ('serial', 'serial'), ('model', 'model'))
              if found.get(key)]
    line = 'slot %d: %s' % (found['slot'], ', '.join(parts))
    if found.get('note'):
        line += ' (%s)' % found['note']
    if found.get('seconds'):
        line += ' [%.1f s]' % found['seconds']
    return line


class SlotWatch(object):
    """What one slot's module did since its power-on, from the boot events."""

    def __init__(self, ignore_macs):
        self.ignore = set(m.lower() for m in ignore_macs)
        self.mac = None
        self.ips = set()
        self.serial = None
        self.tftp = []          # files its address asked TFTP for
        self.first_dhcp = None  # time of its first DHCP request
        self.messages = []

    def feed(self, events):
        for event in events:
            if event.kind in DHCP_KINDS + ADDRESS_KINDS and event.mac:
                if event.mac in self.ignore:
                    continue
                if self.mac is None and event.kind in DHCP_KINDS:
                    self.mac = event.mac
                    self.first_dhcp = event.time
                if event.mac != self.mac:
                    continue
                if event.kind in ADDRESS_KINDS and event.ip:
                    self.ips.add(event.ip)
                self.messages.append(event.message)
            # Older dnsmasq name no client in "file ... not found": then any after this module's DHCP.
            elif event.kind in TFTP_KINDS and (event.ip in self.ips or event.ip is None and self.mac is not None):
                self.messages.append(event.message)
                if event.path:
                    self.tftp.append(event.path)
                serial = boot_log.serial_of(event.path)
                if serial and self.serial is None:
                    self.serial = serial


class Census(object):
    """The census of one board. ``bus`` is an open bus (the caller holds the lock); ``events(since)``
    returns the boot events at or after ``since``; ``ssh(ip)`` returns /proc/cpuinfo's text or None."""

    def __init__(self, bus, events, ssh=None, clock=time.time, sleep=time.sleep, settle=0.5, dhcp_timeout=30.0,
                 tftp_timeout=10.0, ssh_timeout=60.0, poll=0.5, off_time=1.0, restart_running=False, ignore_macs=(),
                 known=None):
        self.bus = bus
        self.events = events
        self.ssh = ssh
        self.clock = clock
        self.sleep = sleep
        self.settle = settle
        self.dhcp_timeout = dhcp_timeout
        self.tftp_timeout = tftp_timeout
        self.ssh_timeout = ssh_timeout
        self.poll = poll
        self.off_time = off_time
        self.restart_running = restart_running
        self.ignore_macs = set(m.lower() for m in ignore_macs)
        # What the caller read from running nodes (over SSH): {slot: {mac, serial, model}}.
        self.known = dict(known or {})
        for entry in self.known.values():
            if entry.get('mac'):
                self.ignore_macs.add(entry['mac'].lower())
        self.found = []
        self.start_control = self.start_config = None

    # -- the bus ---------------------------------------------------------------------------
    def read(self):
        return power.read_state(self.bus)

    def _switch(self, slot, state):
        control, config, dummy = self.read()
        plan = power.PowerPlan(control, config, {slot: state}, persist=False)
        plan.check_safety(force=False)
        power.apply(self.bus, plan, 0)

    def plan(self, slots):
        """Which slots the census powers (off at the start), which it reads as they run, which it
        power-cycles (on at the start, restart_running): from 0xF2 and 0xF8, nothing written."""
        control, config, status = self.read()
        self.start_control, self.start_config = control, config
        probe, running = [], []
        for slot in slots:
            if slot == board.MASTER_NODE:
                raise CensusError('slot %d is the master: the census never switches it' % slot)
            if control & board.NODE_MASK[slot] and not self.restart_running:
                running.append(slot)
            else:
                probe.append(slot)
        return {'control': control, 'status': status, 'probe': probe, 'running': running}

    # -- one slot --------------------------------------------------------------------------
    def probe(self, slot):
        was_on = bool(self.start_control & board.NODE_MASK[slot])
        started = self.clock()
        if was_on:
            # restart_running: the module boots again from the start, as at a power-up.
            self._switch(slot, 'off')
            self.sleep(self.off_time)
        since = self.clock()
        self._switch(slot, 'on')
        try:
            result = self._watch(slot, since)
        finally:
            if not was_on:
                self._switch(slot, 'off')
        result['seconds'] = round(self.clock() - started, 1)
        result['was_on'] = was_on
        if result.get('mac'):
            self.ignore_macs.add(result['mac'])
        return result

    def _watch(self, slot, since):
        result = {'slot': slot, 'state': None, 'mac': None, 'serial': None, 'model': None, 'ip': None,
                  'boot': None, 'tftp': [], 'messages': []}
        self.sleep(self.settle)
        dummy, dummy, status = self.read()
        if not status & board.NODE_MASK[slot]:
            result['state'] = EMPTY
            return result
        watch = SlotWatch(self.ignore_macs)
        seen = 0
        while True:
            events = self.events(since)
            watch.feed(events[seen:])
            seen = len(events)
            now = self.clock()
            if watch.serial:
                break
            if watch.mac is None and now - since >= self.dhcp_timeout:
                break
            if watch.mac is not None and now - watch.first_dhcp >= self.tftp_timeout:
                break
            self.sleep(self.poll)
        result.update(mac=watch.mac, serial=watch.serial, tftp=watch.tftp, messages=watch.messages[-20:],
                      ip=sorted(watch.ips)[-1] if watch.ips else None)
        if watch.serial:
            result.update(state=NETBOOT, boot='netboot')
        elif watch.tftp:
            # A boot ROM (it asked TFTP) that stopped before <serial>/start.elf: bootcode.bin missing or bad.
            result.update(state=NETBOOT, boot='netboot', note='it asked TFTP for %s but not for <serial>/start.elf: is'
                          ' bootcode.bin at the TFTP root?' % ', '.join(watch.tftp))
        elif watch.mac:
            result.update(state=LOCAL, boot='local')
            if self.ssh is not None and result['ip']:
                self._ssh(result, since)
        else:
            result['state'] = SILENT
        return result

    def _ssh(self, result, since):
        """A module that boots from its own storage: its serial and model, while it runs."""
        while True:
            text = self.ssh(result['ip'])
            if text:
                result['serial'], result['model'] = parse_cpuinfo(text)
                return
            if self.clock() - since >= self.ssh_timeout:
                result['note'] = 'not reachable over SSH at %s within %d s: its serial and model are unknown' % (
                    result['ip'], self.ssh_timeout)
                return
            self.sleep(max(self.poll, 2.0))

    def running(self, slot):
        """A slot that was on and is not power-cycled: populated or not, from 0xF8."""
        dummy, dummy, status = self.read()
        known = self.known.get(slot) or {}
        populated = bool(status & board.NODE_MASK[slot])
        return {'slot': slot, 'state': RUNNING if populated else EMPTY,
                'mac': known.get('mac', '').lower() or None if populated else None,
                'serial': known.get('serial', '').lower()[-8:] or None if populated else None,
                'model': known.get('model') if populated else None, 'ip': None, 'boot': None, 'tftp': [], 'messages': [],
                'seconds': 0.0, 'was_on': True}

    def restore(self):
        """Every slot's power as found (0xF2), and the SEE bit (0xF4) as found."""
        control, config, dummy = self.read()
        if control != self.start_control:
            self.bus.write_byte(board.DS4520_ADDR, board.DS4520_REG_IO_CONTROL0, self.start_control)
        if config != self.start_config:
            self.bus.write_byte(board.DS4520_ADDR, board.DS4520_REG_CONFIG, self.start_config)
        control, config, dummy = self.read()
        if control != self.start_control:
            raise CensusError('the power register 0xF2 reads 0x%02x after the census, not 0x%02x as before: switch the'
                              ' nodes back with turingpi.cluster.power' % (control, self.start_control))
        return control

    def run(self, slots):
        """Every slot: probe or read it; then the power as found. Returns the slots' results."""
        plan = self.plan(slots)
        try:
            for slot in slots:
                self.found.append(self.running(slot) if slot in plan['running'] else self.probe(slot))
        finally:
            self.restore()
        return self.found
