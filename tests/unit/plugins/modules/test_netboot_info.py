# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.netboot_info through main(), on fake journals (journalctl -o json lines) of the
master's dnsmasq with the lines it logged in the lab, fake export files and real TCP ports."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import socket

import pytest

from ansible_collections.turingpi.cluster.plugins.modules import netboot_info

MAC = '02:00:00:00:00:03'
IP = '10.77.0.13'
T0 = 1764669600.0  # power-on
ROOT = '/srv/netboot/nfs/node3'

BOOT_ROM = [
    'DHCPDISCOVER(eth0) 02:00:00:00:00:03',
    'DHCPOFFER(eth0) 10.77.0.13 02:00:00:00:00:03',
    'DHCPREQUEST(eth0) 10.77.0.13 02:00:00:00:00:03',
    'DHCPACK(eth0) 10.77.0.13 02:00:00:00:00:03 node3',
    'sent /srv/netboot/tftp/bootcode.bin to 10.77.0.13',
]
START_ELF = [
    'sent /srv/netboot/tftp/0000aa03/start.elf to 10.77.0.13',
    'sent /srv/netboot/tftp/0000aa03/config.txt to 10.77.0.13',
    'sent /srv/netboot/tftp/0000aa03/cmdline.txt to 10.77.0.13',
    'sent /srv/netboot/tftp/0000aa03/kernel8.img to 10.77.0.13',
]
KERNEL_DHCP = BOOT_ROM[:4]
WRONG_SERIAL = [
    'file /srv/netboot/tftp/0000aa03/start.elf not found for 10.77.0.13',
    'file /srv/netboot/tftp/start.elf not found for 10.77.0.13',
]


def journal(path, *groups):
    """Write the messages as journal entries 0.1 s apart from T0 (a group: (start, messages))."""
    lines = []
    for start, messages in groups:
        for i, message in enumerate(messages):
            lines.append(json.dumps({'__REALTIME_TIMESTAMP': str(int((start + i * 0.1) * 1e6)),
                                     'SYSLOG_IDENTIFIER': 'dnsmasq-tftp' if 'tftp' in message else 'dnsmasq-dhcp',
                                     '_SYSTEMD_UNIT': 'dnsmasq.service', 'MESSAGE': message}))
    path.write_text('\n'.join(lines) + '\n')
    return str(path)


@pytest.fixture
def exports(tmp_path):
    directory = tmp_path / 'exports.d'
    directory.mkdir()
    (directory / 'turingpi-netboot.exports').write_text(
        '# managed\n/srv/netboot/nfs/node2 10.77.0.0/24(rw,no_root_squash)\n%s 10.77.0.0/24(rw,no_root_squash,fsid=1)\n' % ROOT)
    return directory


@pytest.fixture
def ssh_port():
    """A port that accepts connections, as an SSH server's would, with its banner."""
    server = socket.socket()
    server.bind(('127.0.0.1', 0))
    server.listen(8)
    yield server.getsockname()[1]
    server.close()


