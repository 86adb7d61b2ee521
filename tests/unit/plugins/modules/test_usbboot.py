# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.usbboot through main(), with a fake sysfs tree and a fake rpiboot that turns
the flash-mode device into a mass-storage disk the way the real one does."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

from ansible_collections.turingpi.cluster.plugins.modules import usbboot


def fake_rpiboot(tmp_path, script):
    path = tmp_path / 'rpiboot'
    path.write_text('#!/bin/sh\n' + script)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def boots_into_disk(tmp_path, sysfs):
    """A script that removes the boot device and makes the gadget disk appear, like rpiboot + msd."""
    gadget = sysfs.root / 'devices' / 'pci0000:00' / '0000:00:14.0' / 'usb1' / '1-3'
    blk = gadget / '1-3:1.0' / 'host3' / 'target3:0:0' / '3:0:0:0' / 'block' / 'sdd'
    return fake_rpiboot(tmp_path, '''
echo "Waiting for BCM2835/6/7/2711..."
rm -f {links}/1-3
printf 0001 > {gadget}/idProduct
mkdir -p {blk}
echo 15269888 > {blk}/size
ln -s {blk} {sysfs}/block/sdd
echo "Second stage boot server done"
'''.format(links=sysfs.root / 'bus' / 'usb' / 'devices', gadget=gadget, blk=blk, sysfs=sysfs.root))


def test_boots_and_returns_disk(tmp_path, sysfs, run_module):
    sysfs.usb_device('1-3', '0a5c', '2764', serial='cm3')
    rpiboot = boots_into_disk(tmp_path, sysfs)
    rc, result = run_module(usbboot, {'rpiboot_path': rpiboot, 'sysfs_root': str(sysfs), 'timeout': 5})
    assert rc == 0, result
    assert result['changed'] and result['rpiboot_ran']
    assert result['device'] == '/dev/sdd' and result['size'] == 15269888 * 512
    assert (result['usb']['vendor'], result['usb']['product'], result['usb']['serial']) == ('0a5c', '0001', 'cm3')
    assert result['boot_device']['product'] == '2764'
    assert 'Second stage boot server done' in result['stdout']


def test_already_in_mass_storage_is_unchanged(tmp_path, sysfs, run_module):
    gadget = sysfs.usb_device('1-3', '0a5c', '0001')
    sysfs.usb_disk(gadget, 'sdb', 2048)
    rc, result = run_module(usbboot, {'rpiboot_path': '/nonexistent/rpiboot', 'sysfs_root': str(sysfs)})
    assert rc == 0 and not result['changed'] and not result['rpiboot_ran']
    assert result['device'] == '/dev/sdb'


def test_no_module_in_flash_mode(sysfs, run_module):
    sysfs.usb_device('1-4', '046d', 'c52b')
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs)})
    assert rc == 1
    assert result['msg'] == ('no compute module in flash mode on the USB bus (no USB device 0a5c:2763 or 0a5c:2764): put the '
                             'module in slot 1, set the jumper to flash, connect the micro-USB port to this host and '
                             'power-cycle the board')


def test_rpiboot_missing(sysfs, run_module):
    sysfs.usb_device('1-3', '0a5c', '2763')
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs), 'rpiboot_path': 'rpiboot-not-installed'})
    assert rc == 1
    assert result['msg'] == ('rpiboot not found (rpiboot-not-installed): install it (apt install rpiboot, or build '
                             'github.com/raspberrypi/usbboot) or set rpiboot_path')


def test_check_mode_does_not_run_rpiboot(tmp_path, sysfs, run_module):
    sysfs.usb_device('1-3', '0a5c', '2764')
    rpiboot = fake_rpiboot(tmp_path, 'touch %s/ran\n' % tmp_path)
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs), 'rpiboot_path': rpiboot}, check_mode=True)
    assert rc == 0 and result['changed'] and result['device'] is None and not result['rpiboot_ran']
    assert not os.path.exists(str(tmp_path / 'ran'))


def test_rpiboot_hangs(tmp_path, sysfs, run_module):
    sysfs.usb_device('1-3', '0a5c', '2764')
    rpiboot = fake_rpiboot(tmp_path, 'sleep 30\n')
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs), 'rpiboot_path': rpiboot, 'timeout': 1})
    assert rc == 1
    assert result['msg'] == ('rpiboot did not finish within 1 s: it hangs when the module has already booted; power-cycle '
                             'the board with the jumper in flash position and run again')


def test_rpiboot_fails(tmp_path, sysfs, run_module):
    sysfs.usb_device('1-3', '0a5c', '2764')
    rpiboot = fake_rpiboot(tmp_path, 'echo "Failed to open the requested device" >&2; exit 2\n')
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs), 'rpiboot_path': rpiboot})
    assert rc == 1 and result['msg'] == 'rpiboot failed (rc=2): Failed to open the requested device'


def test_no_disk_appears(tmp_path, sysfs, run_module):
    sysfs.usb_device('1-3', '0a5c', '2764')
    rpiboot = fake_rpiboot(tmp_path, 'exit 0\n')
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs), 'rpiboot_path': rpiboot, 'timeout': 1})
    assert rc == 1
    assert result['msg'] == ('rpiboot finished but no USB mass-storage disk matching 0a5c:* appeared within 1 s: check that '
                             'rpiboot loaded the mass-storage firmware (msd) and the cable, then run again')


def test_two_disks_need_serial(tmp_path, sysfs, run_module):
    for port, serial, name in (('1-3', 'aa', 'sdb'), ('1-4', 'bb', 'sdc')):
        sysfs.usb_disk(sysfs.usb_device(port, '0a5c', '0001', serial=serial), name, 100)
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs)})
    assert rc == 1
    assert result['msg'] == '2 USB disks match 0a5c:* (sdb serial aa, sdc serial bb): give serial to pick one, or attach one module at a time'
    rc, result = run_module(usbboot, {'sysfs_root': str(sysfs), 'serial': 'bb'})
    assert rc == 0 and result['device'] == '/dev/sdc'
