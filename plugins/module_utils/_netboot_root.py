# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""netboot_root's back end: a network-boot node's NFS root and TFTP directory on the master.

The arguments are checked, the image copied when the node's digest file names another one, and
the node's identity files read, compared and written only where they differ, atomically and never
outside the node's own directories. The root's first-boot mechanisms are read from the root itself
(the units and programs the image has): SSH is switched on, the host keys made here are kept, the
first user is made or its wizard switched off, and a cloud-init root gets a NoCloud seed. Failures
are raised as NetbootRootError; the module decides what to do with them (and with NoImageError in
check mode)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import tempfile

from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import hostname_problem
from ansible_collections.turingpi.cluster.plugins.module_utils._node_layer import LayerError, path_problem

DIGEST_RE = re.compile(r'^[0-9a-f]{64}\Z')
HOSTS_RE = re.compile(br'^127\.0\.1\.1\s')
KEY_TYPES = ('ed25519', 'ecdsa', 'rsa')
NEXT_STEP = 'run the netboot role\'s main entry point first (playbooks/bootstrap.yml does)'

# What Kubernetes distributions need on a Pi's kernel command line: the same default as the node
# role's node_cmdline_params, which adds them to the cmdline.txt of nodes that boot from eMMC or SD.
CMDLINE_PARAMS = ('cgroup_memory=1', 'cgroup_enable=memory')

# fstab: a line is the eMMC's or SD card's when its device is /dev/mmcblk*, or when it mounts the
# root or a boot partition (/, /boot, /boot/firmware) from a block device, however it is named.
FSTAB_LOCAL_DEVICE_RE = re.compile(br'^(?:(?:PARTUUID|UUID|LABEL|PARTLABEL|ID)=|/dev/)', re.I)
FSTAB_PARTUUID_RE = re.compile(br'^PARTUUID=([0-9a-f]{8})-[0-9a-f]{2}$', re.I)
FSTAB_NETWORK_TYPES = (b'nfs', b'nfs4', b'cifs', b'smb3', b'tmpfs', b'overlay', b'proc', b'sysfs', b'devtmpfs')

# userconf-pi's validate_user(): lower-case letters, digits and hyphens, starting with a letter,
# 1 to 32 characters, not root.
USER_RE = re.compile(r'^[a-z][a-z0-9-]*\Z')
USER_RULE = 'lower-case letters, digits and hyphens, starting with a letter, 1 to 32 characters, not root'
# A crypt(3) hash as chpasswd -e and cloud-init's hashed_passwd take it ($6$..., $y$..., $5$...).
HASH_RE = re.compile(r'^\$[0-9a-z]+\$[^\s:]+\Z')
# The password field userconf.txt gets when only keys are given: no password login (keys only).
NO_PASSWORD = '*'

# systemd: where units are looked up (as the node does), and where enabling links go.
UNIT_CONFIG = 'etc/systemd/system'
UNIT_DIRS = (UNIT_CONFIG, 'lib/systemd/system', 'usr/lib/systemd/system')
SSH_UNITS = ('ssh.service', 'sshd.service')
SSH_SOCKETS = ('ssh.socket', 'sshd.socket')
# raspberrypi-sys-mods and userconf-pi, as their packages install them.
REGENERATE_UNIT = 'regenerate_ssh_host_keys.service'
SSHSWITCH_UNIT = 'sshswitch.service'
USERCONFIG_UNIT = 'userconfig.service'
GETTY_UNIT = 'getty@tty1.service'
RENAME_BANNER = 'etc/ssh/sshd_config.d/rename_user.conf'
SYS_MODS_DEFAULT = 'etc/default/raspberrypi-sys-mods'
FWLOC_RE = re.compile(r'^\s*(?:export\s+)?FWLOC=(.*)$')
# cloud-init's NoCloud seed directory (DataSourceNoCloud.seed_dirs, ds-identify's check_seed_dir).
CLOUD_INIT_PROGRAMS = ('usr/bin/cloud-init', 'etc/cloud/cloud.cfg')
CLOUD_INIT_DISABLED = 'etc/cloud/cloud-init.disabled'
SEED_DIR = 'var/lib/cloud/seed/nocloud'
INSTANCE_ID_RE = re.compile(r'^instance-id:\s*"?([^"\s]+)"?\s*$', re.M)
# The admin user cloud-init makes: the groups every Debian and Ubuntu has.
ADMIN_GROUPS = ('adm', 'sudo')


class NetbootRootError(LayerError):
    """A failure: ``msg`` for the user, ``details`` (rc, stdout, stderr, cmd) for the result."""


class NoImageError(NetbootRootError):
    """No unpacked image in image_dir: a failure, except in check mode, where the netboot role's
    unpack was only predicted too."""


