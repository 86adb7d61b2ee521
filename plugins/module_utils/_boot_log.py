# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""What the master's dnsmasq says about booting modules, as events.

dnsmasq logs each DHCP packet (``DHCPDISCOVER(eth0) 02:00:00:00:00:02``, ``DHCPOFFER(eth0)
10.77.0.2 02:00:00:00:00:02``, with ``log-dhcp`` a transaction id in front) and each TFTP
transfer (``sent /srv/netboot/tftp/bootcode.bin to 10.77.0.2``, ``file ... not found``). The
TFTP lines name the client by address only; the DHCP offers tie the address to a MAC.
Read from the journal as ``journalctl -o json`` prints it (one JSON object a line).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import re

# Kinds of events (BootEvent.kind).
DHCP_DISCOVER = 'dhcp-discover'
DHCP_OFFER = 'dhcp-offer'
DHCP_REQUEST = 'dhcp-request'
DHCP_ACK = 'dhcp-ack'
DHCP_NAK = 'dhcp-nak'
DHCP_NO_ADDRESS = 'dhcp-no-address'
DHCP_IGNORED = 'dhcp-ignored'
PXE_PROXY = 'pxe-proxy'
TFTP_SENT = 'tftp-sent'
TFTP_MISSING = 'tftp-missing'
TFTP_ERROR = 'tftp-error'
SERVER_START = 'server-start'
SERVER_STOP = 'server-stop'

_MAC = r'(?:[0-9A-Fa-f]{2}[:-]){5,}[0-9A-Fa-f]{2}'
_IP = r'\d{1,3}(?:\.\d{1,3}){3}'
# rfc2131.c log_packet(): "[xid ]TYPE(iface) [addr ]mac[ extra]"
_DHCP_RE = re.compile(r'^(?:\d+ )?(DHCP[A-Z]+|BOOTP[A-Z]*|PXE)\(([^)]*)\) (?:(%s) )?(%s)(?: (.*))?$' % (_IP, _MAC))
_DHCP_KINDS = {
    'DHCPDISCOVER': DHCP_DISCOVER,
    'DHCPOFFER': DHCP_OFFER,
    'DHCPREQUEST': DHCP_REQUEST,
    'DHCPACK': DHCP_ACK,
    'DHCPNAK': DHCP_NAK,
    'PXE': PXE_PROXY,
}
# tftp.c
_TFTP_SENT_RE = re.compile(r'^sent (\S+) to (%s)$' % _IP)
_TFTP_MISSING_RE = re.compile(r'^file (\S+) not found(?: for (%s))?$' % _IP)
_TFTP_ERROR_RES = (
    re.compile(r'^failed sending (\S+) to (%s)$' % _IP),
    re.compile(r'^cannot access (\S+): .*$'),
    re.compile(r'^cannot read (\S+): .*$'),
    re.compile(r'^error \d+ .* received from (%s)$' % _IP),
)
_SERIAL_PATH_RE = re.compile(r'^([0-9a-f]{8})/[^/]+$')


class BootLogError(Exception):
    """The boot log cannot be read; the message says what to do."""


class BootEvent(object):
    """One thing dnsmasq did for a booting client."""

    __slots__ = ('time', 'kind', 'mac', 'ip', 'path', 'message')

    def __init__(self, time, kind, mac=None, ip=None, path=None, message=''):
        self.time = time
        self.kind = kind
        self.mac = mac
        self.ip = ip
        self.path = path
        self.message = message

    def as_dict(self):
        return dict((name, getattr(self, name)) for name in self.__slots__)

    def __repr__(self):
        return 'BootEvent(%r)' % (self.as_dict(),)

    def __eq__(self, other):
        return isinstance(other, BootEvent) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self == other

    __hash__ = None


def _relative(path, tftp_root):
    """The file a TFTP client asked for, relative to the TFTP root (dnsmasq logs the full path)."""
    if tftp_root:
        root = tftp_root.rstrip('/') + '/'
        if path.startswith(root):
            return path[len(root):]
    if not path.startswith('/'):
        return path
    # No (or another) root given: a serial directory and its file, else the file's name.
    parts = path.rstrip('/').split('/')
    if len(parts) >= 2 and re.match(r'^[0-9a-f]{8}$', parts[-2]):
        return '/'.join(parts[-2:])
    return parts[-1]


