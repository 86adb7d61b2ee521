# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""What an OS image's firmware partition makes a compute module do, read without mounting it.

``inspect_image(path)`` reads the partition table and the firmware (boot) partition of a raw
image or block device (through ``fat``) and returns, as plain data:
- the partitions, with the bytes their file systems use (FAT through ``fat``, ext2/3/4 through
  ``ext4``), the firmware partition's files, ``config.txt`` and ``cmdline.txt``;
- per module family (CM1, CM3, CM3+) the kernel the firmware would load, as it reads
  ``config.txt``: the model filters that apply to that module, ``include`` of other files,
  ``kernel=``, ``arm_64bit=``, ``initramfs``, ``os_prefix``; whether the kernel and initramfs are
  on the partition, which architecture the kernel is (from its name and its header), whether the
  module can run it, and the problems in words;
- the first-boot mechanisms visible on the partition (cloud-init seed, Raspberry Pi OS
  ``firstboot``, ``ssh``, ``userconf.txt``, ...).

Every fact is from docs/hardware.md ("Compute modules", "What the firmware loads").
``decompress_head`` turns the start of a compressed image into a sparse file that holds the
partition table, the firmware partition and the other partitions' superblocks, for images that
are still compressed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import struct
import zlib

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import MODULE_FAMILIES, MODULE_TYPES
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import MiB, ImageError
from ansible_collections.turingpi.cluster.plugins.module_utils._image.ext4 import (
    SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE, ExtError, looks_like_ext, parse_superblock,
)
from ansible_collections.turingpi.cluster.plugins.module_utils._image.fat import (
    EXTENDED_TYPES, SECTOR, Disk, FatError, FatFS, looks_like_fat_boot_sector,
)

CONFIG_LIMIT = 256 * 1024      # config.txt and the files it includes, each
CMDLINE_LIMIT = 64 * 1024
KERNEL_HEAD = 64 * 1024        # bytes of a kernel read to tell its architecture
INCLUDE_DEPTH = 8
LINE_LIMIT = 98                # characters of a config.txt line the firmware reads
FS_HEAD = SUPERBLOCK_OFFSET + SUPERBLOCK_SIZE  # a partition's first bytes: a FAT boot sector, an ext superblock

# The kernels the firmware knows by name: the architecture, the mode the firmware starts them in
# and the SoCs they are built for (docs/hardware.md "What the firmware loads").
KNOWN_KERNELS = {
    'kernel.img': ('armv6', 32, ('BCM2835',), 'Pi 1, Pi Zero and CM1'),
    'kernel7.img': ('armv7', 32, ('BCM2836', 'BCM2837', 'BCM2837B0'), 'Pi 2, Pi 3, CM3 and CM3+'),
    'kernel7l.img': ('armv7', 32, ('BCM2711',), 'Pi 4 and CM4'),
    'kernel8.img': ('arm64', 64, ('BCM2837', 'BCM2837B0', 'BCM2711', 'BCM2712'), 'the 64-bit Raspberry Pis: Pi 3, CM3, CM3+, Pi 4, Pi 5'),
    'kernel_2712.img': ('arm64', 64, ('BCM2712',), 'Pi 5 and CM5'),
    'kernel8_16.img': ('arm64', 64, ('BCM2712',), 'Pi 5 and CM5'),
}
# The kernel each family loads when config.txt names none (and arm_64bit is not set).
DEFAULT_KERNEL = {'cm1': 'kernel.img', 'cm3': 'kernel7.img', 'cm3plus': 'kernel7.img'}
KERNEL_64 = 'kernel8.img'
# What each family can run: the SoC's 32-bit ISA and whether it has 64-bit mode.
FAMILY_ISA = {'cm1': ('armv6', False), 'cm3': ('armv7', True), 'cm3plus': ('armv7', True)}

MODEL_FILTERS = ('pi1', 'pi2', 'pi3', 'pi3+', 'pi4', 'pi400', 'pi5', 'pi500', 'pi500+', 'pi0', 'pi0w', 'pi02',
                 'cm0', 'cm1', 'cm3', 'cm3+', 'cm4', 'cm4s', 'cm5', 'none')
