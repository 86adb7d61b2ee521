# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""A network-boot node's root on the master: an overlay of a shared, read-only image copy (the
lower dir) and the node's own writable layer (upper and work dirs), mounted where the node's NFS
export is.

Linux overlayfs can be exported over NFS when it is mounted with ``index=on,nfs_export=on``
(Documentation/filesystems/overlayfs.rst, "NFS export"): the file handles the NFS server hands
out then stay valid across copy-up and remounts. A layer belongs to one lower dir: with
``index=on`` the upper dir records its lower's origin, and mounting it on another lower fails, so
a node moves to a new image only with a new (empty) layer. The layer's ``image`` record says
which image copy it was made for."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import re
import shutil

from ansible.module_utils.common.text.converters import to_bytes, to_text

OVERLAY_FEATURES = 'index=on,nfs_export=on'
# The layer's record: line 1 the image digest, line 2 the lower dir (the copy's root/). The netboot
# role's roles/netboot/files/survey.sh reads line 2 too: keep both in step.
RECORD = 'image'
# Characters overlayfs' option parser and fstab cannot carry in a path (lowerdir's ":" separates
# layers, "," options, white space fstab's fields).
PATH_BAD_RE = re.compile(r'[\s,:\\=]')
MOUNTINFO = '/proc/self/mountinfo'
ETAB = '/var/lib/nfs/etab'


class LayerError(Exception):
    """A step on the node's layer failed; ``msg`` says what to do."""

    def __init__(self, msg, **details):
        super(LayerError, self).__init__(msg)
        self.msg = msg
        self.details = details


def path_problem(path):
    if PATH_BAD_RE.search(path):
        return 'contains a character an overlay mount option cannot hold (white space , : \\ =)'
    return None


def _unescape(field):
    """mountinfo and fstab escape white space and backslashes as octal (\\040)."""
    return re.sub(r'\\([0-7]{3})', lambda m: chr(int(m.group(1), 8)), field)


def mount_at(path, mountinfo=MOUNTINFO):
    """The last mount on ``path`` (what the path shows) as dict(fstype, options), or None."""
    found = None
    try:
        with open(mountinfo, 'rb') as f:
            lines = to_text(f.read(), errors='surrogate_or_replace').splitlines()
    except (IOError, OSError):
        return None
    for line in lines:
        fields = line.split()
        if len(fields) < 10 or '-' not in fields[6:]:
            continue
        sep = fields.index('-', 6)
        if _unescape(fields[4]) != path:
            continue
        found = dict(fstype=fields[sep + 1], source=fields[sep + 2], options=fields[sep + 3].split(','))
    return found


def disk_usage(top):
    """Bytes the files under ``top`` take on disk (hard links counted once)."""
    seen, total = set(), 0
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512
    return total


