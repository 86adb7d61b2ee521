# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The firmware partition reader on real FAT images (mkfs.vfat and mtools, fat_images.py): the
partition tables, FAT12/16/32 with long names and subdirectories, config.txt as the firmware reads
it per module (sections, include, kernel=, arm_64bit, initramfs, os_prefix), the kernel's header,
the first-boot files, and every refusal in its exact words."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from ansible_collections.turingpi.cluster.plugins.module_utils._image import fat as fatmod
from ansible_collections.turingpi.cluster.plugins.module_utils._image.fat import Disk, FatError, FatFS
from ansible_collections.turingpi.cluster.plugins.module_utils._image.firmware import (
    ConfigReader, decompress_head, inspect_image, kernel_header_arch,
)
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils import fat_images
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils.fat_images import (
    ARM64_IMAGE, FIRMWARE, ZIMAGE, gzipped, make_disk, raspios_arm64, raspios_armhf, ubuntu_arm64,
)

ARM64_FOR_CM1 = ('the image is for arm64 (config.txt sets arm_64bit=1: the firmware starts kernel8.img in 64-bit mode):'
                 ' a CM1 (BCM2835, ARMv6) runs only 32-bit ARMv6 kernels (kernel.img); use a 32-bit (armhf) image')


def with_config(config, **extra):
    files = dict(FIRMWARE)
    files['config.txt'] = config.encode()
    files.update(extra)
    return files


def modules(tmp_path, files, **kw):
    return inspect_image(make_disk(tmp_path, files, **kw))['modules']


# --- the images users flash -------------------------------------------------------------

def test_raspios_arm64(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_arm64()))
    assert info['partition_table'] == 'mbr' and info['disk_id'] == '1a2b3c4d'
    assert [(p['number'], p['type'], p['start']) for p in info['partitions']] == [(1, '0x0c', 4 * 1024 * 1024), (2, '0x83', info['partitions'][1]['start'])]
    assert info['firmware_partition']['fat_type'] == 'FAT32' and info['firmware_partition']['label'] == 'BOOTFS'
    assert 'kernel8.img' in info['files'] and 'overlays/' in info['files']
    assert info['file_count'] == len(raspios_arm64()) + 1  # and the overlays directory
    assert info['config_txt'].startswith('# Raspberry Pi OS Bookworm')
    cm1, cm3, cm3plus = info['modules']['cm1'], info['modules']['cm3'], info['modules']['cm3plus']
    assert cm1['problems'] == [ARM64_FOR_CM1] and cm1['runs'] is False
    for m in (cm3, cm3plus):
        assert (m['kernel'], m['kernel_exists'], m['arch'], m['mode'], m['kernel_header'], m['runs']) == (
            'kernel8.img', True, 'arm64', '64-bit', 'arm64', True)
        assert m['initramfs'] == [{'name': 'initramfs8', 'exists': True, 'auto': True}]
        assert m['settings']['arm_64bit'] == {'value': '1', 'at': 'config.txt:5'}
        assert m['problems'] == []
    assert info['first_boot']['mechanisms'] == ['raspios-firstboot']
    assert info['first_boot']['cmdline_init'] == '/usr/lib/raspberrypi-sys-mods/firstboot'
    assert info['problems'] == []


def test_raspios_armhf_fits_every_module(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_armhf(), fat=16))
    assert info['firmware_partition']['fat_type'] == 'FAT16'
    got = dict((f, (m['kernel'], m['arch'], m['mode'], m['kernel_header'], m['runs'])) for f, m in info['modules'].items())
    assert got == {'cm1': ('kernel.img', 'armv6', '32-bit', 'arm', True),
                   'cm3': ('kernel7.img', 'armv7', '32-bit', 'arm', True),
                   'cm3plus': ('kernel7.img', 'armv7', '32-bit', 'arm', True)}
    assert info['first_boot']['mechanisms'] == ['raspios-init-resize', 'userconf', 'ssh']
    assert info['first_boot']['files']['ssh'] and info['first_boot']['files']['userconf.txt']


