#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: image_write
short_description: Write an OS image to a block device or file, writing only the blocks that differ
version_added: 1.0.0
description:
  - Writes an operating system image to a block device (such as the eMMC of a compute module
    exposed by M(turingpi.cluster.usbboot)) or to a regular file.
  - The image is a local file or an http(s)/ftp URL, raw or compressed with xz, gzip, bzip2 or zstd,
    and is decompressed as a stream, never unpacked to disk.
  - Compares before it writes. Each chunk of the image is compared with the target; only the
    O(block_size) blocks that differ are written. Re-writing an unchanged image only reads.
  - Adaptive compare. When 1 MiB in a row differs from the target in every block (a blank
    module, or one holding another image), reading the target first saves nothing, so what follows
    is written without being compared, except for one block read (a probe) after every 4 MiB
    written that way; a probe that finds its block already in place returns to comparing. A
    target that holds the image, or most of it, is always compared, so re-writing an unchanged
    image still writes nothing.
  - While it writes, the target is fsynced on a second thread, so the device writes while the next
    chunks are read instead of all at the end.
  - Resumable by design. An interrupted write leaves the blocks it reached on the target; the next
    run compares them and writes only what is still missing. There is no state file to lose.
  - With a bmap file (bmaptool's block map) only the mapped ranges are read, compared and written;
    the rest of the target is not touched. Each range is read whole and checked against its bmap
    checksum before any byte of it is written, and the image size is checked against the bmap
    before anything is read when it is known (raw and xz images), so a bmap of another image
    writes nothing.
    Ranges the target already holds (its data matches the bmap checksum) are not read from the image at all.
  - Every failure after the first byte was written says how much was written and that the target
    now holds part of an image and must be written again before it is booted.
  - Before comparing, and again before reading back, the target's cached pages are dropped
    (C(fsync), C(posix_fadvise(POSIX_FADV_DONTNEED)) and, for block devices, C(ioctl(BLKFLSBUF)))
    so the comparison and the verification read the device, not the page cache. O_DIRECT is not used.
  - Refuses, before writing anything, a block device that is mounted (the disk or any of its
    partitions, from C(/proc/self/mountinfo)), used as swap or held by device-mapper, the disk that
    holds C(/), a partition instead of a whole disk, a device smaller than the image (when the image
    size is known in advance), and a disk that is neither removable nor on USB unless O(force=true).
  - Loop devices count as fixed disks, so writing to one needs O(force=true).
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  src:
    description:
      - The image. A local path on the host that runs the module, or an C(http://), C(https://),
        C(ftp://) or C(file://) URL that is streamed.
      - The digest of a local file is computed on a thread of its own while the target is
        checked (the bmap pre-check and the compare of what the target already holds run
        alongside it). The first write waits for the digest; if it does not match, the module
        fails with nothing written and the target left as it was. A re-write of an unchanged
        image writes nothing and never waits for it before a write; a blank module waits for the
        hash before its first write.
      - A local file whose digest matched once is remembered (see O(digest_cache)) and not
        hashed again while it is unchanged, so flashing the next module costs no hashing and no wait.
      - An xz file is checked to be complete (its stream footers and indexes) before anything is
        written; a gzip, bzip2 or zstd file cut short or corrupt is found only when it is
        decompressed that far, and the message then says how much was written.
      - A URL is checked while it streams, so a mismatch is known only at the end of the
        download; the module fails, and the message says how many bytes were written and that
        the target must be written again (which then rewrites only the blocks that differ).
        Download first (the C(turingpi.cluster.flash) role downloads with the digest checked) to avoid that.
    type: str
    required: true
  dest:
    description:
      - The whole-disk block device (for example V(/dev/sdb)) or regular file to write.
      - A regular file is created if missing and never truncated.
    type: path
    required: true
  sha256:
    description:
      - SHA-256 digest of O(src) as given (of the compressed file for a compressed image), as 64
        hexadecimal digits, optionally prefixed with V(sha256:).
      - V(skip) writes without checking the source. The digest is still computed and returned.
    type: str
    required: true
  bmap:
    description:
      - Path of a bmaptool block map (C(.bmap), format 1.x or 2.x) for the image.
      - Its own checksum and each range checksum are verified. Unmapped ranges are not touched.
    type: path
  compression:
    description:
      - Compression of O(src). V(auto) detects it from the first bytes.
      - zstd uses the C(zstandard) Python library when it can be imported, otherwise the C(zstd)
        program through a pipe.
    type: str
    choices: [auto, none, xz, gzip, bzip2, zstd]
    default: auto
  block_size:
    description:
      - Granularity, in bytes, of the comparison and of the writes. A power of two, 512 or more.
      - Changing one byte of the image rewrites one block of this size.
    type: int
    default: 65536
  chunk_size:
    description:
      - Bytes read from the image and from the target at a time. A multiple of O(block_size).
    type: int
    default: 4194304
  verify:
    description:
      - Read back every block written, after C(fsync) and dropping the cache, and compare it with
        the image (a raw local image is read again) or with the SHA-256 of what was written.
    type: bool
    default: true
  force:
    description:
      - Allow a target that is neither removable nor on USB (a fixed disk or a loop device).
      - Never allows a mounted device, the disk holding C(/), or a device smaller than the image.
    type: bool
    default: false
  progress_file:
    description:
      - File the module rewrites about once a second with its progress as JSON (C(phase),
        C(done), C(total), C(percent), C(rate) in bytes per second, C(eta) in seconds,
        C(bytes_written)). The C(turingpi.cluster.flash) role reads it while the module runs asynchronously.
    type: path
  digest_cache:
    description:
      - Directory where the digest of a local O(src) that matched O(sha256) is remembered, one
        small record per image file with its size, mtime, inode and change time (ctime).
      - A record counts only while the file is unchanged. Any change to the file, even with its
        mtime put back, changes its ctime (which only the kernel sets), so the file is hashed again.
      - Defaults to C(/var/cache/turingpi.cluster/image_write) for root, else
        C(~/.cache/turingpi.cluster/image_write). A directory that cannot be written only means
        the file is hashed on every run.
    type: path
  url_timeout:
    description: Seconds to wait for the server when O(src) is a URL.
    type: int
    default: 30
  validate_certs:
    description: Verify the server's TLS certificate when O(src) is an https URL.
    type: bool
    default: true
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.FULL
attributes:
  check_mode:
    details:
      - Reads the image and the target and reports how many bytes would be written.
  diff_mode:
    details:
      - Reports how many bytes of the target differ, not the bytes themselves.
notes:
  - Needs to run as root (or a user that can open the block device for writing).
  - Uses C(O_EXCL) when opening a block device, so the kernel refuses a device that is in use even
    if the checks above missed it.
  - Sizes are only known in advance for raw images, xz images (from the xz index) and images with a
    bmap. For gzip, bzip2 and zstd without a bmap a too-small device is found when the write reaches its end.
requirements:
  - zstandard (Python) or the zstd program, only for zstd-compressed images
seealso:
  - module: turingpi.cluster.usbboot
  - name: bmaptool
    description: The block map format this module reads.
    link: https://github.com/yoctoproject/bmaptool
'''

EXAMPLES = r'''
- name: Write Raspberry Pi OS Lite to the compute module in slot 1
  turingpi.cluster.image_write:
    src: /var/cache/turingpi/2024-11-19-raspios-bookworm-arm64-lite.img.xz
    sha256: 6ac3a10a1f144c7e9d1f8e568d75ca809288280a593eb6ca053e49b539f465a4
    dest: /dev/sdb

- name: Write only the mapped ranges, with a block map
  turingpi.cluster.image_write:
    src: /srv/images/node.img.zst
    bmap: /srv/images/node.img.bmap
    sha256: skip
    dest: "{{ usb.device }}"

- name: How many bytes would change?
  turingpi.cluster.image_write:
    src: /srv/images/node.img
    sha256: "sha256:{{ image_digest }}"
    dest: /dev/sdb
  check_mode: true
  register: preview

- name: A long write, with progress in a file
  turingpi.cluster.image_write:
    src: https://downloads.example.org/node.img.gz
    sha256: 0c3f9e0c7c4f1a0a6d2b9e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d
    dest: /dev/sdb
    progress_file: /tmp/flash-progress.json
  async: 3600
  poll: 0
  register: flash_job

- name: Write to a loop device for a test (loop devices need force)
  turingpi.cluster.image_write:
    src: /tmp/test.img
    sha256: skip
    dest: /dev/loop7
    force: true
'''

RETURN = r'''
image_size:
  description: Size of the (decompressed) image in bytes.
  returned: success
  type: int
  sample: 2759852032
sha256:
  description: SHA-256 of O(src) as given.
  returned: success
  type: str
  sample: 6ac3a10a1f144c7e9d1f8e568d75ca809288280a593eb6ca053e49b539f465a4
compression:
  description: Compression of O(src) that was used.
  returned: success
  type: str
  sample: xz
bytes_read:
  description: Bytes read from the target (the comparison plus the read-back).
  returned: success
  type: int
  sample: 2759852032
bytes_compared:
  description: Image bytes compared with the target (at most the mapped bytes with a bmap; less when chunks were written without comparing).
  returned: success
  type: int
  sample: 2759852032
bytes_written:
  description: Bytes written to the target (would be written, in check mode).
  returned: success
  type: int
  sample: 131072
bytes_skipped:
  description: Image bytes not written, because the target already held them or the bmap leaves them unmapped.
  returned: success
  type: int
  sample: 2759720960
bytes_unmapped:
  description: Image bytes the bmap leaves unmapped (not read, not touched).
  returned: success
  type: int
  sample: 0
bytes_verified:
  description: Bytes read back and verified after writing.
  returned: success
  type: int
  sample: 131072
bytes_uncompared:
  description:
    - Bytes written without comparing them with the target first (adaptive compare, after 1 MiB
      in a row that differed in every block). Included in RV(bytes_written).
  returned: success
  type: int
  sample: 0
digest_cached:
  description: Whether the digest of a local O(src) was taken from an earlier successful check of the same file instead of hashing it.
  returned: success
  type: bool
  sample: true
source_bytes:
  description: Bytes read from O(src) (compressed size), in the writing pass (without the hashing thread's reads).
  returned: success
  type: int
  sample: 478150656
writes:
  description: Number of write calls (adjacent differing blocks are written together).
  returned: success
  type: int
  sample: 2
first_difference:
  description: Offset of the first byte range that differed, or null.
  returned: success
  type: int
  sample: 4194304
throughput:
  description: Image bytes processed per second, over the whole run.
  returned: success
  type: int
  sample: 95000000
elapsed:
  description: Seconds the run took.
  returned: success
  type: float
  sample: 29.1
target:
  description: What the target is.
  returned: success
  type: dict
  sample: {"path": "/dev/sdb", "kind": "block", "size": 7818182656, "usb": true, "removable": true}
'''

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native
from ansible.module_utils.urls import open_url

from ansible_collections.turingpi.cluster.plugins.module_utils._image.bmap import parse_bmap
from ansible_collections.turingpi.cluster.plugins.module_utils._image.common import (
    DEFAULT_BLOCK_SIZE, DEFAULT_CHUNK_SIZE, BmapError, ImageError,
)
from ansible_collections.turingpi.cluster.plugins.module_utils._image.digest import DigestMemo, default_memo_dir, parse_sha256
from ansible_collections.turingpi.cluster.plugins.module_utils._image.engine import ImageWriter
from ansible_collections.turingpi.cluster.plugins.module_utils._image.sources import COMPRESSIONS, Source


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='str', required=True),
            dest=dict(type='path', required=True),
            sha256=dict(type='str', required=True),
            bmap=dict(type='path'),
            compression=dict(type='str', choices=list(COMPRESSIONS), default='auto'),
            block_size=dict(type='int', default=DEFAULT_BLOCK_SIZE),
            chunk_size=dict(type='int', default=DEFAULT_CHUNK_SIZE),
            verify=dict(type='bool', default=True),
            force=dict(type='bool', default=False),
            progress_file=dict(type='path'),
            digest_cache=dict(type='path'),
            url_timeout=dict(type='int', default=30),
            validate_certs=dict(type='bool', default=True),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def opener(url):
        return open_url(url, timeout=p['url_timeout'], validate_certs=p['validate_certs'])

    try:
        digest = parse_sha256(p['sha256'])
        bmap = None
        if p['bmap']:
            try:
                with open(p['bmap'], 'rb') as f:
                    bmap = parse_bmap(f.read())
            except (IOError, OSError) as exc:
                raise BmapError('cannot read bmap %s: %s' % (p['bmap'], to_native(exc)))
        source = Source(p['src'], p['compression'], opener=opener)
        writer = ImageWriter(source, p['dest'], sha256=digest, bmap=bmap, block_size=p['block_size'],
                             chunk_size=p['chunk_size'], verify=p['verify'], check_mode=module.check_mode,
                             force=p['force'], progress_file=p['progress_file'],
                             digest_memo=DigestMemo(p['digest_cache'] or default_memo_dir()))
        stats = writer.run()
    except ImageError as exc:
        module.fail_json(msg=to_native(exc))

    t = writer.target
    result = stats.as_dict()
    result.update(
        changed=stats.bytes_written > 0 or stats.writes > 0,
        compression=source.compression,
        target=dict(path=t.path, kind=t.kind if t.kind != 'missing' else 'file', size=t.size,
                    usb=t.usb, removable=t.removable, loop=t.loop),
    )
    if module._diff:
        before = '%s: %d of %d image bytes differ from the image\n' % (p['dest'], stats.bytes_written, stats.image_size or 0)
        after = '%s: holds the image (sha256 %s)\n' % (p['dest'], stats.sha256)
        result['diff'] = dict(before=before if stats.bytes_written else after, after=after)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
