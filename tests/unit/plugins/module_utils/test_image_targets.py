# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""What image_write's target is (a whole disk, a file) and the refusals: mounted, swap, held,
the disk holding /, too small, fixed or loop without force, a partition or a character device."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils._image import targets
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import RefusedError


def block_target(**kw):
    t = targets.Target()
    t.path, t.kind, t.name, t.size = '/dev/sdz', 'block', 'sdz', 8 * 1024 ** 3
    t.devnum, t.devnums = '8:240', set(['8:240', '8:241', '8:242'])
    t.removable, t.usb, t.loop, t.holders = False, True, False, []
    t.mountinfo = '22 1 0:21 / /proc rw - proc proc rw\n30 1 254:0 / / rw - ext4 /dev/vda rw\n'
    t.swaps = 'Filename Type Size Used Priority\n'
    t.sysfs = '/nonexistent'
    for k, v in kw.items():
        setattr(t, k, v)
    return t


def test_usb_disk_is_accepted():
    targets.check_target(block_target(), 1024 ** 3, False)


def test_mounted_partition_is_refused():
    t = block_target(mountinfo='40 1 8:242 / /media/rootfs rw - ext4 /dev/sdz2 rw\n')
    with pytest.raises(RefusedError) as exc:
        targets.check_target(t, 1024, True)
    assert str(exc.value) == ('dest /dev/sdz is in use: /dev/sdz (device 8:242) is mounted on /media/rootfs; '
                              'unmount it first (umount /media/rootfs)')


def test_fixed_disk_and_loop_need_force():
    with pytest.raises(RefusedError) as exc:
        targets.check_target(block_target(usb=False), 1024, False)
    assert str(exc.value).startswith('dest /dev/sdz is a fixed (non-removable, non-USB) disk: refusing without force=true')
    with pytest.raises(RefusedError) as exc:
        targets.check_target(block_target(usb=False, loop=True, name='loop3'), 1024, False)
    assert 'is a loop device: refusing without force=true' in str(exc.value)
    targets.check_target(block_target(usb=False, loop=True), 1024, True)
    targets.check_target(block_target(usb=False, removable=True), 1024, False)


def test_small_device_is_refused_even_with_force():
    with pytest.raises(RefusedError) as exc:
        targets.check_target(block_target(size=4096), 8192, True)
    assert str(exc.value) == ('dest /dev/sdz holds 4096 bytes (4.0 KiB) but the image is 8192 bytes (8.0 KiB): '
                              'use a larger device')


def test_swap_and_holders_are_refused():
    with pytest.raises(RefusedError) as exc:
        targets.check_target(block_target(swaps='Filename\n/dev/sdz1 partition 1 0 -2\n'), 1, True)
    assert str(exc.value) == 'dest /dev/sdz is in use as swap (/dev/sdz1); swapoff /dev/sdz1 first'
    with pytest.raises(RefusedError) as exc:
        targets.check_target(block_target(holders=['dm-0']), 1, True)
    assert str(exc.value) == 'dest /dev/sdz is in use by dm-0 (device-mapper, RAID or LVM); release it first'


def test_root_disk_is_refused(tmp_path):
    # a fake sysfs where / lives on sdz2
    sysfs = tmp_path / 'sys'
    disk = sysfs / 'devices' / 'usb1' / 'block' / 'sdz'
    (disk / 'sdz2').mkdir(parents=True)
    (disk / 'sdz2' / 'partition').write_text('2')
    (sysfs / 'dev' / 'block').mkdir(parents=True)
    os.symlink(str(disk / 'sdz2'), str(sysfs / 'dev' / 'block' / '8:242'))
    t = block_target(sysfs=str(sysfs), mountinfo='30 1 8:242 / / rw - ext4 /dev/sdz2 rw\n', devnums=set(['8:240']))
    with pytest.raises(RefusedError) as exc:
        targets.check_target(t, 1, True)
    assert str(exc.value).startswith('dest /dev/sdz is the disk this system runs from (it holds /): refusing to overwrite it')


def test_partition_and_char_device_are_refused(tmp_path):
    with pytest.raises(RefusedError) as exc:
        targets.inspect_target('/dev/null')
    assert str(exc.value) == 'dest /dev/null is neither a block device nor a regular file'