# Settings that decide what is loaded; where one sits under a filter this reader cannot evaluate
# (serial, EDID, GPIO, ...), the answer depends on the board and the module says so.
KERNEL_SETTINGS = ('kernel', 'arm_64bit', 'initramfs', 'ramfsfile', 'os_prefix', 'upstream_kernel', 'auto_initramfs',
                   'cmdline', 'start_file', 'start_x', 'start_debug')

ARM64_MAGIC_OFFSET, ARM64_MAGIC = 0x38, b'ARM\x64'       # Linux arm64 Image header
ZIMAGE_MAGIC_OFFSET, ZIMAGE_MAGIC = 0x24, 0x016F2818    # Linux arm zImage header

SEED_FILES = ('user-data', 'meta-data', 'network-config')
FIRSTBOOT_FILES = ('ssh', 'ssh.txt', 'userconf.txt', 'userconf', 'custom.toml', 'firstrun.sh', 'wpa_supplicant.conf')
RASPIOS_FIRSTBOOT = '/usr/lib/raspberrypi-sys-mods/firstboot'
RASPIOS_INIT_RESIZE = '/usr/lib/raspi-config/init_resize.sh'


# --- config.txt --------------------------------------------------------------------------
def _filter_kind(name):
    """The type of a conditional filter ([pi3] -> 'model'); filters of one type replace each other."""
    if name in MODEL_FILTERS:
        return 'model'
    if name.startswith('board-type='):
        return 'board-type'
    if name.startswith('0x'):
        return 'serial'
    for prefix in ('edid=', 'gpio', 'hdmi:', 'tryboot'):
        if name.startswith(prefix):
            return prefix.rstrip('=:')
    return 'other:%s' % name


def _filter_matches(kind, name, family):
    """True, False, or None when it depends on the board (serial, EDID, GPIO, ...)."""
    info = MODULE_TYPES[family]
    if kind == 'model':
        return name != 'none' and name in info['filters']
    if kind == 'board-type':
        try:
            return int(name.split('=', 1)[1], 0) == info['board_type']
        except ValueError:
            return False
    return None


class ConfigReader(object):
    """config.txt as the firmware reads it for one module family."""

    def __init__(self, fs, family):
        self.fs = fs
        self.family = family
        self.settings = {}     # key -> (value, 'file:line')
        self.initramfs = None  # ([names], address, 'file:line')
        self.files = []        # the config files read, in order
        self.notes = []
        self.uncertain = []    # kernel settings under filters that depend on the board
        self.filters = {}

    def read(self, name='config.txt'):
        self._read_file(name, 0)
        return self

    def _read_file(self, name, depth):
        if depth > INCLUDE_DEPTH:
            self.notes.append('include nested deeper than %d levels at %s: not followed' % (INCLUDE_DEPTH, name))
            return
        if not self.fs.exists(name):
            if depth:
                self.notes.append('config.txt includes %s, which is not on the firmware partition' % name)
            return
        data, complete = self.fs.read(name, CONFIG_LIMIT)
        if not complete:
            self.notes.append('%s is larger than %d bytes: only its start was read' % (name, CONFIG_LIMIT))
        self.files.append(name)
        for number, raw in enumerate(data.decode('utf-8', 'replace').splitlines(), start=1):
            self._line(name, number, raw, depth)

    def _matches(self):
        """True, False, or 'depends' (a filter this reader cannot evaluate, such as a serial)."""
        depends = False
        for kind, name in self.filters.items():
            result = _filter_matches(kind, name, self.family)
            if result is False:
                return False
            depends = depends or result is None
        return 'depends' if depends else True

    def _line(self, name, number, raw, depth):
        line = raw[:LINE_LIMIT].strip()
        if not line or line.startswith('#'):
            return
        where = '%s:%d' % (name, number)
        if line.startswith('['):
            inner = line[1:line.index(']')] if ']' in line else line[1:]
            inner = inner.strip().lower()
            if inner == 'all':
                self.filters = {}
            else:
                self.filters[_filter_kind(inner)] = inner
            return
        applies = self._matches()
        if applies is False:
            return
        words = line.split(None, 1)
        if words[0] == 'include' and len(words) == 2:
            if applies is True:
                self._read_file(words[1].strip(), depth + 1)
            else:
                self.notes.append('%s: include %s sits under a filter that depends on the board; not followed' % (where, words[1].strip()))
            return
        if words[0] == 'initramfs':
            parts = line.split()
            if applies is not True:
                self.uncertain.append('%s: initramfs under a filter that depends on the board (%s)' % (where, self._filter_text()))
            elif len(parts) >= 2:
                self.initramfs = ([n for n in parts[1].split(',') if n], parts[2] if len(parts) > 2 else None, where)
            return
        if '=' not in line:
            return
        key, value = line.split('=', 1)
        key, value = key.strip().lower(), value.strip()
        if applies is True:
            self.settings[key] = (value, where)
        elif key in KERNEL_SETTINGS:
            self.uncertain.append('%s: %s=%s under a filter that depends on the board (%s)' % (where, key, value, self._filter_text()))

    def _filter_text(self):
        return ' '.join('[%s]' % v for v in self.filters.values())

    def value(self, key, default=None):
        return self.settings.get(key, (default, None))[0]

    def flag(self, key):
        text = self.value(key)
        if text is None:
            return None
        try:
            return int(text, 0) != 0
        except ValueError:
            return None


