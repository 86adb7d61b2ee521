# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The dnsmasq boot log parser (_boot_log) on lines the lab's master logged (dnsmasq 2.89,
Debian bookworm) while its boot ROMs booted, and on journal JSON as journalctl prints it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils import _boot_log as boot_log

TFTP_ROOT = '/srv/netboot/tftp'


@pytest.mark.parametrize('message, kind, mac, ip, path', [
    ('DHCPDISCOVER(eth0) 02:00:00:00:00:02', 'dhcp-discover', '02:00:00:00:00:02', None, None),
    ('DHCPOFFER(eth0) 10.77.0.12 02:00:00:00:00:02', 'dhcp-offer', '02:00:00:00:00:02', '10.77.0.12', None),
    ('DHCPREQUEST(eth0) 10.77.0.12 02:00:00:00:00:02', 'dhcp-request', '02:00:00:00:00:02', '10.77.0.12', None),
    ('DHCPACK(eth0) 10.77.0.12 02:00:00:00:00:02 node2', 'dhcp-ack', '02:00:00:00:00:02', '10.77.0.12', None),
    # with log-dhcp: the transaction id in front
    ('3641467453 DHCPDISCOVER(eth0) 02:00:00:00:00:03', 'dhcp-discover', '02:00:00:00:00:03', None, None),
    ('DHCPDISCOVER(eth0) 02:00:00:00:00:09 no address available', 'dhcp-no-address', '02:00:00:00:00:09', None, None),
    ('DHCPDISCOVER(eth0) 02:00:00:00:00:09 ignored', 'dhcp-ignored', '02:00:00:00:00:09', None, None),
    ('PXE(eth0) B8:27:EB:A1:B2:C3 proxy', 'pxe-proxy', 'b8:27:eb:a1:b2:c3', None, None),
    ('sent /srv/netboot/tftp/bootcode.bin to 10.77.0.12', 'tftp-sent', None, '10.77.0.12', 'bootcode.bin'),
    ('sent /srv/netboot/tftp/0000aa02/start.elf to 10.77.0.12', 'tftp-sent', None, '10.77.0.12', '0000aa02/start.elf'),
    ('file /srv/netboot/tftp/0000aa02/start.elf not found', 'tftp-missing', None, None, '0000aa02/start.elf'),
    ('file /srv/netboot/tftp/0000aa02/start.elf not found for 10.77.0.12', 'tftp-missing', None, '10.77.0.12', '0000aa02/start.elf'),
    ('failed sending /srv/netboot/tftp/0000aa02/kernel8.img to 10.77.0.12', 'tftp-error', None, '10.77.0.12', '0000aa02/kernel8.img'),
    ('error 0 Early terminate received from 10.77.0.12', 'tftp-error', None, '10.77.0.12', None),
    ('started, version 2.89 cachesize 150', 'server-start', None, None, None),
    ('exiting on receipt of SIGTERM', 'server-stop', None, None, None),
])
def test_parse_message(message, kind, mac, ip, path):
    event = boot_log.parse_message(message, 1764669600.5, tftp_root=TFTP_ROOT)
    assert (event.kind, event.mac, event.ip, event.path, event.time, event.message) == (kind, mac, ip, path, 1764669600.5, message)


@pytest.mark.parametrize('message', [
    'compile time options: IPv6 GNU-getopt DBus no-UBus i18n IDN2 DHCP DHCPv6 no-Lua TFTP conntrack ipset nftset auth cryptohash '
    'DNSSEC loop-detect inotify dumpfile',
    'DHCP, static leases only on 10.77.0.0, lease time 1h',
    'TFTP root is /srv/netboot/tftp',
    'read /etc/hosts - 8 names',
    'Started dnsmasq.service - dnsmasq - A lightweight DHCP and caching DNS server.',
])
def test_other_lines_are_none(message):
    assert boot_log.parse_message(message, 0.0) is None


def test_paths_without_the_tftp_root():
    # Another root than the one given, or none: the serial directory and its file, else the name.
    assert boot_log.parse_message('sent /tftp/0000aa02/cmdline.txt to 10.0.0.2', 1.0).path == '0000aa02/cmdline.txt'
    assert boot_log.parse_message('sent /tftp/bootcode.bin to 10.0.0.2', 1.0, tftp_root='/srv').path == 'bootcode.bin'


@pytest.mark.parametrize('path, serial', [
    ('0000aa03/start.elf', '0000aa03'), ('bootcode.bin', None), ('start.elf', None),
    ('0000AA03/start.elf', None), ('x/0000aa03/start.elf', None), (None, None),
])
def test_serial_of(path, serial):
    assert boot_log.serial_of(path) == serial