@pytest.fixture
def closed_port():
    sock = socket.socket()
    sock.bind(('127.0.0.1', 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def run(run_module, log, exports, port, serial='0000aa03', since=T0, check_mode=False, **extra):
    node = dict(name='node3', mac=MAC, serial=serial, ip='127.0.0.1', root=ROOT, since=since)
    args = dict(nodes=[node], log_file=log, exports=[str(exports)], exportfs=False, ssh_port=port, ssh_timeout=1)
    args.update(extra)
    code, result = run_module(netboot_info, args, check_mode=check_mode)
    assert code == 0, result
    assert result['changed'] is False
    return result['nodes']['node3']


def stages(report):
    return [s['stage'] for s in report['stages']]


def test_a_node_that_booted(run_module, tmp_path, exports, ssh_port):
    log = journal(tmp_path / 'j', (T0 - 100, ['started, version 2.89 cachesize 150']), (T0 + 1, BOOT_ROM), (T0 + 2, START_ELF),
                  (T0 + 4, KERNEL_DHCP))
    report = run(run_module, log, exports, ssh_port)
    assert stages(report) == ['dhcp-discover', 'dhcp-offer', 'bootcode.bin', 'start.elf', 'kernel', 'root-exported',
                              'kernel-dhcp', 'ssh']
    assert report['booted'] is True and report['cause'] is None and report['missing_stage'] is None
    assert report['stages'][0]['time'] == pytest.approx(T0 + 1)
    assert report['stages'][2]['detail'] == 'sent /srv/netboot/tftp/bootcode.bin to 10.77.0.13'
    assert report['stages'][4]['detail'] == 'sent 0000aa03/cmdline.txt and 0000aa03/kernel8.img'
    assert report['stages'][6]['time'] == pytest.approx(T0 + 4)
    assert report['serial_asked'] == '0000aa03'


def test_bootcode_bin_from_the_boot_partition(run_module, tmp_path, exports, ssh_port):
    # The bootcode.bin-only route: the module reads bootcode.bin from its own partition; a
    # client that gives up a transfer early shows as an error line without a file.
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM[:4] + ['error 0 Early terminate received from 10.77.0.13']),
                  (T0 + 2, START_ELF), (T0 + 4, KERNEL_DHCP))
    report = run(run_module, log, exports, ssh_port)
    assert stages(report)[:4] == ['dhcp-discover', 'dhcp-offer', 'bootcode.bin', 'start.elf'] and report['booted']
    assert report['stages'][2]['detail'] == "bootcode.bin from the module's own boot partition (not read over TFTP)"


def test_check_mode_reports_the_same(run_module, tmp_path, exports, ssh_port):
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM), (T0 + 2, START_ELF), (T0 + 4, KERNEL_DHCP))
    assert run(run_module, log, exports, ssh_port, check_mode=True) == run(run_module, log, exports, ssh_port)


def test_wrong_serial_in_the_inventory(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM), (T0 + 2, WRONG_SERIAL))
    report = run(run_module, log, exports, closed_port, serial='0000bb03')
    assert report['last_stage'] == 'bootcode.bin' and report['missing_stage'] == 'start.elf'
    assert report['serial_asked'] == '0000aa03'
    assert 'wrong serial in the inventory' in report['cause']
    assert '0000aa03/start.elf' in report['cause'] and '0000bb03' in report['cause']
    assert 'serial: 0000aa03' in report['advice']


def test_no_boot_files_for_the_right_serial(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM), (T0 + 2, WRONG_SERIAL))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'bootcode.bin'
    assert 'has no such file' in report['cause'] and 'wrong serial' not in report['cause']


def test_root_not_exported(run_module, tmp_path, exports, closed_port):
    (exports / 'turingpi-netboot.exports').write_text('/srv/netboot/nfs/node2 10.77.0.0/24(rw)\n')
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM), (T0 + 2, START_ELF))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'kernel' and report['missing_stage'] == 'root-exported'
    assert '%s is not in /etc/exports' % ROOT in report['cause']
    assert 'exportfs -ra' in report['advice']


def test_exported_in_the_files_but_not_live(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM), (T0 + 2, START_ELF))
    fake = tmp_path / 'bin'
    fake.mkdir()
    exportfs = fake / 'exportfs'
    exportfs.write_text('#!/bin/sh\nprintf "/srv/netboot/nfs/node2\\n\\t\\t10.77.0.0/24(rw,wdelay)\\n"\n')
    exportfs.chmod(0o755)
    old = os.environ['PATH']
    os.environ['PATH'] = '%s:%s' % (fake, old)
    try:
        report = run(run_module, log, exports, closed_port, exportfs=True)
    finally:
        os.environ['PATH'] = old
    assert report['last_stage'] == 'kernel'
    assert 'listed but not exported now' in report['cause']