def parse_message(message, time, tftp_root=None):
    """One dnsmasq log message (no syslog prefix) as a BootEvent, or None when it is about
    neither DHCP nor TFTP nor the server starting or stopping."""
    message = message.strip()
    match = _DHCP_RE.match(message)
    if match:
        what, dummy_iface, ip, mac, extra = match.groups()
        extra = (extra or '').strip()
        kind = _DHCP_KINDS.get(what)
        if extra.startswith('no address available') or extra.startswith('no address configured'):
            kind = DHCP_NO_ADDRESS
        elif extra == 'ignored' or extra.startswith('ignored '):
            kind = DHCP_IGNORED
        if kind is None:
            return None
        return BootEvent(time, kind, mac=mac.lower().replace('-', ':'), ip=ip, message=message)
    match = _TFTP_SENT_RE.match(message)
    if match:
        return BootEvent(time, TFTP_SENT, ip=match.group(2), path=_relative(match.group(1), tftp_root), message=message)
    match = _TFTP_MISSING_RE.match(message)
    if match:
        return BootEvent(time, TFTP_MISSING, ip=match.group(2), path=_relative(match.group(1), tftp_root), message=message)
    for pattern in _TFTP_ERROR_RES:
        match = pattern.match(message)
        if match:
            groups = match.groups()
            path = ip = None
            for group in groups:
                if re.match('^%s$' % _IP, group):
                    ip = group
                else:
                    path = _relative(group, tftp_root)
            return BootEvent(time, TFTP_ERROR, ip=ip, path=path, message=message)
    if message.startswith('started, version '):
        return BootEvent(time, SERVER_START, message=message)
    if message.startswith('exiting on receipt of '):
        return BootEvent(time, SERVER_STOP, message=message)
    return None


def serial_of(path):
    """The 8-hex-digit serial when path is "<serial>/<file>", else None."""
    match = _SERIAL_PATH_RE.match(path or '')
    return match.group(1) if match else None


def _entry_message(entry):
    message = entry.get('MESSAGE')
    if isinstance(message, list):  # journalctl prints a message that is not UTF-8 as its bytes
        message = bytearray(message).decode('utf-8', 'replace')
    return message if isinstance(message, str) else None


def events_from_json_lines(lines, since=None, tftp_root=None):
    """BootEvents from journal JSON lines, in time order, those at or after since (epoch s)."""
    events = []
    for line in lines:
        line = line.strip()
        if not line.startswith('{'):
            continue
        try:
            entry = json.loads(line)
            when = int(entry['__REALTIME_TIMESTAMP']) / 1e6
        except (ValueError, KeyError, TypeError):
            continue
        message = _entry_message(entry)
        if message is None or (since is not None and when < since):
            continue
        event = parse_message(message, when, tftp_root=tftp_root)
        if event is not None:
            events.append(event)
    events.sort(key=lambda event: event.time)  # sort is stable: same-time lines keep their order
    return events


def read_events(run_command, since=None, unit='dnsmasq', tftp_root=None, log_file=None):
    """The boot events of the unit's journal (or of log_file, journal JSON lines), in time order."""
    if log_file is not None:
        try:
            with open(log_file) as handle:
                lines = handle.read().splitlines()
        except (IOError, OSError) as e:
            raise BootLogError('Cannot read the boot log %s: %s. Give a file of journal JSON lines '
                               '(journalctl -u %s -o json).' % (log_file, e, unit))
    else:
        argv = ['journalctl', '--no-pager', '-q', '-o', 'json', '-u', unit]
        if since is not None:
            argv += ['--since', '@%d' % int(since)]
        try:
            rc, out, err = run_command(argv)
        except (IOError, OSError) as e:
            rc, out, err = 127, '', str(e)
        if rc != 0:
            raise BootLogError('Cannot read the journal of %s (%s: rc %s, %s). Run this on the master that serves '
                               'network boot, as root or a member of systemd-journal, with the unit name of its '
                               'netboot server.' % (unit, ' '.join(argv), rc, (err or out).strip() or 'no output'))
        lines = out.splitlines()
    return events_from_json_lines(lines, since=since, tftp_root=tftp_root)
