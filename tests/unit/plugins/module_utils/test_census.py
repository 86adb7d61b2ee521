# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The census against the virtual board and a fake wire: modules that do what the hardware does
when their slot gets power (docs/hardware.md "Network boot"), seen as dnsmasq's boot events."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _board as board
from ansible_collections.turingpi.cluster.plugins.module_utils import _boot_log as boot_log
from ansible_collections.turingpi.cluster.plugins.module_utils import _census as census
from ansible_collections.turingpi.cluster.plugins.module_utils import _power as power
from ansible_collections.turingpi.cluster.plugins.module_utils import _virtual_board as vb
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils import fat_images

DS = board.DS4520_ADDR


class Clock(object):
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


class Wire(object):
    """What dnsmasq logs for the modules of a board: each module in a powered, populated slot does
    its thing some seconds after power-on. modules: {slot: (kind, mac, serial)}, kind 'netboot'
    (DHCP then bootcode.bin then <serial>/start.elf), 'local' (DHCP only, its OS) or 'silent'."""

    def __init__(self, bus, clock, modules, dhcp_after=1.0, tftp_after=2.0):
        self.bus = bus
        self.clock = clock
        self.modules = modules
        self.dhcp_after = dhcp_after
        self.tftp_after = tftp_after
        self.log = []
        self.on_since = {}
        self.said = set()
        self.calls = 0

    def _tick(self):
        control = self.bus.read_byte(DS, board.DS4520_REG_IO_CONTROL0)
        populated = self.bus.read_byte(DS, board.DS4520_REG_IO_STATUS0)
        for slot, (kind, mac, serial) in self.modules.items():
            bit = board.NODE_MASK[slot]
            if not control & bit or not populated & bit:
                self.on_since.pop(slot, None)
                self.said = set(s for s in self.said if s[0] != slot)
                continue
            since = self.on_since.setdefault(slot, self.clock())
            ip = '10.77.0.%d' % (240 + slot)
            lines = []
            if kind in ('netboot', 'local', 'no-bootcode'):
                lines.append((self.dhcp_after, 'DHCPDISCOVER(eth0) %s' % mac))
                lines.append((self.dhcp_after, 'DHCPOFFER(eth0) %s %s' % (ip, mac)))
            if kind == 'netboot':
                lines.append((self.tftp_after, 'sent /run/turingpi-census/tftp/bootcode.bin to %s' % ip))
                lines.append((self.tftp_after + 0.5, 'file /run/turingpi-census/tftp/%s/start.elf not found for %s' % (serial, ip)))
            if kind == 'no-bootcode':
                lines.append((self.tftp_after, 'file /run/turingpi-census/tftp/bootcode.bin not found for %s' % ip))
            for after, message in lines:
                if self.clock() - since >= after and (slot, message) not in self.said:
                    self.said.add((slot, message))
                    self.log.append(boot_log.parse_message(message, since + after, tftp_root='/run/turingpi-census/tftp'))

    def events(self, since):
        self.calls += 1
        self._tick()
        return sorted((e for e in self.log if e.time >= since), key=lambda e: e.time)


@pytest.fixture
def make_census(tmp_path):
    def make(modules, populated, on=(), **kwargs):
        path = str(tmp_path / 'board.json')
        vb.save_state(path, vb.default_state(populated=[1] + list(populated)))
        bus = vb.VirtualBus(path)
        bus.write_byte(DS, board.DS4520_REG_IO_CONTROL0, board.mask_of([1] + list(on)))
        clock = Clock()
        wire = Wire(bus, clock, modules)
        worker = census.Census(bus, wire.events, clock=clock, sleep=clock.sleep, **kwargs)
        return worker, bus, wire, clock
    return make


def by_slot(found):
    return dict((f['slot'], f) for f in found)


