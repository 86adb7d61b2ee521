# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""turingpi.cluster.netboot_root through main(), on a small fake image in tmp_path and on the images
of each OS family (realworld_root.py: the real first-boot code installed as the image has it), with
the real rsync and ssh-keygen. The tests run as root, so owners are checked as uid 0."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json
import os
import shutil
import stat
import subprocess

import pytest
import yaml

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import hostname_problem
from ansible_collections.turingpi.cluster.plugins.module_utils import _node_layer as layers
from ansible_collections.turingpi.cluster.plugins.modules import netboot_root
from ansible_collections.turingpi.cluster.tests.unit.plugins.module_utils import realworld_root

FSTAB = (b'proc /proc proc defaults 0 0\n'
         b'PARTUUID=4e639091-01 /boot/firmware vfat defaults 0 2\n'
         b'/dev/mmcblk0p2 / ext4 defaults,noatime 0 1\n')
HOSTS = b'127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n\n127.0.1.1\traspberrypi\n'
KEYS = ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0example0key0one admin@workstation',
        'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0example0key0two ci@runner']
CMDLINE = 'console=serial0,115200 root=/dev/nfs nfsroot=10.77.0.1:/srv/netboot/nfs/node2,vers=3 rw ip=dhcp rootwait'
# What the node's cmdline.txt gets: the cgroup flags Kubernetes needs are appended by default.
CGROUPS = ' cgroup_memory=1 cgroup_enable=memory'
ADMIN_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ0example0admin0key admin@workstation'
# openssl passwd -6 -salt turingpi 'not a real password'
HASH = '$6$turingpi$zzz0vnxkGERmTdeRAecL0WQ/9ZH874H4QssfXpfIFpfPsXhTLXPwh4p6neqdrAmsCkb.5wSl5wwdq4VgpkEv80'
SSH_LINKS = ['/etc/systemd/system/multi-user.target.wants', '/etc/systemd/system/multi-user.target.wants/ssh.service',
             '/etc/systemd/system/sshd.service']


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
        # openssh-server's unit, not enabled (a root without any first-boot mechanism).
        (self.image / 'root' / 'lib' / 'systemd' / 'system').mkdir(parents=True)
        (self.image / 'root' / 'lib' / 'systemd' / 'system' / 'ssh.service').write_bytes(realworld_root.DEBIAN_SSH_SERVICE)
        boot = self.image / 'boot'
        boot.mkdir()
        (boot / 'start.elf').write_bytes(b'\x7fELF start')
        (boot / 'bootcode.bin').write_bytes(b'bootcode')
        (boot / 'cmdline.txt').write_bytes(b'console=tty1 root=PARTUUID=4e639091-02 rootwait\n')
        self.root = tmp_path / 'nfs' / 'node2'
        self.layer = tmp_path / 'nfs' / '.layers' / 'node2'
        self.fstab = tmp_path / 'fstab'
        self.boot = tmp_path / 'tftp' / '1a2b3c4d'

    def args(self, **kw):
        a = dict(path=str(self.root), boot_path=str(self.boot), image_dir=str(self.image), image_digest=DIGEST,
                 layer_dir=str(self.layer), fstab=str(self.fstab),
                 hostname='node2', cmdline=CMDLINE, ssh_key_types=['ed25519'], authorized_keys=list(KEYS))
        a.update(kw)
        return a


def unmount_under(top):
    """Unmount every mount below ``top`` (the overlays the module made), innermost first."""
    top = os.path.realpath(str(top))
    with open('/proc/self/mountinfo') as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p.startswith(top + os.sep)), key=len, reverse=True):
        subprocess.check_call(['umount', point])


def overlay_of(path):
    """The options of the overlay mounted on ``path`` as /proc/self/mountinfo shows them, or None."""
    with open('/proc/self/mountinfo') as f:
        for line in f:
            fields = line.split()
            sep = fields.index('-')
            if fields[4] == str(path) and fields[sep + 1] == 'overlay':
                return fields[sep + 3].split(',')
    return None


@pytest.fixture
def lab(tmp_path):
    yield Lab(tmp_path)
    unmount_under(tmp_path)


def mode_of(path):
    st = os.stat(str(path))
    return stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid


def keygen_fingerprint(pub):
    """The fingerprint as ssh-keygen prints it: the second word of "256 SHA256:... comment (ED25519)"."""
    return subprocess.check_output(['ssh-keygen', '-l', '-f', str(pub)]).decode().split()[1]


def warned(result, msg):
    """``msg`` is the one warning of the result (a string, or an event as ansible-core 2.19 and later report it)."""
    warnings = result.get('warnings', [])
    return len(warnings) == 1 and json.dumps(msg)[1:-1] in json.dumps(warnings)


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
            elif not stat.S_ISREG(st.st_mode):
                # overlayfs' whiteouts and index entries: devices 0/0
                out[p] = ('special', st.st_mode, st.st_rdev)
            else:
                with open(p, 'rb') as f:
                    out[p] = ('file', st.st_mode, f.read())
    return out


