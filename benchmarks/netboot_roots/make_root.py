# SPDX-License-Identifier: GPL-3.0-or-later
"""Writes an unpacked OS image (OUT/root and OUT/boot) of about MB megabytes and FILES regular
files in root/, laid out and mixed like a Raspberry Pi OS Lite (Bookworm, arm64) root, for
benchmarks/netboot_roots_bench.sh.

Deterministic from SEED (Python 3.9 or later): the same arguments give the same tree (names,
sizes, bytes, modes, owners, times, links). Every byte is written (no sparse files). The mix, as a
share of the files and of the bytes of root/ (an estimate of such a root by its packages: no real
image was measured for it):

  usr/lib/modules     kernel modules of two kernels, .ko.xz of 2 KB to 400 KB     24 % / 20 %
  usr/share           doc, man, locale, zoneinfo, i18n, perl: mostly under 8 KB    36 % / 12 %
  usr/lib/python3*    .py files and their __pycache__/*.pyc                       20 % /  7 %
  usr/lib/aarch64-*   shared libraries, 20 KB to 30 MB (a few multi-MB ones)        5 % / 24 %
  usr/bin, usr/sbin   programs, 10 KB to 4 MB (some hard-linked, some setuid)       3 % /  8 %
  usr/lib/firmware    firmware blobs, 100 KB to 12 MB                               2 % / 15 %
  var                 dpkg and apt state, logs                                      7 % / 13 %
  etc                 configuration                                                 3 % /  1 %

plus the symbolic links such a root has (the usr merge, library sonames, alternatives), an etc/
with what netboot_root reads (fstab with the eMMC's PARTUUIDs, hostname, hosts, sshd, systemd
units), and a boot/ (firmware, kernels, device trees, overlays) of 1/25 the size of root/.

  python3 make_root.py OUT SEED MB FILES      prints one line of JSON: what it wrote
"""

from __future__ import absolute_import, division, print_function

import json
import math
import os
import random
import sys

# name, share of files, share of bytes, median size (bytes), spread (sigma of log size), min, max
CATEGORIES = (
    ('modules', 0.24, 0.20, 9000, 1.1, 2048, 400 << 10),
    ('share', 0.36, 0.12, 1800, 1.3, 60, 2 << 20),
    ('python', 0.20, 0.07, 4000, 1.1, 100, 400 << 10),
    ('libs', 0.05, 0.24, 60000, 1.6, 20 << 10, 30 << 20),
    ('bin', 0.03, 0.08, 60000, 1.3, 10 << 10, 4 << 20),
    ('firmware', 0.02, 0.15, 300000, 1.2, 100 << 10, 12 << 20),
    ('var', 0.07, 0.13, 2500, 1.6, 40, 40 << 20),
    ('etc', 0.03, 0.01, 900, 1.2, 20, 200 << 10),
)
KERNELS = ('6.6.51+rpt-rpi-v8', '6.6.51+rpt-rpi-2712')
TRIPLET = 'aarch64-linux-gnu'
POOL = 8 << 20
# 2024-11-19, the Bookworm image's build date: every time stamp is this plus a few days.
EPOCH = 1732000000

WORDS = ('core', 'net', 'usb', 'sound', 'video', 'input', 'gpio', 'i2c', 'spi', 'media', 'crypto', 'block',
         'fs', 'hid', 'mmc', 'misc', 'power', 'rtc', 'serial', 'wifi', 'bt', 'tty', 'drm', 'dma', 'iio',
         'mfd', 'pci', 'phy', 'pwm', 'reset', 'scsi', 'ssb', 'thermal', 'watchdog', 'xen', 'vhost', 'nls',
         'http', 'json', 'yaml', 'text', 'util', 'codec', 'parse', 'proto', 'async', 'cache', 'config',
         'locale', 'gnu', 'perl', 'apt', 'dpkg', 'systemd', 'udev', 'dbus', 'glib', 'ssl', 'ssh', 'curl')
LANGS = ('de', 'fr', 'es', 'it', 'pt_BR', 'ru', 'ja', 'zh_CN', 'pl', 'nl', 'sv', 'cs', 'tr', 'uk', 'ko',
         'fi', 'da', 'hu', 'ro', 'ca', 'el', 'he', 'vi', 'id', 'nb', 'sk', 'sl', 'sr', 'gl', 'eu')


