#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# tests/lab/nfs-mount without the lab: a "server" process in a mount namespace of its own
# (unshare -m, its mounts shared inside it as systemd makes them) mounts an overlay the way the
# netboot role does on the master (index=on,nfs_export=on); the host attaches it and checks:
#  - the attachment is the server's overlay (same options), reads the lower's bytes, writes land
#    in the upper dir and are seen through the server's own mount, the lower is unchanged;
#  - nothing mounted below the export comes along (no crossmnt), and the attachment shares no
#    mount events with the server (not in its peer group);
#  - a directory that is no mount point is served as it is in the server's view;
#  - while the attachment lives, the server cannot mount the same upper dir again after it
#    unmounted its own (EBUSY: what the lab must avoid on a node reset); after umount it can.
# Every mount and process is gone at the end. Must run as root; about a second.
#   bash tests/lab/test-nfs-mount.sh
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
. tests/lib/env.sh
. tests/lib/host-state.sh
. tests/lib/checks.sh
[ "$(id -u)" = 0 ] || { echo "test-nfs-mount: must run as root (mount namespaces, overlays)"; exit 1; }
NFS_MOUNT=tests/lab/nfs-mount
mkdir -p "$TP_TMP"
W=$(mktemp -d "$TP_TMP/test-nfs-mount.XXXXXX")
W=$(realpath "$W")
before=$(tp_host_state)
server=
cleanup() {
    local m
    for m in "$W/plain-target" "$W/target" "$W/again"; do mountpoint -q "$m" && umount -R "$m"; done
    if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
    # Never remove through a mount that is still there.
    if grep -qF "$W" /proc/self/mountinfo; then echo "test-nfs-mount: mounts left under $W" >&2; else rm -rf "$W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

OPTS="lowerdir=$W/lower,upperdir=$W/upper,workdir=$W/work,index=on,nfs_export=on"
mkdir -p "$W/lower/sub" "$W/upper" "$W/work" "$W/export" "$W/private" "$W/target" "$W/plain-target" "$W/again"
printf 'lower bytes\n' > "$W/lower/file"
# The server: exec makes the sleeper the namespace's only process, so killing it ends the namespace.
# shellcheck disable=SC2016  # expanded by the server's shell
unshare -m --propagation private sh -c '
    set -e
    mount --make-rshared /
    mount -t overlay overlay -o "$2" "$1/export"
    mount -t tmpfs below "$1/export/sub"
    echo hidden > "$1/export/sub/hidden"
    mount -t tmpfs private "$1/private"
    mkdir "$1/private/root" && echo "server only" > "$1/private/root/file"
    touch "$1/ready"
    exec sleep 600' server "$W" "$OPTS" &
server=$!
for _ in $(seq 50); do [ -e "$W/ready" ] && break; sleep 0.1; done
[ -e "$W/ready" ] || { fail "the server did not mount its overlay"; exit 1; }
in_server() { nsenter -t "$server" -m "$@"; }
# mount(2) of the overlay in the server, exit status the errno (util-linux words EBUSY variously).
OVERLAY_MOUNT='import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
failed = libc.mount(b"overlay", sys.argv[1].encode(), b"overlay", 0, sys.argv[2].encode())
errno = ctypes.get_errno() if failed else 0
print(os.strerror(errno) if errno else "mounted")
sys.exit(errno)'

echo "--- attach the server's overlay"
said=$("$NFS_MOUNT" --pid "$server" --path "$W/export" --target "$W/target")
check "nfs-mount attached it and says what it serves: $said" \
    [ "$said" = "overlay overlay $(awk -v m="$W/export" '$5 == m && $9 == "overlay" {print $11}' "/proc/$server/mountinfo")" ]
check "the attachment is an overlay with the server's options" \
    bash -c "findmnt -n -o FSTYPE,OPTIONS '$W/target' | grep -q '^overlay .*lowerdir=$W/lower,upperdir=$W/upper,.*index=on,.*nfs_export=on'"
check "it reads the lower's bytes" [ "$(cat "$W/target/file")" = "lower bytes" ]
check "what is mounted below the export is not served (no crossmnt)" \
    bash -c "[ -d '$W/target/sub' ] && [ ! -e '$W/target/sub/hidden' ]"
check "the attachment is in no peer group (no mount events shared with the server)" \
    bash -c "awk -v m='$W/target' '\$5 == m' /proc/self/mountinfo | grep -q . && ! awk -v m='$W/target' '\$5 == m' /proc/self/mountinfo | grep -q shared:"
printf 'written by the node\n' > "$W/target/new"
printf 'changed by the node\n' > "$W/target/file"
sync
check "a new file lands in the upper dir" [ "$(cat "$W/upper/new" 2>/dev/null)" = "written by the node" ]
check "a changed file is copied up with the new bytes" [ "$(cat "$W/upper/file" 2>/dev/null)" = "changed by the node" ]
check "the lower is unchanged (one file, its bytes)" \
    bash -c "[ \"\$(cat '$W/lower/file')\" = 'lower bytes' ] && [ \"\$(ls '$W/lower')\" = \"\$(printf 'file\nsub')\" ]"
check "the server sees the write through its own mount" [ "$(in_server cat "$W/export/new")" = "written by the node" ]
if "$NFS_MOUNT" --pid "$server" --path "$W/export" --target "$W/target" 2>"$W/err"; then
    fail "a second attach onto a mount point should be refused"
else
    check "a second attach onto the same target is refused: $(cat "$W/err")" grep -q 'umount it first' "$W/err"
fi

echo "--- a directory that is no mount point"
said=$("$NFS_MOUNT" --pid "$server" --path "$W/private/root" --target "$W/plain-target")
check "served as the directory, and said so: $said" \
    bash -c "[ '$said' = 'directory (nothing mounted at $W/private/root on the server)' ] &&
             [ \"\$(cat '$W/plain-target/file')\" = 'server only' ] && [ ! -e '$W/private/root' ]"
umount "$W/plain-target"

echo "--- a reset while the attachment lives, and after it is gone"
in_server umount "$W/export/sub"
check "the server unmounts its overlay" in_server umount "$W/export"
said=$(in_server python3 -c "$OVERLAY_MOUNT" "$W/export" "$OPTS")
rc=$?
[ "$rc" = 0 ] && in_server umount "$W/export"
check "while attached, a second mount of the same upper dir is refused with EBUSY: $said" [ "$rc" = 16 ]
umount "$W/target"
check "after umount, the server mounts the same upper dir again" in_server mount -t overlay overlay -o "$OPTS" "$W/export"
check "... and serves the node's write" [ "$(in_server cat "$W/export/new")" = "written by the node" ]
check "a new attachment after the reset works" \
    bash -c "'$NFS_MOUNT' --pid '$server' --path '$W/export' --target '$W/again' >/dev/null && [ \"\$(cat '$W/again/new')\" = 'written by the node' ]"
umount "$W/again"

kill "$server"; wait "$server" 2>/dev/null; server=
check "no mount under the work directory is left" bash -c "! grep -qF '$W' /proc/self/mountinfo"
tp_checks_done test-nfs-mount "$before"