def test_first_run_mounts_a_layer_and_gives_identity(lab, run_module):
    os.chmod(str(lab.image / 'boot' / 'start.elf'), 0o644)
    image_before = snapshot(lab.image)
    rc, result = run_module(netboot_root, lab.args(ssh_key_types=['ed25519', 'ecdsa', 'rsa']))
    assert rc == 0, result
    assert result['changed'] and result['new_layer']
    assert result['path'] == str(lab.root) and result['boot_path'] == str(lab.boot)
    assert result['changes'] == ['new layer %s on image %s' % (lab.layer, DIGEST[:12]), '%s: %s' % (lab.fstab, lab.root),
                                 'mounted %s on %s' % (lab.root, os.path.realpath(str(lab.image / 'root'))),
                                 'boot files %s from %s' % (lab.boot, lab.image), 'cmdline.txt', '/etc/fstab', '/etc/hostname', '/etc/hosts',
                                 'ssh host key ed25519', 'ssh host key ecdsa', 'ssh host key rsa',
                                 '/root/.ssh', '/root/.ssh/authorized_keys'] + SSH_LINKS
    assert 'diff' not in result
    assert result['first_boot'] == dict(mechanisms=[], user=None, instance_id=None)

    # The root: an overlay of the image copy and the node's layer, with its line in the fstab.
    lower = os.path.realpath(str(lab.image / 'root'))
    options = 'lowerdir=%s,upperdir=%s,workdir=%s,index=on,nfs_export=on' % (lower, lab.layer / 'upper', lab.layer / 'work')
    assert result['mount_options'] == options and result['fstab_changed'] is True
    mounted = overlay_of(lab.root)
    assert mounted is not None and all(o in mounted for o in options.split(',')), mounted
    assert lab.fstab.read_text() == 'overlay %s overlay %s,x-systemd.requires-mounts-for=%s,x-systemd.requires-mounts-for=%s 0 0\n' % (
        lab.root, options, os.path.realpath(str(lab.image)), lab.layer)
    assert (lab.layer / 'image').read_text() == '%s\n%s\n' % (DIGEST, lower)
    assert result['image_dir'] == str(lab.image) and result['image_pending'] is False and result['new_layer'] is True
    assert (lab.root / 'usr' / 'bin' / 'tool').read_bytes() == b'#!/bin/sh\n'
    assert (lab.root / 'etc' / 'ssh' / 'sshd_config').is_file()
    # The node's files are in its layer; the image copy is as it was.
    assert (lab.layer / 'upper' / 'etc' / 'hostname').read_text() == 'node2\n'
    assert not (lab.layer / 'upper' / 'usr').exists()
    assert snapshot(lab.image) == image_before
    assert 0 < result['layer_bytes'] < 1024 * 1024
    # Boot files: hard links to the copy's, but cmdline.txt is the node's own.
    assert (lab.boot / 'start.elf').read_bytes() == b'\x7fELF start'
    assert (lab.boot / 'bootcode.bin').read_bytes() == b'bootcode'
    assert os.stat(str(lab.boot / 'start.elf')).st_ino == os.stat(str(lab.image / 'boot' / 'start.elf')).st_ino
    assert os.stat(str(lab.boot / 'cmdline.txt')).st_ino != os.stat(str(lab.image / 'boot' / 'cmdline.txt')).st_ino
    assert (lab.image / 'boot' / 'cmdline.txt').read_bytes() == b'console=tty1 root=PARTUUID=4e639091-02 rootwait\n'
    assert mode_of(lab.boot) == (0o755, 0, 0)
    assert mode_of(lab.boot / 'start.elf')[0] == 0o644

    # The identity.
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + CGROUPS + '\n'
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
    # The keys the node serves, for known_hosts: the .pub lines and ssh-keygen's fingerprints.
    assert [k['type'] for k in result['host_keys']] == ['ed25519', 'ecdsa', 'rsa']
    for entry in result['host_keys']:
        pub = lab.root / 'etc' / 'ssh' / ('ssh_host_%s_key.pub' % entry['type'])
        assert entry['public_key'] == pub.read_text().strip()
        assert entry['fingerprint'] == keygen_fingerprint(pub)
    # SSH on, as systemctl enable ssh makes it.
    wants = lab.root / 'etc' / 'systemd' / 'system' / 'multi-user.target.wants' / 'ssh.service'
    assert os.readlink(str(wants)) == '/lib/systemd/system/ssh.service'
    assert os.readlink(str(lab.root / 'etc' / 'systemd' / 'system' / 'sshd.service')) == '/lib/systemd/system/ssh.service'
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
    assert not result['changed'] and not result['new_layer'] and not result['fstab_changed']
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


def test_a_new_image_waits_for_the_reset(lab, run_module):
    run_module(netboot_root, lab.args())
    (lab.root / 'var-log').write_bytes(b'the node ran\n')
    # The new image is unpacked into a copy of its own; the running node stays on its copy.
    image2 = lab.tmp / 'image2'
    shutil.copytree(str(lab.image), str(image2), symlinks=True)
    (image2 / 'root' / 'usr' / 'bin' / 'tool').unlink()
    (image2 / 'root' / 'usr' / 'bin' / 'newtool').write_bytes(b'new\n')
    (image2 / 'boot' / 'fixup.dat').write_bytes(b'fixup')
    new = digest_of('image two')
    rc, result = run_module(netboot_root, lab.args(image_dir=str(image2), image_digest=new))
    assert rc == 0, result
    assert result['image_pending'] is True and result['image_dir'] == str(lab.image) and not result['new_layer']
    assert not result['changed'], result['changes']
    assert warned(result, 'node2 runs image %s (%s); image %s is unpacked in %s: reset the node (playbooks/reprovision.yml) '
                          'to move it to the new image (its layer is dropped)' % (DIGEST[:12], lab.image, new[:12], image2))
    assert (lab.root / 'var-log').exists() and (lab.root / 'usr' / 'bin' / 'tool').exists()
    # The reset moves it: a new layer on the new copy.
    rc, result = run_module(netboot_root, lab.args(image_dir=str(image2), image_digest=new, fresh=True))
    assert rc == 0, result
    assert result['new_layer'] and result['image_pending'] is False and result['image_dir'] == str(image2)
    assert (lab.root / 'usr' / 'bin' / 'newtool').read_bytes() == b'new\n'
    assert not (lab.root / 'usr' / 'bin' / 'tool').exists() and not (lab.root / 'var-log').exists()
    assert (lab.boot / 'fixup.dat').read_bytes() == b'fixup'
    assert (lab.layer / 'image').read_text() == '%s\n%s\n' % (new, os.path.realpath(str(image2 / 'root')))
    assert 'lowerdir=%s' % os.path.realpath(str(image2 / 'root')) in overlay_of(lab.root)
    assert lab.fstab.read_text().count('\n') == 1 and str(image2) in lab.fstab.read_text()
    assert (lab.root / 'etc' / 'hostname').read_text() == 'node2\n'
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + CGROUPS + '\n'
    assert run_module(netboot_root, lab.args(image_dir=str(image2), image_digest=new))[1]['changed'] is False


def test_a_layer_whose_image_copy_is_gone_is_refused(lab, run_module):
    run_module(netboot_root, lab.args())
    unmount_under(lab.tmp)
    image2 = lab.tmp / 'image2'
    os.rename(str(lab.image), str(image2))
    before = snapshot(lab.layer)
    rc, result = run_module(netboot_root, lab.args(image_dir=str(image2), image_digest=digest_of('image two')))
    assert rc == 1 and 'which is gone: reset the node (fresh=true' in result['msg']
    assert snapshot(lab.layer) == before and overlay_of(lab.root) is None