def test_booted_but_no_ssh_is_the_image(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM), (T0 + 2, START_ELF), (T0 + 4, KERNEL_DHCP))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'kernel-dhcp' and report['missing_stage'] == 'ssh'
    assert 'SSH does not answer' in report['cause'] and 'image' in report['advice']


def test_no_kernel_dhcp(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM), (T0 + 2, START_ELF))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'root-exported'
    assert 'never asked DHCP' in report['cause']


def test_dhcp_but_no_tftp_is_the_netboot_answer(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 + 1, BOOT_ROM[:4]))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'dhcp-offer'
    assert 'option 43' in report['cause'] and 'pxe-service' in report['advice']


def test_server_started_after_the_power_on(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 - 60, BOOT_ROM), (T0 - 20, ['exiting on receipt of SIGTERM']),
                  (T0 + 40, ['started, version 2.89 cachesize 150']))
    report = run(run_module, log, exports, closed_port)
    assert report['stages'] == [] and report['last_stage'] == 'none'
    assert 'the netboot server was not running from %s to %s (after %s)' % (
        netboot_info._when(T0 - 20), netboot_info._when(T0 + 40), netboot_info._when(T0)) in report['cause']
    assert 'Power-cycle' in report['advice']


def test_server_was_down_before_the_wait(run_module, tmp_path, exports, closed_port):
    # The node got power at an unknown time while dnsmasq was stopped; since is later.
    log = journal(tmp_path / 'j', (T0 - 300, BOOT_ROM), (T0 - 200, ['exiting on receipt of SIGTERM']),
                  (T0 - 150, ['started, version 2.89 cachesize 150']))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'none'
    assert 'was not running from' in report['cause'] and 'gives up' in report['cause'] and '(after' not in report['cause']


def test_server_started_and_the_node_silent_since(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 - 150, ['started, version 2.89 cachesize 150']))
    report = run(run_module, log, exports, closed_port)
    assert 'the netboot server started at %s and the node has asked nothing since' % netboot_info._when(T0 - 150) in report['cause']


def test_node_asked_after_the_server_started_but_not_since(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 - 150, ['started, version 2.89 cachesize 150']), (T0 - 100, BOOT_ROM))
    report = run(run_module, log, exports, closed_port)
    assert 'no power, no cable' in report['cause']


def test_no_dhcp_at_all_is_cable_or_power(run_module, tmp_path, exports, closed_port):
    other = [m.replace(MAC, '02:00:00:00:00:02').replace(IP, '10.77.0.12') for m in BOOT_ROM]
    log = journal(tmp_path / 'j', (T0 + 1, other))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'none' and report['missing_stage'] == 'dhcp-discover'
    assert 'no power, no cable' in report['cause']


def test_events_before_since_do_not_count(run_module, tmp_path, exports, closed_port):
    log = journal(tmp_path / 'j', (T0 - 50, BOOT_ROM), (T0 - 49, START_ELF))
    report = run(run_module, log, exports, closed_port)
    assert report['last_stage'] == 'none'


def test_bad_input_and_unreadable_journal(run_module, tmp_path, exports, closed_port):
    code, result = run_module(netboot_info, dict(nodes=[dict(name='node3', mac='nope')], log_file=str(tmp_path / 'x')))
    assert code == 1 and 'is not a MAC address' in result['msg']
    code, result = run_module(netboot_info, dict(nodes=[dict(name='node3', mac=MAC)], log_file=str(tmp_path / 'x')))
    assert code == 1 and 'Cannot read the boot log' in result['msg']


# The lab master's dnsmasq journal (see tests/unit/plugins/module_utils/test_boot_log.py).
REAL_JOURNAL = os.path.join(os.path.dirname(__file__), '..', 'module_utils', 'dnsmasq-journal.json')
LAB = {'node2': ('02:00:00:00:00:02', '10.77.0.12'), 'node3': ('02:00:00:00:00:03', '10.77.0.13'),
       'node4': ('02:00:00:00:00:04', '10.77.0.14')}


