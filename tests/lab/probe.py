#!/usr/bin/env python
# SPDX-License-Identifier: GPL-3.0-or-later
"""Small network clients and servers for the lab's verify steps (standard library only).

Run inside a lab namespace: tests/lab/lab exec SLOT tests/lab/probe.py ...

  probe.py dns NAME SERVER            print the A records SERVER returns for NAME
  probe.py ntp SERVER                 one NTP client request; print stratum and server time
  probe.py serve ADDR PORT            TCP server that answers every client with its address
  probe.py fetch ADDR PORT [TIMEOUT]  connect, print what the server answered
Exit status 0 on success, 1 on failure (with the reason on stderr).
"""
import socket
import struct
import sys
import time


def dns(name, server):
    query_id = 0x7470
    header = struct.pack('!HHHHHH', query_id, 0x0100, 1, 0, 0, 0)
    question = b''.join(bytes([len(p)]) + p.encode() for p in name.rstrip('.').split('.')) + b'\0'
    question += struct.pack('!HH', 1, 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3)
    sock.sendto(header + question, (server, 53))
    data = sock.recvfrom(4096)[0]
    rid, flags, an = struct.unpack('!HHxxHxxxx', data[:12])
    if rid != query_id:
        raise SystemExit('dns: wrong reply id')
    rcode = flags & 0xF
    if rcode != 0:
        raise SystemExit('dns: rcode %d for %s' % (rcode, name))
    pos = 12 + len(question)
    found = []
    for _answer in range(an):
        # The answer name is a pointer (2 bytes) or labels.
        if data[pos] & 0xC0 == 0xC0:
            pos += 2
        else:
            while data[pos]:
                pos += data[pos] + 1
            pos += 1
        rtype, rdlen = struct.unpack('!HxxxxxxH', data[pos:pos + 10])
        pos += 10
        if rtype == 1 and rdlen == 4:
            found.append(socket.inet_ntoa(data[pos:pos + 4]))
        pos += rdlen
    if not found:
        raise SystemExit('dns: no A record for %s' % name)
    print('\n'.join(found))


def ntp(server):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(3)
    packet = bytearray(48)
    packet[0] = (0 << 6) | (4 << 3) | 3     # no leap warning, version 4, mode 3 (client)
    sock.sendto(bytes(packet), (server, 123))
    data = sock.recvfrom(512)[0]
    mode = data[0] & 7
    stratum = data[1]
    seconds = struct.unpack('!I', data[40:44])[0] - 2208988800
    if mode != 4:
        raise SystemExit('ntp: reply mode %d, not a server reply' % mode)
    if stratum == 0 or stratum > 15:
        raise SystemExit('ntp: server is not synchronised (stratum %d)' % stratum)
    print('stratum=%d offset=%.1f' % (stratum, seconds - time.time()))


def serve(addr, port):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((addr, int(port)))
    srv.listen(8)
    while True:
        conn, peer = srv.accept()
        with conn:
            conn.sendall(('peer=%s\n' % peer[0]).encode())


def fetch(addr, port, timeout='3'):
    with socket.create_connection((addr, int(port)), timeout=float(timeout)) as conn:
        conn.settimeout(float(timeout))
        print(conn.recv(256).decode().strip())


def main(argv):
    commands = {'dns': dns, 'ntp': ntp, 'serve': serve, 'fetch': fetch}
    if len(argv) < 2 or argv[1] not in commands:
        raise SystemExit(__doc__)
    try:
        commands[argv[1]](*argv[2:])
    except (OSError, struct.error, IndexError) as exc:
        raise SystemExit('%s: %s' % (argv[1], exc))


if __name__ == '__main__':
    main(sys.argv)