class Writer(object):
    def __init__(self, top, seed):
        self.rng = random.Random(seed)
        # Every file is a slice of this pool behind a header naming it: real, distinct bytes,
        # written at the disk's speed rather than the random generator's.
        self.pool = self.rng.randbytes(POOL)
        self.top = top
        self.stats = dict(files=0, bytes=0, dirs=0, symlinks=0, hardlinks=0)
        self.dirs = set()

    def mkdir(self, rel, mode=0o755):
        path = os.path.join(self.top, rel)
        if rel in self.dirs or os.path.isdir(path):
            return path
        parent = os.path.dirname(rel)
        if parent:
            self.mkdir(parent)
        os.mkdir(path)
        os.chmod(path, mode)
        self.dirs.add(rel)
        self.stats['dirs'] += 1
        return path

    def file(self, rel, size, mode=0o644, uid=0, gid=0, data=None):
        self.mkdir(os.path.dirname(rel))
        path = os.path.join(self.top, rel)
        with open(path, 'wb') as f:
            if data is not None:
                f.write(data)
                size = len(data)
            else:
                head = ('%s %d\n' % (rel, size)).encode()[:size]
                f.write(head)
                left = size - len(head)
                pos = self.rng.randrange(POOL)
                while left > 0:
                    chunk = self.pool[pos:pos + min(left, 1 << 20)]
                    f.write(chunk)
                    left -= len(chunk)
                    pos = (pos + len(chunk)) % POOL
        os.chown(path, uid, gid)
        os.chmod(path, mode)
        self.stamp(path)
        self.stats['files'] += 1
        self.stats['bytes'] += size
        return path

    def symlink(self, target, rel):
        self.mkdir(os.path.dirname(rel))
        path = os.path.join(self.top, rel)
        if os.path.lexists(path):
            return
        os.symlink(target, path)
        os.utime(path, (EPOCH, EPOCH), follow_symlinks=False)
        self.stats['symlinks'] += 1

    def hardlink(self, existing, rel):
        self.mkdir(os.path.dirname(rel))
        path = os.path.join(self.top, rel)
        if os.path.lexists(path):
            return
        os.link(os.path.join(self.top, existing), path)
        self.stats['hardlinks'] += 1

    def stamp(self, path):
        t = EPOCH + self.rng.randrange(4 * 86400)
        os.utime(path, (t, t))

    def word(self):
        return self.rng.choice(WORDS)

    def sizes(self, count, total, median, sigma, low, high):
        """count sizes in [low, high] that add up to about total, log-normally spread."""
        if count <= 0:
            return []
        raw = [min(high, max(low, int(self.rng.lognormvariate(math.log(median), sigma)))) for _i in range(count)]
        for _round in range(8):
            scale = float(total) / max(1, sum(raw))
            if abs(scale - 1) < 0.002:
                break
            raw = [min(high, max(low, int(s * scale))) for s in raw]
        return raw


