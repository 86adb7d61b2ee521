# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.node_info through main(), on fake node trees (a netbooted CM3, a container)
with fake dpkg-query and systemctl that answer the way the real ones do."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat

import pytest

from ansible_collections.turingpi.cluster.plugins.modules import node_info

CM3_CPUINFO = '''processor\t: 0
model name\t: ARMv7 Processor rev 4 (v7l)
Hardware\t: BCM2835
Revision\t: a020a0
Serial\t\t: 00000000A1B2C3D4
Model\t\t: Raspberry Pi Compute Module 3 Rev 1.0
'''

# What dpkg-query -W -f='${db:Status-Status} ${Package}\n' prints: installed and removed
# packages on stdout, unknown ones on stderr with rc 1.
FAKE_DPKG_QUERY = '''#!/bin/sh
rc=0
for name in "$@"; do
    case "$name" in
        -*) ;;
        sudo|chrony) echo "installed $name" ;;
        ntp) echo "config-files $name" ;;
        *) echo "dpkg-query: no packages found matching $name" >&2; rc=1 ;;
    esac
done
exit $rc
'''

# systemctl show: one block per unit in the order given, properties in systemd's own order.
FAKE_SYSTEMCTL = '''#!/bin/sh
[ "$1" = show ] || exit 2
shift
first=1
for name in "$@"; do
    case "$name" in -*) continue ;; esac
    [ $first = 1 ] || echo
    first=0
    case "$name" in
        chrony.service)
            printf 'LoadState=loaded\\nActiveState=inactive\\nUnitFileState=enabled\\nConditionResult=no\\nConditionTimestampMonotonic=8123456\\n' ;;
        ssh.service)
            printf 'LoadState=loaded\\nActiveState=active\\nUnitFileState=enabled\\nConditionResult=yes\\nConditionTimestampMonotonic=4000000\\n' ;;
        zramswap.service)
            printf 'LoadState=masked\\nActiveState=inactive\\nUnitFileState=masked\\nConditionResult=no\\nConditionTimestampMonotonic=0\\n' ;;
        *)
            printf 'LoadState=not-found\\nActiveState=inactive\\nUnitFileState=\\nConditionResult=no\\nConditionTimestampMonotonic=0\\n' ;;
    esac
done
'''


def write(root, path, content, binary=False):
    target = root / path.lstrip('/')
    target.parent.mkdir(parents=True, exist_ok=True)
    if binary:
        target.write_bytes(content)
    else:
        target.write_text(content)
    return target


