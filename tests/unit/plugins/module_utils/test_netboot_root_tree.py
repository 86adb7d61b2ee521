# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""netboot_root's back end without a module: the text edits, the tree that is never left, and the
atomic write. The tests run as root, so owners are checked as uid 0."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat
import subprocess

import pytest
import yaml

from ansible_collections.turingpi.cluster.plugins.module_utils import _netboot_root as netboot
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils import realworld_root

FSTAB = (b'proc /proc proc defaults 0 0\n'
         b'PARTUUID=4e639091-01 /boot/firmware vfat defaults 0 2\n'
         b'/dev/mmcblk0p2 / ext4 defaults,noatime 0 1\n')


# fstab: the eMMC's and SD card's lines go by what they mount, however the device is spelled.

PROC = b'proc            /proc           proc    defaults          0       0\n'


@pytest.mark.parametrize('before, after', [
    (FSTAB, b'proc /proc proc defaults 0 0\n'),
    # pi-gen's (Bookworm, Trixie: /boot/firmware; Bullseye: /boot), Ubuntu's, and other spellings.
    (PROC + b'PARTUUID=4e639091-01  /boot/firmware  vfat    defaults          0       2\n'
            b'PARTUUID=4e639091-02  /               ext4    defaults,noatime  0       1\n', PROC),
    (PROC + b'PARTUUID=738a4d67-01  /boot           vfat    defaults          0       2\n', PROC),
    (b'LABEL=writable\t/\text4\tdiscard,errors=remount-ro\t0\t1\nLABEL=system-boot /boot/firmware vfat defaults 0 1\n', b''),
    (b'UUID=0f3e-1a2b /boot/firmware/ vfat defaults 0 2\nuuid=1c6f9a3e-2d4b / ext4 defaults 0 1\n', b''),
    (b'PARTLABEL=root / ext4 defaults 0 1\n/dev/sda1 /boot vfat defaults 0 2\n/dev/root / ext4 defaults 0 1\n', b''),
    (b'/dev/mmcblk0p1\t/boot vfat defaults 0 2\r\ntmpfs /tmp tmpfs defaults 0 0', b'tmpfs /tmp tmpfs defaults 0 0'),
    # Any partition of the eMMC or SD card, and the image's other partitions (same disk id).
    (b'/dev/mmcblk0p3 /data ext4 defaults 0 2\nPARTUUID=4e639091-03 /srv ext4 defaults,nofail 0 2\n'
     b'PARTUUID=4e639091-02 / ext4 defaults 0 1\n', b''),
    # What the network-boot node still has: proc, tmpfs, NFS, a USB disk, swap files, comments.
    (b'UUID=6d2e /data ext4 defaults,nofail 0 2\nPARTUUID=9a9a9a9a-01 /mnt/usb vfat defaults,nofail 0 0\n',
     b'UUID=6d2e /data ext4 defaults,nofail 0 2\nPARTUUID=9a9a9a9a-01 /mnt/usb vfat defaults,nofail 0 0\n'),
    (b'10.77.0.1:/srv/netboot/nfs/node2 / nfs defaults 0 0\n/dev/nfs / nfs defaults 0 0\n/var/swap none swap sw 0 0\n',
     b'10.77.0.1:/srv/netboot/nfs/node2 / nfs defaults 0 0\n/dev/nfs / nfs defaults 0 0\n/var/swap none swap sw 0 0\n'),
    (b'/dev/sda1 /mnt ext4 defaults 0 0\n# PARTUUID=1 / ext4\n', b'/dev/sda1 /mnt ext4 defaults 0 0\n# PARTUUID=1 / ext4\n'),
    (b'overlay / overlay defaults 0 0\ntmpfs /boot tmpfs defaults 0 0\n', b'overlay / overlay defaults 0 0\ntmpfs /boot tmpfs defaults 0 0\n'),
    (b'  UUID=abc /\n', b''),
    (b'UUID=abc\n', b'UUID=abc\n'),
    (b'', b''),
])
def test_fstab_lines(before, after):
    assert netboot.fstab_without_local_disks(before) == after


@pytest.mark.parametrize('cmdline, params, after', [
    ('root=/dev/nfs rw', ('cgroup_memory=1', 'cgroup_enable=memory'), 'root=/dev/nfs rw cgroup_memory=1 cgroup_enable=memory'),
    ('root=/dev/nfs  cgroup_enable=memory rw', ('cgroup_memory=1', 'cgroup_enable=memory'),
     'root=/dev/nfs  cgroup_enable=memory rw cgroup_memory=1'),
    ('root=/dev/nfs cgroup_memory=1 cgroup_enable=memory', ('cgroup_memory=1', 'cgroup_enable=memory'),
     'root=/dev/nfs cgroup_memory=1 cgroup_enable=memory'),
    # Another value is another parameter: the kernel takes the last one.
    ('root=/dev/nfs cgroup_memory=0', ('cgroup_memory=1',), 'root=/dev/nfs cgroup_memory=0 cgroup_memory=1'),
    ('root=/dev/nfs', (), 'root=/dev/nfs'),
])
def test_cmdline_params(cmdline, params, after):
    assert netboot.cmdline_with_params(cmdline, params) == after


