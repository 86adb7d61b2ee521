#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netboot_root
short_description: Prepare a network-boot node's NFS root and boot files on the master, in one step
version_added: 1.1.0
description:
  - On the netboot server (the master), copies an unpacked OS image into one node's NFS root and TFTP
    directory, and gives the node its identity, in one module run. The C(turingpi.cluster.netboot)
    role calls it once per node.
  - Copy. When O(fresh=true), or when the digest file in the node's root (O(digest_file)) does not
    hold O(image_digest), the image's C(root/) is copied to O(path), into an empty or missing O(path)
    with C(cp -a) (owners, modes, setuid bits, hard links, ACLs and attributes kept; a whole tree
    takes a third of rsync's time), otherwise with C(rsync -aHAX --checksum --numeric-ids --delete);
    and its C(boot/) to O(boot_path) with
    C(rsync -rlt --checksum --chmod=D0755,F0644 --delete). The files are compared by content, so a
    file of the same size and time stamp in a new image is not kept from the old one. The digest
    file is written last, so an interrupted copy is done again by the next run.
  - With O(fresh=true), O(path) and O(boot_path) are removed first, so the node gets a new root
    instead of an update of its old one.
  - Identity, when the node's root has an C(etc) directory. C(cmdline.txt) in O(boot_path) holds
    O(cmdline); the SD card and eMMC lines (C(/dev/mmcblk*), C(PARTUUID=), C(UUID=)) are removed
    from C(etc/fstab); C(etc/hostname) holds O(hostname); C(etc/hosts) resolves it as
    C(127.0.1.1); each SSH host key of O(ssh_key_types) that is missing is generated; and with
    O(authorized_keys), C(root/.ssh/authorized_keys) lets those keys in as root.
  - Every file has its content, owner (root) and mode checked; only what differs is written, each
    file atomically (a temporary file in the same directory, renamed over the old one).
  - The node's root is a file system of its own. A file or directory to write whose path leads
    out of O(path) (or out of O(boot_path)) through a symbolic link, such as an C(etc/hosts) that
    links to the master's C(/etc/hosts), makes the module fail; nothing outside is touched.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  path:
    description:
      - The node's NFS root, an absolute path such as V(/srv/netboot/nfs/node2). Created (mode
        V(0755)) when missing.
    type: path
    required: true
  boot_path:
    description:
      - The node's directory in the TFTP root, an absolute path named after the module's serial
        such as V(/srv/netboot/tftp/1a2b3c4d). Created (mode V(0755)) when missing.
    type: path
    required: true
  image_dir:
    description:
      - The unpacked image (an absolute path), with its root file system in C(root/) and its boot
        partition in C(boot/), as the netboot role's main entry point leaves them.
      - Read only when the node has to be copied.
    type: path
    required: true
  image_digest:
    description:
      - SHA-256 of the image that is unpacked in O(image_dir), as 64 lower-case hexadecimal digits.
      - The node is copied when its digest file holds another value (or none).
      - Default, the first word of O(digest_file) in O(image_dir), where the netboot role records
        which image it unpacked.
    type: str
  digest_file:
    description:
      - Name of the file in the node's root that records which image it was copied from.
    type: str
    default: .turingpi-netboot-image
  hostname:
    description:
      - The node's host name, for C(etc/hostname), C(etc/hosts) and the comment of its SSH host keys.
      - Letters, digits and hyphens, not starting with a hyphen.
    type: str
    required: true
  cmdline:
    description:
      - The node's kernel command line, written to C(cmdline.txt) in O(boot_path) with a newline
        added. One line; pass a template through the C(trim) filter.
    type: str
    required: true
  ssh_key_types:
    description:
      - SSH host keys the node needs. Each one missing from the node's C(etc/ssh) is generated
        with C(ssh-keygen); keys that are there are kept.
    type: list
    elements: str
    choices: [ed25519, ecdsa, rsa]
    default: [ed25519, ecdsa, rsa]
  authorized_keys:
    description:
      - Public keys that may log in as root on the node, one per entry, written to the node's
        C(root/.ssh/authorized_keys) (mode V(0600), in C(root/.ssh) of mode V(0700)).
      - Empty leaves C(root/.ssh) alone.
    type: list
    elements: str
    default: []
  fresh:
    description:
      - Remove O(path) and O(boot_path) and copy the node again from the image, whatever its digest
        file says (for reprovisioning a node; it must be powered off).
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without changing anything.
    support: full
    details:
      - When the node would be copied, the identity steps are predicted from the image (what the
        node's root would hold after the copy), not read from the old root.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: full
    details:
      - Shows the content changes of C(cmdline.txt), C(etc/fstab), C(etc/hostname), C(etc/hosts)
        and C(root/.ssh/authorized_keys); a copy shows the old and the new image digest, not the files.
  idempotent:
    description: When run twice in a row with the same arguments, the second run reports no change.
    support: full
notes:
  - Runs on the netboot server (the master), as root. The C(turingpi.cluster.netboot) role unpacks
    the image and calls this module for each node.
  - Owner root means uid and gid 0, the same in the node's root as on the master.
  - Changing the image replaces the node's root with the image's (C(rsync --delete)), so the node
    gets new SSH host keys too.
requirements:
  - rsync
  - cp (GNU coreutils)
  - ssh-keygen (OpenSSH)
seealso:
  - name: turingpi.cluster.netboot role
    description: Serves the nodes' boot files over TFTP and their roots over NFS, and calls this module for each node.
    link: https://github.com/turingpi-cluster/turingpi.cluster/tree/main/roles/netboot
'''

EXAMPLES = r'''
- name: Copy the node's root and boot files, and give it its identity
  turingpi.cluster.netboot_root:
    path: /srv/netboot/nfs/node2
    boot_path: /srv/netboot/tftp/1a2b3c4d
    image_dir: /srv/netboot/image
    image_digest: 6ac3a10a1f144c7e9d1f8e568d75ca809288280a593eb6ca053e49b539f465a4
    hostname: node2
    cmdline: console=serial0,115200 root=/dev/nfs nfsroot=10.77.0.1:/srv/netboot/nfs/node2,vers=3 rw ip=dhcp rootwait
    authorized_keys:
      - "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"

- name: A fresh root for a node that is reprovisioned (it must be off)
  turingpi.cluster.netboot_root:
    path: "{{ netboot_nfs_root }}/{{ item.name }}"
    boot_path: "{{ netboot_tftp_root }}/{{ item.serial }}"
    image_dir: /srv/netboot/image
    image_digest: "{{ image_digest }}"
    hostname: "{{ item.name }}"
    cmdline: "{{ lookup('ansible.builtin.template', 'cmdline.txt.j2') | trim }}"
    ssh_key_types: [ed25519]
    fresh: true
  loop: "{{ netboot_reset_nodes }}"

- name: What would change on node3?
  turingpi.cluster.netboot_root:
    path: /srv/netboot/nfs/node3
    boot_path: /srv/netboot/tftp/5e6f7a8b
    image_dir: /srv/netboot/image
    image_digest: "{{ image_digest }}"
    hostname: node3
    cmdline: "{{ node3_cmdline }}"
  check_mode: true
  diff: true
  register: preview
'''

RETURN = r'''
copied:
  description: Whether the image was copied to the node (would be, in check mode).
  returned: success
  type: bool
  sample: true
changes:
  description:
    - One short entry per thing changed (that would change, in check mode), in the order they were done.
    - Paths in the node's root start with C(/); C(cmdline.txt) is the one in O(boot_path).
  returned: success
  type: list
  elements: str
  sample: ["copied image 6ac3a10a1f14", "cmdline.txt", "/etc/fstab", "/etc/hostname", "/etc/hosts", "ssh host key ed25519"]
path:
  description: The node's NFS root.
  returned: always
  type: str
  sample: /srv/netboot/nfs/node2
boot_path:
  description: The node's TFTP directory.
  returned: always
  type: str
  sample: /srv/netboot/tftp/1a2b3c4d
'''

import errno
import os
import re
import shutil
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

DIGEST_RE = re.compile(r'^[0-9a-f]{64}$')
HOSTNAME_RE = re.compile(r'^[a-zA-Z0-9][a-zA-Z0-9-]*$')
# The same expressions as the netboot role's lineinfile tasks, applied the same way: to each line
# with its line ending (so "\s" also matches the newline).
FSTAB_RE = re.compile(br'^\s*(/dev/mmcblk\S*|PARTUUID=\S+|UUID=\S+)\s')
HOSTS_RE = re.compile(br'^127\.0\.1\.1\s')
KEY_TYPES = ('ed25519', 'ecdsa', 'rsa')
NEXT_STEP = 'run the netboot role\'s main entry point first (playbooks/bootstrap.yml does)'


class Tree(object):
    """A directory the module writes into (the node's root or its boot directory), never leaving it.

    ``top`` is where the current state is read; ``shown`` is the node's directory, named in
    messages and diffs. They differ in check mode when a copy is pending: the state after the copy
    is the image's, so it is read there. ``attrs_known`` False: the copy decides the files' owner
    and mode (the boot files), so only their content is predicted."""

    def __init__(self, module, top, shown, attrs_known=True):
        self.module, self.top, self.shown, self.attrs_known = module, top, shown, attrs_known
        self.real = os.path.realpath(top)

    def resolve(self, rel):
        """The real path of ``rel`` under the tree, after every symbolic link; fails when it leads out."""
        return self.inside(os.path.realpath(os.path.join(self.top, rel)), rel)

    def inside(self, real, rel):
        if real != self.real and not real.startswith(self.real.rstrip(os.sep) + os.sep):
            self.module.fail_json(msg='%s leads out of %s through a symbolic link (to %s): the node\'s files must stay in its own '
                                      'root; replace the link with a file or directory, or run with fresh=true to copy the node again'
                                      % (os.path.join(self.shown, rel), self.shown, real),
                                  path=self.module.params['path'], boot_path=self.module.params['boot_path'])
        return real

    def show(self, rel):
        return os.path.join(self.shown, rel)


def _lines(data):
    """Split like a binary file's readlines(): after each b'\\n', line endings kept."""
    parts = data.split(b'\n')
    lines = [part + b'\n' for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def fstab_without_local_disks(data):
    return b''.join(line for line in _lines(data) if not FSTAB_RE.search(line))


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
    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.check = module.check_mode
        self.changes = []
        self.diffs = []

    def fail(self, msg, **kwargs):
        self.module.fail_json(msg=msg, path=self.p['path'], boot_path=self.p['boot_path'], **kwargs)

    def change(self, what, diff=None):
        self.changes.append(what)
        if diff is not None and self.module._diff:
            self.diffs.append(diff)

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
            self.no_image('%s is missing or empty: no unpacked image in %s' % (record, self.p['image_dir']))
        return words[0]

    def no_image(self, why):
        """No unpacked image: a failure, except in check mode, where the main entry point's unpack
        was only predicted too; then the node would be copied from the image it would unpack."""
        if not self.check:
            self.fail('%s; %s. Nothing was changed.' % (why, NEXT_STEP))
        self.module.warn('%s: in check mode the node is reported as copied from the image the netboot role would unpack' % why)
        self.module.exit_json(changed=True, copied=True, changes=['copied image (not unpacked yet)'],
                              path=self.p['path'], boot_path=self.p['boot_path'])

    def validate(self):
        p = self.p
        name = p['digest_file']
        if not name or name in ('.', '..') or os.sep in name:
            self.fail('digest_file must be a file name in the node\'s root (no "/"), not %r' % name)
        if not HOSTNAME_RE.match(p['hostname']):
            self.fail('hostname %r is not a host name: use letters, digits and hyphens, not starting with a hyphen' % p['hostname'])
        if '\n' in p['cmdline'] or '\r' in p['cmdline']:
            self.fail('cmdline must be one line (cmdline.txt is read as one line): remove the line breaks, for example with the trim filter')
        for opt in ('path', 'boot_path', 'image_dir'):
            if not os.path.isabs(p[opt]):
                self.fail('%s must be an absolute path, not %r' % (opt, p[opt]))
            if os.path.realpath(p[opt]) == os.sep:
                self.fail('%s must not be the root directory /' % opt)
        real = dict((opt, os.path.realpath(p[opt])) for opt in ('path', 'boot_path', 'image_dir'))
        for a, b in (('path', 'boot_path'), ('path', 'image_dir'), ('boot_path', 'image_dir')):
            if _overlap(real[a], real[b]):
                self.fail('%s (%s) and %s (%s) overlap: each needs a directory of its own' % (a, p[a], b, p[b]))
        if p['image_digest'] is None:
            p['image_digest'] = self.unpacked_digest()
        if not DIGEST_RE.match(p['image_digest']):
            self.fail('image_digest must be the image\'s SHA-256 as 64 lower-case hexadecimal digits, not %r' % p['image_digest'])

    # --- step 1: the copy ---

    def recorded_digest(self):
        try:
            with open(os.path.join(self.p['path'], self.p['digest_file']), 'rb') as f:
                return to_text(f.read(), errors='surrogate_or_replace').strip()
        except (IOError, OSError):
            return ''

    def check_image(self):
        for part in ('root', 'boot'):
            d = os.path.join(self.p['image_dir'], part)
            if not os.path.isdir(d):
                self.no_image('%s is not a directory: no unpacked image in %s' % (d, self.p['image_dir']))

    def rsync(self, rsync, args, src, dest):
        cmd = [rsync] + args + [src.rstrip(os.sep) + os.sep, dest.rstrip(os.sep) + os.sep]
        rc, out, err = self.module.run_command(cmd, expand_user_and_vars=False)
        if rc != 0:
            self.fail('rsync from %s to %s failed (rc=%d): %s. The node is copied again on the next run.'
                      % (src, dest, rc, (err or out).strip()), rc=rc, stdout=out, stderr=err, cmd=cmd)

    def cp(self, src, dest):
        """A whole tree into an empty directory: cp -a copies in the kernel, rsync pipes every
        byte through its processes."""
        cmd = [self.module.get_bin_path('cp', required=True), '-a', '--', os.path.join(src, '.'), dest.rstrip(os.sep) + os.sep]
        rc, out, err = self.module.run_command(cmd, expand_user_and_vars=False)
        if rc != 0:
            self.fail('cp from %s to %s failed (rc=%d): %s. The node is copied again on the next run.'
                      % (src, dest, rc, (err or out).strip()), rc=rc, stdout=out, stderr=err, cmd=cmd)

    def make_dir(self, d):
        if not os.path.isdir(d):
            os.makedirs(d, 0o755)
            os.chmod(d, 0o755)

    def copy(self, old):
        p = self.p
        digest = p['image_digest']
        # Looked up before anything is removed: a master without rsync keeps the node's old root.
        rsync = None if self.check else self.module.get_bin_path('rsync', required=True)
        if p['fresh']:
            for d in (p['path'], p['boot_path']):
                if os.path.lexists(d):
                    self.change('removed %s' % d)
                    if not self.check:
                        if os.path.islink(d) or not os.path.isdir(d):
                            os.unlink(d)
                        else:
                            shutil.rmtree(d)
        self.change('copied image %s' % digest[:12], dict(
            before_header='%s (image %s)' % (p['path'], old or 'none'),
            after_header='%s (image %s)' % (p['path'], digest),
            before='image %s\n' % (old or 'none'),
            after='image %s%s\n' % (digest, ', fresh copy' if p['fresh'] else '')))
        if self.check:
            return
        empty = not os.path.isdir(p['path']) or not os.listdir(p['path'])
        for d in (p['path'], p['boot_path']):
            self.make_dir(d)
        image = p['image_dir']
        if empty:
            self.cp(os.path.join(image, 'root'), p['path'])
        else:
            self.rsync(rsync, ['-aHAX', '--checksum', '--numeric-ids', '--delete'], os.path.join(image, 'root'), p['path'])
        self.rsync(rsync, ['-rlt', '--checksum', '--chmod=D0755,F0644', '--delete'], os.path.join(image, 'boot'), p['boot_path'])
        # Last: a copy that stopped half-way has no digest file, so the next run copies again.
        tree = Tree(self.module, p['path'], p['path'])
        write_atomic(tree.resolve(p['digest_file']), to_bytes(digest + '\n'), 0o644, 0, 0)

    # --- step 2: the identity ---

    def ensure_file(self, tree, rel, what, content, mode=None, create=True):
        """Give ``rel`` the content that ``content(old bytes or None)`` returns, owner root and
        ``mode``; mode None keeps the file's owner and mode (as lineinfile does)."""
        real = tree.resolve(rel)
        try:
            st = os.stat(real)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            st = None
        if st is not None and not stat.S_ISREG(st.st_mode):
            self.fail('%s is not a regular file: remove it, or run with fresh=true to copy the node again' % tree.show(rel))
        if st is None and not create:
            return
        before = None
        if st is not None:
            with open(real, 'rb') as f:
                before = f.read()
        after = content(before)
        content_changed = before != after
        attrs_changed = (mode is not None and st is not None and tree.attrs_known
                         and (stat.S_IMODE(st.st_mode) != mode or st.st_uid != 0 or st.st_gid != 0))
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
                write_atomic(real, after, mode, 0, 0)
        else:
            os.chown(real, 0, 0)
            os.chmod(real, mode)

    def ensure_dir(self, tree, rel, what, mode):
        """``rel`` a directory of owner root and ``mode``; missing parents are created the same way
        (as the file module does)."""
        real = tree.resolve(rel)
        if os.path.isdir(real):
            st = os.stat(real)
            if stat.S_IMODE(st.st_mode) == mode and st.st_uid == 0 and st.st_gid == 0:
                return
            self.change(what)
            if not self.check:
                os.chown(real, 0, 0)
                os.chmod(real, mode)
            return
        if os.path.lexists(real):
            self.fail('%s is not a directory: remove it, or run with fresh=true to copy the node again' % tree.show(rel))
        self.change(what)
        if self.check:
            return
        current = tree.real
        for part in os.path.relpath(real, tree.real).split(os.sep):
            current = os.path.join(current, part)
            if not os.path.isdir(current):
                os.mkdir(current, mode)
                os.chown(current, 0, 0)
                os.chmod(current, mode)

    def host_keys(self, tree):
        hostname = self.p['hostname']
        for key_type in self.p['ssh_key_types']:
            rel = 'etc/ssh/ssh_host_%s_key' % key_type
            key = tree.resolve(rel)
            if os.path.exists(key):
                continue
            # ssh-keygen writes <key>.pub beside it: that one must stay in the root too.
            tree.inside(os.path.realpath(key + '.pub'), rel + '.pub')
            self.change('ssh host key %s' % key_type)
            if self.check:
                continue
            keygen = self.module.get_bin_path('ssh-keygen', required=True)
            cmd = [keygen, '-q', '-t', key_type, '-N', '', '-C', 'root@%s' % hostname, '-f', key]
            rc, out, err = self.module.run_command(cmd, expand_user_and_vars=False)
            if rc != 0:
                self.fail('ssh-keygen could not make the %s host key %s (rc=%d): %s'
                          % (key_type, tree.show(rel), rc, (err or out).strip()), rc=rc, stdout=out, stderr=err)

    def identity(self, root, boot):
        p = self.p
        hostname = p['hostname']
        self.ensure_file(boot, 'cmdline.txt', 'cmdline.txt', lambda old: to_bytes(p['cmdline'] + '\n'), 0o644)
        self.ensure_file(root, 'etc/fstab', '/etc/fstab', fstab_without_local_disks, create=False)
        self.ensure_file(root, 'etc/hostname', '/etc/hostname', lambda old: to_bytes(hostname + '\n'), 0o644)
        self.ensure_file(root, 'etc/hosts', '/etc/hosts', lambda old: hosts_with_line(old, hostname), 0o644)
        self.ensure_dir(root, 'etc/ssh', '/etc/ssh', 0o755)
        self.host_keys(root)
        if p['authorized_keys']:
            keys = to_bytes('\n'.join(p['authorized_keys']) + '\n')
            self.ensure_dir(root, 'root/.ssh', '/root/.ssh', 0o700)
            self.ensure_file(root, 'root/.ssh/authorized_keys', '/root/.ssh/authorized_keys', lambda old: keys, 0o600)

    def run(self):
        p = self.p
        self.validate()
        old = self.recorded_digest()
        copied = p['fresh'] or old != p['image_digest']
        if copied:
            self.check_image()
            self.copy(old)
        elif not os.path.isdir(p['boot_path']):
            self.fail('%s does not exist although the node\'s root %s holds image %s: copy the node again with fresh=true '
                      '(the netboot role\'s reset_root entry point)' % (p['boot_path'], p['path'], p['image_digest'][:12]))
        if copied and self.check:
            # Nothing was copied: after the copy the node's files would be the image's.
            image = p['image_dir']
            # rsync -a keeps the root's owners and modes; the boot files get root and --chmod.
            root = Tree(self.module, os.path.join(image, 'root'), p['path'])
            boot = Tree(self.module, os.path.join(image, 'boot'), p['boot_path'], attrs_known=False)
        else:
            root = Tree(self.module, p['path'], p['path'])
            boot = Tree(self.module, p['boot_path'], p['boot_path'])
        if os.path.isdir(os.path.join(root.top, 'etc')):
            self.identity(root, boot)
        result = dict(changed=bool(self.changes), copied=copied, changes=self.changes, path=p['path'], boot_path=p['boot_path'])
        if self.module._diff:
            result['diff'] = self.diffs
        return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            boot_path=dict(type='path', required=True),
            image_dir=dict(type='path', required=True),
            image_digest=dict(type='str'),
            digest_file=dict(type='str', default='.turingpi-netboot-image'),
            hostname=dict(type='str', required=True),
            cmdline=dict(type='str', required=True),
            ssh_key_types=dict(type='list', elements='str', choices=list(KEY_TYPES), default=list(KEY_TYPES), no_log=False),
            authorized_keys=dict(type='list', elements='str', default=[], no_log=False),
            fresh=dict(type='bool', default=False),
        ),
        supports_check_mode=True,
    )
    node = NodeRoot(module)
    try:
        result = node.run()
    except (IOError, OSError) as exc:
        node.fail('cannot prepare the node\'s root: %s (the module runs as root on the netboot server; '
                  'the next run goes on from here)' % to_native(exc), changes=node.changes)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