# --- the kernel --------------------------------------------------------------------------
def kernel_header_arch(head):
    """'arm64', 'arm' (a 32-bit zImage) or None, from the first bytes of a kernel; a gzip file
    (as 64-bit kernels may be) is decompressed as far as the header."""
    if head[:2] == b'\x1f\x8b':
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 4096)
        except zlib.error:
            return None
    if len(head) >= ARM64_MAGIC_OFFSET + 4 and head[ARM64_MAGIC_OFFSET:ARM64_MAGIC_OFFSET + 4] == ARM64_MAGIC:
        return 'arm64'
    if len(head) >= ZIMAGE_MAGIC_OFFSET + 4 and struct.unpack_from('<I', head, ZIMAGE_MAGIC_OFFSET)[0] == ZIMAGE_MAGIC:
        return 'arm'
    return None


def _join(prefix, name):
    if name.startswith('/'):
        return name.lstrip('/')
    return (prefix or '') + name


def module_kernel(fs, family, files_lower):
    """What the firmware loads on a module of this family, whether it is there and whether the
    module can run it: a dict (see the image_info module's RETURN)."""
    info = MODULE_TYPES[family]
    label = info['label']
    isa, has_64 = FAMILY_ISA[family]
    cfg = ConfigReader(fs, family).read()
    explicit = cfg.value('kernel')
    arm_64bit = cfg.flag('arm_64bit')
    problems, notes = [], list(cfg.notes)
    if explicit:
        kernel = explicit
        known = KNOWN_KERNELS.get(os.path.basename(kernel).lower())
        mode = known[1] if known else (64 if arm_64bit else 32)
    elif arm_64bit:
        kernel, mode = KERNEL_64, 64
    else:
        kernel, mode = DEFAULT_KERNEL[family], 32
    known = KNOWN_KERNELS.get(os.path.basename(kernel).lower())

    prefix = cfg.value('os_prefix')
    if prefix is None and cfg.flag('upstream_kernel'):
        prefix = 'upstream/'
    if prefix and not kernel.startswith('/'):
        if fs.exists(prefix + kernel):
            notes.append('os_prefix=%s: the kernel is %s%s' % (prefix, prefix, kernel))
        else:
            notes.append('os_prefix=%s is ignored: %s%s is not on the partition (the firmware drops a prefix whose kernel it cannot find)'
                         % (prefix, prefix, kernel))
            prefix = None
    path = _join(prefix, kernel)
    st = fs.stat(path)
    exists = st is not None and not st['dir']

    header = None
    if exists:
        head = fs.read(path, KERNEL_HEAD)[0]
        header = kernel_header_arch(head)
    if known:
        arch = known[0]
    elif header == 'arm64':
        arch = 'arm64'
    elif mode == 64:
        arch = 'arm64'
    else:
        arch = 'arm'  # 32-bit, ARMv6 or ARMv7: the name does not say
    if explicit:
        reason = 'config.txt sets kernel=%s%s' % (explicit, ' and arm_64bit=1' if arm_64bit and not known else '')
    else:
        reason = 'config.txt sets arm_64bit=1' if arm_64bit else 'the default kernel of a %s' % label

    if mode == 64 and not has_64:
        problems.append('the image is for arm64 (%s: the firmware starts %s in 64-bit mode): a %s (%s, ARMv6) runs only'
                        ' 32-bit ARMv6 kernels (kernel.img); use a 32-bit (armhf) image' % (reason, kernel, label, info['soc']))
    elif not exists:
        others = sorted(k for k in KNOWN_KERNELS if k in files_lower and k != kernel.lower())
        hint = ''
        if others:
            hint = ' (the partition has %s, for %s)' % (', '.join(others), '; '.join(KNOWN_KERNELS[k][3] for k in others))
        problems.append('a %s would load %s (%s), which is not on the firmware partition%s: the image has no kernel this module runs'
                        % (label, path, reason, hint))
    elif known and info['soc'] not in known[2]:
        problems.append('a %s would load %s (%s), a kernel built for %s: a %s (%s) cannot run it; use an image with %s'
                        % (label, path, reason, known[3], label, info['soc'], DEFAULT_KERNEL[family] if not has_64 else 'kernel7.img or kernel8.img'))
    elif not known and mode == 32 and isa == 'armv6' and header != 'arm64':
        problems.append('a %s would load %s (%s), and nothing says it is an ARMv6 kernel, the only kind a %s (%s) runs:'
                        ' use an image that has kernel.img for the %s' % (label, path, reason, label, info['soc'], label))
    if exists and header == 'arm64' and mode == 32:
        problems.append('%s is a 64-bit (arm64) kernel, but the firmware starts it in 32-bit mode on a %s (config.txt does not set'
                        ' arm_64bit=1 for it)' % (path, label))
    elif exists and header == 'arm' and mode == 64:
        problems.append('%s is a 32-bit ARM kernel (zImage), but the firmware starts it in 64-bit mode on a %s (%s)' % (path, label, reason))

    initramfs = []
    if cfg.initramfs:
        for name in cfg.initramfs[0]:
            ipath = _join(prefix, name)
            present = fs.exists(ipath)
            initramfs.append({'name': ipath, 'exists': present, 'auto': False})
            if not present:
                problems.append('config.txt (%s) loads the initramfs %s, which is not on the firmware partition: the kernel would'
                                ' start without the initramfs it needs' % (cfg.initramfs[2], ipath))
    elif cfg.value('ramfsfile'):
        for name in cfg.value('ramfsfile').split(','):
            ipath = _join(prefix, name.strip())
            present = fs.exists(ipath)
            initramfs.append({'name': ipath, 'exists': present, 'auto': False})
            if not present:
                problems.append('config.txt sets ramfsfile=%s, which is not on the firmware partition' % ipath)
    elif cfg.flag('auto_initramfs') and known and os.path.basename(kernel).lower().startswith('kernel'):
        base = os.path.basename(kernel).lower()
        name = 'initramfs' + base[len('kernel'):-len('.img')]
        ipath = _join(prefix, name)
        initramfs.append({'name': ipath, 'exists': fs.exists(ipath), 'auto': True})

    start = cfg.value('start_file') or ('start_x.elf' if cfg.flag('start_x') else 'start_db.elf' if cfg.flag('start_debug') else 'start.elf')
    for firmware_file in ('bootcode.bin', start):
        if firmware_file not in files_lower:
            problems.append('%s is not on the firmware partition: a %s loads it before the kernel (an image for the Pi 4 and'
                            ' later only has no bootcode.bin and start.elf)' % (firmware_file, label))

    runs = exists and not problems
    return {
        'label': label,
        'soc': info['soc'],
        'kernel': path,
        'kernel_exists': exists,
        'kernel_size': st['size'] if exists else None,
        'kernel_header': header,
        'arch': arch,
        'mode': '64-bit' if mode == 64 else '32-bit',
        'arm_64bit': bool(arm_64bit),
        'initramfs': initramfs,
        'cmdline': _join(prefix, cfg.value('cmdline') or 'cmdline.txt'),
        'os_prefix': prefix,
        'config_files': cfg.files,
        'settings': dict((k, {'value': v, 'at': at}) for k, (v, at) in cfg.settings.items() if k in KERNEL_SETTINGS),
        'depends_on_board': cfg.uncertain,
        'runs': runs,
        'problems': problems,
        'notes': notes,
    }


