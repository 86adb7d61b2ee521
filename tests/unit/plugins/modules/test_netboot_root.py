# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.netboot_root through main(), on a small fake image in tmp_path, with the real
rsync and ssh-keygen. The tests run as root, so owners are checked as uid 0."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import stat

import pytest

from ansible_collections.turingpi.cluster.plugins.modules import netboot_root

FSTAB = (b'proc /proc proc defaults 0 0\n'
         b'PARTUUID=4e639091-01 /boot/firmware vfat defaults 0 2\n'
         b'/dev/mmcblk0p2 / ext4 defaults,noatime 0 1\n')
HOSTS = b'127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\n127.0.1.1\traspberrypi\n'
KEYS = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0example0key0one admin@workstation',
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0example0key0two ci@runner']
CMDLINE = 'console=serial0,115200 root=/dev/nfs nfsroot=10.77.0.1:/srv/netboot/nfs/node2,vers=3 rw ip=dhcp rootwait'


def digest_of(text):
    return hashlib.sha256(text.encode()).hexdigest()


DIGEST = digest_of('image one')


class Lab(object):
    """A fake unpacked image and the places a node's files go."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.image = tmp_path / 'image'
        etc = self.image / 'root' / 'etc'
        (etc / 'ssh').mkdir(parents=True)
        (etc / 'fstab').write_bytes(FSTAB)
        (etc / 'hosts').write_bytes(HOSTS)
        (etc / 'hostname').write_bytes(b'raspberrypi\n')
        (etc / 'ssh' / 'sshd_config').write_bytes(b'PermitRootLogin prohibit-password\n')
        (self.image / 'root' / 'usr' / 'bin').mkdir(parents=True)
        (self.image / 'root' / 'usr' / 'bin' / 'tool').write_bytes(b'#!/bin/sh\n')
        boot = self.image / 'boot'
        boot.mkdir()
        (boot / 'start.elf').write_bytes(b'\x7fELF start')
        (boot / 'bootcode.bin').write_bytes(b'bootcode')
        (boot / 'cmdline.txt').write_bytes(b'console=tty1 root=PARTUUID=4e639091-02 rootwait\n')
        self.root = tmp_path / 'nfs' / 'node2'
        self.boot = tmp_path / 'tftp' / '1a2b3c4d'

    def args(self, **kw):
        a = dict(path=str(self.root), boot_path=str(self.boot), image_dir=str(self.image), image_digest=DIGEST,
                 hostname='node2', cmdline=CMDLINE, ssh_key_types=['ed25519'], authorized_keys=list(KEYS))
        a.update(kw)
        return a


@pytest.fixture
def lab(tmp_path):
    return Lab(tmp_path)


def mode_of(path):
    st = os.stat(str(path))
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def snapshot(top):
    """Every path under top with its type, mode and content (files) or target (links)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(str(top)):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            if stat.S_ISLNK(st.st_mode):
                out[p] = ('link', os.readlink(p))
            elif stat.S_ISDIR(st.st_mode):
                out[p] = ('dir', st.st_mode)
            else:
                with open(p, 'rb') as f:
                    out[p] = ('file', st.st_mode, f.read())
    return out