def test_writes_in_the_root_stay_in_the_layer(lab, run_module):
    run_module(netboot_root, lab.args())
    image_before = snapshot(lab.image)
    (lab.root / 'usr' / 'bin' / 'tool').write_bytes(b'#!/bin/XX\n')
    (lab.root / 'usr' / 'bin' / 'installed').write_bytes(b'a package\n')
    os.unlink(str(lab.root / 'etc' / 'ssh' / 'sshd_config'))
    assert snapshot(lab.image) == image_before
    assert (lab.layer / 'upper' / 'usr' / 'bin' / 'tool').read_bytes() == b'#!/bin/XX\n'
    # The removal is a whiteout in the layer: a character device 0/0.
    st = os.lstat(str(lab.layer / 'upper' / 'etc' / 'ssh' / 'sshd_config'))
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    # A second node on the same copy sees none of it.
    node3 = lab.tmp / 'nfs' / 'node3'
    rc, result = run_module(netboot_root, lab.args(hostname='node3', path=str(node3), layer_dir=str(lab.tmp / 'nfs' / '.layers' / 'node3'),
                                                   boot_path=str(lab.tmp / 'tftp' / '5e6f7a8b')))
    assert rc == 0, result
    assert (node3 / 'usr' / 'bin' / 'tool').read_bytes() == b'#!/bin/sh\n'
    assert not (node3 / 'usr' / 'bin' / 'installed').exists() and (node3 / 'etc' / 'ssh' / 'sshd_config').exists()
    assert (node3 / 'etc' / 'hostname').read_text() == 'node3\n' and (lab.root / 'etc' / 'hostname').read_text() == 'node2\n'
    assert lab.fstab.read_text().count('\n') == 2


def test_fresh_drops_the_layer(lab, run_module):
    run_module(netboot_root, lab.args())
    (lab.root / 'stray').write_bytes(b'left over\n')
    (lab.boot / 'stray.bin').write_bytes(b'left over\n')
    key = (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key').read_bytes()
    rc, result = run_module(netboot_root, lab.args(fresh=True))
    assert rc == 0, result
    assert result['changed'] and result['new_layer']
    assert result['changes'][:5] == ['unmounted %s' % lab.root, 'new layer %s on image %s' % (lab.layer, DIGEST[:12]),
                                     'removed %s' % lab.boot, 'mounted %s on %s' % (lab.root, os.path.realpath(str(lab.image / 'root'))),
                                     'boot files %s from %s' % (lab.boot, lab.image)]
    assert not (lab.root / 'stray').exists() and not (lab.boot / 'stray.bin').exists()
    assert not (lab.layer / 'upper' / 'stray').exists()
    assert (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key').read_bytes() != key
    assert (lab.root / 'etc' / 'hostname').read_text() == 'node2\n'
    assert overlay_of(lab.root) is not None


def test_fresh_withdraws_and_restores_the_export(lab, run_module, monkeypatch, tmp_path):
    run_module(netboot_root, lab.args())
    # The NFS server's table of exports, and an exportfs that records what it is asked.
    etab = tmp_path / 'etab'
    etab.write_text('%s\t10.77.0.0/24(rw,sync,no_root_squash,fsid=1)\n/srv/other\t10.77.0.0/24(rw)\n' % lab.root)
    monkeypatch.setattr(layers, 'ETAB', str(etab))
    failing(tmp_path, monkeypatch, 'exportfs', 'echo "$@" >> %s\nexit 0\n' % (tmp_path / 'exportfs.log'))
    rc, result = run_module(netboot_root, lab.args(fresh=True))
    assert rc == 0, result
    assert (tmp_path / 'exportfs.log').read_text() == '-u 10.77.0.0/24:%s\n-r\n' % lab.root


def test_check_mode_on_a_fresh_target_changes_nothing(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(), check_mode=True, diff=True)
    assert rc == 0, result
    assert result['changed'] and result['new_layer']
    lower = os.path.realpath(str(lab.image / 'root'))
    # Predicted from the image: what the node's new layer would show.
    assert result['changes'] == ['new layer %s on image %s' % (lab.layer, DIGEST[:12]), '%s: %s' % (lab.fstab, lab.root),
                                 'mounted %s on %s' % (lab.root, lower), 'boot files %s from %s' % (lab.boot, lab.image),
                                 'cmdline.txt', '/etc/fstab', '/etc/hostname', '/etc/hosts',
                                 'ssh host key ed25519', '/root/.ssh', '/root/.ssh/authorized_keys'] + SSH_LINKS
    # The keys it would make are not known yet.
    assert result['host_keys'] == []
    link = str(lab.root / 'etc' / 'systemd' / 'system' / 'multi-user.target.wants' / 'ssh.service')
    assert dict(before_header=link, after_header=link, before='', after='symbolic link to /lib/systemd/system/ssh.service\n') \
        in result['diff']
    fstab = result['diff'][0]
    assert fstab['before_header'] == str(lab.fstab) and fstab['before'] == '' and fstab['after'].startswith('overlay %s overlay ' % lab.root)
    hostname = [d for d in result['diff'] if d['before_header'] == str(lab.root / 'etc' / 'hostname')]
    assert hostname == [dict(before_header=str(lab.root / 'etc' / 'hostname'), after_header=str(lab.root / 'etc' / 'hostname'),
                             before='raspberrypi\n', after='node2\n')]
    assert not (lab.tmp / 'nfs').exists() and not (lab.tmp / 'tftp').exists() and not lab.fstab.exists()


def test_check_mode_with_a_new_image_leaves_the_old_root(lab, run_module):
    run_module(netboot_root, lab.args())
    before = snapshot(lab.tmp / 'nfs')
    before.update(snapshot(lab.tmp / 'tftp'))
    rc, result = run_module(netboot_root, lab.args(image_digest=digest_of('image two'), fresh=True), check_mode=True)
    assert rc == 0, result
    assert result['changed'] and result['new_layer']
    assert 'ssh host key ed25519' in result['changes'] and '/etc/hostname' in result['changes']
    after = snapshot(lab.tmp / 'nfs')
    after.update(snapshot(lab.tmp / 'tftp'))
    assert after == before and overlay_of(lab.root) is not None


def test_check_mode_when_up_to_date(lab, run_module):
    run_module(netboot_root, lab.args())
    rc, result = run_module(netboot_root, lab.args(), check_mode=True)
    assert rc == 0 and not result['changed'] and result['changes'] == [] and not result['new_layer']


def test_diff_when_the_hostname_changes(lab, run_module):
    run_module(netboot_root, lab.args())
    rc, result = run_module(netboot_root, lab.args(hostname='node9'), diff=True)
    assert rc == 0, result
    assert result['changed'] and not result['new_layer']
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
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + ' quiet' + CGROUPS + '\n'
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
    (dict(hostname='-node2'), 'is not a valid host name'),
    (dict(hostname='node_2'), 'is not a valid host name'),
    (dict(cmdline='console=tty1\nroot=/dev/nfs'), 'cmdline must be one line'),
    (dict(digest_file='../escape'), 'digest_file must be a file name'),
    (dict(path='relative/node2'), 'path must be an absolute path'),
])
def test_bad_arguments_fail_and_create_nothing(lab, run_module, bad, message):
    rc, result = run_module(netboot_root, lab.args(**bad))
    assert rc == 1 and result['failed']
    assert message in result['msg']
    assert not (lab.tmp / 'nfs').exists() and not (lab.tmp / 'tftp').exists()