def names(w, category, count):
    """count relative paths (deterministic) for category, about 10 files per directory."""
    rng = w.rng
    out = []
    d = None
    for i in range(count):
        if d is None or rng.random() < 0.1:
            if category == 'modules':
                d = 'usr/lib/modules/%s/kernel/%s/%s/%s' % (
                    rng.choice(KERNELS), rng.choice(('drivers', 'net', 'fs', 'sound', 'crypto', 'lib')), w.word(), w.word())
            elif category == 'share':
                kind = rng.random()
                if kind < 0.35:
                    d = 'usr/share/doc/%s-%s%d' % (w.word(), w.word(), rng.randrange(100))
                elif kind < 0.5:
                    d = 'usr/share/man/man%d' % rng.choice((1, 1, 1, 3, 5, 7, 8))
                elif kind < 0.7:
                    d = 'usr/share/locale/%s/LC_MESSAGES' % rng.choice(LANGS)
                elif kind < 0.8:
                    d = 'usr/share/zoneinfo/%s' % rng.choice(('Europe', 'America', 'Asia', 'Africa', 'Pacific', 'right/Europe', 'posix/Asia'))
                elif kind < 0.9:
                    d = 'usr/share/perl/5.36/%s/%s' % (w.word().capitalize(), w.word().capitalize())
                else:
                    d = 'usr/share/%s/%s' % (rng.choice(('i18n/charmaps', 'i18n/locales', 'vim/vim90/syntax', 'X11/locale',
                                                         'bash-completion/completions')), w.word())
            elif category == 'python':
                d = 'usr/lib/python3%s/%s/%s' % (rng.choice(('.11', '/dist-packages', '/dist-packages')), w.word(), w.word())
            elif category == 'libs':
                d = 'usr/lib/%s%s' % (TRIPLET, rng.choice(('', '', '', '/gconv', '/perl5/5.36/auto/%s' % w.word(), '/gio/modules')))
            elif category == 'bin':
                d = rng.choice(('usr/bin', 'usr/bin', 'usr/bin', 'usr/sbin', 'usr/libexec/%s' % w.word(), 'usr/lib/%s' % w.word()))
            elif category == 'firmware':
                d = 'usr/lib/firmware/%s' % rng.choice(('brcm', 'cypress', 'rtlwifi', 'rtl_bt', 'mediatek', 'ath10k/%s' % w.word(), 'intel',
                                                        'raspberrypi/bootloader-2712/%s' % w.word()))
            elif category == 'var':
                d = rng.choice(('var/lib/dpkg/info', 'var/lib/dpkg/info', 'var/lib/apt/lists', 'var/cache/debconf', 'var/cache/man/%s' % rng.choice(LANGS),
                                'var/log/apt', 'var/lib/systemd/deb-systemd-helper-enabled/%s.target.wants' % w.word()))
            else:
                d = 'etc/%s%s' % (w.word(), rng.choice(('', '.d', '/conf.d', '/%s' % w.word())))
        if category == 'python' and out and out[-1].endswith('.py') and rng.random() < 0.6:
            # The compiled twin of the last .py, as Debian's py3compile leaves them.
            prev = out[-1]
            out.append('%s/__pycache__/%s.cpython-311.pyc' % (os.path.dirname(prev), os.path.basename(prev)[:-3]))
            continue
        stem = '%s%s%s%d' % (w.word(), rng.choice(('', '-', '_')), w.word(), i)
        ext = {'modules': '.ko.xz', 'share': rng.choice(('', '.gz', '.mo', '.txt', '.pm', '.html')), 'python': '.py',
               'libs': '.so.%d.%d.%d' % (rng.randrange(1, 7), rng.randrange(20), rng.randrange(10)), 'bin': '',
               'firmware': rng.choice(('.bin', '.fw', '.clm_blob', '.txt')), 'var': rng.choice(('.list', '.md5sums', '.dat', '', '.gz')),
               'etc': rng.choice(('', '.conf', '.conf', '.rules'))}[category]
        if category == 'libs':
            stem = 'lib' + stem
        out.append('%s/%s%s' % (d, stem, ext))
    return out


def skeleton(w):
    """What every Debian root has and what netboot_root reads or changes."""
    for d in ('bin', 'lib', 'sbin'):
        w.mkdir('usr/' + d)
        w.symlink('usr/' + d, d)
    for d in ('dev', 'proc', 'sys', 'run', 'tmp', 'mnt', 'media', 'srv', 'opt', 'home', 'boot/firmware', 'var/tmp'):
        w.mkdir(d)
    os.chmod(os.path.join(w.top, 'tmp'), 0o1777)
    os.chmod(os.path.join(w.top, 'var/tmp'), 0o1777)
    w.mkdir('root', 0o700)
    w.file('etc/passwd', 0, data=b'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n'
                                 b'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n')
    w.file('etc/group', 0, data=b'root:x:0:\ndaemon:x:1:\nadm:x:4:pi\nsudo:x:27:pi\ncrontab:x:101:\npi:x:1000:\n')
    w.file('etc/shadow', 0, 0o640, 0, 42, data=b'root:*:20046:0:99999:7:::\nsshd:!:20046::::::\npi:!:20046:0:99999:7:::\n')
    w.file('etc/hostname', 0, data=b'raspberrypi\n')
    w.file('etc/hosts', 0, data=b'127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\traspberrypi\n')
    w.file('etc/fstab', 0, data=b'proc            /proc           proc    defaults          0       0\n'
                                b'PARTUUID=4e639091-01  /boot/firmware  vfat    defaults          0       2\n'
                                b'PARTUUID=4e639091-02  /               ext4    defaults,noatime  0       1\n')
    w.file('etc/ssh/sshd_config', 0, data=b'Include /etc/ssh/sshd_config.d/*.conf\nKbdInteractiveAuthentication no\nUsePAM yes\n')
    w.mkdir('etc/ssh/sshd_config.d')
    w.file('usr/lib/systemd/system/ssh.service', 0, data=(b'[Unit]\nDescription=OpenBSD Secure Shell server\n\n[Service]\n'
                                                          b'ExecStart=/usr/sbin/sshd -D\n\n[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n'))
    w.symlink('/lib/systemd/system/ssh.service', 'etc/systemd/system/multi-user.target.wants/ssh.service')
    w.symlink('/lib/systemd/system/ssh.service', 'etc/systemd/system/sshd.service')
    w.mkdir('home/pi', 0o750)
    os.chown(os.path.join(w.top, 'home/pi'), 1000, 1000)
    w.file('home/pi/.bashrc', 3526, 0o644, 1000, 1000)
    return w.stats['files']