@pytest.mark.parametrize('before, after', [
    (None, b'127.0.1.1\tnode2\n'),
    (b'', b'127.0.1.1\tnode2\n'),
    (b'127.0.0.1 localhost', b'127.0.0.1 localhost\n127.0.1.1\tnode2\n'),
    (b'127.0.0.1 localhost\n', b'127.0.0.1 localhost\n127.0.1.1\tnode2\n'),
    # The last matching line is replaced, the others are left (as lineinfile does).
    (b'127.0.1.1 a\n127.0.0.1 localhost\n127.0.1.1 b\n::1 localhost\n', b'127.0.1.1 a\n127.0.0.1 localhost\n127.0.1.1\tnode2\n::1 localhost\n'),
    (b'127.0.1.1\tnode2', b'127.0.1.1\tnode2\n'),
    (b'127.0.1.10 other\n', b'127.0.1.10 other\n127.0.1.1\tnode2\n'),
])
def test_hosts_lines(before, after):
    assert netboot.hosts_with_line(before, 'node2') == after


# The tree: every path is resolved through its links and must stay inside.

def test_a_path_inside_the_tree_resolves(tmp_path):
    (tmp_path / 'root' / 'etc').mkdir(parents=True)
    os.symlink('etc', str(tmp_path / 'root' / 'config'))
    tree = netboot.Tree(str(tmp_path / 'root'), '/srv/netboot/nfs/node2')
    assert tree.resolve('config/hosts') == os.path.realpath(str(tmp_path / 'root' / 'etc' / 'hosts'))
    assert tree.show('etc/hosts') == '/srv/netboot/nfs/node2/etc/hosts'
    assert tree.has_dir('etc') and not tree.has_dir('usr')


def test_a_link_out_of_the_tree_is_refused_with_the_shown_name(tmp_path):
    (tmp_path / 'root' / 'etc').mkdir(parents=True)
    (tmp_path / 'root-other').mkdir()
    # A sibling whose name starts like the tree's is outside it too.
    os.symlink(str(tmp_path / 'root-other'), str(tmp_path / 'root' / 'etc' / 'ssh'))
    tree = netboot.Tree(str(tmp_path / 'root'), '/srv/netboot/nfs/node2')
    with pytest.raises(netboot.NetbootRootError) as exc:
        tree.resolve('etc/ssh/ssh_host_ed25519_key')
    assert exc.value.msg.startswith('/srv/netboot/nfs/node2/etc/ssh/ssh_host_ed25519_key leads out of /srv/netboot/nfs/node2 '
                                    'through a symbolic link (to %s' % os.path.realpath(str(tmp_path / 'root-other')))
    assert exc.value.details == {}


# The atomic write: the new content with its owner and mode, or the old file and no leftover.

def test_write_atomic_replaces_the_file(tmp_path):
    target = tmp_path / 'hostname'
    target.write_bytes(b'old\n')
    os.chmod(str(target), 0o600)
    netboot.write_atomic(str(target), b'node2\n', 0o644, 0, 0)
    st = os.stat(str(target))
    assert target.read_bytes() == b'node2\n'
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o644, 0, 0)
    assert os.listdir(str(tmp_path)) == ['hostname']


def test_write_atomic_that_fails_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / 'hostname'
    target.write_bytes(b'old\n')

    def no_rename(src, dst):
        raise OSError(28, 'No space left on device')

    monkeypatch.setattr(netboot.os, 'rename', no_rename)
    with pytest.raises(OSError):
        netboot.write_atomic(str(target), b'node2\n', 0o644, 0, 0)
    monkeypatch.undo()
    assert target.read_bytes() == b'old\n'
    assert os.listdir(str(tmp_path)) == ['hostname']


# The chroot-like lookup: how the node would find a file, never leaving the tree.

def test_lookup_takes_absolute_links_from_the_top_of_the_tree(tmp_path):
    root = tmp_path / 'root'
    (root / 'usr' / 'lib' / 'systemd' / 'system').mkdir(parents=True)
    (root / 'usr' / 'lib' / 'systemd' / 'system' / 'ssh.service').write_bytes(b'[Unit]\n')
    os.symlink('usr/lib', str(root / 'lib'))
    (root / 'etc').mkdir()
    os.symlink('/lib/systemd/system/ssh.service', str(root / 'etc' / 'ssh.service'))
    os.symlink('../../..', str(root / 'etc' / 'up'))
    os.symlink('loop', str(root / 'etc' / 'loop'))
    tree = netboot.Tree(str(root), '/srv/netboot/nfs/node2')
    unit = os.path.realpath(str(root / 'usr' / 'lib' / 'systemd' / 'system' / 'ssh.service'))
    assert tree.lookup('etc/ssh.service') == unit
    assert tree.read('lib/systemd/system/ssh.service') == b'[Unit]\n'
    assert tree.lookup('etc/up/etc') == os.path.join(tree.real, 'etc')
    assert tree.lookup('etc/loop') is None and tree.read('etc/loop') is None
    # The link itself is what the module changes: its directory is resolved, the link is not followed.
    assert tree.leaf('etc/ssh.service') == os.path.join(tree.real, 'etc', 'ssh.service')


