# -*- coding: utf-8 -*-
# SPDX-License-Identifier: GPL-3.0-or-later
"""The overlay layer of a network-boot node (module_utils/_node_layer.py): the master's fstab lines,
written by several module runs at once, and the mount table as the kernel prints it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import multiprocessing
import os

from ansible_collections.turingpi.cluster.plugins.module_utils import _node_layer as layers
from ansible_collections.turingpi.cluster.plugins.module_utils._netboot_root import write_atomic


class Node(object):
    """What Layer needs of a NodeRoot: check mode and the list of changes."""

    check = False

    def __init__(self):
        self.changes = []

    def change(self, what, diff=None):
        self.changes.append(what)


def _add_line(args):
    fstab, n = args
    layer = layers.Layer(Node(), '/srv/netboot/nfs/node%d' % n, '/srv/netboot/nfs/.layers/node%d' % n, fstab)
    return layer.ensure_fstab('/srv/netboot/nfs/.image/0123456789abcdef/root', write_atomic)


def test_nodes_prepared_at_once_keep_every_fstab_line(tmp_path):
    fstab = tmp_path / 'fstab'
    fstab.write_text('# the master\nPARTUUID=4e639091-02 / ext4 defaults,noatime 0 1\n')
    pool = multiprocessing.get_context('fork').Pool(8)
    try:
        changed = pool.map(_add_line, [(str(fstab), n) for n in range(2, 42)])
    finally:
        pool.close()
        pool.join()
    assert changed == [True] * 40
    lines = fstab.read_text().splitlines()
    assert lines[:2] == ['# the master', 'PARTUUID=4e639091-02 / ext4 defaults,noatime 0 1']
    assert sorted(line.split()[1] for line in lines[2:]) == sorted('/srv/netboot/nfs/node%d' % n for n in range(2, 42))
    # Again: nothing to change, each line is found by its mount point.
    assert _add_line((str(fstab), 7)) is False


def test_a_line_for_another_lower_is_replaced_in_place(tmp_path):
    fstab = tmp_path / 'fstab'
    fstab.write_text('proc /proc proc defaults 0 0\noverlay /srv/netboot/nfs/node2 overlay lowerdir=/old/root 0 0\ntmpfs /tmp tmpfs 0 0\n')
    node = Node()
    layer = layers.Layer(node, '/srv/netboot/nfs/node2', '/srv/netboot/nfs/.layers/node2', str(fstab))
    assert layer.ensure_fstab('/srv/netboot/nfs/.image/fedcba9876543210/root', write_atomic) is True
    assert fstab.read_text().splitlines() == [
        'proc /proc proc defaults 0 0',
        'overlay /srv/netboot/nfs/node2 overlay lowerdir=/srv/netboot/nfs/.image/fedcba9876543210/root,'
        'upperdir=/srv/netboot/nfs/.layers/node2/upper,workdir=/srv/netboot/nfs/.layers/node2/work,index=on,nfs_export=on,'
        'x-systemd.requires-mounts-for=/srv/netboot/nfs/.image/fedcba9876543210,'
        'x-systemd.requires-mounts-for=/srv/netboot/nfs/.layers/node2 0 0',
        'tmpfs /tmp tmpfs 0 0']
    assert node.changes == ['%s: /srv/netboot/nfs/node2' % fstab]


def test_check_mode_reports_the_line_and_writes_nothing(tmp_path):
    fstab = tmp_path / 'fstab'
    node = Node()
    node.check = True
    layer = layers.Layer(node, '/srv/netboot/nfs/node2', '/srv/netboot/nfs/.layers/node2', str(fstab))
    assert layer.ensure_fstab('/srv/netboot/nfs/.image/0123456789abcdef/root', write_atomic) is True
    assert not fstab.exists() and node.changes == ['%s: /srv/netboot/nfs/node2' % fstab]


def test_the_mount_table_is_read_as_the_kernel_escapes_it(tmp_path):
    info = tmp_path / 'mountinfo'
    info.write_text(
        '24 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda rw\n'
        '70 24 0:40 / /srv/netboot/nfs/node2 rw,relatime shared:30 - overlay overlay '
        'rw,lowerdir=/srv/l/root,upperdir=/srv/u/upper,workdir=/srv/u/work,index=on,uuid=on,nfs_export=on\n'
        '71 24 0:41 / /srv/with\\040space rw - tmpfs tmpfs rw\n')
    found = layers.mount_at('/srv/netboot/nfs/node2', str(info))
    assert found['fstype'] == 'overlay' and 'lowerdir=/srv/l/root' in found['options'] and 'nfs_export=on' in found['options']
    assert layers.mount_at('/srv/with space', str(info))['fstype'] == 'tmpfs'
    assert layers.mount_at('/srv/netboot/nfs/node3', str(info)) is None


def test_the_layer_size_counts_hard_links_once(tmp_path):
    (tmp_path / 'a').write_bytes(b'x' * 65536)
    os.link(str(tmp_path / 'a'), str(tmp_path / 'b'))
    assert layers.disk_usage(str(tmp_path)) == os.stat(str(tmp_path / 'a')).st_blocks * 512
