# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unpacked images (root/ and boot/) laid out as each OS family's real image has them, for the
netboot_root tests.

Raspberry Pi OS: the real first-boot code of ../shared/realworld/ (raspberrypi-sys-mods,
userconf-pi, pi-gen's stages) installed and enabled as its packages and pi-gen do it, read from
those files: debian/install and debian/rules say where the files go and which units are enabled,
pi-gen's stage2 disables ssh and enables regenerate_ssh_host_keys (Bullseye, Bookworm), export-image
runs ``rename-user -f -s`` (its banner, ``disable getty@tty1`` and ``enable userconfig`` are taken
from the script), stage1's fstab gets the PARTUUIDs of 04-set-partuuid, and Trixie's
stage2/04-cloud-init seed files go to the boot partition. What the realworld copy does not hold
(systemd's and openssh-server's units, cloud-init's configuration, Ubuntu's image) is written here
the way the Debian and Ubuntu packages have it, and says so.

The real code is found through TP_REALWORLD, else the path in tests/output/realworld-path of the
collection tree (tests/tiers/30-units.sh writes it into the tree it copies under .tmp), else
../shared/realworld beside the collection. Missing, the tests that need it fail: they never skip.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import shutil

import pytest

FAMILIES = ('raspios-bullseye', 'raspios-bookworm', 'raspios-trixie', 'ubuntu-24.04')
# What each family's pi-gen (or Ubuntu's build) names the disk: the image's MBR disk id.
IMGID = '4e639091'
FIRST_USER = 'pi'

# openssh-server's unit, as Debian and Ubuntu ship it.
DEBIAN_SSH_SERVICE = b'''[Unit]
Description=OpenBSD Secure Shell server
Documentation=man:sshd(8) man:sshd_config(5)
After=network.target auditd.service
ConditionPathExists=!/etc/ssh/sshd_not_to_be_run

[Service]
EnvironmentFile=-/etc/default/ssh
ExecStartPre=/usr/sbin/sshd -t
ExecStart=/usr/sbin/sshd -D $SSHD_OPTS
ExecReload=/usr/sbin/sshd -t
ExecReload=/bin/kill -HUP $MAINPID
KillMode=process
Restart=on-failure
RestartPreventExitStatus=255
Type=notify
RuntimeDirectory=sshd
RuntimeDirectoryMode=0755

[Install]
WantedBy=multi-user.target
Alias=sshd.service
'''
# Ubuntu 24.04 starts sshd from this socket (enabled by openssh-server); ssh.service is not enabled.
UBUNTU_SSH_SOCKET = b'''[Unit]
Description=OpenBSD Secure Shell server socket
Before=sockets.target ssh.service
ConditionPathExists=!/etc/ssh/sshd_not_to_be_run

[Socket]
ListenStream=0.0.0.0:22
ListenStream=[::]:22
BindIPv6Only=ipv6-only
Accept=no
FreeBind=yes

[Install]
WantedBy=sockets.target
RequiredBy=ssh.service
'''
# systemd's getty template: the package enables getty@tty1.service.
GETTY_SERVICE = b'''[Unit]
Description=Getty on %I
After=systemd-user-sessions.service plymouth-quit-wait.service getty-pre.target

[Service]
ExecStart=-/sbin/agetty -o '-p -- u' --noclear - $TERM
Type=idle

[Install]
WantedBy=getty.target
DefaultInstance=tty1
'''
# cloud-init as Debian's and Ubuntu's packages configure it (the parts that matter here).
CLOUD_CFG = b'''# The top level settings are used as module
# and base configuration.
users:
  - default
disable_root: true
preserve_hostname: false
cloud_init_modules:
  - seed_random
  - bootcmd
  - write_files
  - growpart
  - resizefs
  - set_hostname
  - update_hostname
  - update_etc_hosts
  - users_groups
  - ssh
system_info:
  default_user:
    name: %s
    lock_passwd: True
    groups: [adm, sudo]
    sudo: ["ALL=(ALL) NOPASSWD:ALL"]
    shell: /bin/bash
'''
# Ubuntu's Raspberry Pi images: NoCloud only, from the boot partition labelled system-boot.
UBUNTU_FAKE_CLOUD = b'''# configure cloud-init for NoCloud
datasource_list: [ NoCloud, None ]
datasource:
  NoCloud:
    fs_label: system-boot
'''
# Ubuntu's seed on system-boot, as the Ubuntu 24.04 preinstalled server image ships it: the default
# user ubuntu whose password must be changed. tests/lab/os-image.sh reads these three (and
# UBUNTU_FAKE_CLOUD) from this file for its lab image: the text is kept here only.
UBUNTU_USER_DATA = b'''#cloud-config

# This is the user-data configuration file for cloud-init. By default this sets
# up an initial user called "ubuntu" with password "ubuntu", which must be
# changed at first login. However, many additional actions can be initiated on
# first boot from this file. The cloud-init documentation has more details:
#
# https://cloudinit.readthedocs.io/

# On first boot, set the (default) ubuntu user's password to "ubuntu" and
# expire user passwords
chpasswd:
  expire: true
  users:
  - name: ubuntu
    password: ubuntu
    type: text

# Enable password authentication with the SSH daemon
ssh_pwauth: true
'''
UBUNTU_META_DATA = b'''# This is the meta-data configuration file for cloud-init. Typically this just
# contains the instance_id.

instance_id: cloud-image
'''
UBUNTU_NETWORK_CONFIG = b'''# This file contains a netplan-compatible configuration which cloud-init will
# apply on first-boot (note: it will *not* update the config after the first
# boot). Please refer to the cloud-init documentation and the netplan reference
# for full details:
#
# https://netplan.io/reference
# https://cloudinit.readthedocs.io/en/latest/topics/network-config.html
# https://cloudinit.readthedocs.io/en/latest/topics/network-config-format-v2.html

network:
  version: 2
  ethernets:
    eth0:
      dhcp4: true
      optional: true
'''
UBUNTU_FSTAB = b'LABEL=writable\t/\text4\tdiscard,errors=remount-ro\t0\t1\nLABEL=system-boot       /boot/firmware  vfat    defaults        0       1\n'


def realworld_dir():
    """The real first-boot code (../shared/realworld), or a test failure that says where it is looked for."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))))
    env = os.environ.get('TP_REALWORLD')
    if env:
        candidates = [env]
    else:
        candidates = []
        record = os.path.join(top, 'tests', 'output', 'realworld-path')
        if os.path.isfile(record):
            with open(record) as f:
                candidates.append(f.read().strip())
        candidates.append(os.path.join(top, '..', 'shared', 'realworld'))
    for candidate in candidates:
        if os.path.isdir(os.path.join(candidate, 'raspberrypi-sys-mods')) and os.path.isdir(os.path.join(candidate, 'pi-gen')):
            return os.path.realpath(candidate)
    pytest.fail('the real first-boot code (shared/realworld) is not in %s: set TP_REALWORLD, or write its path to '
                'tests/output/realworld-path in the collection tree the tests run from' % ', '.join(candidates))


def write(root, rel, data, mode=0o644, uid=0, gid=0):
    path = os.path.join(root, rel)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path), 0o755)
    with open(path, 'wb') as f:
        f.write(data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def read(path):
    with open(path, 'rb') as f:
        return f.read()


def link(root, rel, target):
    path = os.path.join(root, rel)
    if not os.path.isdir(os.path.dirname(path)):
        os.makedirs(os.path.dirname(path), 0o755)
    if os.path.lexists(path):
        os.unlink(path)
    os.symlink(target, path)


def require(path, *lines):
    """The real file has these lines (else the image built here no longer matches it)."""
    text = read(path).decode()
    for line in lines:
        assert line in text, '%s no longer says %r: update realworld_root.py to what it does now' % (path, line)
    return text


class Image(object):
    """One family's unpacked image: ``top``/root and ``top``/boot, as the netboot role leaves them."""

    def __init__(self, top, family):
        assert family in FAMILIES, family
        self.family = family
        self.top = str(top)
        self.root = os.path.join(self.top, 'root')
        self.boot = os.path.join(self.top, 'boot')
        self.rw = realworld_dir() if family.startswith('raspios') else None
        # Where the packages put their units: /lib up to Bookworm, /usr/lib from Trixie and on Ubuntu 24.04.
        self.units = 'lib/systemd/system' if family in ('raspios-bullseye', 'raspios-bookworm') else 'usr/lib/systemd/system'
        self.merged = family != 'raspios-bullseye'
        self.fw = '/boot' if family == 'raspios-bullseye' else '/boot/firmware'
        self.base()
        if family.startswith('raspios'):
            self.raspios()
        else:
            self.ubuntu()

    # --- systemctl, as the packages and pi-gen call it ---

    def unit_path(self, unit):
        return '/%s/%s' % (self.units, re.sub(r'@[^.]+\.', '@.', unit))

    def enable(self, unit):
        text = read(os.path.join(self.root, self.unit_path(unit).lstrip('/'))).decode()
        for key, suffix in (('WantedBy', '.wants'), ('RequiredBy', '.requires')):
            for target in ' '.join(re.findall(r'^%s=(.*)$' % key, text, re.M)).split():
                link(self.root, 'etc/systemd/system/%s%s/%s' % (target, suffix, unit), self.unit_path(unit))
        for alias in ' '.join(re.findall(r'^Alias=(.*)$', text, re.M)).split():
            link(self.root, 'etc/systemd/system/' + alias, self.unit_path(unit))

    def disable(self, unit):
        config = os.path.join(self.root, 'etc/systemd/system')
        for dirpath, dirnames, filenames in os.walk(config):
            for name in dirnames + filenames:
                path = os.path.join(dirpath, name)
                if os.path.islink(path) and (name == unit or ('@' not in unit and os.readlink(path) == self.unit_path(unit))):
                    os.unlink(path)

    # --- what every image has ---

    def base(self):
        root = self.root
        for d in ('etc/systemd/system', 'etc/ssh/sshd_config.d', 'etc/default', 'root', 'home', 'var/lib', 'dev', 'proc', 'boot'):
            os.makedirs(os.path.join(root, d), 0o755)
        os.chmod(os.path.join(root, 'root'), 0o700)
        if self.merged:
            for d in ('lib', 'bin', 'sbin'):
                os.makedirs(os.path.join(root, 'usr', d), 0o755)
                os.symlink('usr/' + d, os.path.join(root, d))
        os.makedirs(os.path.join(root, self.units), 0o755)
        write(root, 'etc/passwd', b'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n'
                                  b'sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n')
        write(root, 'etc/group', b'root:x:0:\ndaemon:x:1:\nadm:x:4:\nsudo:x:27:\n')
        write(root, 'etc/shadow', b'root:*:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nsshd:!:19000::::::\n', 0o640)
        write(root, 'etc/hosts', b'127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n')
        write(root, 'etc/ssh/sshd_config', b'Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\n')
        # systemd: getty@tty1 on (the package's own enable).
        write(root, '%s/getty@.service' % self.units, GETTY_SERVICE)
        self.enable('getty@tty1.service')
        # openssh-server: its unit, enabled by its postinst, and the host keys it made.
        write(root, '%s/ssh.service' % self.units, DEBIAN_SSH_SERVICE)
        self.enable('ssh.service')
        for key_type in ('rsa', 'ecdsa', 'ed25519'):
            write(root, 'etc/ssh/ssh_host_%s_key' % key_type, b'made by the image build\n', 0o600)
            write(root, 'etc/ssh/ssh_host_%s_key.pub' % key_type, b'ssh-%s AAAAimage root@build\n' % key_type.encode())
        os.makedirs(self.boot, 0o755)
        write(self.boot, 'bootcode.bin', b'bootcode')
        write(self.boot, 'start.elf', b'\x7fELF start')

    # --- Raspberry Pi OS, from the real code ---

    def raspios(self):
        root, rw, family = self.root, self.rw, self.family
        release = 'trixie' if family == 'raspios-trixie' else 'bookworm'
        pigen = os.path.join(rw, 'pi-gen', release)
        write(root, 'etc/hostname', b'raspberrypi\n')
        write(root, 'etc/hosts', read(os.path.join(root, 'etc/hosts')) + b'\n127.0.1.1\traspberrypi\n')
        os.makedirs(os.path.join(root, self.fw.lstrip('/')), 0o755, exist_ok=True)
        # stage1: the first user (adduser) and the fstab of files/fstab.
        with open(os.path.join(root, 'etc/passwd'), 'ab') as f:
            f.write(b'%s:x:1000:1000:,,,:/home/%s:/bin/bash\n' % (FIRST_USER.encode(), FIRST_USER.encode()))
        with open(os.path.join(root, 'etc/group'), 'ab') as f:
            f.write(b'%s:x:1000:\n' % FIRST_USER.encode())
        os.makedirs(os.path.join(root, 'home', FIRST_USER), 0o700)
        os.chown(os.path.join(root, 'home', FIRST_USER), 1000, 1000)
        fstab = read(os.path.join(pigen, 'stage1/01-sys-tweaks/files/fstab'))
        require(os.path.join(pigen, 'export-image/04-set-partuuid/00-run.sh'),
                's/BOOTDEV/PARTUUID=${BOOT_PARTUUID}/', 's/ROOTDEV/PARTUUID=${ROOT_PARTUUID}/')
        fstab = fstab.replace(b'BOOTDEV', b'PARTUUID=%s-01' % IMGID.encode()).replace(b'ROOTDEV', b'PARTUUID=%s-02' % IMGID.encode())
        if family == 'raspios-bullseye':
            # Bullseye mounts the firmware partition on /boot (pi-gen's bullseye branch).
            fstab = fstab.replace(b'/boot/firmware', b'/boot          ')
        write(root, 'etc/fstab', fstab)
        write(self.boot, 'cmdline.txt', b'console=serial0,115200 console=tty1 root=PARTUUID=%s-02 rootfstype=ext4 fsck.repair=yes '
                                        b'rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n' % IMGID.encode())
        write(self.boot, 'config.txt', b'[all]\n')
        self.sys_mods()
        self.userconf_pi()
        # stage2/01-sys-tweaks: ssh off (official images are built without ENABLE_SSH), the host keys
        # deleted, regenerate_ssh_host_keys on where that stage enables it.
        stage2 = require(os.path.join(pigen, 'stage2/01-sys-tweaks/01-run.sh'), 'systemctl disable ssh',
                         'rm -f "${ROOTFS_DIR}/etc/ssh/"ssh_host_*_key*')
        self.disable('ssh.service')
        if 'systemctl enable regenerate_ssh_host_keys' in stage2:
            self.enable('regenerate_ssh_host_keys.service')
        for name in os.listdir(os.path.join(root, 'etc/ssh')):
            if name.startswith('ssh_host_') and '_key' in name:
                os.unlink(os.path.join(root, 'etc/ssh', name))
        # export-image/01-user-rename: rename-user -f -s.
        require(os.path.join(pigen, 'export-image/01-user-rename/01-run.sh'), 'rename-user -f -s')
        self.rename_user()
        if family == 'raspios-trixie':
            require(os.path.join(pigen, 'export-image/05-finalise/01-run.sh'), 'echo "uninitialized" > "${ROOTFS_DIR}/etc/machine-id"')
            write(root, 'etc/machine-id', b'uninitialized\n')
            self.cloud_init(b'pi')
            # stage2/04-cloud-init: the NoCloud seed files on the boot partition.
            seed = os.path.join(pigen, 'stage2/04-cloud-init/files')
            require(os.path.join(pigen, 'stage2/04-cloud-init/01-run.sh'), 'files/meta-data "${ROOTFS_DIR}/boot/firmware/meta-data"')
            for name in ('meta-data', 'user-data', 'network-config'):
                write(self.boot, name, read(os.path.join(seed, name)), 0o755)
        else:
            write(root, 'etc/machine-id', b'')

    def sys_mods(self):
        """raspberrypi-sys-mods: its files (debian/raspberrypi-sys-mods.install), its units, its
        /etc/default file, and the units debian/rules enables."""
        root, src = self.root, os.path.join(self.rw, 'raspberrypi-sys-mods')
        require(os.path.join(src, 'debian/raspberrypi-sys-mods.install'), 'etc', 'usr')
        for top in ('etc', 'usr'):
            for dirpath, _dirnames, filenames in os.walk(os.path.join(src, top)):
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    mode = 0o755 if os.stat(path).st_mode & 0o111 else 0o644
                    if top == 'etc' and 'sudoers.d' in dirpath:
                        mode = 0o440
                    write(root, os.path.relpath(path, src), read(path), mode)
        write(root, 'etc/default/raspberrypi-sys-mods', read(os.path.join(src, 'debian/raspberrypi-sys-mods.default')))
        rules = read(os.path.join(src, 'debian/rules')).decode()
        for name, options in re.findall(r'dh_installsystemd --name=(\S+)(.*)$', rules, re.M):
            write(root, '%s/%s.service' % (self.units, name), read(os.path.join(src, 'debian/raspberrypi-sys-mods.%s.service' % name)))
            if '--no-enable' not in options:
                self.enable('%s.service' % name)

    def userconf_pi(self):
        """userconf-pi: debian/install's files, its unit (not enabled: debian/rules says --no-enable)."""
        root, src = self.root, os.path.join(self.rw, 'userconf-pi')
        for line in read(os.path.join(src, 'debian/install')).decode().splitlines():
            if line.strip():
                name, dest = line.split()
                write(root, os.path.join(dest, name), read(os.path.join(src, name)), 0o755 if name != 'sshd_banner' else 0o644)
        write(root, '%s/userconfig.service' % self.units, read(os.path.join(src, 'debian/userconf-pi.userconfig.service')))
        require(os.path.join(src, 'debian/rules'), 'dh_installsystemd --name=userconfig --no-start --no-enable')

    def rename_user(self):
        """What ``rename-user -f -s`` does to a Lite image (boot to the console): the SSH banner,
        getty@tty1 off, the userconfig wizard on."""
        script = require(os.path.join(self.rw, 'userconf-pi/rename-user'),
                         'systemctl --quiet disable getty@tty1', 'systemctl --quiet enable userconfig')
        banner = re.search(r'cat <<- EOF > /(etc/ssh/sshd_config\.d/rename_user\.conf)\n(.*?)\nEOF', script, re.S)
        write(self.root, banner.group(1), banner.group(2).lstrip('\t').encode() + b'\n')
        self.disable('getty@tty1.service')
        self.enable('userconfig.service')

    # --- cloud-init (Debian's package on Trixie, Ubuntu's) ---

    def cloud_init(self, default_user):
        write(self.root, 'usr/bin/cloud-init', b'#!/usr/bin/python3\n# cloud-init\n', 0o755)
        write(self.root, 'etc/cloud/cloud.cfg', CLOUD_CFG % default_user)
        os.makedirs(os.path.join(self.root, 'etc/cloud/cloud.cfg.d'), 0o755, exist_ok=True)
        os.makedirs(os.path.join(self.root, 'var/lib/cloud'), 0o755, exist_ok=True)

    # --- Ubuntu 24.04 for Raspberry Pi: written from what Ubuntu's image has ---

    def ubuntu(self):
        root = self.root
        write(root, 'etc/hostname', b'ubuntu\n')
        write(root, 'etc/machine-id', b'')
        write(root, 'etc/fstab', UBUNTU_FSTAB)
        os.makedirs(os.path.join(root, 'boot/firmware'), 0o755)
        # openssh-server on noble: started by ssh.socket, ssh.service itself not enabled; no host keys.
        self.disable('ssh.service')
        write(root, '%s/ssh.socket' % self.units, UBUNTU_SSH_SOCKET)
        self.enable('ssh.socket')
        for name in os.listdir(os.path.join(root, 'etc/ssh')):
            if name.startswith('ssh_host_'):
                os.unlink(os.path.join(root, 'etc/ssh', name))
        self.cloud_init(b'ubuntu')
        write(root, 'etc/cloud/cloud.cfg.d/99-fake_cloud.cfg', UBUNTU_FAKE_CLOUD)
        write(self.boot, 'cmdline.txt', b'console=serial0,115200 dwc_otg.lpm_enable=0 console=tty1 root=LABEL=writable rootfstype=ext4 '
                                        b'rootwait fixrtc quiet splash\n')
        write(self.boot, 'config.txt', b'[all]\nkernel=vmlinuz\ninitramfs initrd.img followkernel\n')
        write(self.boot, 'user-data', UBUNTU_USER_DATA)
        write(self.boot, 'meta-data', UBUNTU_META_DATA)
        write(self.boot, 'network-config', UBUNTU_NETWORK_CONFIG)


def build(top, family):
    """The unpacked image of ``family`` in ``top`` (root/ and boot/)."""
    if os.path.exists(str(top)):
        shutil.rmtree(str(top))
    return Image(top, family)