# The collection's one host name rule (module_utils/_board_model.py): a single DNS label.

@pytest.mark.parametrize('name', ['node2.lab', '-x', 'x-', 'a' * 64])
def test_a_hostname_that_is_not_one_label_is_refused(lab, run_module, name):
    rc, result = run_module(netboot_root, lab.args(hostname=name))
    assert rc == 1 and result['failed']
    assert result['msg'] == ('hostname: %s. Give the node its short host name, such as node2 (its inventory name without '
                             'the domain). Nothing was changed.' % hostname_problem(name))
    assert not (lab.tmp / 'nfs').exists() and not (lab.tmp / 'tftp').exists()
    # Refused in check mode too, before the image is looked at.
    rc, result = run_module(netboot_root, lab.args(hostname=name), check_mode=True)
    assert rc == 1 and hostname_problem(name) in result['msg']


@pytest.mark.parametrize('name', ['node2', 'N2', 'a' * 63])
def test_a_hostname_of_one_label_is_accepted(lab, run_module, name):
    rc, result = run_module(netboot_root, lab.args(hostname=name))
    assert rc == 0, result
    assert (lab.root / 'etc' / 'hostname').read_text() == name + '\n'
    assert ('127.0.1.1\t%s\n' % name).encode() in (lab.root / 'etc' / 'hosts').read_bytes()


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


def test_a_failed_mount_is_done_again(lab, run_module, monkeypatch, tmp_path):
    failing(tmp_path, monkeypatch, 'mount', 'echo "mount: wrong fs type, bad option" >&2\nexit 32\n')
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and result['failed']
    assert result['msg'].startswith('mounting the overlay on %s (the master needs overlayfs with nfs_export' % lab.root)
    assert 'failed (rc=32): mount: wrong fs type, bad option' in result['msg']
    assert overlay_of(lab.root) is None
    monkeypatch.undo()
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0 and result['new_layer'] is False and overlay_of(lab.root) is not None, result
    assert (lab.root / 'etc' / 'hostname').read_text() == 'node2\n'


def test_failed_boot_files_are_done_again(lab, run_module, monkeypatch, tmp_path):
    failing(tmp_path, monkeypatch, 'cp', 'echo "cp: cannot create hard link: No space left on device" >&2\nexit 1\n')
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and result['failed']
    assert 'cp -al from %s to %s failed (rc=1): cp: cannot create hard link' % (lab.image / 'boot', lab.boot) in result['msg']
    assert not lab.boot.exists()
    monkeypatch.undo()
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert (lab.boot / 'start.elf').read_bytes() == b'\x7fELF start'
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + CGROUPS + '\n'


def test_boot_files_on_another_file_system_are_copied(lab, run_module, tmp_path):
    # A TFTP root on a file system of its own (a tmpfs here): no hard links across, rsync copies.
    tftp = tmp_path / 'tftp'
    tftp.mkdir()
    subprocess.check_call(['mount', '-t', 'tmpfs', '-o', 'size=8m', 'tftp', str(tftp)])
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert (lab.boot / 'start.elf').read_bytes() == b'\x7fELF start'
    assert os.stat(str(lab.boot / 'start.elf')).st_dev != os.stat(str(lab.image / 'boot' / 'start.elf')).st_dev
    assert mode_of(lab.boot / 'start.elf')[0] == 0o644 and mode_of(lab.boot) == (0o755, 0, 0)
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + CGROUPS + '\n'
    unmount_under(tmp_path)


def test_a_missing_boot_dir_is_made_again(lab, run_module):
    run_module(netboot_root, lab.args())
    shutil.rmtree(str(lab.boot))
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0 and not result['new_layer'], result
    assert result['changes'] == ['boot files %s from %s' % (lab.boot, lab.image), 'cmdline.txt']
    assert (lab.boot / 'cmdline.txt').read_text() == CMDLINE + CGROUPS + '\n'


def test_a_full_copy_of_an_older_role_is_replaced(lab, run_module):
    # The netboot role before 2.0.0 copied the image into the node's root, with a digest file.
    shutil.copytree(str(lab.image / 'root'), str(lab.root), symlinks=True)
    (lab.root / '.turingpi-netboot-image').write_text(DIGEST + '\n')
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert 'removed the full copy in %s' % lab.root in result['changes']
    assert overlay_of(lab.root) is not None and not (lab.root / '.turingpi-netboot-image').exists()


def test_a_directory_of_other_files_is_refused(lab, run_module):
    lab.root.mkdir(parents=True)
    (lab.root / 'data').write_bytes(b'mine\n')
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 1 and 'is a directory with files in it, not a mount point' in result['msg']
    assert (lab.root / 'data').read_bytes() == b'mine\n' and overlay_of(lab.root) is None and not lab.fstab.exists()


@pytest.mark.parametrize('opt, value', [('path', '/srv/nfs/node 2'), ('layer_dir', '/srv/a:b'), ('image_dir', '/srv/a,b')])
def test_a_path_an_overlay_option_cannot_hold_is_refused(lab, run_module, opt, value):
    rc, result = run_module(netboot_root, lab.args(**{opt: value}))
    assert rc == 1 and result['msg'] == '%s %r contains a character an overlay mount option cannot hold (white space , : \\ =). ' \
        'Nothing was changed.' % (opt, value)


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
    lower = os.path.realpath(str(lab.image / 'root'))
    assert result['changes'] == ['new layer %s on image %s' % (lab.layer, DIGEST[:12]), '%s: %s' % (lab.fstab, lab.root),
                                 'mounted %s on %s' % (lab.root, lower), 'boot files %s from %s' % (lab.boot, lab.image)]
    assert not (lab.boot / 'cmdline.txt').read_text().startswith('console=serial0')


