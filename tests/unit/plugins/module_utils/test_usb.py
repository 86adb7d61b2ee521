# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""USB discovery on a fake sysfs tree: flash-mode devices and mass-storage disks by USB identity."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.turingpi.cluster.plugins.module_utils import _usb as usb


def test_boot_devices_match_ids(sysfs):
    sysfs.usb_device('1-3', '0a5c', '2764')
    sysfs.usb_device('1-4', '046d', 'c52b')
    found = usb.boot_devices(str(sysfs), usb.DEFAULT_BOOT_IDS)
    assert [(d['port'], d['vendor'], d['product']) for d in found] == [('1-3', '0a5c', '2764')]


def test_msd_disk_found_by_usb_identity_not_name(sysfs):
    gadget = sysfs.usb_device('1-3', '0a5c', '0001', serial='cm3-01')
    stick = sysfs.usb_device('1-5', '0781', '5567', serial='sandisk')
    sysfs.usb_disk(gadget, 'sdc', 15269888)
    sysfs.usb_disk(stick, 'sdb', 1000)
    (sysfs.root / 'block' / 'vda').mkdir()      # not on USB
    found = usb.msd_disks(str(sysfs), usb.DEFAULT_MSD_IDS)
    assert [(d['name'], d['size'], d['usb']['serial']) for d in found] == [('sdc', 15269888 * 512, 'cm3-01')]
    assert usb.msd_disks(str(sysfs), usb.DEFAULT_MSD_IDS, serial='other') == []
    assert usb.msd_disks(str(sysfs), ['0a5c:*'], exclude_ids=['0a5c:0001']) == []


def test_empty_sysfs(sysfs):
    assert usb.boot_devices(str(sysfs), usb.DEFAULT_BOOT_IDS) == []
    assert usb.msd_disks(str(sysfs), usb.DEFAULT_MSD_IDS) == []