def test_first_run_copies_and_gives_identity(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(ssh_key_types=['ed25519', 'ecdsa', 'rsa']))
    assert rc == 0, result
    assert result['changed'] and result['copied']
    assert result['path'] == str(lab.root) and result['boot_path'] == str(lab.boot)
    assert result['changes'] == ['copied image %s' % DIGEST[:12], 'cmdline.txt', '/etc/fstab', '/etc/hostname', '/etc/hosts',
                                 'ssh host key ed25519', 'ssh host key ecdsa', 'ssh host key rsa',
                                 '/root/.ssh', '/root/.ssh/authorized_keys']
    assert 'diff' not in result

    # The copy: root and boot files, and the digest file.
    assert (lab.root / 'usr' / 'bin' / 'tool').read_bytes() == b'#!/bin/sh\n'
    assert (lab.root / 'etc' / 'ssh' / 'sshd_config').is_file()
    assert (lab.root / '.turingpi-netboot-image').read_text() == DIGEST + '\n'
    assert mode_of(lab.root / '.turingpi-netboot-image') == (0o644, 0, 0)
    assert (lab.boot / 'start.elf').read_bytes() == b'\x7fELF start'
    assert (lab.boot / 'bootcode.bin').read_bytes() == b'bootcode'
    assert mode_of(lab.boot) == (0o755, 0, 0)
    assert mode_of(lab.boot / 'start.elf')[0] == 0o644

    # The identity.
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + '\n'
    assert mode_of(lab.boot / 'cmdline.txt') == (0o644, 0, 0)
    assert (lab.root / 'etc' / 'fstab').read_bytes() == b'proc /proc proc defaults 0 0\n'
    assert (lab.root / 'etc' / 'hostname').read_text() == 'node2\n'
    assert mode_of(lab.root / 'etc' / 'hostname') == (0o644, 0, 0)
    assert (lab.root / 'etc' / 'hosts').read_bytes() == HOSTS.replace(b'127.0.1.1\traspberrypi', b'127.0.1.1\tnode2')
    assert b'127.0.1.1\tnode2\n' in (lab.root / 'etc' / 'hosts').read_bytes()
    assert mode_of(lab.root / 'etc' / 'hosts') == (0o644, 0, 0)
    assert mode_of(lab.root / 'etc' / 'ssh') == (0o755, 0, 0)
    for key_type in ('ed25519', 'ecdsa', 'rsa'):
        key = lab.root / 'etc' / 'ssh' / ('ssh_host_%s_key' % key_type)
        assert key.is_file()
        pub = (lab.root / 'etc' / 'ssh' / ('ssh_host_%s_key.pub' % key_type)).read_text().split()
        assert pub[-1] == 'root@node2'
    assert mode_of(lab.root / 'root' / '.ssh') == (0o700, 0, 0)
    assert (lab.root / 'root' / '.ssh' / 'authorized_keys').read_text() == '\n'.join(KEYS) + '\n'
    assert mode_of(lab.root / 'root' / '.ssh' / 'authorized_keys') == (0o600, 0, 0)
    # No temporary file left behind.
    assert not [n for n in os.listdir(str(lab.root / 'etc')) if n.endswith('.tmp')]


def test_second_run_changes_nothing(lab, run_module):
    args = lab.args(ssh_key_types=['ed25519', 'ecdsa'])
    assert run_module(netboot_root, args)[1]['changed']
    before = snapshot(lab.tmp / 'nfs')
    before.update(snapshot(lab.tmp / 'tftp'))
    rc, result = run_module(netboot_root, args, diff=True)
    assert rc == 0, result
    assert not result['changed'] and not result['copied']
    assert result['changes'] == [] and result['diff'] == []
    after = snapshot(lab.tmp / 'nfs')
    after.update(snapshot(lab.tmp / 'tftp'))
    assert after == before