# --- first boot --------------------------------------------------------------------------
def first_boot(files_lower, cmdline):
    tokens = (cmdline or '').split()
    init = None
    for token in tokens:
        if token.startswith('init='):
            init = token[len('init='):]
    runs = [t[len('systemd.run='):] for t in tokens if t.startswith('systemd.run=')]
    seed = dict((name, name in files_lower) for name in SEED_FILES)
    present = dict((name, name in files_lower) for name in FIRSTBOOT_FILES)
    mechanisms = []
    if seed['user-data'] or seed['meta-data']:
        mechanisms.append('cloud-init')
    if init == RASPIOS_FIRSTBOOT:
        mechanisms.append('raspios-firstboot')
    elif init == RASPIOS_INIT_RESIZE:
        mechanisms.append('raspios-init-resize')
    elif init:
        mechanisms.append('init')
    if any(r.endswith('firstrun.sh') for r in runs) or present['firstrun.sh']:
        mechanisms.append('imager-firstrun')
    if present['custom.toml']:
        mechanisms.append('custom.toml')
    if present['userconf.txt'] or present['userconf']:
        mechanisms.append('userconf')
    if present['ssh'] or present['ssh.txt']:
        mechanisms.append('ssh')
    return {
        'mechanisms': mechanisms,
        'cloud_init_seed': seed,
        'files': present,
        'cmdline_init': init,
        'cmdline_systemd_run': runs,
    }