def test_ubuntu_kernel_vmlinuz_with_initramfs_and_includes(tmp_path):
    info = inspect_image(make_disk(tmp_path, ubuntu_arm64()))
    cm3 = info['modules']['cm3plus']
    assert (cm3['kernel'], cm3['arch'], cm3['mode'], cm3['kernel_header'], cm3['runs']) == ('vmlinuz', 'arm64', '64-bit', 'arm64', True)
    assert cm3['initramfs'] == [{'name': 'initrd.img', 'exists': True, 'auto': False}]
    assert cm3['config_files'] == ['config.txt', 'syscfg.txt', 'usercfg.txt']
    assert cm3['settings']['kernel'] == {'value': 'vmlinuz', 'at': 'config.txt:2'}
    assert info['modules']['cm1']['problems'] == [
        'the image is for arm64 (config.txt sets kernel=vmlinuz and arm_64bit=1: the firmware starts vmlinuz in 64-bit mode):'
        ' a CM1 (BCM2835, ARMv6) runs only 32-bit ARMv6 kernels (kernel.img); use a 32-bit (armhf) image']
    assert info['first_boot']['mechanisms'] == ['cloud-init']
    assert info['first_boot']['cloud_init_seed'] == {'user-data': True, 'meta-data': True, 'network-config': True}


def test_no_kernel_the_module_runs(tmp_path):
    files = raspios_armhf()
    del files['kernel7.img']
    files['kernel8.img'] = ARM64_IMAGE
    got = modules(tmp_path, files)
    assert got['cm3']['problems'] == [
        'a CM3 would load kernel7.img (the default kernel of a CM3), which is not on the firmware partition (the partition has'
        ' kernel.img, kernel7l.img, kernel8.img, for Pi 1, Pi Zero and CM1; Pi 4 and CM4; the 64-bit Raspberry Pis: Pi 3, CM3,'
        ' CM3+, Pi 4, Pi 5): the image has no kernel this module runs']
    assert got['cm3']['kernel_exists'] is False and got['cm3']['runs'] is False
    assert got['cm1']['runs'] is True


def test_explicit_kernel_for_another_soc(tmp_path):
    got = modules(tmp_path, with_config('kernel=kernel7l.img\n', **{'kernel7l.img': ZIMAGE}))
    assert got['cm3']['problems'] == [
        'a CM3 would load kernel7l.img (config.txt sets kernel=kernel7l.img), a kernel built for Pi 4 and CM4: a CM3 (BCM2837)'
        ' cannot run it; use an image with kernel7.img or kernel8.img']
    assert got['cm1']['problems'] == [
        'a CM1 would load kernel7l.img (config.txt sets kernel=kernel7l.img), a kernel built for Pi 4 and CM4: a CM1 (BCM2835)'
        ' cannot run it; use an image with kernel.img']


def test_unknown_32bit_kernel_on_cm1(tmp_path):
    got = modules(tmp_path, with_config('kernel=zImage\n', zImage=ZIMAGE))
    assert got['cm1']['problems'] == [
        'a CM1 would load zImage (config.txt sets kernel=zImage), and nothing says it is an ARMv6 kernel, the only kind a CM1'
        ' (BCM2835) runs: use an image that has kernel.img for the CM1']
    assert got['cm3']['runs'] is True and got['cm3']['arch'] == 'arm'


def test_kernel_header_against_the_mode(tmp_path):
    got = modules(tmp_path, with_config('kernel=vmlinuz\n', vmlinuz=gzipped(ARM64_IMAGE)))
    assert got['cm3']['problems'] == [
        'vmlinuz is a 64-bit (arm64) kernel, but the firmware starts it in 32-bit mode on a CM3 (config.txt does not set arm_64bit=1 for it)']
    got = modules(tmp_path, with_config('arm_64bit=1\n', **{'kernel8.img': ZIMAGE}))
    assert got['cm3plus']['problems'] == [
        'kernel8.img is a 32-bit ARM kernel (zImage), but the firmware starts it in 64-bit mode on a CM3+ (config.txt sets arm_64bit=1)']