# systemd units, keys, users, the firmware partition, the cloud-init seed.

def test_unit_install_section():
    text = b'[Unit]\nWantedBy=not-this.target\n[Install]\n# a comment\nWantedBy=multi-user.target\nWantedBy=graphical.target b.target\nAlias=sshd.service\n'
    assert netboot.unit_install(text) == {'WantedBy': ['multi-user.target', 'graphical.target', 'b.target'], 'Alias': ['sshd.service']}
    assert netboot.unit_install(realworld_root.GETTY_SERVICE) == {'WantedBy': ['getty.target'], 'DefaultInstance': ['tty1']}


@pytest.mark.parametrize('key_type', ['ed25519', 'ecdsa', 'rsa'])
def test_fingerprint_is_ssh_keygens(tmp_path, key_type):
    key = str(tmp_path / 'key')
    subprocess.check_call(['ssh-keygen', '-q', '-t', key_type, '-N', '', '-C', 'root@node2', '-f', key])
    with open(key + '.pub') as f:
        line = f.read().strip()
    assert netboot.fingerprint(line) == subprocess.check_output(['ssh-keygen', '-l', '-f', key + '.pub']).decode().split()[1]


@pytest.mark.parametrize('default, fwloc', [
    (None, '/boot'),
    (b'#FWLOC=\n', '/boot'),
    (b'#FWLOC=\nFWLOC=/boot/firmware\n', '/boot/firmware'),
    (b'FWLOC="/boot/firmware/"\n', '/boot/firmware'),
    (b"export FWLOC='/boot'\nFWLOC=\n", '/boot'),
])
def test_fwloc(default, fwloc):
    assert netboot.fwloc_of(default) == fwloc


def test_fwloc_of_the_real_default_file():
    # The package's file leaves FWLOC unset: get_fw_loc finds nothing on an NFS root, userconf-service takes /boot.
    with open(os.path.join(realworld_root.realworld_dir(), 'raspberrypi-sys-mods/debian/raspberrypi-sys-mods.default'), 'rb') as f:
        assert netboot.fwloc_of(f.read()) == '/boot'


@pytest.mark.parametrize('name, ok', [('pi', True), ('a', True), ('node-admin-2', True), ('a' * 32, True), ('a' * 33, False),
                                      ('', False), ('root', False), ('Pi', False), ('2pi', False), ('-pi', False), ('pi_1', False),
                                      ('pi.x', False), ('pi\n', False)])
def test_user_names_follow_userconf_pi(name, ok):
    assert (netboot.user_problem(name) is None) == ok


def test_passwd_entries():
    data = b'root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\nbroken:x\n\n'
    assert netboot.passwd_entries(data) == [dict(name='root', uid=0, gid=0, home='/root'),
                                            dict(name='pi', uid=1000, gid=1000, home='/home/pi')]


def test_user_data_is_the_yaml_it_means():
    key = 'ssh-ed25519 AAAA "quoted" \\ comment: with # and \u00e9'
    data = netboot.cloud_user_data('node2', ['ed25519'], 'admin', '$6$s$h', [key])
    assert data.startswith(b'#cloud-config\n')
    assert yaml.safe_load(data)['users'] == [dict(name='admin', groups=['adm', 'sudo'], shell='/bin/bash', sudo='ALL=(ALL) NOPASSWD:ALL',
                                                  lock_passwd=False, hashed_passwd='$6$s$h', ssh_authorized_keys=[key])]
    keys_only = yaml.safe_load(netboot.cloud_user_data('node2', ['ed25519'], 'admin', None, [key]))['users'][0]
    assert keys_only['lock_passwd'] is True and 'hashed_passwd' not in keys_only
    assert yaml.safe_load(netboot.cloud_user_data('node2', ['rsa'], None))['users'] == []


def test_instance_id_round_trip():
    meta = netboot.cloud_meta_data('node2', 'node2-0123456789ab')
    assert yaml.safe_load(meta)['instance-id'] == 'node2-0123456789ab'
    assert netboot.instance_id_of(meta) == 'node2-0123456789ab'
    assert netboot.instance_id_of(b'instance_id: rpios-image\n') is None
    assert netboot.instance_id_of(None) is None
    new = netboot.new_instance_id('node2')
    assert new.startswith('node2-') and len(new) == 18 and new != netboot.new_instance_id('node2')
