# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.image_info through main() on real FAT images: results, the module fit, every
refusal in its exact words, compressed images, check mode, and that nothing is written."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import gzip
import hashlib
import lzma
import os

from ansible_collections.turingpi.cluster.plugins.modules import image_info
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils.fat_images import (
    MiB, make_disk, make_ext, raspios_arm64, raspios_armhf, ubuntu_arm64,
)

ARM64_FOR_CM1 = ('the image is for arm64 (config.txt sets arm_64bit=1: the firmware starts kernel8.img in 64-bit mode): a CM1'
                 ' (BCM2835, ARMv6) runs only 32-bit ARMv6 kernels (kernel.img); use a 32-bit (armhf) image')
NETBOOT_CM1 = ('a CM1 (BCM2835) cannot network boot: network boot is in the boot ROM of the BCM2837 only (CM3, CM3+); boot it'
               ' from its eMMC (boot: emmc) or put a CM3 or CM3+ in this slot')


def digest(path):
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest(), os.stat(path).st_mtime


def test_describes_without_module(tmp_path, run_module):
    path = make_disk(tmp_path, raspios_arm64())
    before = digest(path)
    rc, out = run_module(image_info, {'path': path})
    assert rc == 0 and out['changed'] is False
    assert out['fits'] is True and out['problems'] == [] and out['module'] is None
    assert out['compression'] == 'none' and out['partition_table'] == 'mbr'
    assert out['modules']['cm1']['problems'] == [ARM64_FOR_CM1]
    assert out['modules']['cm3plus']['kernel'] == 'kernel8.img'
    assert out['first_boot']['mechanisms'] == ['raspios-firstboot']
    assert out['firmware_partition']['used_bytes'] == out['partitions'][0]['used_bytes'] > 0
    assert (out['partitions'][1]['filesystem'], out['partitions'][1]['used_bytes']) == (None, None)  # 1 MiB of zeros
    # The FAT of the 40 MiB FAT32 (a cluster per sector, 4 bytes each) is read whole to count the clusters in use.
    assert 0 < out['bytes_read'] < 200 * 1024 + 40 * MiB // 512 * 4
    assert digest(path) == before


def test_fits_the_module(tmp_path, run_module):
    path = make_disk(tmp_path, raspios_arm64())
    rc, out = run_module(image_info, {'path': path, 'module': 'CM3+ Lite', 'boot': 'netboot'})
    assert rc == 0 and out['fits'] is True and out['module'] == 'cm3plus-lite' and out['problems'] == []


def test_refuses_an_arm64_image_for_a_cm1(tmp_path, run_module):
    path = make_disk(tmp_path, raspios_arm64())
    rc, out = run_module(image_info, {'path': path, 'module': 'cm1'})
    assert rc == 1 and out['failed'] is True
    assert out['msg'] == '%s does not fit a CM1: %s' % (path, ARM64_FOR_CM1)
    assert out['fits'] is False and out['problems'] == [ARM64_FOR_CM1]


def test_refuses_network_boot_for_a_cm1(tmp_path, run_module):
    path = make_disk(tmp_path, raspios_armhf())
    rc, out = run_module(image_info, {'path': path, 'module': 'cm1', 'boot': 'netboot'})
    assert rc == 1 and out['msg'] == '%s does not fit a CM1: %s' % (path, NETBOOT_CM1)
    rc, out = run_module(image_info, {'path': path, 'module': 'cm1', 'boot': 'emmc'})
    assert rc == 0 and out['fits'] is True


def test_refuses_an_image_without_the_kernel(tmp_path, run_module):
    files = ubuntu_arm64()
    del files['vmlinuz']
    path = make_disk(tmp_path, files)
    rc, out = run_module(image_info, {'path': path, 'module': 'cm3'})
    assert rc == 1 and out['msg'] == (
        '%s does not fit a CM3: a CM3 would load vmlinuz (config.txt sets kernel=vmlinuz and arm_64bit=1), which is not on the'
        ' firmware partition: the image has no kernel this module runs' % path)


def test_report_without_failing(tmp_path, run_module):
    path = make_disk(tmp_path, raspios_arm64())
    rc, out = run_module(image_info, {'path': path, 'module': 'cm1', 'fail_on_mismatch': False})
    assert rc == 0 and out['fits'] is False and out['problems'] == [ARM64_FOR_CM1]