def test_fstab_keeps_its_mode(lab, run_module):
    os.chmod(str(lab.image / 'root' / 'etc' / 'fstab'), 0o640)
    run_module(netboot_root, lab.args())
    assert mode_of(lab.root / 'etc' / 'fstab')[0] == 0o640


def test_digest_defaults_to_the_unpacked_image_record(lab, run_module):
    # The netboot role records the digest and the image file it came from, one per line.
    (lab.image / '.turingpi-netboot-image').write_text(DIGEST + '\n/var/lib/images/os.img 1024 1.5 1.5 42\n')
    args = lab.args()
    del args['image_digest']
    code, result = run_module(netboot_root, args)
    assert code == 0 and result['new_layer'] is True
    assert (lab.layer / 'image').read_text().split('\n')[0] == DIGEST
    code, result = run_module(netboot_root, args)
    assert code == 0 and result['changed'] is False


def test_no_digest_and_no_record_fails_and_creates_nothing(lab, run_module):
    args = lab.args()
    del args['image_digest']
    code, result = run_module(netboot_root, args)
    assert code == 1 and 'no unpacked image' in result['msg']
    assert not lab.root.exists() and not lab.boot.exists()


def test_check_mode_before_the_image_is_unpacked_reports_a_layer(lab, run_module):
    # In check mode the netboot role's unpack is only predicted: the node would get a layer on it.
    args = lab.args()
    del args['image_digest']
    code, result = run_module(netboot_root, args, check_mode=True)
    assert code == 0 and result['changed'] is True and result['new_layer'] is True
    assert 'no unpacked image' in json.dumps(result['warnings'])
    assert result['changes'] == ['new layer (image not unpacked yet)']
    assert not lab.root.exists() and not lab.boot.exists()


# --- the kernel command line ---

@pytest.mark.parametrize('kw, cmdline', [
    (dict(cmdline_params=[]), CMDLINE),
    (dict(cmdline=CMDLINE + ' cgroup_memory=1'), CMDLINE + ' cgroup_memory=1 cgroup_enable=memory'),
    (dict(cmdline_params=['cgroup_enable=cpuset', 'cgroup_enable=memory']), CMDLINE + ' cgroup_enable=cpuset cgroup_enable=memory'),
])
def test_cmdline_params_are_appended_once(lab, run_module, kw, cmdline):
    assert run_module(netboot_root, lab.args(**kw))[0] == 0
    assert (lab.boot / 'cmdline.txt').read_text() == cmdline + '\n'
    assert run_module(netboot_root, lab.args(**kw))[1]['changed'] is False


def test_a_cmdline_param_of_two_words_is_refused(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(cmdline_params=['cgroup_memory=1 quiet']))
    assert rc == 1
    assert result['msg'] == "cmdline_params: 'cgroup_memory=1 quiet' is not one kernel parameter (one word, such as cgroup_memory=1)"
    assert not (lab.tmp / 'nfs').exists()


# --- SSH and the host keys on a root without first-boot mechanisms ---