def test_missing_initramfs(tmp_path):
    got = modules(tmp_path, with_config('kernel=vmlinuz\narm_64bit=1\ninitramfs initrd.img followkernel\n', vmlinuz=ARM64_IMAGE))
    assert got['cm3']['problems'] == [
        'config.txt (config.txt:3) loads the initramfs initrd.img, which is not on the firmware partition: the kernel would start'
        ' without the initramfs it needs']
    got = modules(tmp_path, with_config('ramfsfile=a.cpio,b.cpio\n', **{'kernel7.img': ZIMAGE, 'a.cpio': b'a'}))
    assert got['cm3']['problems'] == ['config.txt sets ramfsfile=b.cpio, which is not on the firmware partition']
    assert [i['name'] for i in got['cm3']['initramfs']] == ['a.cpio', 'b.cpio']


def test_missing_firmware_files(tmp_path):
    files = raspios_arm64()
    del files['bootcode.bin']
    got = modules(tmp_path, files)
    assert got['cm3']['problems'] == [
        'bootcode.bin is not on the firmware partition: a CM3 loads it before the kernel (an image for the Pi 4 and later only'
        ' has no bootcode.bin and start.elf)']
    got = modules(tmp_path, with_config('start_x=1\n', **{'kernel7.img': ZIMAGE}))
    assert got['cm3']['problems'] == [
        'start_x.elf is not on the firmware partition: a CM3 loads it before the kernel (an image for the Pi 4 and later only'
        ' has no bootcode.bin and start.elf)']


# --- config.txt as the firmware reads it ----------------------------------------------------

SECTIONS = '''# every module reads [all]; filters of one type replace each other
kernel=kernel.img
[pi4]
kernel=kernel7l.img
arm_64bit=1
[pi3]
kernel=kernel7.img
[pi3+]
arm_64bit=1
kernel=kernel8.img
[cm4]
kernel=cm4.img
[pi0]
kernel=zero.img
[none]
kernel=never.img
[all]
dtparam=audio=on
[board-type=0x06]
initramfs cm1.cpio followkernel
[all]
'''


def test_sections(tmp_path):
    files = with_config(SECTIONS, **{'kernel.img': ZIMAGE, 'kernel7.img': ZIMAGE, 'kernel8.img': ARM64_IMAGE, 'cm1.cpio': b'x'})
    got = modules(tmp_path, files)
    assert (got['cm1']['kernel'], got['cm1']['mode'], got['cm1']['initramfs'][0]['name'], got['cm1']['runs']) == ('kernel.img', '32-bit', 'cm1.cpio', True)
    assert (got['cm3']['kernel'], got['cm3']['mode'], got['cm3']['initramfs'], got['cm3']['runs']) == ('kernel7.img', '32-bit', [], True)
    # a CM3+ also reads [pi3+] (docs/hardware.md, "What the firmware loads")
    assert (got['cm3plus']['kernel'], got['cm3plus']['mode'], got['cm3plus']['runs']) == ('kernel8.img', '64-bit', True)
    assert got['cm3']['settings']['kernel'] == {'value': 'kernel7.img', 'at': 'config.txt:7'}


def test_module_filters_of_the_compute_modules(tmp_path):
    config = '[cm1]\nkernel=one.img\n[cm3]\nkernel=three.img\n[cm3+]\nkernel=threeplus.img\n[all]\n'
    got = modules(tmp_path, with_config(config))
    assert [got[f]['kernel'] for f in ('cm1', 'cm3', 'cm3plus')] == ['one.img', 'three.img', 'threeplus.img']


