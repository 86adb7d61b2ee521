#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""SSH ProxyCommand for the machines of tests/lab/os-image.sh: relay stdin/stdout to HOST:PORT.

Run inside the machines' switch namespace (ip netns exec PREFIX-sw python3 netns_proxy.py %h %p;
Molecule's families scenario, tier 65): the host has no netcat, and the machines are reachable
only from that namespace.
"""

import os
import selectors
import socket
import sys


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    conn = socket.create_connection((host, port), timeout=30)
    conn.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, 'in')
    sel.register(conn, selectors.EVENT_READ, 'net')
    open_ends = 2
    while open_ends:
        for key, _events in sel.select():
            if key.data == 'in':
                data = os.read(sys.stdin.fileno(), 65536)
                if data:
                    conn.sendall(data)
                else:
                    sel.unregister(sys.stdin.fileno())
                    conn.shutdown(socket.SHUT_WR)
                    open_ends -= 1
            else:
                data = conn.recv(65536)
                if data:
                    sys.stdout.buffer.write(data)
                    sys.stdout.buffer.flush()
                else:
                    sel.unregister(conn)
                    open_ends -= 1
                    if open_ends:
                        return 0
    return 0


if __name__ == '__main__':
    sys.exit(main())