class Tree(object):
    """A directory the module writes into (the node's root or its boot directory), never leaving it.

    ``top`` is where the current state is read; ``shown`` is the node's directory, named in
    messages and diffs. They differ in check mode when a copy is pending: the state after the copy
    is the image's, so it is read there. ``attrs_known`` False: the copy decides the files' owner
    and mode (the boot files), so only their content is predicted."""

    def __init__(self, top, shown, attrs_known=True):
        self.top, self.shown, self.attrs_known = top, shown, attrs_known
        self.real = os.path.realpath(top)

    def resolve(self, rel):
        """The real path of ``rel`` under the tree, after every symbolic link; fails when it leads out."""
        return self.inside(os.path.realpath(os.path.join(self.top, rel)), rel)

    def inside(self, real, rel):
        if real != self.real and not real.startswith(self.real.rstrip(os.sep) + os.sep):
            raise NetbootRootError('%s leads out of %s through a symbolic link (to %s): the node\'s files must stay in its own '
                                   'root; replace the link with a file or directory, or run with fresh=true to copy the node again'
                                   % (os.path.join(self.shown, rel), self.shown, real))
        return real

    def leaf(self, rel):
        """The real path of ``rel`` with its directory resolved (and kept inside) but its last part
        not followed: for symbolic links the module makes or removes, whose targets are the node's
        paths, not the master's."""
        parent, name = os.path.split(rel)
        return os.path.join(self.resolve(parent) if parent else self.real, name)

    def lookup(self, rel):
        """The real path of ``rel`` as the node itself would find it, for reading what the image
        has: every symbolic link followed inside the tree, an absolute target taken from the
        tree's top (as in a chroot), so that the lookup never leaves the tree. None for a loop."""
        todo = [part for part in rel.split('/') if part]
        current, hops = self.real, 0
        while todo:
            part = todo.pop(0)
            if part == '.':
                continue
            if part == '..':
                current = os.path.dirname(current) if current != self.real else current
                continue
            path = os.path.join(current, part)
            if os.path.islink(path):
                hops += 1
                if hops > 40:
                    return None
                target = os.readlink(path)
                if target.startswith('/'):
                    current = self.real
                todo = [t for t in target.split('/') if t] + todo
                continue
            current = path
        return current

    def read(self, rel):
        """The content of ``rel`` as the node would read it, or None."""
        real = self.lookup(rel)
        try:
            with open(real, 'rb') as f:
                return f.read()
        except (IOError, OSError, TypeError):
            return None

    def is_file(self, rel):
        real = self.lookup(rel)
        return bool(real) and os.path.isfile(real)

    def show(self, rel):
        return os.path.join(self.shown, rel)

    def has_dir(self, rel):
        return os.path.isdir(os.path.join(self.top, rel))