def test_filters_that_depend_on_the_board(tmp_path):
    config = 'arm_64bit=1\n[0x12345678]\nkernel=serial.img\n[EDID=VSC-TD2220]\nhdmi_group=2\n[gpio4=1]\ninitramfs gpio.cpio\n[all]\n'
    got = modules(tmp_path, with_config(config, **{'kernel8.img': ARM64_IMAGE}))
    assert got['cm3']['kernel'] == 'kernel8.img' and got['cm3']['runs'] is True
    assert got['cm3']['depends_on_board'] == [
        'config.txt:3: kernel=serial.img under a filter that depends on the board ([0x12345678])',
        'config.txt:7: initramfs under a filter that depends on the board ([0x12345678] [edid=vsc-td2220] [gpio4=1])']


def test_include_missing_and_nested(tmp_path):
    config = 'include extra.txt\ninclude absent.txt\n'
    files = with_config(config, **{'extra.txt': b'include deeper.txt\n', 'deeper.txt': b'arm_64bit=1\n', 'kernel8.img': ARM64_IMAGE})
    got = modules(tmp_path, files)
    assert got['cm3']['config_files'] == ['config.txt', 'extra.txt', 'deeper.txt']
    assert got['cm3']['settings']['arm_64bit'] == {'value': '1', 'at': 'deeper.txt:1'}
    assert got['cm3']['notes'] == ['config.txt includes absent.txt, which is not on the firmware partition']
    # an include of itself stops at the depth limit
    got = modules(tmp_path, with_config('include config.txt\n', **{'kernel7.img': ZIMAGE}))
    assert got['cm3']['notes'] == ['include nested deeper than 8 levels at config.txt: not followed']


def test_no_config_txt_means_the_defaults(tmp_path):
    got = modules(tmp_path, dict(FIRMWARE, **{'kernel.img': ZIMAGE, 'kernel7.img': ZIMAGE}))
    assert [got[f]['kernel'] for f in ('cm1', 'cm3', 'cm3plus')] == ['kernel.img', 'kernel7.img', 'kernel7.img']
    assert all(m['runs'] for m in got.values())


def test_os_prefix(tmp_path):
    files = with_config('os_prefix=next/\narm_64bit=1\ninitramfs initrd followkernel\n',
                        **{'next/kernel8.img': ARM64_IMAGE, 'next/initrd': b'i', 'next/cmdline.txt': b'root=x'})
    got = modules(tmp_path, files)
    assert (got['cm3']['kernel'], got['cm3']['initramfs'][0]['name'], got['cm3']['cmdline'], got['cm3']['runs']) == (
        'next/kernel8.img', 'next/initrd', 'next/cmdline.txt', True)
    files = with_config('os_prefix=gone/\n', **{'kernel7.img': ZIMAGE})
    got = modules(tmp_path, files)
    assert got['cm3']['kernel'] == 'kernel7.img' and got['cm3']['notes'] == [
        'os_prefix=gone/ is ignored: gone/kernel7.img is not on the partition (the firmware drops a prefix whose kernel it cannot find)']
    got = modules(tmp_path, with_config('os_prefix=x/\nkernel=/top.img\n', **{'top.img': ZIMAGE}))
    assert got['cm3']['kernel'] == 'top.img' and got['cm3']['runs'] is True


def test_config_reader_ignores_comments_and_unknown_lines(tmp_path):
    disk = make_disk(tmp_path, with_config('#kernel=commented.img\n  \nnonsense line\n[ALL]\nKERNEL = spaced.img\n'))
    with Disk(disk) as d:
        fs = FatFS(d, d.partitions[0]['start'])
        cfg = ConfigReader(fs, 'cm3').read()
    assert cfg.settings == {'kernel': ('spaced.img', 'config.txt:5')}


def test_config_lines_end_at_98_characters(tmp_path):
    long_name = 'k' * 120 + '.img'
    got = modules(tmp_path, with_config('kernel=%s\n' % long_name))
    assert got['cm3']['kernel'] == long_name[:98 - len('kernel=')]


# --- the partition table and the file system --------------------------------------------------

