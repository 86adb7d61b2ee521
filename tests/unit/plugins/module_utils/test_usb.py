# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""USB discovery on a fake sysfs tree: flash-mode devices and mass-storage disks by USB identity."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.turingpi.cluster.plugins.module_utils import _usb as usb


def usb_device(sysfs, port, vid, pid, serial=None):
    d = sysfs / 'devices' / 'pci0000:00' / '0000:00:14.0' / 'usb1' / port
    d.mkdir(parents=True)
    (d / 'idVendor').write_text(vid + '\n')
    (d / 'idProduct').write_text(pid + '\n')
    if serial:
        (d / 'serial').write_text(serial + '\n')
    links = sysfs / 'bus' / 'usb' / 'devices'
    links.mkdir(parents=True, exist_ok=True)
    os.symlink(str(d), str(links / port))
    return d


def usb_disk(sysfs, device_dir, name, sectors):
    blk = device_dir / (device_dir.name + ':1.0') / 'host3' / 'target3:0:0' / '3:0:0:0' / 'block' / name
    blk.mkdir(parents=True)
    (blk / 'size').write_text('%d\n' % sectors)
    (sysfs / 'block').mkdir(exist_ok=True)
    os.symlink(str(blk), str(sysfs / 'block' / name))
    return blk


def test_boot_devices_match_ids(tmp_path):
    usb_device(tmp_path, '1-3', '0a5c', '2764')
    usb_device(tmp_path, '1-4', '046d', 'c52b')
    found = usb.boot_devices(str(tmp_path), usb.DEFAULT_BOOT_IDS)
    assert [(d['port'], d['vendor'], d['product']) for d in found] == [('1-3', '0a5c', '2764')]


def test_msd_disk_found_by_usb_identity_not_name(tmp_path):
    gadget = usb_device(tmp_path, '1-3', '0a5c', '0001', serial='cm3-01')
    stick = usb_device(tmp_path, '1-5', '0781', '5567', serial='sandisk')
    usb_disk(tmp_path, gadget, 'sdc', 15269888)
    usb_disk(tmp_path, stick, 'sdb', 1000)
    (tmp_path / 'block' / 'vda').mkdir()      # not on USB
    found = usb.msd_disks(str(tmp_path), usb.DEFAULT_MSD_IDS)
    assert [(d['name'], d['size'], d['usb']['serial']) for d in found] == [('sdc', 15269888 * 512, 'cm3-01')]
    assert usb.msd_disks(str(tmp_path), usb.DEFAULT_MSD_IDS, serial='other') == []
    assert usb.msd_disks(str(tmp_path), ['0a5c:*'], exclude_ids=['0a5c:0001']) == []


def test_empty_sysfs(tmp_path):
    assert usb.boot_devices(str(tmp_path), usb.DEFAULT_BOOT_IDS) == []
    assert usb.msd_disks(str(tmp_path), usb.DEFAULT_MSD_IDS) == []
