# SPDX-License-Identifier: GPL-3.0-or-later
# shellcheck shell=bash
# Sourced by the lab tiers: what the lab may change on the host, printed so that a tier can
# compare it before and after (IP forwarding, the nftables ruleset, tplab-* namespaces,
# mounts under the lab's run directory, the machines' cgroups).
tp_host_state() {
    echo "ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"
    nft list ruleset 2>/dev/null | sha256sum
    ip netns list | awk '{print $1}' | grep '^tplab-' || true
    grep -F "$TP_TMP/lab/run" /proc/mounts || true
    ls -d /sys/fs/cgroup/tplab /sys/fs/cgroup/*/tplab 2>/dev/null || true
}
