#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: image_info
short_description: What an OS image's firmware partition makes each compute module boot, and whether it fits one
version_added: 1.0.0
description:
  - Reads an OS image (a raw image file or a block device) without mounting it, in pure Python, with
    bounded reads, and reports its partition table, its firmware (boot) partition and what the
    firmware would do on each compute module type of the Turing Pi V1 (CM1, CM3, CM3+).
  - The firmware partition is the first FAT partition of the MBR, the one the boot ROM of the BCM2835
    and BCM2837 reads. FAT12, FAT16 and FAT32 with long file names are read; a GPT image is read too,
    but reported as a problem, since these boot ROMs read only an MBR.
  - C(config.txt) is read as the firmware reads it, per module type. The model filters that apply to
    the module (V([all]), V([none]), V([pi1]), V([pi3]), V([pi3+]), V([cm1]), V([cm3]), V([cm3+]),
    V([board-type=0x...]); V([pi4]), V([cm4]), V([pi0]) and the others never apply), C(include) of other
    files (such as Ubuntu's C(syscfg.txt) and C(usercfg.txt)), C(kernel=), C(arm_64bit=), C(initramfs),
    C(ramfsfile=), C(auto_initramfs=), C(os_prefix=), C(upstream_kernel=), C(cmdline=) and C(start_file=).
    Settings under filters that depend on the board (a serial number, EDID, GPIO, HDMI, tryboot) are
    not applied; those that choose the kernel are listed in each module's V(depends_on_board) under RV(modules).
  - For each module type it reports the kernel the firmware would load (C(kernel=) when set, else
    C(kernel8.img) with C(arm_64bit=1), else C(kernel.img) on a CM1 and C(kernel7.img) on a CM3 or CM3+),
    whether that file and the initramfs are on the partition, the kernel's architecture (from its name,
    and from its header for other names such as Ubuntu's C(vmlinuz)), and whether the module can run it.
    The facts behind it are in C(docs/hardware.md), "What the firmware loads".
  - The first-boot mechanisms visible on the firmware partition; see RV(first_boot).
  - With O(module), the module says whether the image fits a module of that type (RV(fits), RV(problems))
    and, with O(fail_on_mismatch), fails with the reasons before anything is written anywhere.
  - For each partition, the bytes its file system has in use (V(used_bytes) in RV(partitions)), from the
    file system itself (the superblock of an ext2, ext3 or ext4 file system, the FAT of a FAT12, FAT16 or
    FAT32 one), so that the space unpacking the image needs is known before anything is written.
  - A compressed image (xz, gzip, bzip2, zstd) is decompressed as a stream into a sparse temporary
    file, only as far as the end of its firmware partition and the superblocks of the partitions after
    it (for Raspberry Pi OS about 520 MiB of decompressed data, mostly zeros, which take no disk space),
    then read like a raw image and removed.
  - Never changes anything, the image is opened read-only.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  path:
    description:
      - The image file (raw, or compressed with xz, gzip, bzip2 or zstd) or a block device (such as the
        eMMC of a module exposed by M(turingpi.cluster.usbboot)).
    type: path
    required: true
    aliases: [src]
  module:
    description:
      - The module type the image is meant for, as in the inventory (C(turingpi_module)), one of V(cm1), V(cm3),
        V(cm3-lite), V(cm3plus) or V(cm3plus-lite); spellings such as V(CM3+), V(CM3L) or V(CM3+ Lite)
        are accepted.
      - When given, the module returns RV(fits) and RV(problems) for it.
    type: str
  boot:
    description:
      - The boot source of the node (C(turingpi_boot)), checked against O(module) as the inventory does
        (a CM1 cannot network boot, a Lite module has no eMMC, a module with eMMC cannot boot from a card).
    type: str
    choices: [emmc, sd, netboot]
  fail_on_mismatch:
    description:
      - Fail when the image does not fit O(module), with every reason in the message.
      - Defaults to V(true) when O(module) is given. Without O(module) it fails when no module type of the
        board can run the image.
    type: bool
  decompress_limit:
    description:
      - Most bytes of a compressed image to decompress to reach the end of its firmware partition, and the
        superblocks of the partitions after it; a partition whose superblock lies past it has a null
        V(used_bytes) in RV(partitions), with a note.
    type: int
    default: 2147483648
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.INFO_MODULE
notes:
  - What the firmware partition alone cannot tell, and this module does not claim, is whether the root file
    system has the software that acts on the first-boot files (cloud-init, C(userconf-pi),
    C(raspberrypi-sys-mods)) and whether it is enabled; C(docs/os-images.md) describes what the images do.
  - Block devices are read as they are; a module that is still booting or being written gives what is on
    the device at that moment.
seealso:
  - module: turingpi.cluster.image_write
  - name: turingpi.cluster.image_problems filter
    description: The same check from the result of this module, per node, in a role.
    link: https://github.com/turingpi-cluster/turingpi.cluster/blob/main/docs/inventory.md
'''

EXAMPLES = r'''
- name: Check that the image fits the module in slot 3 before flashing it
  turingpi.cluster.image_info:
    path: /var/cache/turingpi/2024-11-19-raspios-bookworm-arm64-lite.img.xz
    module: "{{ hostvars['tp-node3'].turingpi_module }}"
    boot: "{{ hostvars['tp-node3'].turingpi_boot }}"

- name: What each module type would boot, without failing
  turingpi.cluster.image_info:
    path: /srv/images/ubuntu-24.04-preinstalled-server-arm64+raspi.img
  register: image

- name: Show the kernel a CM3+ loads
  ansible.builtin.debug:
    msg: "{{ image.modules.cm3plus.kernel }} ({{ image.modules.cm3plus.arch }}): {{ image.modules.cm3plus.runs }}"
'''

RETURN = r'''
path:
  description: The image that was read.
  returned: always
  type: str
  sample: /srv/images/raspios.img
size:
  description: Size of the (decompressed part of the) image in bytes.
  returned: always
  type: int
  sample: 2759852032
compression:
  description: Compression of O(path) (V(none) for a raw image or a block device).
  returned: always
  type: str
  sample: xz
partition_table:
  description: V(mbr), V(gpt), or null for a file system on the whole disk.
  returned: always
  type: str
  sample: mbr
disk_id:
  description: The MBR disk identifier (8 hex digits, the C(PARTUUID) prefix) or the GPT disk GUID.
  returned: always
  type: str
  sample: 1a2b3c4d
partitions:
  description:
    - The partitions, each with V(number), V(start) and V(size) in bytes, V(type) (the MBR type as V(0x0c)
      or the GPT type GUID), V(type_name), V(fat_type) (a FAT partition type) and, for MBR, V(bootable),
      for GPT, V(name).
    - V(filesystem), the file system found in the partition (V(ext2), V(ext3), V(ext4), V(FAT12), V(FAT16)
      or V(FAT32), whatever the partition type says), or null for any other, for an extended partition,
      and when it cannot be read (RV(notes) then says why).
    - V(used_bytes), the bytes of the file system that are not free, or null when V(filesystem) is null.
      For ext2/3/4, every block the superblock does not count as free (s_blocks_count - s_free_blocks_count),
      times the block size, which holds the files, the directories and the file system's own metadata (inode
      tables, bitmaps, the journal); the blocks reserved for root are free and not counted. For FAT, everything
      before the first cluster (the reserved sectors, the FATs and the FAT12/16 root directory) and every
      cluster whose FAT entry is not 0 (files, directories, bad clusters), times the cluster size; the whole
      first FAT is read for it (1 MiB for a 512 MiB FAT32 of 2 KiB clusters).
    - Either way it is at least what the files take on a file system of the same kind and block size,
      and more by the metadata (for an ext4 root of 550 MB, 16 MiB of journal and 8 MiB of inode tables).
  returned: always
  type: list
  elements: dict
  sample:
    - {"number": 1, "start": 8388608, "size": 536870912, "type": "0x0c", "type_name": "FAT32 (LBA)", "fat_type": true,
       "filesystem": "FAT32", "used_bytes": 2156544}
    - {"number": 2, "start": 545259520, "size": 553648128, "type": "0x83", "type_name": "Linux", "fat_type": false,
       "filesystem": "ext4", "used_bytes": 333586432}