@pytest.mark.parametrize('fat', [12, 16, 32])
def test_fat_types_long_names_and_subdirectories(tmp_path, fat):
    files = {
        'config.txt': b'arm_64bit=1\n',
        'A Long File Name With Spaces.txt': b'long',
        'MixedCase.Name.dtbo': b'mixed',
        'overlays/deeper/nested/file-in-a-subdirectory.dtbo': b'nested' * 100,
        'UPPER.TXT': b'upper',
    }
    if fat != 12:
        files.update(('overlays/overlay-%03d.dtbo' % i, b'o' * i) for i in range(40))
    path = make_disk(tmp_path, files, fat=fat)
    with Disk(path) as disk:
        fs = FatFS(disk, disk.partitions[0]['start'], disk.partitions[0]['size'])
        assert fs.fat_type == 'FAT%d' % fat
        names = sorted(e['name'] for e in fs.listdir(''))
        assert names == sorted(['config.txt', 'A Long File Name With Spaces.txt', 'MixedCase.Name.dtbo', 'overlays', 'UPPER.TXT'])
        assert fs.read('a long file name with spaces.TXT', 100) == (b'long', True)
        assert fs.read('overlays/DEEPER/nested/file-in-a-subdirectory.dtbo', 1000) == (b'nested' * 100, True)
        assert fs.read('overlays/deeper/nested/file-in-a-subdirectory.dtbo', 10) == (b'nestednest', False)
        assert fs.stat('overlays/deeper') == {'dir': True, 'size': 0}
        assert fs.stat('nope') is None and not fs.exists('overlays')
        walked = dict((p, (d, s)) for p, d, s in fs.walk(''))
        assert walked['overlays/deeper/nested/file-in-a-subdirectory.dtbo'] == (False, 600)
        if fat != 12:
            assert fs.read('overlays/overlay-039.dtbo', 100) == (b'o' * 39, True)
            assert len(fs.listdir('overlays')) == 41
        with pytest.raises(FatError) as exc:
            fs.read('absent.txt', 10)
        assert str(exc.value) == '%s: no file absent.txt in the FAT file system' % path
        with pytest.raises(FatError) as exc:
            fs.listdir('config.txt')
        assert str(exc.value) == '%s: no directory config.txt in the FAT file system' % path


def test_a_file_larger_than_a_cluster_chain(tmp_path):
    data = os.urandom(300 * 1024)
    path = make_disk(tmp_path, {'big.bin': data}, fat=16)
    with Disk(path) as disk:
        fs = FatFS(disk, disk.partitions[0]['start'])
        before = disk.bytes_read
        assert fs.read('big.bin', len(data)) == (data, True)
        assert fs.read('big.bin', 4096) == (data[:4096], False)
        assert disk.bytes_read - before < len(data) + 4096 + 64 * 1024  # bounded: no more than asked for (and the FAT)


def test_extended_partitions(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_armhf(), table='extended'))
    assert [(p['number'], p['type']) for p in info['partitions']] == [(1, '0x0c'), (2, '0x0f'), (5, '0x83'), (6, '0x82')]
    assert info['modules']['cm1']['runs'] is True


def test_gpt_is_read_but_refused(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_arm64(), table='gpt'))
    assert info['partition_table'] == 'gpt'
    assert [(p['number'], p['type_name'], p['name']) for p in info['partitions']] == [(1, 'EFI system', 'boot'), (2, 'Linux filesystem', 'root')]
    assert info['problems'] == [
        'the image has a GPT partition table: the boot ROM of the BCM2835 and BCM2837 reads only an MBR, where it finds the'
        ' protective entry (type 0xee) and no FAT partition; a CM1, CM3 or CM3+ cannot boot it']
    assert info['modules']['cm3']['kernel_exists'] is True


def test_mbr_type_0xef_is_refused(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_arm64(), ptype=0xEF))
    assert info['problems'] == [
        'the firmware partition has the MBR type 0xef (EFI system): the boot ROM of the BCM2835 and BCM2837 does not recognise it'
        ' (it needs 0x0b or 0x0c)']


def test_no_fat_partition(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_arm64(), ptype=0x83))
    assert info['problems'] == ['no FAT partition in the MBR: the boot ROM of a CM1, CM3 or CM3+ loads bootcode.bin from a FAT partition']
    assert info['modules'] == {} and info['firmware_partition'] is None