class Layer(object):
    """The overlay at ``path`` of ``lower`` and ``layer_dir``/upper, as ``node`` (a NodeRoot: its
    change(), check mode and runner) changes it."""

    def __init__(self, node, path, layer_dir, fstab):
        self.node = node
        self.path = os.path.realpath(path)
        self.layer_dir = layer_dir
        self.upper = os.path.join(layer_dir, 'upper')
        self.work = os.path.join(layer_dir, 'work')
        self.record_file = os.path.join(layer_dir, RECORD)
        # The file itself, not a link to it: it is replaced by rename.
        self.fstab = os.path.realpath(fstab)
        self.withdrawn = []

    # --- what is there ---

    def recorded(self):
        """(digest, lower dir) of the image copy the layer was made for, or (None, None)."""
        try:
            with open(self.record_file, 'rb') as f:
                lines = to_text(f.read(), errors='surrogate_or_replace').splitlines()
        except (IOError, OSError):
            return None, None
        if len(lines) < 2 or not lines[0].strip() or not lines[1].strip():
            return None, None
        return lines[0].strip(), lines[1].strip()

    def options(self, lower):
        return 'lowerdir=%s,upperdir=%s,workdir=%s,%s' % (lower, self.upper, self.work, OVERLAY_FEATURES)

    def mounted(self):
        """The overlay's options when ``path`` is an overlay mount, '' for another kind of mount, None when nothing is mounted."""
        found = mount_at(self.path)
        if found is None:
            return None
        return found['options'] if found['fstype'] == 'overlay' else ''

    def mounted_on(self, lower):
        """Whether ``path`` is this layer's overlay on ``lower``."""
        options = self.mounted()
        if not options:
            return False
        want = dict(lowerdir=lower, upperdir=self.upper, workdir=self.work)
        have = dict(o.split('=', 1) for o in options if '=' in o)
        return all(have.get(k) == v for k, v in want.items()) and all(f in options for f in OVERLAY_FEATURES.split(','))

    def fstab_line(self, lower):
        return 'overlay %s overlay %s,x-systemd.requires-mounts-for=%s,x-systemd.requires-mounts-for=%s 0 0' % (
            self.path, self.options(lower), os.path.dirname(lower.rstrip(os.sep)), self.layer_dir)

    # --- changes ---

    def ensure_fstab(self, lower, write_atomic):
        """One fstab line for the mount point, the one this lower needs. Returns whether it changed.
        The netboot role prepares several nodes at once on the master: the read, change and
        rename of the fstab happen under a lock on its directory, so no node's line is lost."""
        lock = os.open(os.path.dirname(self.fstab) or '.', os.O_RDONLY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._ensure_fstab(lower, write_atomic)
        finally:
            os.close(lock)

    def _ensure_fstab(self, lower, write_atomic):
        try:
            with open(self.fstab, 'rb') as f:
                before = f.read()
            mode = os.stat(self.fstab).st_mode & 0o7777
        except (IOError, OSError):
            before, mode = b'', 0o644
        want = to_bytes(self.fstab_line(lower))
        lines, placed = [], False
        for line in before.splitlines():
            fields = line.split()
            if len(fields) >= 2 and not line.lstrip().startswith(b'#') and _unescape(to_text(fields[1])) == self.path:
                if not placed:
                    lines.append(want)
                    placed = True
                continue
            lines.append(line)
        if not placed:
            lines.append(want)
        after = b'\n'.join(lines) + b'\n'
        if after == before:
            return False
        self.node.change('%s: %s' % (self.fstab, self.path), dict(before_header=self.fstab, after_header=self.fstab,
                                                                  before=to_text(before), after=to_text(after)))
        if not self.node.check:
            write_atomic(self.fstab, after, mode, 0, 0)
        return True

    def _run(self, argv, what):
        rc, out, err = self.node.run_command(argv)
        if rc != 0:
            raise LayerError('%s failed (rc=%d): %s' % (what, rc, (err or out).strip()), rc=rc, stdout=out, stderr=err, cmd=argv)
        return out

    def withdraw_export(self):
        """Take the node's root out of the NFS server's exports (a mounted file system that nfsd
        exports cannot be unmounted); restore_export() puts /etc/exports back in force."""
        exportfs = self.node.runner.get_bin_path('exportfs')
        if not exportfs:
            return
        try:
            with open(ETAB, 'rb') as f:
                entries = to_text(f.read(), errors='surrogate_or_replace').splitlines()
        except (IOError, OSError):
            return
        for entry in entries:
            fields = entry.split()
            if len(fields) == 2 and fields[0] == self.path:
                client = fields[1].split('(', 1)[0]
                self._run([exportfs, '-u', '%s:%s' % (client, self.path)], 'exportfs -u %s:%s' % (client, self.path))
                self.withdrawn.append(client)

    def restore_export(self):
        if self.withdrawn:
            exportfs = self.node.runner.get_bin_path('exportfs', required=True)
            self._run([exportfs, '-r'], 'exportfs -r')
            self.withdrawn = []

    def unmount(self):
        self.node.change('unmounted %s' % self.path)
        if self.node.check:
            return
        self.withdraw_export()
        umount = self.node.runner.get_bin_path('umount', required=True)
        self._run([umount, self.path], 'umount %s (is the node still running on it, or is it in use on the master?)' % self.path)

    def empty(self, digest, lower):
        """A new, empty layer for ``lower``: the record first removed, so that an interrupted run
        leaves a layer without record, which the next run empties again."""
        self.node.change('new layer %s on image %s' % (self.layer_dir, digest[:12]))
        if self.node.check:
            return
        if os.path.lexists(self.record_file):
            os.unlink(self.record_file)
        for d in (self.upper, self.work):
            if os.path.islink(d) or (os.path.lexists(d) and not os.path.isdir(d)):
                os.unlink(d)
            elif os.path.isdir(d):
                shutil.rmtree(d)
        for d in (self.layer_dir, self.upper, self.work):
            if not os.path.isdir(d):
                os.makedirs(d, 0o755)
        os.chmod(self.upper, 0o755)
        with open(self.record_file + '.tmp', 'wb') as f:
            f.write(to_bytes('%s\n%s\n' % (digest, lower)))
            f.flush()
            os.fsync(f.fileno())
        os.rename(self.record_file + '.tmp', self.record_file)

    def mount(self, lower):
        self.node.change('mounted %s on %s' % (self.path, lower))
        if self.node.check:
            return
        if not os.path.isdir(self.path):
            os.makedirs(self.path, 0o755)
        mount = self.node.runner.get_bin_path('mount', required=True)
        self._run([mount, '-t', 'overlay', 'overlay', '-o', self.options(lower), self.path],
                  'mounting the overlay on %s (the master needs overlayfs with nfs_export, Linux 4.16 or later, and the layer and '
                  'image on ext4, xfs or btrfs; the kernel log (dmesg) names overlayfs\' reason)' % self.path)

    def bytes(self):
        return disk_usage(self.layer_dir) if os.path.isdir(self.layer_dir) else 0
