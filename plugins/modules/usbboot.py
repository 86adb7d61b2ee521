#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: usbboot
short_description: Boot a compute module in flash mode into USB mass storage with rpiboot
version_added: 1.0.0
description:
  - On the workstation the board's micro-USB port is connected to, runs C(rpiboot) for the compute
    module in slot 1 (jumper in flash position), waits for its eMMC to appear as a USB disk and
    returns that block device.
  - The disk is found through sysfs by its USB identity (the USB device above C(/sys/block/*)),
    never by guessing a C(/dev/sdX) name.
  - When the module already shows up as a mass-storage disk (an earlier run booted it), returns
    that disk without running C(rpiboot) and reports no change.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  rpiboot_path:
    description: The C(rpiboot) program, a name looked up in C(PATH) or an absolute path.
    type: str
    default: rpiboot
  rpiboot_args:
    description: Extra arguments for C(rpiboot), for example V([-d, /usr/share/rpiboot/msd]).
    type: list
    elements: str
    default: []
  timeout:
    description:
      - Seconds to wait for C(rpiboot) to finish, and then again for the disk to appear.
      - C(rpiboot) hangs when the module has already booted; it is stopped after this time.
    type: int
    default: 60
  boot_ids:
    description:
      - USB C(vendor:product) ids of a module in flash mode.
      - V(0a5c:2764) is the CM3 and CM3+ boot ROM, V(0a5c:2763) the older parts.
    type: list
    elements: str
    default: ['0a5c:2763', '0a5c:2764']
  msd_ids:
    description:
      - USB C(vendor:product) patterns (shell wildcards) of the mass-storage gadget that rpiboot's
        firmware exposes. The boot ids are never taken for it.
    type: list
    elements: str
    default: ['0a5c:*']
  serial:
    description:
      - USB serial number of the mass-storage gadget to pick when more than one module is attached.
    type: str
  sysfs_root:
    description: Where sysfs is mounted. Tests point it at a fake tree.
    type: path
    default: /sys
  dev_root:
    description: Directory of the device nodes; the returned device is this plus the disk name.
    type: path
    default: /dev
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.NO_DIFF
attributes:
  check_mode:
    details:
      - Reports whether C(rpiboot) would run; returns the disk only when it is already there.
  idempotent:
    details:
      - Once the module is in mass-storage mode, further runs return the same disk unchanged.
notes:
  - Only one module is booted at a time; C(rpiboot) does not boot several devices in parallel.
  - Needs root (or write access to C(/dev/bus/usb)).
requirements:
  - rpiboot (raspberrypi/usbboot), packaged as C(rpiboot) in Debian and Raspberry Pi OS
seealso:
  - module: turingpi.cluster.image_write
'''

EXAMPLES = r'''
- name: Boot the module in slot 1 into mass storage
  turingpi.cluster.usbboot:
    timeout: 90
  register: usb

- name: Write the image to it
  turingpi.cluster.image_write:
    src: /var/cache/turingpi/node.img.xz
    sha256: skip
    dest: "{{ usb.device }}"

- name: Use a self-built rpiboot with its own firmware directory
  turingpi.cluster.usbboot:
    rpiboot_path: /opt/usbboot/rpiboot
    rpiboot_args: [-d, /opt/usbboot/msd]
'''

RETURN = r'''
device:
  description: The block device of the module's eMMC (null in check mode when it is not there yet).
  returned: success
  type: str
  sample: /dev/sdb
size:
  description: Size of the eMMC in bytes.
  returned: success
  type: int
  sample: 7818182656
usb:
  description: USB identity of the mass-storage disk.
  returned: success
  type: dict
  sample: {"vendor": "0a5c", "product": "0001", "serial": "2d6a9c1f", "port": "1-3", "busnum": "1", "devnum": "12"}
boot_device:
  description: USB identity of the module in flash mode that rpiboot loaded, or null.
  returned: success
  type: dict
  sample: {"vendor": "0a5c", "product": "2764", "port": "1-3"}
rpiboot_ran:
  description: Whether rpiboot was run.
  returned: success
  type: bool
  sample: true
stdout:
  description: Output of rpiboot.
  returned: when rpiboot ran
  type: str
  sample: "Waiting for BCM2835/6/7/2711...\nSending bootcode.bin\nSecond stage boot server done\n"
'''

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.turingpi.cluster.plugins.module_utils import _usb as usb


def _pick(module, disks, params):
    if len(disks) > 1:
        module.fail_json(msg='%d USB disks match %s (%s): give serial to pick one, or attach one module at a time'
                         % (len(disks), ', '.join(params['msd_ids']),
                            ', '.join('%s serial %s' % (d['name'], d['usb']['serial']) for d in disks)))
    return disks[0]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            rpiboot_path=dict(type='str', default='rpiboot'),
            rpiboot_args=dict(type='list', elements='str', default=[]),
            timeout=dict(type='int', default=60),
            boot_ids=dict(type='list', elements='str', default=list(usb.DEFAULT_BOOT_IDS)),
            msd_ids=dict(type='list', elements='str', default=list(usb.DEFAULT_MSD_IDS)),
            serial=dict(type='str'),
            sysfs_root=dict(type='path', default='/sys'),
            dev_root=dict(type='path', default='/dev'),
        ),
        supports_check_mode=True,
    )
    p = module.params
    sysfs = p['sysfs_root']
    if p['timeout'] < 1:
        module.fail_json(msg='timeout must be 1 second or more, not %d' % p['timeout'])
    if not os.path.isdir(os.path.join(sysfs, 'bus', 'usb')):
        module.fail_json(msg='%s/bus/usb not found: this host has no USB support in sysfs' % sysfs)

    def result(disk, ran, boot=None, **extra):
        return dict(changed=ran, device=os.path.join(p['dev_root'], disk['name']) if disk else None,
                    size=disk['size'] if disk else None, usb=disk['usb'] if disk else None,
                    boot_device=boot, rpiboot_ran=ran and not module.check_mode, **extra)

    boot = usb.boot_devices(sysfs, p['boot_ids'])
    disks = usb.msd_disks(sysfs, p['msd_ids'], p['serial'], exclude_ids=p['boot_ids'])
    if not boot:
        if disks:
            module.exit_json(**result(_pick(module, disks, p), False))
        module.fail_json(msg='no compute module in flash mode on the USB bus (no USB device %s): put the module in slot 1, '
                             'set the jumper to flash, connect the micro-USB port to this host and power-cycle the board'
                         % ' or '.join(p['boot_ids']))

    rpiboot = p['rpiboot_path']
    if os.sep in rpiboot:
        found = rpiboot if os.path.isfile(rpiboot) and os.access(rpiboot, os.X_OK) else None
    else:
        found = module.get_bin_path(rpiboot)
    if not found:
        module.fail_json(msg='rpiboot not found (%s): install it (apt install rpiboot, or build github.com/raspberrypi/usbboot) '
                             'or set rpiboot_path' % rpiboot)
    if module.check_mode:
        module.exit_json(**result(None, True, boot[0]))

    before = set(d['name'] for d in disks)
    cmd = [found] + p['rpiboot_args']
    timeout_bin = module.get_bin_path('timeout')
    if timeout_bin:
        cmd = [timeout_bin, '--kill-after=5', str(p['timeout'])] + cmd
    rc, out, err = module.run_command(cmd)
    if rc in (124, 137) and timeout_bin:
        module.fail_json(msg='rpiboot did not finish within %d s: it hangs when the module has already booted; power-cycle the '
                             'board with the jumper in flash position and run again' % p['timeout'], stdout=out, stderr=err)
    if rc != 0:
        module.fail_json(msg='rpiboot failed (rc=%d): %s' % (rc, (err or out).strip()), rc=rc, stdout=out, stderr=err)

    deadline = time.time() + p['timeout']
    while True:
        disks = usb.msd_disks(sysfs, p['msd_ids'], p['serial'], exclude_ids=p['boot_ids'])
        ready = [d for d in disks if d['size'] > 0]
        if ready:
            new = [d for d in ready if d['name'] not in before] or ready
            module.exit_json(**result(_pick(module, new, p), True, boot[0], stdout=out))
        if time.time() >= deadline:
            module.fail_json(msg='rpiboot finished but no USB mass-storage disk matching %s appeared within %d s: check that '
                                 'rpiboot loaded the mass-storage firmware (msd) and the cable, then run again'
                             % (', '.join(p['msd_ids']), p['timeout']), stdout=out, stderr=err)
        time.sleep(0.5)


if __name__ == '__main__':
    main()