firmware_partition:
  description:
    - The firmware partition (V(number), V(start), V(size), V(fat_type), V(label), V(volume_id), V(used_bytes) as in
      RV(partitions)), or null.
  returned: always
  type: dict
  sample: {"number": 1, "start": 8388608, "size": 536870912, "fat_type": "FAT32", "label": "bootfs", "volume_id": "2a4f46b6",
           "used_bytes": 2156544}
files:
  description: The names in the firmware partition's root directory, directories with a trailing V(/).
  returned: always
  type: list
  elements: str
  sample: [bootcode.bin, cmdline.txt, config.txt, kernel8.img, overlays/, start.elf]
file_count:
  description: Files and directories on the firmware partition, at every level.
  returned: always
  type: int
  sample: 312
config_txt:
  description: The text of C(config.txt), or null when there is none.
  returned: always
  type: str
cmdline_txt:
  description: The text of C(cmdline.txt), or null when there is none.
  returned: always
  type: str
  sample: "console=serial0,115200 console=tty1 root=PARTUUID=1a2b3c4d-02 rootfstype=ext4 fsck.repair=yes rootwait"
modules:
  description:
    - Per module family (V(cm1), V(cm3), V(cm3plus); a Lite module loads what its family loads) what the
      firmware would load, empty when there is no firmware partition.
    - V(kernel), the path on the partition; V(kernel_exists), V(kernel_size); V(kernel_header), V(arm64) or
      V(arm) as the file's header says, or null; V(arch), V(arm64), V(armv7), V(armv6) or V(arm) (32-bit, not
      known which); V(mode), V(64-bit) or V(32-bit), the mode the firmware starts the kernel in; V(arm_64bit).
    - V(initramfs), a list of V({name, exists, auto}); V(cmdline), the command line file; V(os_prefix);
      V(config_files), the configuration files read (C(config.txt) and what it includes); V(settings), the
      settings that choose what is loaded, each with its value and where it is set (V(config.txt:12)).
    - V(depends_on_board), settings that choose the kernel but sit under a filter that depends on the board.
    - V(runs), whether a module of this type can boot the image; V(problems), why not; V(notes).
  returned: always
  type: dict
  sample:
    cm1:
      kernel: kernel8.img
      kernel_exists: true
      arch: arm64
      mode: 64-bit
      runs: false
      problems: ["the image is for arm64 (config.txt sets arm_64bit=1: the firmware starts kernel8.img in 64-bit mode): ..."]
    cm3plus: {kernel: kernel8.img, kernel_exists: true, arch: arm64, mode: 64-bit, runs: true, problems: []}