def test_the_image_host_keys_are_not_kept(lab, run_module):
    ssh = lab.image / 'root' / 'etc' / 'ssh'
    for name in ('ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub', 'ssh_host_dsa_key', 'ssh_host_dsa_key.pub'):
        (ssh / name).write_bytes(b'every node of this image would have it\n')
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert result['changes'][8:13] == ['removed /etc/ssh/ssh_host_dsa_key', 'removed /etc/ssh/ssh_host_dsa_key.pub',
                                       'removed /etc/ssh/ssh_host_ed25519_key', 'removed /etc/ssh/ssh_host_ed25519_key.pub',
                                       'ssh host key ed25519']
    names = sorted(n for n in os.listdir(str(lab.root / 'etc' / 'ssh')) if n.startswith('ssh_host_'))
    assert names == ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']
    assert (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key.pub').read_text().split()[-1] == 'root@node2'
    # Not made again: the node keeps the keys made for it.
    kept = (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key').read_bytes()
    assert run_module(netboot_root, lab.args())[1]['changed'] is False
    assert (lab.root / 'etc' / 'ssh' / 'ssh_host_ed25519_key').read_bytes() == kept


def test_a_masked_ssh_is_unmasked_and_enabled(lab, run_module):
    os.makedirs(str(lab.image / 'root' / 'etc' / 'systemd' / 'system'))
    os.symlink('/dev/null', str(lab.image / 'root' / 'etc' / 'systemd' / 'system' / 'ssh.service'))
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert 'removed /etc/systemd/system/ssh.service' in result['changes']
    assert os.readlink(str(lab.root / 'etc' / 'systemd' / 'system' / 'sshd.service')) == '/lib/systemd/system/ssh.service'
    assert os.readlink(str(lab.root / 'etc' / 'systemd' / 'system' / 'multi-user.target.wants' / 'ssh.service')) == \
        '/lib/systemd/system/ssh.service'
    assert run_module(netboot_root, lab.args())[1]['changed'] is False


def test_a_root_without_ssh_server_is_reported(lab, run_module):
    (lab.image / 'root' / 'lib' / 'systemd' / 'system' / 'ssh.service').unlink()
    rc, result = run_module(netboot_root, lab.args())
    assert rc == 0, result
    assert warned(result, '%s has no ssh.service (openssh-server): SSH cannot be switched on, so the node will not be '
                          'reachable over SSH' % lab.root)


def test_admin_user_on_a_root_without_first_boot_mechanism_is_reported(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(admin_user='admin', admin_ssh_keys=[ADMIN_KEY]))
    assert rc == 0, result
    assert warned(result, "%s has neither cloud-init nor userconf-pi's wizard to make admin_user admin on its first boot: "
                          "turingpi.cluster.node makes it, logging in as root with authorized_keys" % lab.root)
    assert result['first_boot']['user'] is None


# --- the admin user's arguments ---

@pytest.mark.parametrize('name', ['Admin', '1admin', 'root', 'ad_min', '-admin', 'a' * 33, 'admin.x', 'admin\n'])
def test_an_admin_user_userconf_pi_refuses_is_refused(lab, run_module, name):
    rc, result = run_module(netboot_root, lab.args(admin_user=name, admin_ssh_keys=[ADMIN_KEY]))
    assert rc == 1
    assert result['msg'] == ("admin_user: '%s' is not a user name userconf-pi accepts (lower-case letters, digits and hyphens, "
                             "starting with a letter, 1 to 32 characters, not root). Nothing was changed." % name)
    assert not (lab.tmp / 'nfs').exists()


@pytest.mark.parametrize('name', ['a', 'admin-2', 'a' * 32])
def test_an_admin_user_userconf_pi_accepts_is_accepted(lab, run_module, name):
    rc, result = run_module(netboot_root, lab.args(admin_user=name, admin_ssh_keys=[ADMIN_KEY]))
    assert rc == 0, result


@pytest.mark.parametrize('bad', ['plain-password', '$6$salt:with:colons', '$6$salt$hash\nsecond line', '$6$salt$hash\n', 'x$6$a$b'])
def test_a_password_hash_that_is_no_crypt_hash_is_refused_and_not_shown(lab, run_module, bad):
    rc, result = run_module(netboot_root, lab.args(admin_user='admin', admin_password_hash=bad))
    assert rc == 1
    assert result['msg'] == ('admin_password_hash is not a crypt(3) hash: give one such as "openssl passwd -6" or '
                             '"mkpasswd -m sha-512" prints ($6$..., one line, no ":"). Nothing was changed.')
    assert bad not in json.dumps(result)


@pytest.mark.parametrize('kw', [dict(admin_password_hash=HASH), dict(admin_ssh_keys=[ADMIN_KEY])])
def test_admin_options_without_admin_user_are_refused(lab, run_module, kw):
    rc, result = run_module(netboot_root, lab.args(**kw))
    assert rc == 1
    assert result['msg'] == ('admin_password_hash and admin_ssh_keys are for admin_user: give admin_user too, or leave them '
                             'empty. Nothing was changed.')


def test_an_admin_user_that_cannot_log_in_is_refused(lab, run_module):
    rc, result = run_module(netboot_root, lab.args(admin_user='admin'))
    assert rc == 1
    assert result['msg'] == ('admin_user admin needs admin_password_hash or admin_ssh_keys (or both): a user with neither cannot '
                             'log in. Nothing was changed.')


# --- the images of each OS family, with their real first-boot code ---

# Where systemctl points the links it makes: /usr/lib on a merged /usr (all but Bullseye here).
UNIT_DIR = {'raspios-bullseye': '/lib/systemd/system'}
MECHANISMS = {
    'raspios-bullseye': ['sshswitch', 'regenerate_ssh_host_keys', 'userconf-pi'],
    'raspios-bookworm': ['sshswitch', 'regenerate_ssh_host_keys', 'userconf-pi'],
    'raspios-trixie': ['sshswitch', 'regenerate_ssh_host_keys', 'userconf-pi', 'cloud-init'],
    'ubuntu-24.04': ['cloud-init'],
}
USERCONF_FAMILIES = ('raspios-bullseye', 'raspios-bookworm')
CLOUD_INIT_FAMILIES = ('raspios-trixie', 'ubuntu-24.04')


class FamilyLab(object):
    """One family's unpacked image (realworld_root) and the places the node's files go."""

    def __init__(self, tmp_path, family):
        self.tmp, self.family = tmp_path, family
        self.image = realworld_root.build(tmp_path / 'image', family)
        self.root = tmp_path / 'nfs' / 'node2'
        self.layer = tmp_path / 'nfs' / '.layers' / 'node2'
        self.boot = tmp_path / 'tftp' / '1a2b3c4d'
        self.units = UNIT_DIR.get(family, '/usr/lib/systemd/system')

    def args(self, **kw):
        a = dict(path=str(self.root), boot_path=str(self.boot), image_dir=self.image.top, image_digest=DIGEST, hostname='node2',
                 layer_dir=str(self.layer), fstab=str(self.tmp / 'fstab'),
                 cmdline=CMDLINE, ssh_key_types=['ed25519', 'ecdsa'], authorized_keys=KEYS[:1])
        a.update(kw)
        return a

    def admin(self, **kw):
        a = dict(admin_user='admin', admin_password_hash=HASH, admin_ssh_keys=[ADMIN_KEY])
        a.update(kw)
        return self.args(**a)

    def link(self, rel, image=False):
        path = os.path.join(self.image.root if image else str(self.root), 'etc/systemd/system', rel)
        return os.readlink(path) if os.path.islink(path) else None

    def seed(self, name):
        return (self.root / 'var' / 'lib' / 'cloud' / 'seed' / 'nocloud' / name).read_text()

    def snapshot(self):
        out = snapshot(self.tmp / 'nfs')
        out.update(snapshot(self.tmp / 'tftp'))
        return out


@pytest.fixture(params=realworld_root.FAMILIES)
def family(request, tmp_path):
    yield FamilyLab(tmp_path, request.param)
    unmount_under(tmp_path)


def assert_ssh_on_with_the_keys_made_here(fam, result):
    if fam.family == 'ubuntu-24.04':
        # Started by its socket: left as the image has it.
        assert fam.link('sockets.target.wants/ssh.socket') == '/usr/lib/systemd/system/ssh.socket'
        assert fam.link('multi-user.target.wants/ssh.service') is None
    else:
        # The image has SSH off (pi-gen's "systemctl disable ssh"); the root has it on, as systemctl enable does it.
        assert fam.link('multi-user.target.wants/ssh.service', image=True) is None
        assert fam.link('multi-user.target.wants/ssh.service') == fam.units + '/ssh.service'
        assert fam.link('sshd.service') == fam.units + '/ssh.service'
        assert (fam.root / (fam.units + '/ssh.service').lstrip('/')).read_bytes() == realworld_root.DEBIAN_SSH_SERVICE
        # sshswitch (which finds no firmware partition on an NFS root) and the first-boot key
        # regeneration are off; their units stay.
        assert fam.link('multi-user.target.wants/sshswitch.service', image=True) is not None
        assert fam.link('multi-user.target.wants/sshswitch.service') is None
        assert (fam.root / 'usr/lib/raspberrypi-sys-mods/regenerate_ssh_host_keys').is_file()
        assert fam.link('multi-user.target.wants/regenerate_ssh_host_keys.service') is None
        if fam.family in USERCONF_FAMILIES:
            assert fam.link('multi-user.target.wants/regenerate_ssh_host_keys.service', image=True) is not None
    keys = sorted(n for n in os.listdir(str(fam.root / 'etc' / 'ssh')) if n.startswith('ssh_host_'))
    assert keys == ['ssh_host_ecdsa_key', 'ssh_host_ecdsa_key.pub', 'ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']
    assert [k['type'] for k in result['host_keys']] == ['ed25519', 'ecdsa']
    for entry in result['host_keys']:
        pub = fam.root / 'etc' / 'ssh' / ('ssh_host_%s_key.pub' % entry['type'])
        assert entry['public_key'] == pub.read_text().strip()
        assert entry['fingerprint'] == keygen_fingerprint(pub)
    assert (fam.root / 'root' / '.ssh' / 'authorized_keys').read_text() == KEYS[0] + '\n'


def assert_wizard_off(fam):
    """What userconf-pi's cancel-rename leaves: no wizard, the console's getty back, no banner."""
    assert fam.link('multi-user.target.wants/userconfig.service', image=True) == fam.image.unit_path('userconfig.service')
    assert fam.link('multi-user.target.wants/userconfig.service') is None
    assert fam.link('getty.target.wants/getty@tty1.service', image=True) is None
    assert fam.link('getty.target.wants/getty@tty1.service') == fam.units + '/getty@.service'
    assert (fam.tmp / 'image' / 'root' / 'etc' / 'ssh' / 'sshd_config.d' / 'rename_user.conf').is_file()
    assert not (fam.root / 'etc' / 'ssh' / 'sshd_config.d' / 'rename_user.conf').exists()
    assert not (fam.root / 'boot' / 'userconf.txt').exists()


def test_each_family_makes_its_first_user(family, run_module):
    fam = family
    rc, result = run_module(netboot_root, fam.admin())
    assert rc == 0, result
    assert 'warnings' not in result
    assert result['first_boot']['mechanisms'] == MECHANISMS[fam.family]
    assert result['first_boot']['user'] == 'admin'
    assert (fam.boot / 'cmdline.txt').read_text() == CMDLINE + CGROUPS + '\n'
    # fstab: the image's root and firmware partitions are gone, whatever their spelling.
    fstab = (fam.root / 'etc' / 'fstab').read_text()
    assert fstab == ('' if fam.family == 'ubuntu-24.04' else 'proc            /proc           proc    defaults          0       0\n')
    assert_ssh_on_with_the_keys_made_here(fam, result)
    if fam.family in USERCONF_FAMILIES:
        # userconf-pi's own userconf-service renames pi on the first boot: userconf.txt where it looks
        # (get_fw_loc finds no firmware partition on an NFS root: /boot), the keys in the home it moves.
        assert result['first_boot']['instance_id'] is None
        assert (fam.root / 'boot' / 'userconf.txt').read_text() == 'admin:%s\n' % HASH
        assert mode_of(fam.root / 'boot' / 'userconf.txt') == (0o600, 0, 0)
        assert fam.link('multi-user.target.wants/userconfig.service') == fam.image.unit_path('userconfig.service')
        keys = fam.root / 'home' / 'pi' / '.ssh' / 'authorized_keys'
        assert keys.read_text() == ADMIN_KEY + '\n'
        assert mode_of(keys) == (0o600, 1000, 1000) and mode_of(keys.parent) == (0o700, 1000, 1000)
        assert not (fam.root / 'var' / 'lib' / 'cloud' / 'seed').exists()
    else:
        meta = yaml.safe_load(fam.seed('meta-data'))
        assert meta == {'instance-id': result['first_boot']['instance_id'], 'local-hostname': 'node2', 'dsmode': 'local'}
        assert meta['instance-id'].startswith('node2-') and len(meta['instance-id']) == len('node2-') + 12
        user_data = fam.seed('user-data')
        assert user_data.startswith('#cloud-config\n')
        assert yaml.safe_load(user_data) == {
            'hostname': 'node2', 'preserve_hostname': False, 'ssh_deletekeys': False, 'ssh_genkeytypes': ['ed25519', 'ecdsa'],
            'disable_root': False,
            'users': [{'name': 'admin', 'groups': ['adm', 'sudo'], 'shell': '/bin/bash', 'sudo': 'ALL=(ALL) NOPASSWD:ALL',
                       'lock_passwd': False, 'hashed_passwd': HASH, 'ssh_authorized_keys': [ADMIN_KEY]}]}
        assert mode_of(fam.root / 'var' / 'lib' / 'cloud' / 'seed' / 'nocloud' / 'user-data') == (0o600, 0, 0)
        assert not (fam.root / 'boot' / 'userconf.txt').exists()
        if fam.family == 'raspios-trixie':
            # cloud-init makes the user: userconf-pi's wizard must not wait on tty8 as well.
            assert_wizard_off(fam)
    before = fam.snapshot()
    rc, result = run_module(netboot_root, fam.admin(), diff=True)
    assert rc == 0 and result['changed'] is False and result['changes'] == [] and result['diff'] == [], result
    assert fam.snapshot() == before


def test_each_family_without_admin_user_lets_root_in(family, run_module):
    fam = family
    rc, result = run_module(netboot_root, fam.args())
    assert rc == 0, result
    assert result['first_boot']['user'] is None
    assert_ssh_on_with_the_keys_made_here(fam, result)
    if fam.family.startswith('raspios'):
        assert_wizard_off(fam)
    if fam.family in CLOUD_INIT_FAMILIES:
        # No default user (Ubuntu's ubuntu with a password to change): the controller comes in as root.
        assert yaml.safe_load(fam.seed('user-data'))['users'] == []
    before = fam.snapshot()
    assert run_module(netboot_root, fam.args())[1]['changed'] is False
    assert fam.snapshot() == before


def test_check_mode_predicts_the_run_and_writes_nothing(family, run_module):
    fam = family
    rc, check = run_module(netboot_root, fam.admin(), check_mode=True, diff=True)
    assert rc == 0, check
    assert not (fam.tmp / 'nfs').exists() and not (fam.tmp / 'tftp').exists()
    rc, real = run_module(netboot_root, fam.admin())
    assert rc == 0, real
    assert check['changes'] == real['changes']
    assert check['first_boot']['mechanisms'] == real['first_boot']['mechanisms']
    if fam.family != 'ubuntu-24.04':
        sshswitch = str(fam.root / 'etc/systemd/system/multi-user.target.wants/sshswitch.service')
        target = fam.image.unit_path('sshswitch.service')
        assert dict(before_header=sshswitch, after_header=sshswitch, before='symbolic link to %s\n' % target, after='') in check['diff']


def test_the_password_hash_is_hidden_from_the_output(family, run_module):
    fam = family
    rc, result = run_module(netboot_root, fam.admin(), diff=True)
    assert rc == 0, result
    assert HASH not in json.dumps(result)
    written = [d for d in result['diff'] if d['after_header'].endswith(('userconf.txt', 'user-data'))]
    assert len(written) == 1 and '********' in written[0]['after']


def first_boot_of_userconf_pi(root):
    """What userconf-service does with userconf.txt on the node's first boot: userconf renames pi
    (usermod -l, usermod -m -d, groupmod -n, the sudoers rule) and sets the password, cancel-rename
    turns the wizard off and the getty on, and the file is removed."""
    line = (root / 'boot' / 'userconf.txt').read_text().strip()
    user, password_hash = line.split(':')
    for name in ('etc/passwd', 'etc/group'):
        path = root / name
        path.write_text(path.read_text().replace('pi:x:1000', '%s:x:1000' % user).replace('/home/pi:', '/home/%s:' % user))
    shadow = root / 'etc' / 'shadow'
    shadow.write_text(shadow.read_text() + '%s:%s:19000:0:99999:7:::\n' % (user, password_hash))
    # usermod -m moves the home with rename(2) and copies it when that fails with EXDEV, as overlayfs
    # answers for a directory of the lower layer (without redirect_dir): shutil.move does the same.
    shutil.move(str(root / 'home' / 'pi'), str(root / 'home' / user))
    sudoers = root / 'etc' / 'sudoers.d' / '010_pi-nopasswd'
    sudoers.write_text(sudoers.read_text().replace('pi ', '%s ' % user))
    (root / 'boot' / 'userconf.txt').unlink()
    (root / 'etc/systemd/system/multi-user.target.wants/userconfig.service').unlink()
    os.symlink('/lib/systemd/system/getty@.service', str(root / 'etc/systemd/system/getty.target.wants/getty@tty1.service'))
    (root / 'etc/ssh/sshd_config.d/rename_user.conf').unlink()


@pytest.mark.parametrize('family', USERCONF_FAMILIES, indirect=True)
def test_userconf_first_boot_leaves_nothing_to_change(family, run_module):
    fam = family
    assert run_module(netboot_root, fam.admin())[0] == 0
    first_boot_of_userconf_pi(fam.root)
    rc, result = run_module(netboot_root, fam.admin())
    assert rc == 0 and result['changed'] is False, result
    assert result['first_boot']['user'] == 'admin'
    assert (fam.root / 'home' / 'admin' / '.ssh' / 'authorized_keys').read_text() == ADMIN_KEY + '\n'
    assert not (fam.root / 'boot' / 'userconf.txt').exists()


@pytest.mark.parametrize('family', ['raspios-bookworm'], indirect=True)
def test_userconf_goes_where_get_fw_loc_points(family, run_module):
    # A lab image built on amd64 sets FWLOC where the real image finds its firmware partition.
    fam = family
    default = os.path.join(fam.image.root, 'etc/default/raspberrypi-sys-mods')
    with open(default, 'a') as f:
        f.write('FWLOC=/boot/firmware\n')
    assert run_module(netboot_root, fam.admin())[0] == 0
    assert (fam.root / 'boot' / 'firmware' / 'userconf.txt').read_text() == 'admin:%s\n' % HASH
    assert not (fam.root / 'boot' / 'userconf.txt').exists()


@pytest.mark.parametrize('family', ['raspios-bookworm'], indirect=True)
def test_userconf_without_a_first_user_to_rename_fails(family, run_module):
    fam = family
    passwd = os.path.join(fam.image.root, 'etc/passwd')
    with open(passwd) as f:
        text = f.read()
    with open(passwd, 'w') as f:
        f.write(''.join(line for line in text.splitlines(True) if not line.startswith('pi:')))
    rc, result = run_module(netboot_root, fam.admin())
    assert rc == 1
    assert result['msg'] == ("%s has userconf-pi's wizard on but no user of uid 1000 for it to rename into admin_user admin: use an "
                             "image with its first user, or leave admin_user empty (the wizard is then switched off)"
                             % (fam.root / 'etc' / 'passwd'))


@pytest.mark.parametrize('family', CLOUD_INIT_FAMILIES, indirect=True)
def test_the_instance_id_is_new_after_every_reset(family, run_module):
    fam = family
    first = run_module(netboot_root, fam.admin())[1]['first_boot']['instance_id']
    rc, result = run_module(netboot_root, fam.admin())
    assert rc == 0 and result['changed'] is False and result['first_boot']['instance_id'] == first
    # Another seed: cloud-init must run again to apply it.
    rc, result = run_module(netboot_root, fam.admin(admin_ssh_keys=[ADMIN_KEY, KEYS[1]]))
    second = result['first_boot']['instance_id']
    assert rc == 0 and second != first and second.startswith('node2-')
    assert yaml.safe_load(fam.seed('meta-data'))['instance-id'] == second
    # A reset drops the layer: a new instance-id, also in check mode (which writes nothing).
    before = fam.snapshot()
    rc, result = run_module(netboot_root, fam.admin(fresh=True), check_mode=True)
    assert rc == 0 and result['first_boot']['instance_id'] not in (first, second)
    assert fam.snapshot() == before
    rc, result = run_module(netboot_root, fam.admin(fresh=True))
    third = result['first_boot']['instance_id']
    assert rc == 0 and result['new_layer'] and third not in (first, second)
    assert yaml.safe_load(fam.seed('meta-data'))['instance-id'] == third


def test_the_images_are_built_from_the_real_code(tmp_path):
    # The family images install the real first-boot code, byte for byte.
    real = realworld_root.realworld_dir()
    image = realworld_root.build(tmp_path / 'image', 'raspios-bookworm')
    for rel, src in (('usr/lib/raspberrypi-sys-mods/sshswitch', 'raspberrypi-sys-mods/usr/lib/raspberrypi-sys-mods/sshswitch'),
                     ('usr/lib/userconf-pi/userconf-service', 'userconf-pi/userconf-service'),
                     ('lib/systemd/system/userconfig.service', 'userconf-pi/debian/userconf-pi.userconfig.service'),
                     ('lib/systemd/system/sshswitch.service', 'raspberrypi-sys-mods/debian/raspberrypi-sys-mods.sshswitch.service')):
        with open(os.path.join(image.root, rel), 'rb') as a, open(os.path.join(real, src), 'rb') as b:
            assert a.read() == b.read(), rel
    shutil.rmtree(image.top)