def test_fails_without_module_only_when_asked(tmp_path, run_module):
    path = make_disk(tmp_path, raspios_arm64(), table='gpt')
    rc, out = run_module(image_info, {'path': path})
    assert rc == 0 and out['fits'] is False and len(out['problems']) == 1
    rc, out = run_module(image_info, {'path': path, 'fail_on_mismatch': True})
    assert rc == 1 and out['msg'].startswith('%s does not fit any module of the Turing Pi V1: the image has a GPT partition table' % path)


def test_compressed_images(tmp_path, run_module):
    root = make_ext(str(tmp_path / 'root.ext'), {'etc/hostname': b'ubuntu\n', 'usr/lib/big': os.urandom(2 * MiB)})
    path = make_disk(tmp_path, ubuntu_arm64(), root=root)
    os.remove(root)
    with open(path, 'rb') as f:
        raw = f.read()
    (tmp_path / 'u.img.xz').write_bytes(lzma.compress(raw, preset=0))
    (tmp_path / 'u.img.gz').write_bytes(gzip.compress(raw, 1))
    plain = run_module(image_info, {'path': path})[1]
    for name, compression in (('u.img.xz', 'xz'), ('u.img.gz', 'gzip')):
        rc, out = run_module(image_info, {'src': str(tmp_path / name), 'module': 'cm3plus'}, check_mode=True)
        assert rc == 0 and out['compression'] == compression and out['fits'] is True
        assert out['modules'] == plain['modules'] and out['path'] == str(tmp_path / name)
        # The root's superblock is decompressed too: the same used bytes as the raw image.
        assert out['partitions'] == plain['partitions'] and out['partitions'][1]['filesystem'] == 'ext4'
        assert out['partitions'][1]['used_bytes'] > 2 * MiB
    assert sorted(os.listdir(str(tmp_path))) == ['disk.img', 'u.img.gz', 'u.img.xz']


def test_compressed_image_root_past_the_decompress_limit(tmp_path, run_module):
    root = make_ext(str(tmp_path / 'root.ext'), {'etc/hostname': b'raspberrypi\n'})
    path = make_disk(tmp_path, raspios_arm64(), root=root)
    with open(path, 'rb') as f:
        raw = f.read()
    xz = tmp_path / 'r.img.xz'
    xz.write_bytes(lzma.compress(raw, preset=0))
    limit = 44 * MiB  # the end of the firmware partition, before the root's superblock
    rc, out = run_module(image_info, {'path': str(xz), 'decompress_limit': limit})
    assert rc == 0 and out['fits'] is True and out['firmware_partition']['used_bytes'] > 0
    assert (out['partitions'][1]['filesystem'], out['partitions'][1]['used_bytes']) == (None, None)
    assert out['notes'] == ['partition 2: used_bytes unknown: %s: a read at byte %d (2048 bytes) goes past the end of the image'
                            ' (%d bytes): the image is truncated or not a disk image' % (xz, limit, limit)]


def test_truncated_compressed_image(tmp_path, run_module):
    path = make_disk(tmp_path, ubuntu_arm64())
    with open(path, 'rb') as f:
        raw = f.read()
    xz = tmp_path / 'cut.img.xz'
    xz.write_bytes(lzma.compress(raw[:3 * 1024 * 1024], preset=0))
    rc, out = run_module(image_info, {'path': str(xz)})
    assert rc == 0 and out['fits'] is False
    assert out['problems'][0].startswith('partition 1: %s: a read at byte' % xz)


def test_bad_arguments(tmp_path, run_module):
    rc, out = run_module(image_info, {'path': str(tmp_path / 'absent.img')})
    assert rc == 1 and out['msg'] == '%s does not exist: give the path of an image file or a block device' % (tmp_path / 'absent.img')
    rc, out = run_module(image_info, {'path': str(tmp_path), 'module': 'cm4'})
    assert rc == 1 and out['msg'] == ("module: module must be one of cm1, cm3, cm3-lite, cm3plus or cm3plus-lite (also written CM3+,"
                                      " CM3L, CM3+ Lite, ...), got 'cm4'")
    junk = tmp_path / 'junk.img'
    junk.write_bytes(b'\x00' * 4096)
    rc, out = run_module(image_info, {'path': str(junk)})
    assert rc == 1 and out['msg'] == ('%s: no partition table (no boot signature 55 aa at byte 510): not a raw disk image'
                                      ' (a compressed image must be decompressed first)' % junk)