def root(w, mb, files):
    fixed = skeleton(w)
    total = mb << 20
    # The files the shares give, then the largest category absorbs the rounding.
    counts = [int(round((files - fixed) * c[1])) for c in CATEGORIES]
    counts[1] += files - fixed - sum(counts)
    largest = (0, None)
    for (name, _fshare, bshare, median, sigma, low, high), count in zip(CATEGORIES, counts):
        for rel, size in zip(names(w, name, count), w.sizes(count, total * bshare, median, sigma, low, high)):
            mode, uid, gid = 0o644, 0, 0
            if name == 'bin':
                mode = 0o4755 if w.rng.random() < 0.01 else 0o755
            elif name == 'var' and rel.startswith('var/log'):
                mode, gid = 0o640, 4
            w.file(rel, size, mode, uid, gid)
            if name == 'libs':
                largest = max(largest, (size, rel))
                # The soname link, as every shared library has (libfoo.so.1 -> libfoo.so.1.2.3).
                w.symlink(os.path.basename(rel), rel.rsplit('.', 2)[0])
            elif name == 'bin' and w.rng.random() < 0.02:
                # A second name for the same program (perl and perl5.36, python3 and python3.11).
                w.hardlink(rel, rel + '.%d' % w.rng.randrange(2, 12))
            elif name == 'bin' and w.rng.random() < 0.05:
                w.symlink('/%s' % rel, 'etc/alternatives/%s' % os.path.basename(rel))
    return largest[1]


def boot(w, mb):
    scale = mb / 1700.0
    b = w.rng
    for name, size in (('bootcode.bin', 52456), ('start.elf', 2978656), ('start4.elf', 2262304), ('start_cd.elf', 811036),
                       ('start4cd.elf', 811036), ('fixup.dat', 7303), ('fixup4.dat', 5405), ('kernel8.img', 9393472),
                       ('kernel_2712.img', 9510400), ('initramfs8', 11764224), ('initramfs_2712', 11815936), ('LICENCE.broadcom', 1594)):
        w.file(name, max(64, int(size * scale)), 0o755)
    for i in range(30):
        w.file('bcm27%d-rpi-%s-%d.dtb' % (b.choice((10, 11, 12)), b.choice(('3-b', 'cm3', 'cm4', '4-b', '5-b', 'zero-2-w')), i),
               max(64, int(b.randrange(32000, 62000) * scale)), 0o755)
    for i in range(310):
        w.file('overlays/%s-%s%d.dtbo' % (w.word(), w.word(), i), max(64, int(b.randrange(600, 9000) * max(scale, 0.2))), 0o755)
    w.file('config.txt', 0, 0o755, data=b'dtparam=audio=on\ncamera_auto_detect=1\ndisplay_auto_detect=1\n'
                                        b'auto_initramfs=1\ndtoverlay=vc4-kms-v3d\nmax_framebuffers=2\narm_64bit=1\n')
    w.file('cmdline.txt', 0, 0o755, data=b'console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes rootwait\n')


def main():
    if len(sys.argv) != 5:
        sys.exit('usage: make_root.py OUT SEED MB FILES')
    out, seed, mb, files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if mb < 20 or files < 500:
        sys.exit('make_root.py: at least 20 MB and 500 files')
    os.makedirs(out)
    result = {}
    for part in ('root', 'boot'):
        top = os.path.join(out, part)
        os.mkdir(top, 0o755)
        w = Writer(top, '%s/%s' % (seed, part))
        if part == 'root':
            # The largest shared library: the one a node changes in the benchmark (copied up).
            result['library'] = root(w, mb, files)
        else:
            boot(w, mb)
        for dirpath, _dirnames, _filenames in os.walk(top):
            os.utime(dirpath, (EPOCH, EPOCH))
        result[part] = w.stats
    print(json.dumps(result, sort_keys=True))


if __name__ == '__main__':
    main()
