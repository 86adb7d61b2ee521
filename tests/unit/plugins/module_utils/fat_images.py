# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Real FAT disk images for the tests: mkfs.vfat and mtools (mmd, mcopy) make the file system,
mke2fs -d an ext2/3/4 root on request, the partition table (MBR, with an extended partition on
request, or GPT) is written here."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import struct
import subprocess
import uuid
import zlib

import pytest

MiB = 1024 * 1024
TOOLS = ('mkfs.vfat', 'mcopy', 'mmd')

# Linux kernel headers, as the firmware's loader and image_info see them.
ARM64_IMAGE = b'\x00' * 0x38 + b'ARM\x64' + b'\x00' * 64
ZIMAGE = b'\x00' * 0x24 + struct.pack('<I', 0x016F2818) + b'\x00' * 64


def gzipped(data):
    c = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return c.compress(data) + c.flush()


def _tool(name):
    for d in (os.environ.get('PATH', '').split(os.pathsep) + ['/usr/sbin', '/sbin']):
        p = os.path.join(d, name)
        if os.path.isfile(p) and os.access(p, os.X_OK):
            return p
    pytest.skip('%s is not installed (dosfstools, mtools and e2fsprogs build the test images)' % name)


def make_fat(path, files, fat=32, size_mib=None, label='BOOTFS'):
    """A FAT file system in the file path holding files: {'dir/name': bytes}."""
    size_mib = size_mib or {12: 2, 16: 16, 32: 40}[fat]
    args = [_tool('mkfs.vfat'), '-C', '-F', str(fat), '-n', label]
    if fat == 32:
        args += ['-s', '1']
    subprocess.check_call(args + [path, str(size_mib * 1024)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    env = dict(os.environ, MTOOLS_SKIP_CHECK='1')
    staging = path + '.files'
    made = set()
    for name, data in sorted(files.items()):
        parts = name.split('/')
        for i in range(1, len(parts)):
            d = '/'.join(parts[:i])
            if d not in made:
                subprocess.check_call([_tool('mmd'), '-i', path, '::/' + d], env=env)
                made.add(d)
        local = os.path.join(staging, name.replace('/', '_'))
        if not os.path.isdir(staging):
            os.makedirs(staging)
        with open(local, 'wb') as f:
            f.write(data)
        subprocess.check_call([_tool('mcopy'), '-i', path, local, '::/' + name], env=env)
    shutil.rmtree(staging, ignore_errors=True)
    return path


def make_ext(path, files, kind='ext4', size_mib=16, block_size=4096, features=()):
    """An ext2/3/4 file system in the file path, made by mke2fs -d from files: {'dir/name': bytes};
    features such as '64bit' or '^64bit' go to mke2fs -O."""
    tree = path + '.tree'
    os.makedirs(tree)
    for name, data in files.items():
        local = os.path.join(tree, name)
        if not os.path.isdir(os.path.dirname(local)):
            os.makedirs(os.path.dirname(local))
        with open(local, 'wb') as f:
            f.write(data)
    with open(path, 'wb') as f:
        f.truncate(size_mib * MiB)
    args = [_tool('mke2fs'), '-q', '-F', '-t', kind, '-b', str(block_size), '-d', tree]
    if features:
        args += ['-O', ','.join(features)]
    subprocess.check_call(args + [path], stdout=subprocess.DEVNULL)
    shutil.rmtree(tree)
    return path


def _mbr_entry(ptype, start, count, active=False):
    return bytes([0x80 if active else 0, 0, 0, 0, ptype, 0, 0, 0]) + struct.pack('<II', start, count)


def make_disk(tmp_path, files, fat=32, table='mbr', ptype=0x0C, name='disk.img', size_mib=None, start_mib=4, root=None):
    """A disk image: a FAT partition at start_mib with files, then a Linux partition: 1 MiB of
    zeros, or the file system in the file root (make_ext)."""
    fat_path = make_fat(str(tmp_path / (name + '.fat')), files, fat, size_mib)
    fat_data = open(fat_path, 'rb').read()
    os.remove(fat_path)
    root_data = open(root, 'rb').read() if root else None
    start = start_mib * MiB // 512
    count = len(fat_data) // 512
    root_start, root_count = start + count, len(root_data) // 512 if root else 2048
    total = (root_start + root_count + 64) * 512
    path = str(tmp_path / name)
    with open(path, 'wb') as f:
        f.truncate(total)
        if table == 'none':
            f.seek(0)
            f.write(fat_data)
            return path
        mbr = bytearray(512)
        mbr[440:444] = struct.pack('<I', 0x1A2B3C4D)
        mbr[510:512] = b'\x55\xaa'
        if table == 'mbr':
            mbr[446:462] = _mbr_entry(ptype, start, count)
            mbr[462:478] = _mbr_entry(0x83, root_start, root_count)
        elif table == 'extended':
            mbr[446:462] = _mbr_entry(ptype, start, count)
            ext = root_start
            mbr[462:478] = _mbr_entry(0x0F, ext, root_count + 64)
            ebr = bytearray(512)
            ebr[446:462] = _mbr_entry(0x83, 8, 1024)
            ebr[462:478] = _mbr_entry(0x05, 1032, 1032)
            ebr[510:512] = b'\x55\xaa'
            ebr2 = bytearray(512)
            ebr2[446:462] = _mbr_entry(0x82, 8, 1000)
            ebr2[510:512] = b'\x55\xaa'
            f.seek(ext * 512)
            f.write(ebr)
            f.seek((ext + 1032) * 512)
            f.write(ebr2)
        elif table == 'gpt':
            mbr[446:462] = _mbr_entry(0xEE, 1, 0xFFFFFFFF)
            entries = bytearray(128 * 128)
            for i, (guid, first, last, label) in enumerate((
                    ('c12a7328-f81f-11d2-ba4b-00a0c93ec93b', start, start + count - 1, 'boot'),
                    ('0fc63daf-8483-4772-8e79-3d69d8477de4', root_start, root_start + root_count - 1, 'root'))):
                e = uuid.UUID(guid).bytes_le + uuid.uuid4().bytes_le + struct.pack('<QQQ', first, last, 0)
                e += label.encode('utf-16-le').ljust(72, b'\x00')
                entries[i * 128:(i + 1) * 128] = e
            header = bytearray(512)
            header[0:8] = b'EFI PART'
            header[56:72] = uuid.uuid4().bytes_le
            struct.pack_into('<QII', header, 72, 2, 128, 128)
            f.seek(512)
            f.write(header)
            f.write(entries)
        f.seek(0)
        f.write(mbr)
        f.seek(start * 512)
        f.write(fat_data)
        if root_data:
            f.seek(root_start * 512)
            f.write(root_data)
    return path


# The firmware partitions of the images users flash (the files the tests need, not all of them).
FIRMWARE = {'bootcode.bin': b'bootcode', 'start.elf': b'start', 'fixup.dat': b'fixup'}


def raspios_arm64():
    files = dict(FIRMWARE)
    files.update({
        'config.txt': (b'# Raspberry Pi OS Bookworm\ndtparam=audio=on\nauto_initramfs=1\ndtoverlay=vc4-kms-v3d\n'
                       b'arm_64bit=1\narm_boost=1\n\n[cm4]\notg_mode=1\n\n[cm5]\ndtoverlay=dwc2,dr_mode=host\n\n[all]\n'),
        'cmdline.txt': b'console=serial0,115200 console=tty1 root=PARTUUID=1a2b3c4d-02 rootfstype=ext4 fsck.repair=yes rootwait'
                       b' quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n',
        'kernel8.img': gzipped(ARM64_IMAGE),
        'kernel_2712.img': ARM64_IMAGE,
        'initramfs8': b'initramfs',
        'initramfs_2712': b'initramfs',
        'bcm2710-rpi-cm3.dtb': b'dtb',
        'overlays/README': b'overlays',
        'overlays/vc4-kms-v3d.dtbo': b'dtbo',
    })
    return files


def raspios_armhf():
    files = dict(FIRMWARE)
    files.update({
        'config.txt': b'dtparam=audio=on\n[pi4]\narm_boost=1\n[all]\n',
        'cmdline.txt': b'console=serial0,115200 console=tty1 root=PARTUUID=1a2b3c4d-02 rootwait init=/usr/lib/raspi-config/init_resize.sh\n',
        'kernel.img': ZIMAGE,
        'kernel7.img': ZIMAGE,
        'kernel7l.img': ZIMAGE,
        'ssh': b'',
        'userconf.txt': b'admin:$6$salt$hash\n',
    })
    return files


def ubuntu_arm64():
    files = dict(FIRMWARE)
    files.update({
        'config.txt': (b'[all]\nkernel=vmlinuz\ncmdline=cmdline.txt\ninitramfs initrd.img followkernel\n\n[pi4]\nmax_framebuffers=2\n'
                       b'arm_boost=1\n\n[all]\ndtparam=audio=on\nenable_uart=1\n# Config settings specific to arm64\narm_64bit=1\n'
                       b'dtoverlay=dwc2\n\n[cm4]\ndtoverlay=dwc2,dr_mode=host\n\n[all]\ninclude syscfg.txt\ninclude usercfg.txt\n'),
        'syscfg.txt': b'dtparam=i2c_arm=on\ndtparam=spi=on\nenable_uart=1\n',
        'usercfg.txt': b'# Place "config.txt" changes (dtparam, dtoverlay, disable_overscan, etc.) in\n# this file.\n',
        'cmdline.txt': b'console=serial0,115200 multipath=off dwc_otg.lpm_enable=0 console=tty1 root=LABEL=writable rootfstype=ext4 rootwait fixrtc\n',
        'vmlinuz': gzipped(ARM64_IMAGE),
        'initrd.img': b'initrd',
        'user-data': b'#cloud-config\nhostname: ubuntu\n',
        'meta-data': b'instance_id: cloud-image\n',
        'network-config': b'version: 2\n',
    })
    return files