def test_file_system_on_the_whole_disk(tmp_path):
    info = inspect_image(make_disk(tmp_path, raspios_armhf(), table='none'))
    assert info['partition_table'] is None and info['notes'] == ['no partition table: a file system fills the whole disk']
    assert info['modules']['cm3']['runs'] is True


def test_not_a_disk_image(tmp_path):
    path = tmp_path / 'random.bin'
    path.write_bytes(os.urandom(4096))
    with pytest.raises(FatError) as exc:
        inspect_image(str(path))
    assert str(exc.value) == ('%s: no partition table (no boot signature 55 aa at byte 510): not a raw disk image'
                              ' (a compressed image must be decompressed first)' % path)
    tiny = tmp_path / 'tiny.bin'
    tiny.write_bytes(b'x')
    with pytest.raises(FatError) as exc:
        inspect_image(str(tiny))
    assert str(exc.value) == '%s: 1 bytes is too small for a disk image' % tiny


def test_truncated_image(tmp_path):
    path = make_disk(tmp_path, raspios_arm64())
    with open(path, 'r+b') as f:
        f.truncate(4 * 1024 * 1024 + 512)
    info = inspect_image(path)
    assert len(info['problems']) == 1 and 'goes past the end of the image' in info['problems'][0]


def test_partition_that_is_not_fat(tmp_path):
    path = make_disk(tmp_path, raspios_arm64())
    with open(path, 'r+b') as f:
        f.seek(4 * 1024 * 1024)
        f.write(b'\x00' * 512)
    info = inspect_image(path)
    assert info['problems'] == ['partition 1: %s: no FAT file system at byte 4194304 (no FAT boot sector)' % path]


def test_kernel_header_arch():
    assert kernel_header_arch(ARM64_IMAGE) == 'arm64'
    assert kernel_header_arch(gzipped(ARM64_IMAGE)) == 'arm64'
    assert kernel_header_arch(ZIMAGE) == 'arm'
    assert kernel_header_arch(b'U-Boot') is None
    assert kernel_header_arch(b'\x1f\x8bnot gzip') is None


def test_decompress_head_stops_after_the_firmware_partition(tmp_path):
    import lzma

    from ansible_collections.turingpi.cluster.plugins.module_utils._image.sources import Source
    path = make_disk(tmp_path, raspios_arm64())
    with open(path, 'ab') as f:  # a large root after the firmware partition, never decompressed
        f.write(os.urandom(1024 * 1024) * 8)
    with open(path, 'rb') as f:
        raw = f.read()
    xz = tmp_path / 'disk.img.xz'
    xz.write_bytes(lzma.compress(raw, preset=0))
    stream = Source(str(xz)).open(hashing=False)
    head = str(tmp_path / 'head.img')
    written = decompress_head(stream, head, 1 << 30)
    stream.close()
    fw = inspect_image(path)['firmware_partition']
    assert fw['start'] + fw['size'] <= written < len(raw)
    assert inspect_image(head)['modules'] == inspect_image(path)['modules']


def test_fat_cache_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(fatmod, 'FAT_CACHE_SECTORS', 2)
    files = dict(('f%03d.txt' % i, b'x' * 700) for i in range(60))
    path = make_disk(tmp_path, files, fat=32)
    with Disk(path) as disk:
        fs = FatFS(disk, disk.partitions[0]['start'])
        assert fs.read('f059.txt', 1000) == (b'x' * 700, True)
        assert len(fs._fat_cache) <= 2


def test_helper_images_are_real(tmp_path):
    """The builder's image is what mtools itself reads back (the tests do not test a reader against itself)."""
    fat_images.make_fat(str(tmp_path / 'f.img'), {'a/b.txt': b'hello'}, fat=16)
    with Disk(str(tmp_path / 'f.img')) as disk:
        assert disk.table is None
        assert FatFS(disk, 0).read('A/B.TXT', 10) == (b'hello', True)
