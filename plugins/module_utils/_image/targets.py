# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""The target (a whole-disk block device or a regular file) and the refusals."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import RefusedError, human


class Target(object):
    def __init__(self):
        self.path = None
        self.kind = None  # block, file, missing
        self.size = None
        self.name = None  # sysfs name of the whole disk (sda, loop3)
        self.devnum = None
        self.removable = None
        self.usb = False
        self.loop = False
        self.devnums = set()  # the disk and its partitions, as "major:minor"
        self.partitions = []

    def describe(self):
        if self.kind == 'block':
            return '%s (%s, %s%s)' % (self.path, human(self.size or 0),
                                      'USB' if self.usb else ('loop' if self.loop else 'fixed'),
                                      ', removable' if self.removable else '')
        return self.path


def _read(path, default=None):
    try:
        with open(path) as f:
            return f.read().strip()
    except (IOError, OSError):
        return default


def _devnum_str(rdev):
    return '%d:%d' % (os.major(rdev), os.minor(rdev))


def _disk_dir(sysfs, devnum):
    """sysfs directory of the whole disk holding block device devnum ("8:1" -> .../sda)."""
    link = os.path.join(sysfs, 'dev', 'block', devnum)
    if not os.path.exists(link):
        return None
    real = os.path.realpath(link)
    if os.path.exists(os.path.join(real, 'partition')):
        real = os.path.dirname(real)
    return real


def _base_disks(sysfs, disk_dir, depth=0):
    """The physical disks under a disk (follows dm/md slaves), as sysfs directory names."""
    if disk_dir is None:
        return set()
    slaves_dir = os.path.join(disk_dir, 'slaves')
    names = set([os.path.basename(disk_dir)])
    if depth < 8 and os.path.isdir(slaves_dir):
        for slave in os.listdir(slaves_dir):
            slave_real = os.path.realpath(os.path.join(slaves_dir, slave))
            if os.path.exists(os.path.join(slave_real, 'partition')):
                slave_real = os.path.dirname(slave_real)
            names |= _base_disks(sysfs, slave_real, depth + 1)
    return names


def parse_mountinfo(text):
    """[(devnum, mount_point)] from /proc/self/mountinfo."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        mount_point = fields[4].replace('\\040', ' ')
        out.append((fields[2], mount_point))
    return out


def inspect_target(path, sysfs='/sys', mountinfo='/proc/self/mountinfo', swaps='/proc/swaps'):
    t = Target()
    t.path = path
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            t.kind = 'missing'
            t.size = 0
            return t
        raise RefusedError('cannot stat dest %s: %s' % (path, exc))
    if stat.S_ISREG(st.st_mode):
        t.kind = 'file'
        t.size = st.st_size
        return t
    if not stat.S_ISBLK(st.st_mode):
        raise RefusedError('dest %s is neither a block device nor a regular file' % path)
    t.kind = 'block'
    t.devnum = _devnum_str(st.st_rdev)
    link = os.path.join(sysfs, 'dev', 'block', t.devnum)
    if not os.path.exists(link):
        raise RefusedError('dest %s (%s) is not in %s/dev/block: cannot check that it is safe to write' % (path, t.devnum, sysfs))
    real = os.path.realpath(link)
    if os.path.exists(os.path.join(real, 'partition')):
        disk = os.path.basename(os.path.dirname(real))
        raise RefusedError('dest %s is partition %s of /dev/%s: write the image to the whole disk /dev/%s'
                           % (path, os.path.basename(real), disk, disk))
    t.name = os.path.basename(real)
    t.removable = _read(os.path.join(real, 'removable')) == '1'
    t.usb = '/usb' in real
    t.loop = t.name.startswith('loop')
    sectors = _read(os.path.join(real, 'size'))
    t.size = int(sectors) * 512 if sectors and sectors.isdigit() else None
    t.devnums.add(t.devnum)
    for entry in sorted(os.listdir(real)):
        if entry.startswith(t.name) and os.path.exists(os.path.join(real, entry, 'partition')):
            t.partitions.append(entry)
            dev = _read(os.path.join(real, entry, 'dev'))
            if dev:
                t.devnums.add(dev)
    t.holders = []
    for d in [real] + [os.path.join(real, p) for p in t.partitions]:
        hdir = os.path.join(d, 'holders')
        if os.path.isdir(hdir):
            t.holders.extend(sorted(os.listdir(hdir)))
    t.mountinfo = _read(mountinfo, '')
    t.swaps = _read(swaps, '')
    t.sysfs = sysfs
    return t


def check_target(t, image_size, force):
    """Raises RefusedError when dest must not be written. Nothing is written before this passes."""
    if t.kind != 'block':
        return
    mounts = parse_mountinfo(t.mountinfo)
    root_dev = None
    for devnum, mount_point in mounts:
        if mount_point == '/':
            root_dev = devnum
    if root_dev is not None and not root_dev.startswith('0:'):
        root_disks = _base_disks(t.sysfs, _disk_dir(t.sysfs, root_dev))
        if t.name in root_disks:
            raise RefusedError('dest %s is the disk this system runs from (it holds /): refusing to overwrite it; '
                               'check the device name (the module in slot 1 appears as a new USB disk)' % t.path)
    for devnum, mount_point in mounts:
        if devnum in t.devnums:
            raise RefusedError('dest %s is in use: %s (device %s) is mounted on %s; unmount it first (umount %s)'
                               % (t.path, t.path, devnum, mount_point, mount_point))
    for line in t.swaps.splitlines()[1:]:
        fields = line.split()
        if fields and os.path.basename(fields[0]).startswith(t.name):
            raise RefusedError('dest %s is in use as swap (%s); swapoff %s first' % (t.path, fields[0], fields[0]))
    if t.holders:
        raise RefusedError('dest %s is in use by %s (device-mapper, RAID or LVM); release it first' % (t.path, ', '.join(t.holders)))
    if image_size is not None and t.size is not None and t.size < image_size:
        raise RefusedError('dest %s holds %d bytes (%s) but the image is %d bytes (%s): use a larger device'
                           % (t.path, t.size, human(t.size), image_size, human(image_size)))
    if not (t.removable or t.usb) and not force:
        kind = 'a loop device' if t.loop else 'a fixed (non-removable, non-USB) disk'
        raise RefusedError('dest %s is %s: refusing without force=true (a compute module in flash mode is a USB disk); '
                           'set force=true only if you are sure' % (t.path, kind))