def test_existing_host_keys_are_kept(lab, run_module):
    run_module(netboot_root, lab.args())
    key = lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key'
    kept = key.read_bytes(), (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key.pub').read_bytes()
    rc, result = run_module(netboot_root, lab.args(hostname='node9'))
    assert rc == 0, result
    assert 'ssh host key ed25519' not in result['changes']
    assert (key.read_bytes(), (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key.pub').read_bytes()) == kept


def test_a_new_image_is_copied_again(lab, run_module):
    run_module(netboot_root, lab.args())
    (lab.image / 'root' / 'usr' / 'bin' / 'tool').unlink()
    (lab.image / 'root' / 'usr' / 'bin' / 'newtool').write_bytes(b'new\n')
    (lab.image / 'boot' / 'fixup.dat').write_bytes(b'fixup')
    new = digest_of('image two')
    rc, result = run_module(netboot_root, lab.args(image_digest=new))
    assert rc == 0, result
    assert result['changed'] and result['copied']
    assert result['changes'][0] == 'copied image %s' % new[:12]
    assert (lab.root / 'usr' / 'bin' / 'newtool').read_bytes() == b'new\n'
    assert not (lab.root / 'usr' / 'bin' / 'tool').exists()
    assert (lab.boot / 'fixup.dat').read_bytes() == b'fixup'
    assert (lab.root / '.turingpi-netboot-image').read_text() == new + '\n'
    # The copy brought the image's files back: the identity is given again.
    assert (lab.root / 'etc' / 'hostname').read_text() == 'node2\n'
    assert (lab.root / 'etc' / 'fstab').read_bytes() == b'proc /proc proc defaults 0 0\n'
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + '\n'
    assert run_module(netboot_root, lab.args(image_digest=new))[1]['changed'] is False


def test_same_size_and_time_with_other_content_is_copied(lab, run_module):
    run_module(netboot_root, lab.args())
    tool = lab.image / 'root' / 'usr' / 'bin' / 'tool'
    st = os.stat(str(tool))
    tool.write_bytes(b'#!/bin/XX\n')
    os.utime(str(tool), (st.st_atime, st.st_mtime))
    run_module(netboot_root, lab.args(image_digest=digest_of('image two')))
    assert (lab.root / 'usr' / 'bin' / 'tool').read_bytes() == b'#!/bin/XX\n'


def test_fresh_removes_everything_else(lab, run_module):
    run_module(netboot_root, lab.args())
    (lab.root / 'stray').write_bytes(b'left over\n')
    (lab.boot / 'stray.bin').write_bytes(b'left over\n')
    key = (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key').read_bytes()
    rc, result = run_module(netboot_root, lab.args(fresh=True))
    assert rc == 0, result
    assert result['changed'] and result['copied']
    assert result['changes'][:3] == ['removed %s' % lab.root, 'removed %s' % lab.boot, 'copied image %s' % DIGEST[:12]]
    assert not (lab.root / 'stray').exists() and not (lab.boot / 'stray.bin').exists()
    assert (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key').read_bytes() != key
    assert (lab.root / 'etc' / 'hostname').read_text() == 'node2\n'
    assert (lab.root / '.turingpi-netboot-image').read_text() == DIGEST + '\n'


def test_check_mode_on_a_fresh_target_changes_nothing(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(), check_mode=True, diff=True)
    assert rc == 0, result
    assert result['changed'] and result['copied']
    # Predicted from the image: what the node's root would hold after the copy.
    assert result['changes'] == ['copied image %s' % DIGEST[:12], 'cmdline.txt', '/etc/fstab', '/etc/hostname', '/etc/hosts',
                                 'ssh host key ed25519', '/root/.ssh', '/root/.ssh/authorized_keys']
    copy = result['diff'][0]
    assert copy['before_header'] == '%s (image none)' % lab.root and copy['after_header'] == '%s (image %s)' % (lab.root, DIGEST)
    hostname = [d for d in result['diff'] if d['before_header'] == str(lab.root / 'etc' / 'hostname')]
    assert hostname == [dict(before_header=str(lab.root / 'etc' / 'hostname'), after_header=str(lab.root / 'etc' / 'hostname'),
                             before='raspberrypi\n', after='node2\n')]
    assert not (lab.tmp / 'nfs').exists() and not (lab.tmp / 'tftp').exists()


def test_check_mode_with_a_new_image_leaves_the_old_root(lab, run_module):
    run_module(netboot_root, lab.args())
    before = snapshot(lab.tmp / 'nfs')
    before.update(snapshot(lab.tmp / 'tftp'))
    rc, result = run_module(netboot_root, lab.args(image_digest=digest_of('image two'), fresh=True), check_mode=True)
    assert rc == 0, result
    assert result['changed'] and result['copied']
    assert 'ssh host key ed25519' in result['changes'] and '/etc/hostname' in result['changes']
    after = snapshot(lab.tmp / 'nfs')
    after.update(snapshot(lab.tmp / 'tftp'))
    assert after == before


def test_check_mode_when_up_to_date(lab, run_module):
    run_module(netboot_root, lab.args())
    rc, result = run_module(netboot_root, lab.args(), check_mode=True)
    assert rc == 0 and not result['changed'] and result['changes'] == [] and not result['copied']


def test_diff_when_the_hostname_changes(lab, run_module):
    run_module(netboot_root, lab.args())
    rc, result = run_module(netboot_root, lab.args(hostname='node9'), diff=True)
    assert rc == 0, result
    assert result['changed'] and not result['copied']
    assert result['changes'] == ['/etc/hostname', '/etc/hosts']
    header = str(lab.root / 'etc' / 'hostname')
    assert dict(before_header=header, after_header=header, before='node2\n', after='node9\n') in result['diff']
    hosts = [d for d in result['diff'] if d['before_header'] == str(lab.root / 'etc' / 'hosts')][0]
    assert '127.0.1.1\tnode2\n' in hosts['before'] and '127.0.1.1\tnode9\n' in hosts['after']
    assert (lab.root / 'etc' / 'hostname').read_text() == 'node9\n'


def test_wrong_mode_and_owner_are_fixed(lab, run_module):
    run_module(netboot_root, lab.args())
    hostname = lab.root / 'etc' / 'hostname'
    os.chmod(str(hostname), 0o600)
    os.chown(str(lab.root / 'root' / '.ssh' / 'authorized_keys'), 1000, 1000)
    os.chmod(str(lab.root / 'root' / '.ssh'), 0o755)
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert result['changed']
    assert result['changes'] == ['/etc/hostname', '/root/.ssh', '/root/.ssh/authorized_keys']
    assert mode_of(hostname) == (0o644, 0, 0) and hostname.read_text() == 'node2\n'
    assert mode_of(lab.root / 'root' / '.ssh') == (0o700, 0, 0)
    assert mode_of(lab.root / 'root' / '.ssh' / 'authorized_keys') == (0o600, 0, 0)


def test_changed_cmdline_and_keys(lab, run_module):
    run_module(netboot_root, lab.args())
    rc, result = run_module(netboot_root, lab.args(cmdline=CMDLINE + ' quiet', authorized_keys=KEYS[:1]), diff=True)
    assert rc == 0, result
    assert result['changes'] == ['cmdline.txt', '/root/.ssh/authorized_keys']
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + ' quiet\n'
    assert (lab.root / 'root' / '.ssh' / 'authorized_keys').read_text() == KEYS[0] + '\n'
    assert len(result['diff']) == 2


def test_no_authorized_keys_leaves_root_ssh_alone(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(authorized_keys=[]))
    assert rc == 0, result
    assert not (lab.root / 'root').exists()
    assert '/root/.ssh' not in result['changes']


def test_a_symlink_out_of_the_root_fails(lab, run_module):
    run_module(netboot_root, lab.args())
    outside = lab.tmp / 'outside-hosts'
    outside.write_bytes(b'127.0.0.1 localhost\n127.0.1.1 master\n')
    hosts = lab.root / 'etc' / 'hosts'
    hosts.unlink()
    os.symlink(str(outside), str(hosts))
    rc, result = run_module(netboot_root, lab.args(hostname='node9'))
    assert rc == 1 and result['failed']
    assert 'leads out of %s' % lab.root in result['msg'] and str(outside) in result['msg']
    assert outside.read_bytes() == b'127.0.0.1 localhost\n127.0.1.1 master\n'
    # Also in check mode, where nothing would be written anyway.
    rc, result = run_module(netboot_root, lab.args(hostname='node9'), check_mode=True)
    assert rc == 1 and 'leads out of' in result['msg']


def test_a_directory_symlink_out_of_the_root_fails(lab, run_module):
    run_module(netboot_root, lab.args(authorized_keys=[]))
    outside = lab.tmp / 'outside-root'
    outside.mkdir()
    os.symlink(str(outside), str(lab.root / 'root'))
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and 'leads out of' in result['msg']
    assert os.listdir(str(outside)) == []


def test_a_symlink_in_the_image_fails_the_first_run(lab, run_module):
    outside = lab.tmp / 'master-hostname'
    outside.write_bytes(b'master\n')
    (lab.image / 'root' / 'etc' / 'hostname').unlink()
    os.symlink(str(outside), str(lab.image / 'root' / 'etc' / 'hostname'))
    rc, result = run_module(netboot_root, lab.args(), check_mode=True)
    assert rc == 1 and 'leads out of' in result['msg']
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and 'leads out of' in result['msg']
    assert outside.read_bytes() == b'master\n'


@pytest.mark.parametrize('bad, message', [
    (dict(image_digest='ABCDEF' * 10 + 'ABCD'), 'image_digest must be'),
    (dict(image_digest='abc'), 'image_digest must be'),
    (dict(hostname='-node2'), 'is not a host name'),
    (dict(hostname='node_2'), 'is not a host name'),
    (dict(cmdline='console=tty1\nroot=/dev/nfs'), 'cmdline must be one line'),
    (dict(digest_file='../escape'), 'digest_file must be a file name'),
    (dict(path='relative/node2'), 'path must be an absolute path'),
])
def test_bad_arguments_fail_and_create_nothing(lab, run_module, bad, message):
    rc, result = run_module(netboot_root, lab.args(**bad))
    assert rc == 1 and result['failed']
    assert message in result['msg']
    assert not (lab.tmp / 'nfs').exists() and not (lab.tmp / 'tftp').exists()


def test_overlapping_directories_fail(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(boot_path=str(lab.root / 'boot')))
    assert rc == 1 and 'overlap' in result['msg']
    assert not (lab.tmp / 'nfs').exists()


def test_bad_key_type_fails(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(ssh_key_types=['dsa']))
    assert rc == 1 and 'ssh_key_types' in result['msg']


@pytest.mark.parametrize('missing', ['image', 'image/boot'])
def test_missing_image_fails_and_creates_nothing(lab, run_module, missing):
    import shutil
    shutil.rmtree(str(lab.tmp / missing))
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and result['failed']
    assert "run the netboot role's main entry point first" in result['msg']
    assert not (lab.tmp / 'nfs').exists() and not (lab.tmp / 'tftp').exists()


def failing(tmp_path, monkeypatch, name, script):
    """A command of that name, first in PATH, that fails."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir(exist_ok=True)
    fake = bin_dir / name
    fake.write_text('#!/bin/sh\n' + script)
    fake.chmod(0o755)
    monkeypatch.setenv('PATH', '%s:%s' % (bin_dir, os.environ['PATH']))


def test_a_failed_first_copy_is_done_again(lab, run_module, monkeypatch, tmp_path):
    # A node with an empty root is copied with cp -a.
    failing(tmp_path, monkeypatch, 'cp', 'echo "cp: error writing: No space left on device" >&2\nexit 1\n')
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and result['failed']
    assert 'cp from %s to %s failed (rc=1): cp: error writing' % (lab.image / 'root', lab.root) in result['msg']
    # No digest file: the next run copies again.
    assert not (lab.root / '.turingpi-netboot-image').exists()
    monkeypatch.undo()
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0 and result['copied'], result
    assert (lab.root / '.turingpi-netboot-image').read_text() == DIGEST + '\n'


def test_a_failed_update_is_done_again(lab, run_module, monkeypatch, tmp_path):
    # A node that holds an older image is brought up to date with rsync.
    assert run_module(netboot_root, lab.args(image_digest=digest_of('image zero')))[0] == 0
    failing(tmp_path, monkeypatch, 'rsync', 'echo "rsync: connection unexpectedly closed" >&2\nexit 23\n')
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and result['failed']
    assert 'rsync from %s to %s failed (rc=23): rsync: connection unexpectedly closed' % (lab.image / 'root', lab.root) in result['msg']
    # The digest file does not name the new image: the next run copies again.
    assert (lab.root / '.turingpi-netboot-image').read_text() != DIGEST + '\n'
    monkeypatch.undo()
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0 and result['copied'], result
    assert (lab.root / '.turingpi-netboot-image').read_text() == DIGEST + '\n'


def test_missing_boot_dir_of_an_up_to_date_root_fails(lab, run_module):
    import shutil
    run_module(netboot_root, lab.args())
    shutil.rmtree(str(lab.boot))
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and 'fresh=true' in result['msg']


def test_no_fstab_is_not_created(lab, run_module):
    (lab.image / 'root' / 'etc' / 'fstab').unlink()
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert '/etc/fstab' not in result['changes']
    assert not (lab.root / 'etc' / 'fstab').exists()


def test_an_image_without_etc_gets_no_identity(lab, run_module):
    import shutil
    shutil.rmtree(str(lab.image / 'root' / 'etc'))
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert result['changes'] == ['copied image %s' % DIGEST[:12]]
    assert not (lab.boot / 'cmdline.txt').read_text().startswith('console=serial0')


def test_fstab_keeps_its_mode(lab, run_module):
    os.chmod(str(lab.image / 'root' / 'etc' / 'fstab'), 0o640)
    run_module(netboot_root, lab.args())
    assert mode_of(lab.root / 'etc' / 'fstab')[0] == 0o640


# The text edits, line for line what the role's lineinfile tasks did.

@pytest.mark.parametrize('before, after', [
    (FSTAB, b'proc /proc proc defaults 0 0\n'),
    (b'  UUID=abc /data ext4 defaults 0 2\nUUID=x', b'UUID=x'),  # "\s" needs something after the device
    (b'UUID=abc\n', b''),  # ... and the newline counts
    (b'/dev/sda1 /mnt ext4 defaults 0 0\n# PARTUUID=1 / ext4\n', b'/dev/sda1 /mnt ext4 defaults 0 0\n# PARTUUID=1 / ext4\n'),
    (b'/dev/mmcblk0p1\t/boot vfat defaults 0 2\r\ntmpfs /tmp tmpfs defaults 0 0', b'tmpfs /tmp tmpfs defaults 0 0'),
    (b'', b''),
])
def test_fstab_lines(before, after):
    assert netboot_root.fstab_without_local_disks(before) == after


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
    assert netboot_root.hosts_with_line(before, 'node2') == after


def test_digest_defaults_to_the_unpacked_image_record(lab, run_module):
    # The netboot role records the digest and the image file it came from, one per line.
    (lab.image / '.turingpi-netboot-image').write_text(DIGEST + '\n/var/lib/images/os.img 1024 1.5 1.5 42\n')
    args = lab.args()
    del args['image_digest']
    code, result = run_module(netboot_root, args)
    assert code == 0 and result['copied'] is True
    assert (lab.root / '.turingpi-netboot-image').read_text() == DIGEST + '\n'
    code, result = run_module(netboot_root, args)
    assert code == 0 and result['changed'] is False


def test_no_digest_and_no_record_fails_and_creates_nothing(lab, run_module):
    args = lab.args()
    del args['image_digest']
    code, result = run_module(netboot_root, args)
    assert code == 1 and 'no unpacked image' in result['msg']
    assert not lab.root.exists() and not lab.boot.exists()


def test_check_mode_before_the_image_is_unpacked_reports_a_copy(lab, run_module):
    # In check mode the netboot role's unpack is only predicted: the node would be copied from it.
    args = lab.args()
    del args['image_digest']
    code, result = run_module(netboot_root, args, check_mode=True)
    assert code == 0 and result['changed'] is True and result['copied'] is True
    assert 'no unpacked image' in json.dumps(result['warnings'])
    assert result['changes'] == ['copied image (not unpacked yet)']
    assert not lab.root.exists() and not lab.boot.exists()