def test_every_kind_of_slot(make_census):
    modules = {2: ('netboot', '02:00:00:00:00:02', '0000aa02'), 3: ('netboot', 'dc:a6:32:00:00:03', '1a2b3c4d'),
               4: ('local', 'dc:a6:32:00:00:04', None), 5: ('silent', None, None)}
    worker, bus, wire, clock = make_census(modules, populated=[2, 3, 4, 5], dhcp_timeout=8, tftp_timeout=5)
    control_before = bus.read_byte(DS, board.DS4520_REG_IO_CONTROL0)
    config_before = bus.read_byte(DS, board.DS4520_REG_CONFIG)
    found = by_slot(worker.run([2, 3, 4, 5, 6, 7]))
    assert (found[2]['state'], found[2]['mac'], found[2]['serial'], found[2]['boot']) == ('netboot', '02:00:00:00:00:02', '0000aa02', 'netboot')
    assert found[2]['tftp'] == ['bootcode.bin', '0000aa02/start.elf']
    assert (found[3]['mac'], found[3]['serial']) == ('dc:a6:32:00:00:03', '1a2b3c4d')
    assert (found[4]['state'], found[4]['mac'], found[4]['serial'], found[4]['boot']) == ('local', 'dc:a6:32:00:00:04', None, 'local')
    assert (found[5]['state'], found[5]['mac']) == ('silent', None)
    assert found[6]['state'] == found[7]['state'] == 'empty'
    # power off as soon as the serial is seen: seconds, not the timeouts
    assert found[2]['seconds'] < 4
    # an empty slot is switched off at once
    assert found[6]['seconds'] <= 1
    assert bus.read_byte(DS, board.DS4520_REG_IO_CONTROL0) == control_before
    assert bus.read_byte(DS, board.DS4520_REG_CONFIG) == config_before


def test_one_slot_at_a_time_and_never_the_master(make_census, monkeypatch):
    modules = dict((s, ('netboot', '02:00:00:00:00:0%d' % s, '0000aa0%d' % s)) for s in (2, 3, 4))
    worker, bus, wire, clock = make_census(modules, populated=[2, 3, 4])
    writes = []
    real = bus.write_byte

    def record(addr, reg, value):
        if reg == board.DS4520_REG_IO_CONTROL0:
            writes.append(value)
        return real(addr, reg, value)

    monkeypatch.setattr(bus, 'write_byte', record)
    worker.run([2, 3, 4])
    for value in writes:
        assert value & board.NODE_MASK[1]
        assert len([s for s in (2, 3, 4) if value & board.NODE_MASK[s]]) <= 1
    assert writes == [0x06, 0x02, 0x0A, 0x02, 0x12, 0x02]
    with pytest.raises(census.CensusError, match='slot 1 is the master'):
        worker.plan([1, 2])


def test_running_slots_are_read_not_cycled(make_census):
    modules = {2: ('netboot', '02:00:00:00:00:02', '0000aa02'), 3: ('netboot', '02:00:00:00:00:03', '0000aa03')}
    known = {2: {'mac': '02:00:00:00:00:02', 'serial': '100000000000aa02', 'model': 'Raspberry Pi Compute Module 3 Plus Rev 1.0'}}
    worker, bus, wire, clock = make_census(modules, populated=[2, 3], on=[2], known=known)
    assert worker.plan([2, 3])['running'] == [2]
    found = by_slot(worker.run([2, 3]))
    assert found[2]['state'] == 'running' and found[2]['serial'] == '0000aa02' and found[2]['model'].startswith('Raspberry')
    assert found[3]['state'] == 'netboot' and found[3]['mac'] == '02:00:00:00:00:03'
    assert bus.read_byte(DS, board.DS4520_REG_IO_CONTROL0) == board.mask_of([1, 2])


def test_restart_running_cycles_and_leaves_it_on(make_census):
    modules = {2: ('netboot', '02:00:00:00:00:02', '0000aa02')}
    worker, bus, wire, clock = make_census(modules, populated=[2], on=[2], restart_running=True)
    found = by_slot(worker.run([2]))
    assert found[2]['state'] == 'netboot' and found[2]['serial'] == '0000aa02' and found[2]['was_on']
    assert bus.read_byte(DS, board.DS4520_REG_IO_CONTROL0) == board.mask_of([1, 2])


def test_a_mac_seen_before_is_not_the_next_slots(make_census):
    """Slot 2's module is still talking (its late events) when slot 3 is on: they do not count for 3."""
    modules = {2: ('netboot', '02:00:00:00:00:02', '0000aa02'), 3: ('silent', None, None)}
    worker, bus, wire, clock = make_census(modules, populated=[2, 3], dhcp_timeout=4)
    worker.run([2])
    late = clock() + 0.1
    wire.log.append(boot_log.parse_message('DHCPDISCOVER(eth0) 02:00:00:00:00:02', late))
    found = worker.probe(3)
    assert found['state'] == 'silent' and found['mac'] is None