def _lines(data):
    """Split like a binary file's readlines(): after each b'\\n', line endings kept."""
    parts = data.split(b'\n')
    lines = [part + b'\n' for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def _fstab_fields(line):
    fields = line.split()
    if len(fields) < 2 or fields[0].startswith(b'#'):
        return None
    return fields


def _mounts_local_boot(fields):
    """The line mounts the root or a boot partition from a block device (by any name)."""
    device, mount = fields[0], fields[1].rstrip(b'/') or b'/'
    fstype = fields[2].lower() if len(fields) > 2 else b''
    if mount not in (b'/', b'/boot') and not mount.startswith(b'/boot/'):
        return False
    if fstype in FSTAB_NETWORK_TYPES or device == b'/dev/nfs':
        return False
    return bool(FSTAB_LOCAL_DEVICE_RE.match(device))


def fstab_without_local_disks(data):
    """fstab without the lines of the eMMC or SD card: /dev/mmcblk* devices, the root and boot
    partitions by what they mount (PARTUUID=, UUID=, LABEL=, PARTLABEL=, /dev/...), and the other
    partitions of the disk whose PARTUUIDs those name. Comments and everything else stay."""
    lines = _lines(data)
    drop = set()
    disks = set()
    for i, line in enumerate(lines):
        fields = _fstab_fields(line)
        if fields and (fields[0].startswith(b'/dev/mmcblk') or _mounts_local_boot(fields)):
            drop.add(i)
            match = FSTAB_PARTUUID_RE.match(fields[0])
            if match:
                disks.add(match.group(1).lower())
    for i, line in enumerate(lines):
        fields = _fstab_fields(line)
        match = fields and FSTAB_PARTUUID_RE.match(fields[0])
        if match and match.group(1).lower() in disks:
            drop.add(i)
    return b''.join(line for i, line in enumerate(lines) if i not in drop)


def cmdline_with_params(cmdline, params):
    """The command line with each of ``params`` that it lacks appended (never removed)."""
    words = cmdline.split()
    missing = [param for param in params if param not in words]
    return ' '.join([cmdline] + missing) if missing else cmdline


def unit_install(text):
    """The [Install] section of a systemd unit file: {key: [values]} (WantedBy, Alias, ...)."""
    install, section = {}, None
    for line in to_text(text, errors='surrogate_or_replace').splitlines():
        line = line.strip()
        if not line or line[0] in '#;':
            continue
        if line.startswith('['):
            section = line
            continue
        if section == '[Install]' and '=' in line:
            key, value = line.split('=', 1)
            install.setdefault(key.strip(), []).extend(value.split())
    return install


def fingerprint(public_key):
    """The SHA256 fingerprint of a public key line, as ssh-keygen -l prints it."""
    blob = base64.b64decode(public_key.split()[1])
    return 'SHA256:' + to_text(base64.b64encode(hashlib.sha256(blob).digest())).rstrip('=')


def passwd_entries(data):
    """/etc/passwd as [{name, uid, gid, home}]."""
    entries = []
    for line in to_text(data or b'', errors='surrogate_or_replace').splitlines():
        fields = line.split(':')
        if len(fields) >= 7 and fields[2].isdigit() and fields[3].isdigit():
            entries.append(dict(name=fields[0], uid=int(fields[2]), gid=int(fields[3]), home=fields[5]))
    return entries


def fwloc_of(default_file):
    """Where get_fw_loc (raspberrypi-sys-mods) finds the firmware partition on a network-boot node:
    FWLOC from /etc/default/raspberrypi-sys-mods when set; else nothing in fstab or the mounts names
    /boot or /boot/firmware, so it fails, and userconf-service falls back to /boot."""
    fwloc = ''
    for line in to_text(default_file or b'', errors='surrogate_or_replace').splitlines():
        match = FWLOC_RE.match(line)
        if match:
            fwloc = match.group(1).strip().strip('"\'')
    return fwloc.rstrip('/') or '/boot'


def user_problem(name):
    """None when userconf-pi accepts ``name`` as the first user's name, else what is wrong."""
    if not (1 <= len(name) <= 32) or not USER_RE.match(name) or name == 'root':
        return "'%s' is not a user name userconf-pi accepts (%s)" % (name, USER_RULE)
    return None


def _yaml(value):
    """A YAML scalar or flow sequence: JSON is YAML, and json.dumps quotes every string safely."""
    return json.dumps(value)


def cloud_user_data(hostname, key_types, user=None, password_hash=None, keys=()):
    """The #cloud-config of the node's NoCloud seed."""
    lines = [
        '#cloud-config',
        '# Written by turingpi.cluster.netboot_root for %s, which boots from its network root.' % hostname,
        'hostname: %s' % _yaml(hostname),
        'preserve_hostname: false',
        '# The SSH host keys in the root are the ones netboot_root made and reported: keep them, make no others.',
        'ssh_deletekeys: false',
        'ssh_genkeytypes: %s' % _yaml(list(key_types)),
        '# root/.ssh/authorized_keys in the root lets the controller in as root, without a "login as" prefix.',
        'disable_root: false',
    ]
    if not user:
        lines += ['# No admin user here: turingpi.cluster.node makes it, logging in as root.', 'users: []']
        return to_bytes('\n'.join(lines) + '\n')
    lines += [
        'users:',
        '  - name: %s' % _yaml(user),
        '    groups: %s' % _yaml(list(ADMIN_GROUPS)),
        '    shell: "/bin/bash"',
        '    sudo: "ALL=(ALL) NOPASSWD:ALL"',
    ]
    if password_hash:
        lines += ['    lock_passwd: false', '    hashed_passwd: %s' % _yaml(password_hash)]
    else:
        lines += ['    # No password: the user logs in with its keys.', '    lock_passwd: true']
    if keys:
        lines += ['    ssh_authorized_keys:'] + ['      - %s' % _yaml(key) for key in keys]
    return to_bytes('\n'.join(lines) + '\n')


def cloud_meta_data(hostname, instance_id):
    return to_bytes('\n'.join([
        '# Written by turingpi.cluster.netboot_root: the NoCloud meta-data of %s\'s network root.' % hostname,
        '# The instance-id is new whenever the root is copied again or its seed changes, so that',
        '# cloud-init sets the node up again.',
        'instance-id: %s' % _yaml(instance_id),
        'local-hostname: %s' % _yaml(hostname),
        'dsmode: local',
    ]) + '\n')


def instance_id_of(meta_data):
    match = INSTANCE_ID_RE.search(to_text(meta_data or b'', errors='surrogate_or_replace'))
    return match.group(1) if match else None


def new_instance_id(hostname):
    return '%s-%s' % (hostname, to_text(binascii.hexlify(os.urandom(6))))


def hosts_with_line(data, hostname):
    """What lineinfile (regexp, line, create) makes of the file: the last matching line is
    replaced, or the line is appended."""
    lines = _lines(data or b'')
    new = to_bytes('127.0.1.1\t%s\n' % hostname)
    matches = [i for i, line in enumerate(lines) if HOSTS_RE.search(line)]
    if matches:
        lines[matches[-1]] = new
    else:
        if lines and lines[-1][-1:] not in (b'\n', b'\r'):
            lines.append(b'\n')
        lines.append(new)
    return b''.join(lines)


def write_atomic(real, data, mode, uid, gid):
    """Replace ``real`` (a path without links) by a file with ``data``: a temporary file in the same
    directory, renamed over it, so the node never sees a half-written file."""
    directory, name = os.path.split(real)
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % name, suffix='.tmp', dir=directory)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            os.fchown(f.fileno(), uid, gid)
            os.fchmod(f.fileno(), mode)
        os.rename(tmp, real)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _overlap(a, b):
    a, b = a.rstrip(os.sep) + os.sep, b.rstrip(os.sep) + os.sep
    return a.startswith(b) or b.startswith(a)