@pytest.fixture
def fake_bin(tmp_path, monkeypatch):
    """A directory of fake commands, first in PATH."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    monkeypatch.setenv('PATH', '%s:/usr/bin:/bin' % bin_dir)

    def add(name, script):
        path = bin_dir / name
        path.write_text(script)
        path.chmod(path.stat().st_mode | stat.S_IEXEC)
    add('dpkg-query', FAKE_DPKG_QUERY)
    add('systemctl', FAKE_SYSTEMCTL)
    return add


@pytest.fixture
def netbooted_cm3(tmp_path):
    root = tmp_path / 'cm3'
    write(root, '/proc/cpuinfo', CM3_CPUINFO)
    write(root, '/sys/firmware/devicetree/base/model', b'Raspberry Pi Compute Module 3 Plus Rev 1.0\x00', binary=True)
    write(root, '/sys/firmware/devicetree/base/serial-number', b'00000000a1b2c3d4\x00', binary=True)
    write(root, '/proc/self/mounts', 'sysfs /sys sysfs rw 0 0\n'
                                     '10.0.0.1:/srv/netboot/nfs/node2 / nfs rw,vers=3 0 0\n'
                                     'proc /proc proc rw 0 0\n')
    write(root, '/proc/cmdline', 'console=serial0,115200 root=/dev/nfs nfsroot=10.0.0.1:/srv/netboot/nfs/node2,vers=3 rw ip=dhcp\n')
    write(root, '/proc/swaps', 'Filename\tType\tSize\tUsed\tPriority\n/var/swap file 102396 0 -2\n')
    write(root, '/etc/fstab', 'proc /proc proc defaults 0 0\n/var/swap none swap sw 0 0\n# /old none swap sw 0 0\n')
    write(root, '/etc/hostname', 'node2\n')
    write(root, '/boot/cmdline.txt', 'console=serial0,115200 root=/dev/nfs rw\n')
    return root


def test_netbooted_cm3(run_module, fake_bin, netbooted_cm3):
    code, result = run_module(node_info, dict(fs_root=str(netbooted_cm3), packages=['sudo', 'chrony', 'ntp', 'htop'],
                                              units=['zramswap.service', 'chrony.service', 'dphys-swapfile.service']))
    assert code == 0 and result['changed'] is False
    # cpuinfo's Serial wins over the device tree; the TFTP directory is its last 8 digits, lower case.
    assert result['serial'] == '00000000A1B2C3D4'
    assert result['netboot_serial'] == 'a1b2c3d4'
    # The device tree's model wins over cpuinfo's (it names the Plus).
    assert result['model'] == 'Raspberry Pi Compute Module 3 Plus Rev 1.0'
    assert result['container'] is False and result['virtualization'] == ''
    assert result['root'] == {'device': '10.0.0.1:/srv/netboot/nfs/node2', 'fstype': 'nfs'}
    assert result['boot_source'] == 'netboot'
    assert result['hostname'] == 'node2'
    assert 'ip=dhcp' in result['kernel_cmdline'] and len(result['kernel_cmdline']) == 5
    # /boot/firmware/cmdline.txt is missing: the next candidate is read.
    assert result['boot_cmdline'] == {'path': '/boot/cmdline.txt', 'params': ['console=serial0,115200', 'root=/dev/nfs', 'rw']}
    assert result['swap'] == {'active': ['/var/swap'], 'fstab': ['/var/swap none swap sw 0 0'], 'zram_generator': False}
    # config-files (removed, not purged) is not installed.
    assert result['packages'] == {'sudo': True, 'chrony': True, 'ntp': False, 'htop': False}
    # Matched by position, whatever systemd prints as the unit's Id.
    assert result['units']['zramswap.service']['load_state'] == 'masked'
    assert result['units']['chrony.service'] == {'load_state': 'loaded', 'active_state': 'inactive', 'unit_file_state': 'enabled',
                                                 'condition_result': False, 'conditions_checked': True}
    assert result['units']['dphys-swapfile.service']['load_state'] == 'not-found'
    assert result['units']['dphys-swapfile.service']['conditions_checked'] is False
    assert result['local_facts'] is None


def test_device_tree_serial_when_cpuinfo_has_none(run_module, fake_bin, netbooted_cm3):
    write(netbooted_cm3, '/proc/cpuinfo', 'processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\n')
    code, result = run_module(node_info, dict(fs_root=str(netbooted_cm3)))
    assert code == 0
    assert result['serial'] == '00000000a1b2c3d4' and result['netboot_serial'] == 'a1b2c3d4'


def test_emmc_boot_and_octal_escapes_in_mounts(run_module, fake_bin, tmp_path):
    root = tmp_path / 'emmc'
    write(root, '/proc/self/mounts', '/dev/root / ext4 rw 0 0\n/dev/mmcblk0p2 / ext4 rw 0 0\n/dev/sda1 /mnt/my\\040disk vfat rw 0 0\n')
    code, result = run_module(node_info, dict(fs_root=str(root)))
    assert code == 0
    assert result['root']['device'] == '/dev/mmcblk0p2' and result['boot_source'] == 'mmc'


def test_container(run_module, fake_bin, tmp_path):
    root = tmp_path / 'nspawn'
    write(root, '/run/systemd/container', 'systemd-nspawn\n')
    write(root, '/proc/self/mounts', 'overlay / overlay rw 0 0\n')
    write(root, '/sys/class/dmi/id/product_name', 'NA\n')
    write(root, '/usr/lib/systemd/system-generators/zram-generator', '')
    code, result = run_module(node_info, dict(fs_root=str(root)))
    assert code == 0
    assert result['container'] is True and result['virtualization'] == 'systemd-nspawn'
    assert result['boot_source'] == 'container'
    # No serial and no model: a container has neither; DMI's NA placeholder is no model.
    assert result['serial'] == '' and result['netboot_serial'] == '' and result['model'] == ''
    assert result['boot_cmdline'] == {'path': '', 'params': []}
    assert result['swap'] == {'active': [], 'fstab': [], 'zram_generator': True}


def test_container_from_pid1_environment(run_module, fake_bin, tmp_path):
    root = tmp_path / 'lxc'
    write(root, '/proc/1/environ', b'PATH=/usr/bin\x00container=lxc\x00', binary=True)
    code, result = run_module(node_info, dict(fs_root=str(root)))
    assert code == 0 and result['virtualization'] == 'lxc' and result['container'] is True


def test_local_facts_and_resolve(run_module, fake_bin, netbooted_cm3):
    facts = {'board': 'lab', 'slot': '2', 'serial': '00000000a1b2c3d4'}
    write(netbooted_cm3, '/etc/ansible/facts.d/turingpi.fact', json.dumps(facts))
    code, result = run_module(node_info, dict(fs_root=str(netbooted_cm3), resolve=['localhost', 'no-such-host.invalid']))
    assert code == 0
    assert result['local_facts'] == facts
    assert '127.0.0.1' in result['resolved']['localhost'] or '::1' in result['resolved']['localhost']
    assert result['resolved']['no-such-host.invalid'] == []


def test_broken_facts_file_is_null_with_a_warning(run_module, fake_bin, netbooted_cm3):
    write(netbooted_cm3, '/etc/ansible/facts.d/turingpi.fact', '{"board": ')
    code, result = run_module(node_info, dict(fs_root=str(netbooted_cm3)))
    assert code == 0 and result['local_facts'] is None
    assert 'not JSON' in json.dumps(result['warnings'])


def test_without_package_database_or_systemd(run_module, tmp_path, monkeypatch, netbooted_cm3):
    monkeypatch.setattr(node_info.AnsibleModule, 'get_bin_path', lambda self, name, *args, **kwargs: None)
    code, result = run_module(node_info, dict(fs_root=str(netbooted_cm3), packages=['sudo'], units=['chrony.service']))
    assert code == 0
    assert result['packages'] == {'sudo': None}
    assert result['units']['chrony.service']['load_state'] is None


def test_systemd_not_running_is_a_warning(run_module, fake_bin, netbooted_cm3):
    fake_bin('systemctl', '#!/bin/sh\necho "System has not been booted with systemd as init system (PID 1). Can\'t operate." >&2\nexit 1\n')
    code, result = run_module(node_info, dict(fs_root=str(netbooted_cm3), units=['chrony.service']))
    assert code == 0
    assert result['units']['chrony.service']['load_state'] is None
    assert 'systemctl show failed' in json.dumps(result['warnings'])


@pytest.mark.parametrize('args, message', [
    (dict(packages=['--admindir=/tmp']), 'not a package or unit name'),
    (dict(units=['chrony.service ssh.service']), 'not a package or unit name'),
    (dict(fs_root='/no/such/dir'), 'is not a directory'),
])
def test_bad_input(run_module, fake_bin, args, message):
    code, result = run_module(node_info, args)
    assert code == 1 and result['failed'] and message in result['msg']


def test_check_mode_reads_the_same(run_module, fake_bin, netbooted_cm3):
    args = dict(fs_root=str(netbooted_cm3), packages=['sudo'], units=['chrony.service'])
    normal = run_module(node_info, args)[1]
    checked = run_module(node_info, args, check_mode=True)[1]
    for key in ('serial', 'root', 'swap', 'packages', 'units', 'boot_cmdline'):
        assert checked[key] == normal[key]
    assert checked['changed'] is False


def test_directories(run_module, fake_bin, netbooted_cm3):
    (netbooted_cm3 / 'etc' / 'ssh' / 'sshd_config.d').mkdir(parents=True)
    (netbooted_cm3 / 'etc' / 'ssh' / 'sshd_config.d').chmod(0o750)
    (netbooted_cm3 / 'etc' / 'chrony').symlink_to('ssh')
    code, result = run_module(node_info, dict(fs_root=str(netbooted_cm3), directories=[
        '/etc/ssh/sshd_config.d', '/etc/chrony', '/etc/hostname', '/etc/ansible/facts.d']))
    assert code == 0
    found = result['directories']
    assert found['/etc/ssh/sshd_config.d'] == {'exists': True, 'mode': '0750', 'uid': os.getuid(), 'gid': os.getgid()}
    # A link to a directory counts as the directory (the file module follows it too).
    assert found['/etc/chrony']['exists'] is True and found['/etc/chrony']['mode'] == '%04o' % (
        (netbooted_cm3 / 'etc' / 'ssh').stat().st_mode & 0o7777)
    # A file, or nothing at all, is no directory.
    assert found['/etc/hostname'] == {'exists': False, 'mode': None, 'uid': None, 'gid': None}
    assert found['/etc/ansible/facts.d']['exists'] is False