def test_restore_fails_loudly_when_the_register_stays_changed(make_census, monkeypatch):
    worker, bus, wire, clock = make_census({}, populated=[])
    worker.plan([2])
    bus.write_byte(DS, board.DS4520_REG_IO_CONTROL0, board.mask_of([1, 2]))
    monkeypatch.setattr(power, 'read_state', lambda b: (board.mask_of([1, 2]), 0x01, 0))
    with pytest.raises(census.CensusError, match='0xF2 reads 0x06'):
        worker.restore()


def test_local_boot_serial_over_ssh(make_census):
    modules = {4: ('local', 'dc:a6:32:00:00:04', None)}
    asked = []

    def ssh(ip):
        asked.append(ip)
        return 'Hardware\t: BCM2835\nRevision\t: a02100\nSerial\t\t: 00000000c0ffee42\nModel\t\t: Raspberry Pi Compute Module 3 Plus Rev 1.0\n'

    worker, bus, wire, clock = make_census(modules, populated=[4], ssh=ssh, tftp_timeout=3)
    found = worker.run([4])[0]
    assert asked == ['10.77.0.244']
    assert (found['state'], found['serial'], found['model']) == ('local', 'c0ffee42', 'Raspberry Pi Compute Module 3 Plus Rev 1.0')


def test_local_boot_unreachable_says_so(make_census):
    modules = {4: ('local', 'dc:a6:32:00:00:04', None)}
    worker, bus, wire, clock = make_census(modules, populated=[4], ssh=lambda ip: None, tftp_timeout=3, ssh_timeout=20)
    found = worker.run([4])[0]
    assert found['serial'] is None and 'not reachable over SSH at 10.77.0.244' in found['note']


@pytest.mark.parametrize('text, expected', [
    ('Serial\t\t: 00000000c0ffee42\nModel\t: Raspberry Pi Compute Module 3 Rev 1.0\n', ('c0ffee42', 'Raspberry Pi Compute Module 3 Rev 1.0')),
    ('processor\t: 0\n', (None, None)),
    ('Serial : 1234\n', (None, None)),
])
def test_parse_cpuinfo(text, expected):
    assert census.parse_cpuinfo(text) == expected


def test_bootcode_from_a_file_and_from_an_image(tmp_path):
    loader = b'\x5a' * 52000
    (tmp_path / 'bootcode.bin').write_bytes(loader)
    assert census.bootcode_from(str(tmp_path / 'bootcode.bin')) == loader
    image = fat_images.make_disk(tmp_path, {'bootcode.bin': loader, 'start.elf': b'x' * 10}, size_mib=None)
    assert census.bootcode_from(str(image)) == loader
    no_loader = fat_images.make_disk(tmp_path, {'start.elf': b'x' * 10}, name='other.img')
    with pytest.raises(census.CensusError, match='no bootcode.bin'):
        census.bootcode_from(str(no_loader))
    with pytest.raises(census.CensusError, match='give a bootcode.bin or an OS image'):
        census.bootcode_from(str(tmp_path / 'missing'))


def test_tftp_lines_without_the_client_still_give_the_serial():
    """dnsmasq before 2.87 logs "file ... not found" without the client's address."""
    watch = census.SlotWatch(ignore_macs=['02:00:00:00:00:09'])
    lines = ['DHCPDISCOVER(eth0) 02:00:00:00:00:09', 'DHCPDISCOVER(eth0) 02:00:00:00:00:03',
             'DHCPOFFER(eth0) 10.77.0.245 02:00:00:00:00:03', 'file /srv/netboot/tftp/0000aa03/start.elf not found']
    watch.feed([boot_log.parse_message(line, 1.0 + i) for i, line in enumerate(lines)])
    assert (watch.mac, watch.serial, watch.ips) == ('02:00:00:00:00:03', '0000aa03', set(['10.77.0.245']))


def test_tftp_before_any_dhcp_is_not_the_slots():
    watch = census.SlotWatch(ignore_macs=[])
    watch.feed([boot_log.parse_message('file /srv/netboot/tftp/0000aa03/start.elf not found', 1.0)])
    assert watch.serial is None


def test_a_boot_rom_without_bootcode_is_network_boot_without_serial(make_census):
    worker, bus, wire, clock = make_census({3: ('no-bootcode', '02:00:00:00:00:03', None)}, populated=[3], tftp_timeout=5)
    found = worker.run([3])[0]
    assert (found['state'], found['mac'], found['serial'], found['tftp']) == ('netboot', '02:00:00:00:00:03', None, ['bootcode.bin'])
    assert 'is bootcode.bin at the TFTP root?' in found['note']