class NodeRoot(object):
    """One node's root and boot directory. ``params`` are the module's; ``runner`` runs the
    external programs (the AnsibleModule: its run_command and get_bin_path). Nothing is written
    when ``check_mode``; the content changes are collected in ``diffs`` when ``diff``."""

    def __init__(self, params, runner, check_mode=False, diff=False):
        self.p = params
        self.runner = runner
        self.check = check_mode
        self.diff = diff
        self.changes = []
        self.diffs = []
        self.warnings = []
        # Directories check mode reports as created: what is below them is predicted, not created again.
        self.planned = set()
        # What the identity step found and made, for the module's result.
        self.host_key_info = []
        self.first_boot = dict(mechanisms=[], user=None, instance_id=None)
        self.image_pending = False
        self.fstab_changed = False

    def change(self, what, diff=None):
        self.changes.append(what)
        if diff is not None and self.diff:
            self.diffs.append(diff)

    def warn(self, msg):
        self.warnings.append(msg)

    def run_command(self, cmd):
        return self.runner.run_command(cmd, expand_user_and_vars=False)

    # --- the arguments, before anything is touched ---

    def unpacked_digest(self):
        """The digest the netboot role recorded for the unpacked image: the record's first word."""
        record = os.path.join(self.p['image_dir'], self.p['digest_file'])
        try:
            with open(record, 'rb') as f:
                words = to_text(f.read(), errors='surrogate_or_replace').split()
        except (IOError, OSError):
            words = []
        if not words:
            raise NoImageError('%s is missing or empty: no unpacked image in %s' % (record, self.p['image_dir']))
        return words[0]

    def validate(self):
        p = self.p
        name = p['digest_file']
        if not name or name in ('.', '..') or os.sep in name:
            raise NetbootRootError('digest_file must be a file name (no "/"), not %r' % name)
        problem = hostname_problem(p['hostname'])
        if problem:
            raise NetbootRootError('hostname: %s. Give the node its short host name, such as node2 (its inventory name without '
                                   'the domain). Nothing was changed.' % problem)
        if '\n' in p['cmdline'] or '\r' in p['cmdline']:
            raise NetbootRootError('cmdline must be one line (cmdline.txt is read as one line): remove the line breaks, '
                                   'for example with the trim filter')
        for opt in ('path', 'boot_path', 'image_dir', 'layer_dir'):
            if not os.path.isabs(p[opt]):
                raise NetbootRootError('%s must be an absolute path, not %r' % (opt, p[opt]))
            if os.path.realpath(p[opt]) == os.sep:
                raise NetbootRootError('%s must not be the root directory /' % opt)
        for opt in ('path', 'image_dir', 'layer_dir'):
            problem = path_problem(p[opt])
            if problem:
                raise NetbootRootError('%s %r %s. Nothing was changed.' % (opt, p[opt], problem))
        real = dict((opt, os.path.realpath(p[opt])) for opt in ('path', 'boot_path', 'image_dir', 'layer_dir'))
        for a, b in (('path', 'boot_path'), ('path', 'image_dir'), ('boot_path', 'image_dir'), ('path', 'layer_dir'),
                     ('boot_path', 'layer_dir'), ('image_dir', 'layer_dir')):
            if _overlap(real[a], real[b]):
                raise NetbootRootError('%s (%s) and %s (%s) overlap: each needs a directory of its own' % (a, p[a], b, p[b]))
        self.validate_first_user()
        for param in p.get('cmdline_params') or ():
            if not param or len(param.split()) != 1:
                raise NetbootRootError('cmdline_params: %r is not one kernel parameter (one word, such as cgroup_memory=1)' % param)
        if p['image_digest'] is None:
            p['image_digest'] = self.unpacked_digest()
        if not DIGEST_RE.match(p['image_digest']):
            raise NetbootRootError('image_digest must be the image\'s SHA-256 as 64 lower-case hexadecimal digits, not %r'
                                   % p['image_digest'])

    def validate_first_user(self):
        p = self.p
        for opt in ('admin_user', 'admin_password_hash'):
            p[opt] = p.get(opt) or None
        p['admin_ssh_keys'] = list(p.get('admin_ssh_keys') or [])
        user, password_hash, keys = p['admin_user'], p['admin_password_hash'], p['admin_ssh_keys']
        if user is None:
            if password_hash or keys:
                raise NetbootRootError('admin_password_hash and admin_ssh_keys are for admin_user: give admin_user too, or leave them '
                                       'empty. Nothing was changed.')
            return
        problem = user_problem(user)
        if problem:
            raise NetbootRootError('admin_user: %s. Nothing was changed.' % problem)
        if password_hash is not None and not HASH_RE.match(password_hash):
            # Never in the message: it is a secret, even when malformed.
            raise NetbootRootError('admin_password_hash is not a crypt(3) hash: give one such as "openssl passwd -6" or '
                                   '"mkpasswd -m sha-512" prints ($6$..., one line, no ":"). Nothing was changed.')
        if password_hash is None and not keys:
            raise NetbootRootError('admin_user %s needs admin_password_hash or admin_ssh_keys (or both): a user with neither cannot '
                                   'log in. Nothing was changed.' % user)
        for key in keys:
            if not key.strip() or '\n' in key or '\r' in key:
                raise NetbootRootError('admin_ssh_keys: each entry is one public key on one line, not %r' % key)

    # --- step 1: the node's layer on its image copy ---

    def check_image(self, image_dir):
        for part in ('root', 'boot'):
            d = os.path.join(image_dir, part)
            if not os.path.isdir(d):
                raise NoImageError('%s is not a directory: no unpacked image in %s' % (d, image_dir))

    def _copy_command(self, what, cmd, src, dest):
        rc, out, err = self.run_command(cmd)
        if rc != 0:
            raise NetbootRootError('%s from %s to %s failed (rc=%d): %s. The node gets its boot files again on the next run.'
                                   % (what, src, dest, rc, (err or out).strip()), rc=rc, stdout=out, stderr=err, cmd=cmd)

    def make_dir(self, d):
        if not os.path.isdir(d):
            os.makedirs(d, 0o755)
            os.chmod(d, 0o755)

    def remove_tree(self, d, what):
        if not os.path.lexists(d):
            return
        self.change(what)
        if self.check:
            return
        if os.path.islink(d) or not os.path.isdir(d):
            os.unlink(d)
        else:
            shutil.rmtree(d)

    def plan_layer(self, layer):
        """Which image copy the node runs on and whether it gets a new layer: (image_dir, digest, new).
        A node keeps its copy until it is reset (fresh); a node without a layer gets image_dir."""
        p = self.p
        digest, lower = layer.recorded()
        wanted = os.path.join(os.path.realpath(p['image_dir']), 'root')
        if p['fresh'] or digest is None:
            return p['image_dir'], p['image_digest'], True
        if lower == wanted and digest == p['image_digest']:
            return p['image_dir'], digest, False
        if not os.path.isdir(lower):
            raise NetbootRootError('%s\'s layer %s was made on the image copy %s, which is gone: reset the node (fresh=true, the '
                                   'netboot role\'s reset_root entry point, playbooks/reprovision.yml) to move it to %s. Nothing was '
                                   'changed.' % (p['hostname'], layer.layer_dir, lower, p['image_dir']))
        self.image_pending = True
        running = (p['hostname'], digest[:12], os.path.dirname(lower), p['image_digest'][:12], p['image_dir'])
        self.warn('%s runs image %s (%s); image %s is unpacked in %s: reset the node (playbooks/reprovision.yml) to move it '
                  'to the new image (its layer is dropped)' % running)
        return os.path.dirname(lower), digest, False

    def old_copy(self):
        """A full copy of an image at path (the netboot role before 2.0.0): the directory the mount
        point must be. Returns whether there is one; anything else in a non-empty path is refused."""
        p = self.p
        if not os.path.isdir(p['path']) or os.path.ismount(p['path']) or not os.listdir(p['path']):
            return False
        if os.path.isfile(os.path.join(p['path'], p['digest_file'])):
            return True
        raise NetbootRootError('%s is a directory with files in it, not a mount point: the node\'s root is mounted there (an '
                               'overlay of the image copy and the node\'s layer). Move its files away or remove it. Nothing was '
                               'changed.' % p['path'])

    def prepare_layer(self, layer):
        """The overlay at path, on the image copy the node runs, with its layer, in the fstab and
        mounted; a new layer gets new boot files. Returns (image_dir, new)."""
        p = self.p
        image_dir, digest, new = self.plan_layer(layer)
        lower = os.path.join(os.path.realpath(image_dir), 'root')
        self.check_image(image_dir)
        if self.check:
            rsync = None
        else:
            # Looked up before anything is changed: a master without rsync keeps the node as it is.
            rsync = self.runner.get_bin_path('rsync', required=True)
        mounted = layer.mounted()
        if mounted == '':
            raise NetbootRootError('%s is a mount point of another kind than the node\'s overlay: unmount it (and remove its line '
                                   'from %s). Nothing was changed.' % (p['path'], layer.fstab))
        if new or (mounted is not None and not layer.mounted_on(lower)):
            if mounted is not None:
                layer.unmount()
                mounted = None
        if new:
            if self.old_copy():
                self.remove_tree(p['path'], 'removed the full copy in %s' % p['path'])
            layer.empty(digest, lower)
            if p['fresh']:
                self.remove_tree(p['boot_path'], 'removed %s' % p['boot_path'])
        self.fstab_changed = layer.ensure_fstab(lower, write_atomic)
        if mounted is None:
            layer.mount(lower)
        if not self.check:
            layer.restore_export()
        if not os.path.isdir(p['boot_path']) or new:
            self.boot_files(rsync, image_dir, new)
        return image_dir, new

    def boot_files(self, rsync, image_dir, new):
        """The image copy's boot files as hard links to the copy's (cp -al: nothing is read or
        written but the directory entries; the TFTP server only reads them, and the identity step
        replaces cmdline.txt with a file of the node's own), or copied with rsync where the TFTP
        root is on another file system. Made beside boot_path and renamed into place, so that a
        run that stops half-way leaves no boot_path, and the next run makes it again."""
        p = self.p
        self.change('boot files %s from %s' % (p['boot_path'], image_dir))
        if self.check:
            return
        src = os.path.join(image_dir, 'boot')
        staging = p['boot_path'].rstrip(os.sep) + '.new'
        if os.path.isdir(staging):
            shutil.rmtree(staging)
        self.make_dir(os.path.dirname(staging))
        if os.stat(src).st_dev == os.stat(os.path.dirname(staging) or os.sep).st_dev:
            cp = self.runner.get_bin_path('cp', required=True)
            self._copy_command('cp -al', [cp, '-al', '--', src.rstrip(os.sep), staging], src, p['boot_path'])
        else:
            self.make_dir(staging)
            self._copy_command('rsync', [rsync, '-rlt', '--chmod=D0755,F0644', '--delete', src.rstrip(os.sep) + os.sep,
                                         staging + os.sep], src, p['boot_path'])
        if os.path.isdir(p['boot_path']) and not os.path.islink(p['boot_path']):
            shutil.rmtree(p['boot_path'])
        os.rename(staging, p['boot_path'])

    def trees(self, image_dir, new):
        """The node's root and boot directory as the identity step reads them."""
        p = self.p
        if self.check and (new or not os.path.ismount(p['path'])):
            # Nothing was mounted: a new layer shows the image copy's files.
            return (Tree(os.path.join(image_dir, 'root'), p['path']),
                    Tree(os.path.join(image_dir, 'boot'), p['boot_path'], attrs_known=False))
        return Tree(p['path'], p['path']), Tree(p['boot_path'], p['boot_path'])

    # --- step 2: the identity ---

    def ensure_file(self, tree, rel, what, content, mode=None, create=True, uid=0, gid=0):
        """Give ``rel`` the content that ``content(old bytes or None)`` returns, owner ``uid``:``gid``
        (root) and ``mode``; mode None keeps the file's owner and mode (as lineinfile does)."""
        real = tree.resolve(rel)
        try:
            st = os.stat(real)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            raise NetbootRootError('%s is not a regular file: remove it, or run with fresh=true to copy the node again' % tree.show(rel))
        if st is None and not create:
            return
        before = None
        if st is not None:
            with open(real, 'rb') as f:
                before = f.read()
        after = content(before)
        content_changed = before != after
        attrs_changed = (mode is not None and st is not None and tree.attrs_known
                         and (stat.S_IMODE(st.st_mode) != mode or st.st_uid != uid or st.st_gid != gid))
        if not (content_changed or attrs_changed):
            return
        diff = None
        if content_changed:
            header = tree.show(rel)
            diff = dict(before_header=header, after_header=header,
                        before=to_text(before or b'', errors='surrogate_or_replace'),
                        after=to_text(after, errors='surrogate_or_replace'))
        self.change(what, diff)
        if self.check:
            return
        if content_changed:
            if mode is None:
                write_atomic(real, after, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            else:
                write_atomic(real, after, mode, uid, gid)
        else:
            os.chown(real, uid, gid)
            os.chmod(real, mode)

    def ensure_dir(self, tree, rel, what, mode, uid=0, gid=0):
        """``rel`` a directory of owner ``uid``:``gid`` (root) and ``mode``; missing parents are
        created the same way (as the file module does)."""
        real = tree.resolve(rel)
        if real in self.planned:
            return
        if os.path.isdir(real):
            st = os.stat(real)
            if stat.S_IMODE(st.st_mode) == mode and st.st_uid == uid and st.st_gid == gid:
                return
            self.change(what)
            if not self.check:
                os.chown(real, uid, gid)
                os.chmod(real, mode)
            return
        if os.path.lexists(real):
            raise NetbootRootError('%s is not a directory: remove it, or run with fresh=true to copy the node again' % tree.show(rel))
        self.change(what)
        current = tree.real
        for part in os.path.relpath(real, tree.real).split(os.sep):
            current = os.path.join(current, part)
            if os.path.isdir(current):
                continue
            if self.check:
                self.planned.add(current)
            else:
                os.mkdir(current, mode)
                os.chown(current, uid, gid)
                os.chmod(current, mode)

    def ensure_link(self, tree, rel, target):
        """``rel`` a symbolic link to ``target`` (a path on the node, never followed here), as
        systemctl makes them; a link of another target is replaced."""
        real = tree.leaf(rel)
        before = os.readlink(real) if os.path.islink(real) else None
        if before == target:
            return
        if before is None and os.path.lexists(real):
            raise NetbootRootError('%s is not a symbolic link: remove it, or run with fresh=true to copy the node again' % tree.show(rel))
        header = tree.show(rel)
        self.change('/' + rel, dict(before_header=header, after_header=header,
                                    before='symbolic link to %s\n' % before if before else '',
                                    after='symbolic link to %s\n' % target))
        if self.check:
            return
        tmp = os.path.join(os.path.dirname(real), '.%s.%s.tmp' % (os.path.basename(real), to_text(binascii.hexlify(os.urandom(4)))))
        os.symlink(target, tmp)
        try:
            os.rename(tmp, real)
        except BaseException:
            os.unlink(tmp)
            raise

    def remove(self, tree, rel):
        """Remove the file or symbolic link ``rel`` (never a directory), when it is there."""
        real = tree.leaf(rel)
        if os.path.islink(real):
            before = 'symbolic link to %s\n' % os.readlink(real)
        elif os.path.isfile(real):
            with open(real, 'rb') as f:
                before = to_text(f.read(), errors='surrogate_or_replace')
        else:
            return
        header = tree.show(rel)
        self.change('removed /' + rel, dict(before_header=header, after_header=header, before=before, after=''))
        if not self.check:
            os.unlink(real)

    def host_keys(self, tree, copied):
        """Each host key of ssh_key_types: kept when the root has it, made when it is missing. A root
        just copied keeps none of the image's keys (an image's keys would be every node's)."""
        hostname = self.p['hostname']
        removed = set()
        if copied:
            ssh_dir = tree.resolve('etc/ssh')
            names = sorted(os.listdir(ssh_dir)) if os.path.isdir(ssh_dir) else []
            for name in names:
                if name.startswith('ssh_host_') and '_key' in name:
                    self.remove(tree, 'etc/ssh/' + name)
                    removed.add(name)
        for key_type in self.p['ssh_key_types']:
            rel = 'etc/ssh/ssh_host_%s_key' % key_type
            key = tree.resolve(rel)
            if os.path.exists(key) and os.path.basename(rel) not in removed:
                continue
            # ssh-keygen writes <key>.pub beside it: that one must stay in the root too.
            tree.inside(os.path.realpath(key + '.pub'), rel + '.pub')
            self.change('ssh host key %s' % key_type)
            if self.check:
                continue
            keygen = self.runner.get_bin_path('ssh-keygen', required=True)
            rc, out, err = self.run_command([keygen, '-q', '-t', key_type, '-N', '', '-C', 'root@%s' % hostname, '-f', key])
            if rc != 0:
                raise NetbootRootError('ssh-keygen could not make the %s host key %s (rc=%d): %s'
                                       % (key_type, tree.show(rel), rc, (err or out).strip()), rc=rc, stdout=out, stderr=err)
        # What the node serves, for the controller's known_hosts (in check mode, the keys already there).
        for key_type in self.p['ssh_key_types']:
            pub = 'etc/ssh/ssh_host_%s_key.pub' % key_type
            data = None if 'ssh_host_%s_key.pub' % key_type in removed and self.check else tree.read(pub)
            line = to_text(data or b'', errors='surrogate_or_replace').strip()
            if line and len(line.split()) >= 2:
                self.host_key_info.append(dict(type=key_type, public_key=line, fingerprint=fingerprint(line)))

    def identity(self, root, boot, copied=False):
        p = self.p
        hostname = p['hostname']
        cmdline = cmdline_with_params(p['cmdline'], p.get('cmdline_params') or ())
        self.ensure_file(boot, 'cmdline.txt', 'cmdline.txt', lambda old: to_bytes(cmdline + '\n'), 0o644)
        self.ensure_file(root, 'etc/fstab', '/etc/fstab', fstab_without_local_disks, create=False)
        self.ensure_file(root, 'etc/hostname', '/etc/hostname', lambda old: to_bytes(hostname + '\n'), 0o644)
        self.ensure_file(root, 'etc/hosts', '/etc/hosts', lambda old: hosts_with_line(old, hostname), 0o644)
        self.ensure_dir(root, 'etc/ssh', '/etc/ssh', 0o755)
        self.host_keys(root, copied)
        if p['authorized_keys']:
            keys = to_bytes('\n'.join(p['authorized_keys']) + '\n')
            self.ensure_dir(root, 'root/.ssh', '/root/.ssh', 0o700)
            self.ensure_file(root, 'root/.ssh/authorized_keys', '/root/.ssh/authorized_keys', lambda old: keys, 0o600)
        FirstBoot(self, root).prepare(copied)


class Units(object):
    """The systemd units of a node's root, enabled and disabled the way systemctl does it: the
    symbolic links in etc/systemd/system, made from each unit's [Install] section."""

    def __init__(self, node, tree):
        self.node, self.tree = node, tree

    def find(self, unit):
        """(the unit file's path on the node, its content), or None. A template instance such as
        getty@tty1.service is found as its template getty@.service."""
        names = [unit]
        if '@' in unit:
            names.append(re.sub(r'@[^.]*\.', '@.', unit, count=1))
        # A merged /usr (lib a link to usr/lib) keeps its units in /usr/lib.
        merged = os.path.islink(os.path.join(self.tree.real, 'lib'))
        for name in names:
            for directory in UNIT_DIRS:
                if merged and directory == 'lib/systemd/system':
                    continue
                rel = '%s/%s' % (directory, name)
                if directory == UNIT_CONFIG and os.path.islink(self.tree.leaf(rel)):
                    continue  # a mask or a linked unit, not a unit file of its own
                if self.tree.is_file(rel):
                    return '/' + rel, self.tree.read(rel)
        return None

    def _config_dir(self):
        real = self.tree.resolve(UNIT_CONFIG)
        try:
            return real, sorted(os.listdir(real))
        except OSError:
            return real, []

    def links(self, unit):
        """The links that enable ``unit``: etc/systemd/system/<target>.wants/<unit> (and .requires)."""
        real, names = self._config_dir()
        return ['%s/%s/%s' % (UNIT_CONFIG, name, unit) for name in names
                if name.endswith(('.wants', '.requires')) and os.path.lexists(os.path.join(real, name, unit))]

    def masked(self, unit):
        real = self.tree.leaf('%s/%s' % (UNIT_CONFIG, unit))
        return os.path.islink(real) and os.readlink(real) == '/dev/null'

    def enable(self, unit):
        """Unmask ``unit`` and, unless something enables it already, make its [Install] links.
        False when the root has no such unit."""
        found = self.find(unit)
        if found is None:
            return False
        if self.masked(unit):
            self.node.remove(self.tree, '%s/%s' % (UNIT_CONFIG, unit))
        if self.links(unit):
            return True
        path, text = found
        install = unit_install(text)
        for kind, suffix in (('WantedBy', '.wants'), ('RequiredBy', '.requires')):
            for target in install.get(kind, []):
                directory = '%s/%s%s' % (UNIT_CONFIG, target, suffix)
                self.node.ensure_dir(self.tree, directory, '/' + directory, 0o755)
                self.node.ensure_link(self.tree, '%s/%s' % (directory, unit), path)
        for alias in install.get('Alias', []):
            if alias != unit:
                self.node.ensure_dir(self.tree, UNIT_CONFIG, '/' + UNIT_CONFIG, 0o755)
                self.node.ensure_link(self.tree, '%s/%s' % (UNIT_CONFIG, alias), path)
        return True

    def disable(self, unit):
        """Remove the links that enable ``unit`` and its aliases (a mask stays)."""
        found = self.find(unit)
        for rel in self.links(unit):
            self.node.remove(self.tree, rel)
        if found is None:
            return
        real, names = self._config_dir()
        for name in names:
            link = os.path.join(real, name)
            if name != unit and os.path.islink(link) and os.readlink(link) == found[0]:
                self.node.remove(self.tree, '%s/%s' % (UNIT_CONFIG, name))


class FirstBoot(object):
    """What the root does on its first boot, read from the root itself, and made to work on a
    network-boot node: SSH on, the host keys made here kept, the first user made or its wizard
    off, cloud-init seeded inside the root."""

    def __init__(self, node, root):
        self.node, self.root, self.p = node, root, node.p
        self.units = Units(node, root)
        self.cloud_init = (any(root.is_file(rel) for rel in CLOUD_INIT_PROGRAMS)
                           and not root.is_file(CLOUD_INIT_DISABLED))
        info = node.first_boot
        for name, present in (('sshswitch', self.units.find(SSHSWITCH_UNIT)),
                              ('regenerate_ssh_host_keys', self.units.find(REGENERATE_UNIT)),
                              ('userconf-pi', self.units.find(USERCONFIG_UNIT)),
                              ('cloud-init', self.cloud_init)):
            if present:
                info['mechanisms'].append(name)

    def prepare(self, copied):
        self.ssh_on()
        # regenerate_ssh_host_keys would replace the keys made here on the first boot (it disables
        # itself when done: the root is left as it would be after that boot); sshswitch looks for
        # an "ssh" file on a firmware partition an NFS root does not mount, and fails on an arm node.
        self.units.disable(REGENERATE_UNIT)
        self.units.disable(SSHSWITCH_UNIT)
        wizard = bool(self.units.links(USERCONFIG_UNIT))
        if self.cloud_init:
            self.seed(copied)
            if wizard:
                self.cancel_wizard()
        elif wizard:
            if self.p['admin_user']:
                self.userconf()
            else:
                self.cancel_wizard()
        elif self.p['admin_user']:
            if self.p['admin_user'] in [e['name'] for e in passwd_entries(self.root.read('etc/passwd'))]:
                self.node.first_boot['user'] = self.p['admin_user']
            else:
                self.node.warn('%s has neither cloud-init nor userconf-pi\'s wizard to make admin_user %s on its first boot: '
                               'turingpi.cluster.node makes it, logging in as root with authorized_keys'
                               % (self.root.shown, self.p['admin_user']))

    def ssh_on(self):
        for unit in SSH_UNITS:
            if self.units.find(unit) is None:
                continue
            # Already on: its own link, or the socket that starts it (Ubuntu's ssh.socket).
            if not any(self.units.links(name) for name in SSH_UNITS + SSH_SOCKETS):
                self.units.enable(unit)
            elif self.units.masked(unit):
                self.node.remove(self.root, '%s/%s' % (UNIT_CONFIG, unit))
            return
        self.node.warn('%s has no ssh.service (openssh-server): SSH cannot be switched on, so the node will not be reachable '
                       'over SSH' % self.root.shown)

    def cancel_wizard(self):
        """What userconf-pi's cancel-rename does: no wizard, the console's login back, no banner."""
        self.units.disable(USERCONFIG_UNIT)
        self.units.enable(GETTY_UNIT)
        self.node.remove(self.root, RENAME_BANNER)

    def userconf(self):
        """userconf.txt where userconf-service will read it on the first boot: it renames the user
        of uid 1000 (moving its home) and sets its password; the keys go to that home, so that they
        move with it."""
        node, root, p = self.node, self.root, self.p
        first = [e for e in passwd_entries(root.read('etc/passwd')) if e['uid'] == 1000]
        if not first:
            raise NetbootRootError('%s has userconf-pi\'s wizard on but no user of uid 1000 for it to rename into admin_user %s: '
                                   'use an image with its first user, or leave admin_user empty (the wizard is then switched off)'
                                   % (root.show('etc/passwd'), p['admin_user']))
        fwloc = fwloc_of(root.read(SYS_MODS_DEFAULT)).lstrip('/')
        if not root.has_dir(fwloc):
            node.ensure_dir(root, fwloc, '/' + fwloc, 0o755)
        line = to_bytes('%s:%s\n' % (p['admin_user'], p['admin_password_hash'] or NO_PASSWORD))
        node.ensure_file(root, fwloc + '/userconf.txt', '/%s/userconf.txt' % fwloc, lambda old: line, 0o600)
        if p['admin_ssh_keys']:
            self.user_keys(first[0])
        node.first_boot['user'] = p['admin_user']

    def user_keys(self, user):
        home = user['home'].strip('/')
        keys = to_bytes('\n'.join(self.p['admin_ssh_keys']) + '\n')
        ids = dict(uid=user['uid'], gid=user['gid'])
        if not self.root.has_dir(home):
            self.node.ensure_dir(self.root, home, '/' + home, 0o700, **ids)
        self.node.ensure_dir(self.root, home + '/.ssh', '/%s/.ssh' % home, 0o700, **ids)
        self.node.ensure_file(self.root, home + '/.ssh/authorized_keys', '/%s/.ssh/authorized_keys' % home,
                              lambda old: keys, 0o600, **ids)

    def seed(self, copied):
        """cloud-init's NoCloud seed in the root. The instance-id stays while the root and its seed
        stay; a new copy (fresh or a new image) or another seed gets a new one, so cloud-init runs
        again."""
        node, root, p = self.node, self.root, self.p
        hostname = p['hostname']
        user_data = cloud_user_data(hostname, p['ssh_key_types'], p['admin_user'], p['admin_password_hash'], p['admin_ssh_keys'])
        old = instance_id_of(root.read(SEED_DIR + '/meta-data'))
        keep = (not copied and old and old.startswith(hostname + '-')
                and root.read(SEED_DIR + '/user-data') == user_data
                and root.read(SEED_DIR + '/meta-data') == cloud_meta_data(hostname, old))
        instance_id = old if keep else new_instance_id(hostname)
        node.ensure_dir(root, SEED_DIR, '/' + SEED_DIR, 0o755)
        node.ensure_file(root, SEED_DIR + '/meta-data', '/%s/meta-data' % SEED_DIR,
                         lambda old: cloud_meta_data(hostname, instance_id), 0o644)
        node.ensure_file(root, SEED_DIR + '/user-data', '/%s/user-data' % SEED_DIR, lambda old: user_data, 0o600)
        node.first_boot.update(instance_id=instance_id, user=p['admin_user'])
