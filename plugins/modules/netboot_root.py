#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: netboot_root
short_description: Prepare a network-boot node's NFS root (a layer on a shared image copy) and boot files on the master
version_added: 1.0.0
description:
  - On the netboot server (the master), makes one node's NFS root an overlay of a shared, read-only
    copy of an unpacked OS image and a small writable layer of the node's own, fills its TFTP
    directory, and gives the node its identity, in one module run. The C(turingpi.cluster.netboot)
    role calls it once per node.
  - The root. O(path) is the mount point of an overlay (Linux overlayfs) whose lower dir is the
    image copy's C(root/) (O(image_dir)) and whose upper and work dirs are C(upper/) and C(work/) in
    O(layer_dir), mounted with C(index=on,nfs_export=on) so that the kernel NFS server can export it
    (file handles stay valid across copy-up and remounts). The node's changes (its identity, logs,
    packages) land in its layer; the image copy and the other nodes never see them. The mount is
    made at once and its line kept in O(fstab) (one line per mount point, with
    C(x-systemd.requires-mounts-for) the image copy and the layer), so the master mounts it again at boot
    before its NFS server starts.
  - A layer belongs to the image copy it was made on (C(index=on) records the lower dir's origin in
    the upper dir). Its record C(image) in O(layer_dir) names the copy. A node without a layer gets one
    on O(image_dir); a node whose layer was made on another copy stays there, with a warning and
    RV(image_pending), until it is reset (O(fresh=true)); a layer whose copy is gone is refused.
  - With O(fresh=true) the node's layer is dropped and an empty one made on O(image_dir), in seconds
    instead of a copy. Its export is withdrawn (C(exportfs -u)) while the overlay is unmounted and
    restored after (C(exportfs -r)), and its boot files are made again. The node must be off.
  - Boot files. A new layer (or a missing O(boot_path)) gets the image copy's C(boot/) in O(boot_path)
    as hard links to the copy's files (C(cp -al), nothing read or written but directory entries; the
    TFTP server only reads them), or copied with C(rsync -rlt --chmod=D0755,F0644) when O(boot_path)
    is on another file system; C(cmdline.txt) is then replaced by the node's own.
  - A directory with a full copy of an image at O(path) (the netboot role before 2.0.0 copied the
    image for each node; it holds O(digest_file)) is removed when the node gets its layer; any other
    non-empty directory there is refused.
  - Identity, when the node's root has an C(etc) directory. C(cmdline.txt) in O(boot_path) holds
    O(cmdline) with each of O(cmdline_params) it lacks appended (by default the memory cgroup
    flags Kubernetes needs). C(etc/fstab) loses the lines of the eMMC and SD card, by what they
    mount (the root, C(/boot) and C(/boot/firmware) from a local device however it is named
    (C(PARTUUID=), C(UUID=), C(LABEL=), C(PARTLABEL=), C(/dev/...))), every C(/dev/mmcblk*) line,
    and the other partitions of a disk whose C(PARTUUID) those lines name; the rest (C(proc),
    C(tmpfs), NFS, USB disks by C(UUID)) stays. C(etc/hostname) holds O(hostname); C(etc/hosts)
    resolves it as C(127.0.1.1). Each SSH host key of O(ssh_key_types) that is missing is
    generated; a new layer keeps none of the image's host keys (they would be every
    node's). With O(authorized_keys), C(root/.ssh/authorized_keys) lets those keys in as root.
  - First boot, read from the root itself (the units and programs its image has), not from a
    flag. The same steps apply to Raspberry Pi OS Bullseye and Bookworm (raspberrypi-sys-mods'
    C(sshswitch) and C(regenerate_ssh_host_keys), userconf-pi), Raspberry Pi OS Trixie
    (cloud-init, with userconf-pi) and Ubuntu 24.04 (cloud-init), and to any mix of them.
  - SSH on. C(ssh.service) is enabled as C(systemctl enable) does it (its C(WantedBy) link and
    its C(sshd.service) alias), and unmasked, unless it or C(ssh.socket) is enabled already
    (Ubuntu starts it from its socket). C(sshswitch.service) is disabled, as it turns SSH on only for
    an C(ssh) file on the firmware partition, which an NFS root does not mount (on an arm node it
    finds none and fails at every boot).
  - The host keys made here are the ones the node serves. C(regenerate_ssh_host_keys.service),
    which deletes and remakes them on the first boot and then disables itself, is disabled (its
    C(WantedBy) link removed, so the root is as that first boot would leave it). cloud-init is told
    C(ssh_deletekeys=false) and C(ssh_genkeytypes) O(ssh_key_types). The public keys and their
    SHA256 fingerprints are returned (RV(host_keys)) for the controller's C(known_hosts).
  - The first user. With cloud-init, the seed's C(users) makes O(admin_user) (with sudo) or, without
    it, no user at all (no default user with a password to change). Without cloud-init, when
    userconf-pi's wizard (C(userconfig.service)) is enabled, O(admin_user) gives it
    C(userconf.txt) where C(userconf-service) reads it on the first boot (C($FWLOC/userconf.txt) with
    C(FWLOC) from C(etc/default/raspberrypi-sys-mods), else C(/boot), where it falls back when
    C(get_fw_loc) finds no firmware partition), so the real userconf-pi renames the image's user
    of uid 1000 and sets the password; O(admin_ssh_keys) go into that user's home, which the rename
    moves. Without O(admin_user) the wizard is switched off as userconf-pi's C(cancel-rename) does
    it (C(userconfig.service) disabled, C(getty@tty1.service) enabled again, the C(rename_user.conf)
    SSH banner removed), and the controller logs in as root with O(authorized_keys); the
    C(turingpi.cluster.node) role then makes the admin user. On a cloud-init root an enabled
    wizard is switched off the same way, cloud-init makes the user.
  - cloud-init roots get a NoCloud seed in C(var/lib/cloud/seed/nocloud), C(meta-data) with a
    per-node C(instance-id) (O(hostname) and a random suffix, new with every new layer
    (O(fresh=true), a node's first layer), or when the seed changes, so that cloud-init runs again)
    and C(local-hostname), and C(user-data) with the host name, the user and its keys. No
    C(network-config), so the node keeps the address its kernel got over DHCP for its NFS root (what
    cloud-init makes of the C(ip=) configuration, or its DHCP fallback, as with the stock seed).
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
      - The node's NFS root, the mount point of its overlay and the path its NFS export names, an
        absolute path such as V(/srv/netboot/nfs/node2). Created (mode V(0755)) when missing.
      - No white space, V(,), V(:), V(\\) or V(=) (overlay options and fstab cannot hold them); the same for
        O(image_dir) and O(layer_dir).
    type: path
    required: true
  layer_dir:
    description:
      - The node's layer, an absolute path such as V(/srv/netboot/nfs/.layers/node2), on a file system
        overlayfs takes as upper dir (ext4, xfs, btrfs; not FAT, not NFS), the same as the image copy's
        for C(nfs_export). Holds C(upper/), C(work/) and the record C(image). Created when missing.
    type: path
    required: true
  fstab:
    description:
      - The master's fstab, where the overlay's line is kept (found by its mount point O(path)).
    type: path
    default: /etc/fstab
  boot_path:
    description:
      - The node's directory in the TFTP root, an absolute path named after the module's serial
        such as V(/srv/netboot/tftp/1a2b3c4d). Created (mode V(0755)) when missing.
    type: path
    required: true
  image_dir:
    description:
      - The unpacked image copy (an absolute path), with its root file system in C(root/) and its boot
        partition in C(boot/), as the netboot role's main entry point leaves them. Never written, as it is
        the lower dir of every node that runs it, and must not change while they do (unpack a new image
        into a new directory).
    type: path
    required: true
  image_digest:
    description:
      - SHA-256 of the image that is unpacked in O(image_dir), as 64 lower-case hexadecimal digits,
        recorded in a new layer.
      - Default, the first word of O(digest_file) in O(image_dir), where the netboot role records
        which image it unpacked.
    type: str
  digest_file:
    description:
      - Name of the record of the unpacked image in O(image_dir) (its first word is the image's
        digest), and of the file that marks a full copy made by the netboot role before 2.0.0 in O(path).
    type: str
    default: .turingpi-netboot-image
  hostname:
    description:
      - The node's host name, for C(etc/hostname), C(etc/hosts) and the comment of its SSH host keys.
      - One DNS label such as V(node2), of letters, digits and hyphens, 1 to 63 characters, not starting or
        ending with a hyphen, and with no dots. V(node2.lab) is refused; give the short name.
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
      - Drop the node's layer and boot files and start again from O(image_dir), whatever the layer
        was made on (for reprovisioning a node; it must be powered off).
    type: bool
    default: false
  cmdline_params:
    description:
      - Kernel parameters appended to O(cmdline) in C(cmdline.txt) when it lacks them (never removed).
      - The default is what Kubernetes distributions (k3s, k0s, kubeadm) need on a Pi, as the
        C(turingpi.cluster.node) role adds it for nodes that boot from eMMC or SD card (an NFS root
        has no C(cmdline.txt) of its own for that role to change). V([]) turns it off.
    type: list
    elements: str
    default: [cgroup_memory=1, cgroup_enable=memory]
  admin_user:
    description:
      - The first user the node gets on its first boot, made by the root's own mechanism (see the
        description), userconf-pi's C(userconf.txt) or cloud-init's seed.
      - Lower-case letters, digits and hyphens, starting with a letter, 1 to 32 characters, not
        V(root). This is userconf-pi's rule, applied to every image.
      - Needs O(admin_password_hash) or O(admin_ssh_keys). Empty (the default) makes no user, the
        controller logs in as root with O(authorized_keys) and userconf-pi's wizard is switched off.
      - A root with neither mechanism gets no user (a warning says so); the user is not changed
        after the first boot made it (the C(turingpi.cluster.node) role manages it from then on).
    type: str
  admin_password_hash:
    description:
      - The password of O(admin_user) as a crypt(3) hash, such as C(openssl passwd -6) or
        C(mkpasswd -m sha-512) print it (V($6$...)).
      - Without it O(admin_user) has no password and logs in with O(admin_ssh_keys) only (sudo
        without a password, as userconf-pi renames raspberrypi-sys-mods' C(010_pi-nopasswd) rule,
        cloud-init writes C(NOPASSWD)).
      - It is written into the node's root (C(userconf.txt) or the seed's C(user-data), mode
        V(0600)), which the NFS export serves to the cluster subnet.
    type: str
  admin_ssh_keys:
    description:
      - Public keys that may log in as O(admin_user), one per entry.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.FULL