# --- the image ---------------------------------------------------------------------------
def firmware_partition(disk):
    """The partition the boot ROM reads: the first MBR entry of a FAT type (a GPT disk's ROM-visible
    MBR holds only the protective entry). Returns (partition or None, problem or None)."""
    mbr = getattr(disk, 'mbr_entries', disk.partitions)
    if disk.table is None:
        return disk.partitions[0], None
    for part in mbr:
        if part['fat_type'] and part['type'] != '0xef':
            return part, None
    if disk.table == 'gpt':
        for part in disk.partitions:
            if part['fat_type']:
                return part, ('the image has a GPT partition table: the boot ROM of the BCM2835 and BCM2837 reads only an MBR, where'
                              ' it finds the protective entry (type 0xee) and no FAT partition; a CM1, CM3 or CM3+ cannot boot it')
        return None, 'the image has a GPT partition table and no FAT partition'
    if any(p['type'] == '0xef' for p in mbr):
        return [p for p in mbr if p['type'] == '0xef'][0], ('the firmware partition has the MBR type 0xef (EFI system): the boot ROM'
                                                            ' of the BCM2835 and BCM2837 does not recognise it (it needs 0x0b or 0x0c)')
    return None, 'no FAT partition in the MBR: the boot ROM of a CM1, CM3 or CM3+ loads bootcode.bin from a FAT partition'


def file_system_usage(disk, part):
    """(file system, bytes in use, note) of a partition, from its first bytes: FAT12/16/32 (fat.FatFS,
    used_bytes) or ext2/3/4 (its superblock, ext4.py); (None, None, None) for anything else and
    for an extended partition; a note when the file system is there but cannot be read."""
    if part['type'] in ['0x%02x' % t for t in EXTENDED_TYPES]:
        return None, None, None
    where = 'partition %d' % part['number']
    try:
        head = disk.pread(part['start'], min(FS_HEAD, part['size']))
        if head[510:512] == b'\x55\xaa' and looks_like_fat_boot_sector(head[:SECTOR]):
            fs = FatFS(disk, part['start'], part['size'])
            return fs.fat_type, fs.used_bytes(), None
        if looks_like_ext(head[SUPERBLOCK_OFFSET:]):
            sb = parse_superblock(head[SUPERBLOCK_OFFSET:], '%s: %s' % (disk.path, where))
            note = None
            if sb['needs_recovery']:
                note = ('%s: its %s journal needs recovery (it was not unmounted cleanly): used_bytes is what its superblock says'
                        ' before the journal is replayed' % (where, sb['filesystem']))
            elif sb['size'] > part['size']:
                note = '%s: the %s file system (%d bytes) is larger than its partition (%d bytes)' % (where, sb['filesystem'], sb['size'], part['size'])
            return sb['filesystem'], sb['used_bytes'], note
    except (FatError, ExtError) as exc:
        return None, None, '%s: used_bytes unknown: %s' % (where, exc)
    return None, None, None


