# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""USB discovery for turingpi.cluster.usbboot: compute modules in flash mode (BCM boot ROM on
the USB bus) and the mass-storage disk that rpiboot's firmware exposes, matched through sysfs
by USB identity, never by guessing a /dev/sdX name."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os

# BCM2835/2837 boot ROM (CM1 / CM3, CM3+) as they appear on the host in flash mode.
DEFAULT_BOOT_IDS = ['0a5c:2763', '0a5c:2764']
# The mass-storage gadget of rpiboot's msd firmware enumerates with Broadcom's vendor id.
DEFAULT_MSD_IDS = ['0a5c:*']


class USBError(Exception):
    pass


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except (IOError, OSError):
        return None


def usb_identity(device_dir):
    """Vendor, product, serial... of a USB device directory in sysfs."""
    return dict(
        vendor=(_read(os.path.join(device_dir, 'idVendor')) or '').lower(),
        product=(_read(os.path.join(device_dir, 'idProduct')) or '').lower(),
        serial=_read(os.path.join(device_dir, 'serial')),
        manufacturer=_read(os.path.join(device_dir, 'manufacturer')),
        product_name=_read(os.path.join(device_dir, 'product')),
        busnum=_read(os.path.join(device_dir, 'busnum')),
        devnum=_read(os.path.join(device_dir, 'devnum')),
        port=os.path.basename(device_dir),
    )


def id_matches(identity, patterns):
    key = '%s:%s' % (identity['vendor'], identity['product'])
    return any(fnmatch.fnmatch(key, p.lower()) for p in patterns)


def boot_devices(sysfs, boot_ids):
    """USB devices in flash mode (the boot ROM waiting for rpiboot)."""
    base = os.path.join(sysfs, 'bus', 'usb', 'devices')
    found = []
    if not os.path.isdir(base):
        return found
    for entry in sorted(os.listdir(base)):
        d = os.path.join(base, entry)
        if ':' in entry or not os.path.exists(os.path.join(d, 'idVendor')):
            continue  # interfaces (1-1:1.0) and root hubs without ids
        ident = usb_identity(os.path.realpath(d))
        if id_matches(ident, boot_ids):
            found.append(ident)
    return found


def usb_parent(block_dir):
    """The USB device directory above a block device in sysfs, or None."""
    d = os.path.realpath(block_dir)
    while d and d != os.path.dirname(d):
        if os.path.exists(os.path.join(d, 'idVendor')) and os.path.exists(os.path.join(d, 'idProduct')):
            return d
        d = os.path.dirname(d)
    return None


def msd_disks(sysfs, msd_ids, serial=None, exclude_ids=()):
    """Whole-disk block devices whose USB device matches msd_ids (and serial if given)."""
    base = os.path.join(sysfs, 'block')
    found = []
    if not os.path.isdir(base):
        return found
    for name in sorted(os.listdir(base)):
        parent = usb_parent(os.path.join(base, name))
        if parent is None:
            continue
        ident = usb_identity(parent)
        if not id_matches(ident, msd_ids) or id_matches(ident, exclude_ids):
            continue
        if serial is not None and ident['serial'] != serial:
            continue
        sectors = _read(os.path.join(base, name, 'size'))
        size = int(sectors) * 512 if sectors and sectors.isdigit() else 0
        found.append(dict(name=name, size=size, usb=ident))
    return found