attributes:
  check_mode:
    details:
      - Nothing is mounted, unmounted or written. When the node would get a new layer (or its overlay
        is not mounted), the identity steps are predicted from the image copy (what the new layer
        would show), not read from the old root.
  diff_mode:
    details:
      - Shows the content changes of the files it writes (C(cmdline.txt), C(etc/fstab), C(etc/hostname),
        C(etc/hosts), C(root/.ssh/authorized_keys), the first user's C(userconf.txt) or cloud-init seed),
        the systemd unit links it adds or removes, the files it removes, and the master's fstab line.
notes:
  - Runs on the netboot server (the master), as root. The C(turingpi.cluster.netboot) role unpacks
    the image and calls this module for each node.
  - Owner root means uid and gid 0, the same in the node's root as on the master.
  - A new layer gets new SSH host keys and a new cloud-init C(instance-id).
  - The master needs overlayfs with C(nfs_export) (Linux 4.16 or later; Raspberry Pi OS and Debian
    kernels have it).
  - A netbooted module whose eMMC still has a boot partition labelled for cloud-init's NoCloud
    (C(system-boot) on Ubuntu) with a seed on it would have cloud-init prefer that seed; the netboot
    role's C(bootcode) method empties that partition.
  - O(admin_password_hash) is hidden from the module's output (no_log), diffs included.
requirements:
  - rsync
  - mount, umount (util-linux)
  - ssh-keygen (OpenSSH)
  - exportfs (nfs-kernel-server), when the root is exported
seealso:
  - name: turingpi.cluster.netboot role
    description: Serves the nodes' boot files over TFTP and their roots over NFS, and calls this module for each node.
    link: https://github.com/turingpi-cluster/turingpi.cluster/tree/main/roles/netboot
'''

EXAMPLES = r'''
- name: Mount the node's root (its layer on the shared image copy), fill its boot files, give it its identity
  turingpi.cluster.netboot_root:
    path: /srv/netboot/nfs/node2
    layer_dir: /srv/netboot/nfs/.layers/node2
    boot_path: /srv/netboot/tftp/1a2b3c4d
    image_dir: /srv/netboot/nfs/.image/6ac3a10a1f144c7e
    image_digest: 6ac3a10a1f144c7e9d1f8e568d75ca809288280a593eb6ca053e49b539f465a4
    hostname: node2
    cmdline: console=serial0,115200 root=/dev/nfs nfsroot=10.77.0.1:/srv/netboot/nfs/node2,vers=3 rw ip=dhcp rootwait
    authorized_keys:
      - "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"
  register: node2_root

- name: Trust the host keys the node will serve (instead of accept-new)
  ansible.builtin.known_hosts:
    name: node2
    key: "node2 {{ item.public_key }}"
  loop: "{{ node2_root.host_keys }}"
  delegate_to: localhost

- name: A node whose first boot makes the admin user (userconf-pi or cloud-init, as its image has)
  turingpi.cluster.netboot_root:
    path: /srv/netboot/nfs/node4
    layer_dir: /srv/netboot/nfs/.layers/node4
    boot_path: /srv/netboot/tftp/9c0d1e2f
    image_dir: /srv/netboot/nfs/.image/6ac3a10a1f144c7e
    hostname: node4
    cmdline: console=serial0,115200 root=/dev/nfs nfsroot=10.77.0.1:/srv/netboot/nfs/node4,vers=3 rw ip=dhcp rootwait
    admin_user: admin
    admin_password_hash: "{{ admin_password | password_hash('sha512') }}"
    admin_ssh_keys:
      - "{{ lookup('ansible.builtin.file', '~/.ssh/id_ed25519.pub') }}"

- name: An empty layer for a node that is reprovisioned (it must be off)
  turingpi.cluster.netboot_root:
    path: "{{ netboot_nfs_root }}/{{ item.name }}"
    layer_dir: "{{ netboot_nfs_root }}/.layers/{{ item.name }}"
    boot_path: "{{ netboot_tftp_root }}/{{ item.serial }}"
    image_dir: /srv/netboot/nfs/.image/6ac3a10a1f144c7e
    image_digest: "{{ image_digest }}"
    hostname: "{{ item.name }}"
    cmdline: "{{ lookup('ansible.builtin.template', 'cmdline.txt.j2') | trim }}"
    ssh_key_types: [ed25519]
    fresh: true
  loop: "{{ netboot_reset_nodes }}"

- name: What would change on node3?
  turingpi.cluster.netboot_root:
    path: /srv/netboot/nfs/node3
    layer_dir: /srv/netboot/nfs/.layers/node3
    boot_path: /srv/netboot/tftp/5e6f7a8b
    image_dir: /srv/netboot/nfs/.image/6ac3a10a1f144c7e
    image_digest: "{{ image_digest }}"
    hostname: node3
    cmdline: "{{ node3_cmdline }}"
  check_mode: true
  diff: true
  register: preview
'''

RETURN = r'''
new_layer:
  description: Whether the node got a new, empty layer (would get, in check mode).
  returned: success
  type: bool
  sample: true
image_dir:
  description: The image copy the node runs on (O(image_dir), or the copy its layer was made on while RV(image_pending)).
  returned: success
  type: str
  sample: /srv/netboot/nfs/.image/6ac3a10a1f144c7e
image_pending:
  description: The node runs another image copy than O(image_dir) and moves to it when it is reset (O(fresh=true)).
  returned: success
  type: bool
  sample: false
layer_bytes:
  description: Disk space the node's layer takes on the master, in bytes (hard links counted once).
  returned: success
  type: int
  sample: 4194304
mount_options:
  description: The overlay's mount options (as in O(fstab), without the C(x-systemd) ones).
  returned: success
  type: str
  sample: lowerdir=/srv/nfs/.image/6ac3a10a1f144c7e/root,upperdir=/srv/nfs/.layers/node2/upper,workdir=/srv/nfs/.layers/node2/work,index=on,nfs_export=on
fstab_changed:
  description: Whether the overlay's line in O(fstab) was changed (systemd then needs C(systemctl daemon-reload)).
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
  sample: ["new layer /srv/netboot/nfs/.layers/node2 on image 6ac3a10a1f14", "/etc/fstab: /srv/netboot/nfs/node2",
           "mounted /srv/netboot/nfs/node2 on /srv/netboot/nfs/.image/6ac3a10a1f144c7e/root", "cmdline.txt", "/etc/fstab",
           "/etc/hostname", "/etc/hosts", "ssh host key ed25519",
           "/etc/systemd/system/multi-user.target.wants/ssh.service", "removed /etc/systemd/system/multi-user.target.wants/sshswitch.service"]
host_keys:
  description:
    - The SSH host keys the node serves, one per type of O(ssh_key_types) that the root has (in
      check mode, the keys already there, not those it would generate), for the controller's
      C(known_hosts) (C(<host> <public_key>)).
  returned: success
  type: list
  elements: dict
  contains:
    type:
      description: The key type, one of O(ssh_key_types).
      type: str
      sample: ed25519
    public_key:
      description: The public key line of C(etc/ssh/ssh_host_<type>_key.pub) (type, key, comment).
      type: str
      sample: ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGk9... root@node2
    fingerprint:
      description: Its SHA256 fingerprint, as C(ssh-keygen -l) and SSH clients print it.
      type: str
      sample: SHA256:0kH5Wv5cTjH7C3mF8rD0dIj0s2m1w3JXwq3n5q4bX2I
first_boot:
  description: What the root does on its first boot, as found in it.
  returned: success
  type: dict
  contains:
    mechanisms:
      description:
        - The first-boot mechanisms the root has, of V(sshswitch), V(regenerate_ssh_host_keys),
          V(userconf-pi) and V(cloud-init).
      type: list
      elements: str
      sample: [sshswitch, regenerate_ssh_host_keys, userconf-pi]
    user:
      description: O(admin_user) when the root makes it on its first boot (or has it), else null.
      type: str
      sample: admin
    instance_id:
      description: The C(instance-id) of the cloud-init seed, null for a root without cloud-init.
      type: str
      sample: node2-3f2a9c1d0b4e
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

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.turingpi.cluster.plugins.module_utils import _netboot_root as netboot
from ansible_collections.turingpi.cluster.plugins.module_utils import _node_layer as layers


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
            ssh_key_types=dict(type='list', elements='str', choices=list(netboot.KEY_TYPES), default=list(netboot.KEY_TYPES),
                               no_log=False),
            authorized_keys=dict(type='list', elements='str', default=[], no_log=False),
            layer_dir=dict(type='path', required=True),
            fstab=dict(type='path', default='/etc/fstab'),
            fresh=dict(type='bool', default=False),
            cmdline_params=dict(type='list', elements='str', default=list(netboot.CMDLINE_PARAMS)),
            admin_user=dict(type='str'),
            admin_password_hash=dict(type='str', no_log=True),
            admin_ssh_keys=dict(type='list', elements='str', default=[], no_log=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    where = dict(path=p['path'], boot_path=p['boot_path'])
    node = netboot.NodeRoot(p, module, check_mode=module.check_mode, diff=module._diff)
    image_dir, new = p['image_dir'], True
    layer = layers.Layer(node, p['path'], p['layer_dir'], p['fstab'])
    try:
        node.validate()
        image_dir, new = node.prepare_layer(layer)
        root, boot = node.trees(image_dir, new)
        if root.has_dir('etc'):
            node.identity(root, boot, new)
    except netboot.NoImageError as exc:
        # In check mode the netboot role's unpack was only predicted: the node would get a layer on
        # the image it would unpack.
        if not module.check_mode:
            module.fail_json(msg='%s; %s. Nothing was changed.' % (exc.msg, netboot.NEXT_STEP), **where)
        module.warn('%s: in check mode the node is reported as getting a new layer on the image the netboot role would unpack'
                    % exc.msg)
        module.exit_json(changed=True, new_layer=True, changes=['new layer (image not unpacked yet)'], host_keys=[],
                         first_boot=node.first_boot, image_dir=p['image_dir'], image_pending=False, layer_bytes=0,
                         mount_options='', fstab_changed=True, **where)
    except layers.LayerError as exc:
        module.fail_json(msg=exc.msg, changes=node.changes, **dict(where, **exc.details))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot prepare the node\'s root: %s (the module runs as root on the netboot server; '
                             'the next run goes on from here)' % to_native(exc), changes=node.changes, **where)
    for warning in node.warnings:
        module.warn(warning)
    result = dict(changed=bool(node.changes), new_layer=new, changes=node.changes, host_keys=node.host_key_info,
                  first_boot=node.first_boot, image_dir=image_dir, image_pending=node.image_pending,
                  layer_bytes=layer.bytes(), mount_options=layer.options(os.path.join(os.path.realpath(image_dir), 'root')),
                  fstab_changed=node.fstab_changed, **where)
    if module._diff:
        result['diff'] = node.diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