def inspect_image(path):
    """Everything image_info returns but the module fit: see that module's RETURN."""
    with Disk(path) as disk:
        partitions = disk.describe()
        for part in partitions:
            part['filesystem'], part['used_bytes'], note = file_system_usage(disk, part)
            if note:
                disk.notes.append(note)
        result = {
            'path': path,
            'size': disk.size,
            'partition_table': disk.table,
            'disk_id': disk.disk_id,
            'partitions': partitions,
            'firmware_partition': None,
            'files': [],
            'file_count': 0,
            'config_txt': None,
            'cmdline_txt': None,
            'modules': {},
            'first_boot': None,
            'problems': [],
            'notes': list(disk.notes),
        }
        part, problem = firmware_partition(disk)
        if problem:
            result['problems'].append(problem)
        if part is None:
            result['notes'] = list(disk.notes)
            result['bytes_read'] = disk.bytes_read
            return result
        try:
            _read_firmware(disk, part, result)
        except FatError as exc:
            result['problems'].append('partition %d: %s' % (part['number'], exc))
            result['modules'] = {}
        result['notes'] = list(disk.notes)
        result['bytes_read'] = disk.bytes_read
        return result


def _read_firmware(disk, part, result):
    fs = FatFS(disk, part['start'], part['size'])
    used = [p['used_bytes'] for p in result['partitions'] if p['start'] == part['start']]
    result['firmware_partition'] = {'number': part['number'], 'start': part['start'], 'size': part['size'],
                                    'fat_type': fs.fat_type, 'label': fs.label, 'volume_id': fs.volume_id,
                                    'used_bytes': used[0] if used else None}
    top = fs.listdir('')
    result['files'] = sorted(e['name'] + ('/' if e['dir'] else '') for e in top)
    result['file_count'] = len(fs.walk(''))
    files_lower = set(e['name'].lower() for e in top if not e['dir'])
    if fs.exists('config.txt'):
        data, complete = fs.read('config.txt', CONFIG_LIMIT)
        result['config_txt'] = data.decode('utf-8', 'replace')
    if fs.exists('cmdline.txt'):
        data, complete = fs.read('cmdline.txt', CMDLINE_LIMIT)
        result['cmdline_txt'] = data.decode('utf-8', 'replace')
    for family in MODULE_FAMILIES:
        result['modules'][family] = module_kernel(fs, family, files_lower)
    result['first_boot'] = first_boot(files_lower, result['cmdline_txt'])


def decompress_head(source, dest, limit):
    """Decompress the start of a compressed image (an ImageStream) into dest, a sparse file,
    far enough to hold its partition table, its firmware partition and the first bytes of the
    other partitions (at most limit bytes).
    Returns the number of bytes written (the file's size)."""
    chunk = 4 * MiB
    written = 0
    need = 2 * MiB  # enough for an MBR or a GPT and its entries
    known_end = False
    with open(dest, 'wb') as out:
        while written < min(need, limit):
            data = source.read_exact(min(chunk, limit - written))
            if not data:
                break
            if data.count(b'\x00') == len(data):
                out.seek(len(data), os.SEEK_CUR)
            else:
                out.write(data)
            written += len(data)
            if not known_end and written >= 2 * MiB:
                out.flush()
                out.truncate(written)
                end = _head_end(dest, limit)
                known_end = True
                if end is not None:
                    need = end
        out.truncate(written)
    if written < need and written >= limit:
        raise ImageError('the firmware partition ends at byte %d of the decompressed image, past the decompression limit of %d bytes'
                         % (need, limit))
    return written


def _head_end(path, limit):
    """Where the decompressed head ends: after the firmware partition, and after the first bytes of
    each partition that start within limit (its file system's used_bytes)."""
    try:
        with Disk(path) as disk:
            part = firmware_partition(disk)[0]
            ends = [part['start'] + part['size']] if part else []
            ends += [p['start'] + FS_HEAD for p in disk.partitions if p['start'] + FS_HEAD <= limit]
            return max(ends) if ends else None
    except FatError:
        return None