first_boot:
  description:
    - What the firmware partition shows of the image's first boot, or null without a firmware partition.
    - V(mechanisms), a list of V(cloud-init) (a NoCloud seed, C(user-data) or C(meta-data), on the partition),
      V(raspios-firstboot) (C(init=/usr/lib/raspberrypi-sys-mods/firstboot) in C(cmdline.txt), with which Raspberry Pi OS
      Bookworm and later resize the root, make host keys and read C(custom.toml)), V(raspios-init-resize)
      (older Raspberry Pi OS), V(init) (another C(init=)), V(imager-firstrun) (Raspberry Pi Imager's
      C(firstrun.sh)), V(custom.toml), V(userconf) (a C(userconf.txt) that makes the first user), V(ssh) (an
      C(ssh) or C(ssh.txt) file that switches SSH on).
    - V(cloud_init_seed), V(files), which of those files exist; V(cmdline_init), V(cmdline_systemd_run).
  returned: always
  type: dict
  sample: {"mechanisms": ["raspios-firstboot"], "cmdline_init": "/usr/lib/raspberrypi-sys-mods/firstboot"}
module:
  description: O(module) in its canonical form, or null.
  returned: always
  type: str
  sample: cm3plus-lite
fits:
  description: Whether the image fits O(module) (and O(boot)); without O(module), whether any module type can run it.
  returned: always
  type: bool
  sample: false
