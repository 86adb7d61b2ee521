#!/bin/sh
# SPDX-License-Identifier: GPL-3.0-or-later
# What the netboot role's capacity check and prune read on the master, in one run (every task is
# a Python start on a CM3, and this is read only). Arguments: netboot_nfs_root, the name of the
# images' records (netboot__digest_file), the name of the layers' records. One line each:
#   df AVAIL_BYTES FSTYPE MOUNT_POINT  of the file system netboot_nfs_root is on (or would be on)
#   layer NODE LOWER                   a node's layer and its record's lower dir (line 2: the format
#                                      is plugins/module_utils/_node_layer.py's RECORD)
#   copy PATH REAL_PATH                a directory in an image dir (an image copy, or an old unpack), not a mount point
#   current IMAGE_DIR DIGEST           the current record of an image dir
#   mounted LOWER                      the lower dir of a mounted overlay
set -u
root=${1:?usage: survey.sh NETBOOT_NFS_ROOT IMAGE_RECORD LAYER_RECORD}
record=${2:?} layer_record=${3:?}
d=$root
while [ ! -d "$d" ]; do d=$(dirname "$d"); done
printf 'df %s\n' "$(df -B1 --output=avail,fstype,target "$d" | tail -n 1 | tr -s ' ' | sed 's/^ //')"
for f in "$root"/.layers/*/"$layer_record"; do
    [ -f "$f" ] || continue
    n=${f%/*}
    printf 'layer %s %s\n' "${n##*/}" "$(sed -n 2p "$f")"
done
for c in "$root"/.image/* "$root"/.images/*/*; do
    [ -d "$c" ] || continue
    mountpoint -q "$c" && continue
    printf 'copy %s %s\n' "$c" "$(readlink -f "$c")"
done
for f in "$root"/.image/"$record" "$root"/.images/*/"$record"; do
    [ -f "$f" ] && printf 'current %s %s\n' "${f%/*}" "$(head -n 1 "$f")"
done
sed -n 's/^overlay [^ ]* overlay .*lowerdir=\([^,]*\).*/mounted \1/p' /proc/self/mounts
exit 0