def lab_report(run_module, exports, port, since, serials=None, node_since=None, **extra):
    nodes = [dict(name=name, mac=mac, ip='127.0.0.1', serial=(serials or {}).get(name, '0000aa0%s' % name[-1]),
                  root='/srv/netboot/nfs/%s' % name, since=(node_since or {}).get(name))
             for name, (mac, dummy_ip) in sorted(LAB.items())]
    args = dict(nodes=nodes, since=since, log_file=REAL_JOURNAL, exports=[str(exports)], exportfs=False, ssh_port=port,
                ssh_timeout=1)
    args.update(extra)
    code, result = run_module(netboot_info, args)
    assert code == 0, result
    return result


@pytest.fixture
def lab_exports(tmp_path):
    directory = tmp_path / 'lab-exports.d'
    directory.mkdir()
    (directory / 'turingpi-netboot.exports').write_text(''.join(
        '/srv/netboot/nfs/%s 10.77.0.0/24(rw,sync,no_subtree_check,no_root_squash,fsid=1)\n' % name for name in sorted(LAB)))
    return directory


def test_lab_first_bootstrap(run_module, lab_exports, closed_port, ssh_port):
    result = lab_report(run_module, lab_exports, closed_port, since=1796206850, until=1796206860)
    for name in LAB:
        assert stages(result['nodes'][name]) == ['dhcp-discover', 'dhcp-offer', 'bootcode.bin', 'start.elf', 'kernel',
                                                 'root-exported', 'kernel-dhcp']
        assert 'SSH does not answer' in result['nodes'][name]['cause']
    result = lab_report(run_module, lab_exports, ssh_port, since=1796206850, until=1796206860)
    assert all(node['booted'] for node in result['nodes'].values())
    assert result['server']['starts'][0] == pytest.approx(1796206801.210066)
    # the first bootstrap: 3 nodes x (4 boot ROM DHCP, 5 TFTP, 4 kernel DHCP, 4 of the OS's DHCP)
    assert result['events'] == 51


def test_lab_faults(run_module, lab_exports, closed_port):
    (lab_exports / 'turingpi-netboot.exports').write_text(
        '/srv/netboot/nfs/node2 10.77.0.0/24(rw)\n/srv/netboot/nfs/node4 10.77.0.0/24(rw)\n')
    # node2 and node3 powered on at 10:22:46; node4 power-cycled at 10:21:34, while dnsmasq was
    # stopped (10:21:31 to 10:22:17), and its power-on time not known: since is later (the wait's start).
    result = lab_report(run_module, lab_exports, closed_port, since=1796206966, serials={'node2': '0000bb02'},
                        node_since={'node4': 1796206940}, until=1796207020)
    node2, node3, node4 = (result['nodes'][n] for n in ('node2', 'node3', 'node4'))
    assert (node2['last_stage'], node2['serial_asked']) == ('bootcode.bin', '0000aa02')
    assert 'wrong serial in the inventory: the module asked TFTP for 0000aa02/start.elf, the inventory says 0000bb02' == node2['cause']
    assert node3['last_stage'] == 'kernel' and '/srv/netboot/nfs/node3 is not in /etc/exports' in node3['cause']
    assert node4['last_stage'] == 'none' and 'the netboot server was not running from 10:21:31 UTC to 10:22:17 UTC and' in node4['cause']


def test_lab_server_started_after_the_power_on(run_module, lab_exports, closed_port):
    code, result = run_module(netboot_info, dict(
        nodes=[dict(name='node4', mac=LAB['node4'][0], ip='127.0.0.1', since=1796206894)],
        until=1796207020, log_file=REAL_JOURNAL, exports=[str(lab_exports)], exportfs=False, ssh_port=closed_port, ssh_timeout=1))
    assert code == 0
    assert ('since 10:21:34 UTC; the netboot server was not running from 10:21:31 UTC to 10:22:17 UTC (after 10:21:34 UTC) '
            'and the node has asked nothing since it started') in result['nodes']['node4']['cause']