problems:
  description:
    - Why the image does not fit O(module) (without O(module), what is wrong for every module type, such as
      a GPT disk or no firmware partition), in sentences that say what to do. Empty when it fits.
  returned: always
  type: list
  elements: str
  sample: ["a CM1 (BCM2835) cannot network boot: ..."]
bytes_read:
  description:
    - Bytes read from the image (or from its decompressed start), to show how little is read; most of it is
      the FAT of the firmware partition, read to count its clusters in use.
  returned: always
  type: int
  sample: 1100324
notes:
  description:
    - Things noticed on the way that are not problems (an ignored C(os_prefix), a missing include, a file system
      whose used bytes could not be read, an ext4 journal that needs recovery).
  returned: always
  type: list
  elements: str
'''

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import (
    BOOT_SOURCES, MODULE_TYPES, BoardError, image_problems, normalize_module,
)
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import ImageError
from ansible_collections.turingpi.cluster.plugins.module_utils._image.firmware import decompress_head, inspect_image
from ansible_collections.turingpi.cluster.plugins.module_utils._image.sources import Source, detect_compression


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True, aliases=['src']),
            module=dict(type='str'),
            boot=dict(type='str', choices=list(BOOT_SOURCES)),
            fail_on_mismatch=dict(type='bool'),
            decompress_limit=dict(type='int', default=2 * 1024 * 1024 * 1024),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = p['path']
    try:
        kind = normalize_module('module', p['module'])
    except BoardError as exc:
        module.fail_json(msg=to_native(exc))
    if not os.path.exists(path):
        module.fail_json(msg='%s does not exist: give the path of an image file or a block device' % path)

    compression = 'none'
    tmpdir = None
    read_from = path
    try:
        if os.path.isfile(path):
            with open(path, 'rb') as f:
                compression = detect_compression(f.read(8))
        if compression != 'none':
            tmpdir = tempfile.mkdtemp(prefix='image_info-', dir=module.tmpdir)
            read_from = os.path.join(tmpdir, 'head.img')
            stream = Source(path, compression).open(hashing=False)
            try:
                decompress_head(stream, read_from, p['decompress_limit'])
            finally:
                stream.close()
        result = inspect_image(read_from)
    except ImageError as exc:
        message = to_native(exc).replace(read_from, path)
        module.fail_json(msg=message if path in message else '%s: %s' % (path, message), compression=compression)
    finally:
        if tmpdir:
            shutil.rmtree(tmpdir, ignore_errors=True)

    if read_from != path:
        for key in ('problems', 'notes'):
            result[key] = [text.replace(read_from, path) for text in result[key]]
    result['path'] = path
    result['compression'] = compression
    result['module'] = kind
    try:
        problems = image_problems(result, kind, p['boot'] if kind else None)
    except BoardError as exc:
        module.fail_json(msg=to_native(exc))
    result['problems'] = problems
    result['fits'] = not problems
    fail = p['fail_on_mismatch']
    if fail is None:
        fail = kind is not None
    if fail and problems:
        what = 'a %s' % MODULE_TYPES[kind]['label'] if kind else 'any module of the Turing Pi V1'
        module.fail_json(msg='%s does not fit %s: %s' % (path, what, '; '.join(problems)), changed=False, **dict(
            (k, v) for k, v in result.items() if k != 'changed'))
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()
