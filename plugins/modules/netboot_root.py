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
version_added: 1.0.0
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
    O(cmdline) with each of O(cmdline_params) it lacks appended (by default the memory cgroup
    flags Kubernetes needs). C(etc/fstab) loses the lines of the eMMC and SD card, by what they
    mount (the root, C(/boot) and C(/boot/firmware) from a local device however it is named
    (C(PARTUUID=), C(UUID=), C(LABEL=), C(PARTLABEL=), C(/dev/...))), every C(/dev/mmcblk*) line,
    and the other partitions of a disk whose C(PARTUUID) those lines name; the rest (C(proc),
    C(tmpfs), NFS, USB disks by C(UUID)) stays. C(etc/hostname) holds O(hostname); C(etc/hosts)
    resolves it as C(127.0.1.1). Each SSH host key of O(ssh_key_types) that is missing is
    generated; a root just copied keeps none of the image's host keys (they would be every
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
    per-node C(instance-id) (O(hostname) and a random suffix, new whenever the root is copied
    again, with O(fresh=true) or a new image, or the seed changes, so that cloud-init runs again)
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
      - Remove O(path) and O(boot_path) and copy the node again from the image, whatever its digest
        file says (for reprovisioning a node; it must be powered off).
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
      - When the node would be copied, the identity steps are predicted from the image (what the
        node's root would hold after the copy), not read from the old root.
  diff_mode:
    details:
      - Shows the content changes of the files it writes (C(cmdline.txt), C(etc/fstab), C(etc/hostname),
        C(etc/hosts), C(root/.ssh/authorized_keys), the first user's C(userconf.txt) or cloud-init seed),
        the systemd unit links it adds or removes, and the files it removes; a copy shows the old and the
        new image digest, not the files.
notes:
  - Runs on the netboot server (the master), as root. The C(turingpi.cluster.netboot) role unpacks
    the image and calls this module for each node.
  - Owner root means uid and gid 0, the same in the node's root as on the master.
  - Changing the image replaces the node's root with the image's (C(rsync --delete)), so the node
    gets new SSH host keys too, and a new cloud-init C(instance-id).
  - A netbooted module whose eMMC still has a boot partition labelled for cloud-init's NoCloud
    (C(system-boot) on Ubuntu) with a seed on it would have cloud-init prefer that seed; the netboot
    role's C(bootcode) method empties that partition.
  - O(admin_password_hash) is hidden from the module's output (no_log), diffs included.
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
    boot_path: /srv/netboot/tftp/9c0d1e2f
    image_dir: /srv/netboot/image
    hostname: node4
    cmdline: console=serial0,115200 root=/dev/nfs nfsroot=10.77.0.1:/srv/netboot/nfs/node4,vers=3 rw ip=dhcp rootwait
    admin_user: admin
    admin_password_hash: "{{ admin_password | password_hash('sha512') }}"
    admin_ssh_keys:
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
  sample: ["copied image 6ac3a10a1f14", "cmdline.txt", "/etc/fstab", "/etc/hostname", "/etc/hosts", "ssh host key ed25519",
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
    try:
        node.validate()
        old = node.recorded_digest()
        copied = p['fresh'] or old != p['image_digest']
        if copied:
            node.check_image()
            node.copy(old)
        elif not os.path.isdir(p['boot_path']):
            module.fail_json(msg='%s does not exist although the node\'s root %s holds image %s: copy the node again with fresh=true '
                                 '(the netboot role\'s reset_root entry point)' % (p['boot_path'], p['path'], p['image_digest'][:12]),
                             **where)
        root, boot = node.trees(copied)
        if root.has_dir('etc'):
            node.identity(root, boot, copied)
    except netboot.NoImageError as exc:
        # In check mode the netboot role's unpack was only predicted: the node would be copied from
        # the image it would unpack.
        if not module.check_mode:
            module.fail_json(msg='%s; %s. Nothing was changed.' % (exc.msg, netboot.NEXT_STEP), **where)
        module.warn('%s: in check mode the node is reported as copied from the image the netboot role would unpack' % exc.msg)
        module.exit_json(changed=True, copied=True, changes=['copied image (not unpacked yet)'], host_keys=[],
                         first_boot=node.first_boot, **where)
    except netboot.NetbootRootError as exc:
        module.fail_json(msg=exc.msg, **dict(where, **exc.details))
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot prepare the node\'s root: %s (the module runs as root on the netboot server; '
                             'the next run goes on from here)' % to_native(exc), changes=node.changes, **where)
    for warning in node.warnings:
        module.warn(warning)
    result = dict(changed=bool(node.changes), copied=copied, changes=node.changes, host_keys=node.host_key_info,
                  first_boot=node.first_boot, **where)
    if module._diff:
        result['diff'] = node.diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()