def journal_line(epoch, message, identifier='dnsmasq-dhcp'):
    """One entry as journalctl -o json prints it (fields trimmed)."""
    return json.dumps({'__REALTIME_TIMESTAMP': str(int(epoch * 1e6)), '_SYSTEMD_UNIT': 'dnsmasq.service',
                       'SYSLOG_IDENTIFIER': identifier, 'MESSAGE': message})


def test_read_events_from_journalctl_in_time_order():
    lines = [
        journal_line(100.25, 'sent /srv/netboot/tftp/bootcode.bin to 10.77.0.12', 'dnsmasq-tftp'),
        journal_line(100.0, 'DHCPDISCOVER(eth0) 02:00:00:00:00:02'),
        journal_line(100.0, 'DHCPOFFER(eth0) 10.77.0.12 02:00:00:00:00:02'),
        journal_line(101.0, 'read /etc/hosts - 8 names', 'dnsmasq'),
        'not json',
        json.dumps({'__REALTIME_TIMESTAMP': '102000000', 'MESSAGE': list(bytearray(b'sent /srv/netboot/tftp/0000aa02/start.elf to 10.77.0.12'))}),
    ]
    calls = []

    def run_command(argv):
        calls.append(argv)
        return 0, '\n'.join(lines) + '\n', ''

    events = boot_log.read_events(run_command, since=99.5, tftp_root=TFTP_ROOT)
    assert calls == [['journalctl', '--no-pager', '-q', '-o', 'json', '-u', 'dnsmasq', '--since', '@99']]
    assert [(e.time, e.kind, e.path) for e in events] == [
        (100.0, 'dhcp-discover', None), (100.0, 'dhcp-offer', None), (100.25, 'tftp-sent', 'bootcode.bin'),
        (102.0, 'tftp-sent', '0000aa02/start.elf')]
    # since counts to the microsecond, though journalctl is asked from the second before
    assert [e.kind for e in boot_log.read_events(run_command, since=100.1)] == ['tftp-sent', 'tftp-sent']


def test_read_events_fails_with_what_to_do():
    with pytest.raises(boot_log.BootLogError, match='Cannot read the journal of dnsmasq.*No journal files'):
        boot_log.read_events(lambda argv: (1, '', 'No journal files were found.'))


def test_read_events_from_a_file(tmp_path):
    log = tmp_path / 'journal.json'
    log.write_text(journal_line(5.0, 'DHCPDISCOVER(eth0) 02:00:00:00:00:05') + '\n')
    events = boot_log.read_events(None, log_file=str(log))
    assert [(e.kind, e.mac) for e in events] == [('dhcp-discover', '02:00:00:00:00:05')]
    with pytest.raises(boot_log.BootLogError, match='Cannot read the boot log'):
        boot_log.read_events(None, log_file=str(tmp_path / 'missing'))


# The lab master's dnsmasq journal (journalctl -u dnsmasq -o json, fields trimmed) over a run of
# tests/e2e/diagnostics.sh on three nodes: the first bootstrap (10:20:52), dnsmasq stopped
# (10:21:31) while node4 was power-cycled, started again (10:22:17), the bootstrap with the
# faults (10:22:47: node2's serial directory missing, node3 fully served), the nodes' reboot (10:23:45).
REAL_JOURNAL = os.path.join(os.path.dirname(__file__), 'dnsmasq-journal.json')


def test_the_lab_journal():
    events = boot_log.read_events(None, log_file=REAL_JOURNAL, tftp_root=TFTP_ROOT)
    kinds = [e.kind for e in events]
    assert kinds.count('server-start') == 4 and kinds.count('server-stop') == 3
    assert [e.time for e in events] == sorted(e.time for e in events)
    missing = [(e.ip, e.path) for e in events if e.kind == 'tftp-missing']
    assert missing == [('10.77.0.12', '0000aa02/start.elf'), ('10.77.0.12', 'start.elf')]
    node3 = [(e.kind, e.path) for e in events if e.ip == '10.77.0.13' and 1796206967 <= e.time < 1796206968]
    assert node3 == [('dhcp-offer', None), ('dhcp-request', None), ('dhcp-ack', None), ('tftp-sent', 'bootcode.bin'),
                     ('tftp-sent', '0000aa03/start.elf'), ('tftp-sent', '0000aa03/config.txt'),
                     ('tftp-sent', '0000aa03/cmdline.txt'), ('tftp-sent', '0000aa03/kernel8.img')]
    # The serials the boot ROMs asked for, as a census reads them
    asked = sorted(set(boot_log.serial_of(e.path) for e in events if e.path and e.path.endswith('/start.elf')))
    assert asked == ['0000aa02', '0000aa03', '0000aa04']
    # "abandoning lease to MAC of IP" is no boot event
    assert not [e for e in events if 'abandoning' in e.message]
