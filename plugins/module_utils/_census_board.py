# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

# This is a private module_utils file of turingpi.cluster. Do not use it from outside the collection.

"""A board file brought up to date with what the census found (turingpi.cluster.census_board).

A slot's entry follows its module: a module found in another slot than the file says takes its
entry (host name, image, vars) along, so its root on the master keeps its name. A slot the census
found empty loses its entry; a new module gets an entry with its MAC, serial and boot source.
Slots the census did not power (running, not in the findings) keep their entries as they are.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import (
    DEFAULT_BOOT,
    MASTER_SLOT,
    BoardError,
    normalize_mac,
    normalize_serial,
    parse_slot,
)

BOARD_ID_VAR = 'turingpi_board_id'
ENTRY_ORDER = ('hostname', 'mac', 'serial', 'module', 'boot', 'image')


def find_board(data, name=None):
    """The board (a dict of the file's ``boards`` list) named ``name``, or the only one."""
    if not isinstance(data, dict) or not isinstance(data.get('boards'), list) or not data['boards']:
        raise BoardError("not a board file: expected 'plugin: turingpi.cluster.board' and a list of boards")
    boards = [b for b in data['boards'] if isinstance(b, dict)]
    if name:
        named = [b for b in boards if b.get('name') == name]
        if not named:
            raise BoardError("no board named '%s' in the file (boards: %s)" % (name, ', '.join(str(b.get('name')) for b in boards)))
        return named[0]
    if len(boards) != 1:
        raise BoardError('the file has %d boards: name the one the census ran on (board)' % len(boards))
    return boards[0]


def _slots(board):
    parsed = {}
    for key, value in (board.get('slots') or {}).items():
        parsed[parse_slot("board '%s'" % board.get('name'), key)] = dict(value or {})
    return parsed


def _identity(where, entry):
    mac = normalize_mac(where, entry['mac']) if entry.get('mac') is not None else None
    serial = normalize_serial(where, entry['serial']) if entry.get('serial') is not None else None
    return mac, serial


def _ordered(entry):
    out = dict((k, entry[k]) for k in ENTRY_ORDER if k in entry)
    out.update((k, v) for k, v in entry.items() if k not in out)
    return out


def _identified(found):
    """Whether the census learned who the slot's module is (its MAC)."""
    return bool(found.get('mac')) and found['state'] in ('netboot', 'local', 'running')


def _label(slot, entry):
    name = entry.get('hostname')
    return 'slot %d%s' % (slot, " ('%s')" % name if name else '')


def update_board(board, found, hostname_format=None, board_id=None):
    """(new slots dict, report) for a board dict and the census' ``slots`` result.

    report: flags (sentences), moved [{mac, serial, from, to}], empty [slot], new [slot], unknown [slot].
    """
    old = _slots(board)
    default_boot = (board.get('defaults') or {}).get('boot', DEFAULT_BOOT)
    owner_of = {}
    for slot, entry in old.items():
        for value in _identity("board '%s' slot %d" % (board.get('name'), slot), entry):
            if value:
                owner_of[value] = slot
    report = {'flags': [], 'moved': [], 'empty': [], 'new': [], 'unknown': [], 'board_id': board_id}
    new = dict((s, e) for s, e in old.items())
    surveyed = dict((int(f['slot']), f) for f in found)
    taken = set()  # old slots whose entry a found module takes
    # A found module's old entry: by its MAC, else its serial.
    for slot in sorted(surveyed):
        f = surveyed[slot]
        if not _identified(f):
            continue
        mac = f['mac'].lower() if f.get('mac') else None
        serial = f['serial'].lower() if f.get('serial') else None
        source = owner_of.get(mac) if mac else None
        if source is None and serial:
            source = owner_of.get(serial)
        f['_source'] = source
        if source is not None:
            taken.add(source)
    for slot in sorted(surveyed):
        f = surveyed[slot]
        state = f['state']
        if state == 'empty':
            new.pop(slot, None)
            report['empty'].append(slot)
            if slot in old:
                report['flags'].append('%s holds no module (status register 0xF8): the file lists one there; its entry is left out'
                                       % _label(slot, old[slot]))
            continue
        if state == 'running' and not _identified(f):
            if slot not in old:
                report['unknown'].append(slot)
                report['flags'].append('slot %d is on and not in the file: the census did not power-cycle it; run it with'
                                       ' census_restart_running=true to learn its module' % slot)
            continue
        if state == 'silent':
            report['unknown'].append(slot)
            report['flags'].append('slot %d holds a module that did not ask DHCP: network boot not enabled and nothing'
                                   ' bootable on it, or its cable; %s' % (slot, 'its entry is kept' if slot in old else 'not added'))
            continue
        source = f.get('_source')
        entry = copy.deepcopy(old[source]) if source is not None else {}
        if source is None and slot in old and slot not in taken:
            where = _label(slot, old[slot])
            report['flags'].append('%s holds another module than the file says (file: MAC %s, serial %s; found: MAC %s, serial %s):'
                                   ' its entry is replaced' % (where, old[slot].get('mac'), old[slot].get('serial'),
                                                               f.get('mac'), f.get('serial')))
        if source is not None and source != slot:
            report['moved'].append({'mac': f.get('mac'), 'serial': f.get('serial'), 'from': source, 'to': slot})
            report['flags'].append('the module of %s (MAC %s, serial %s) is now in slot %d: its entry moves with it'
                                   % (_label(source, old[source]), f.get('mac'), f.get('serial'), slot))
        if source is None:
            report['new'].append(slot)
            if hostname_format:
                entry['hostname'] = hostname_format.format(slot=slot, board=board.get('name'))
        entry['mac'] = f['mac']
        if f.get('serial'):
            entry['serial'] = f['serial']
        if state == 'running':
            boot = entry.get('boot', default_boot)  # read as it runs: how it booted is not seen
        elif state == 'netboot':
            boot = 'netboot'
        else:  # its own storage: what the file says, else eMMC (a Lite module's SD card: set boot: sd)
            boot = entry.get('boot') if entry.get('boot') in ('emmc', 'sd') else (default_boot if default_boot != 'netboot' else 'emmc')
        if boot != entry.get('boot', default_boot):
            entry['boot'] = boot
        if state == 'netboot' and not f.get('serial'):
            report['flags'].append('slot %d network boots, but its serial was not seen (%s)' % (slot, f.get('note') or 'no TFTP request for it'))
        if state == 'local' and not f.get('serial'):
            report['flags'].append('slot %d boots from its own storage; its serial is unknown (%s)'
                                   % (slot, f.get('note') or 'not read over SSH'))
        new[slot] = _ordered(entry)
    # The old slot of a module that moved keeps its entry only when a module was found there.
    for moved in report['moved']:
        if new.get(moved['from']) is old.get(moved['from']):
            new.pop(moved['from'], None)
    for f in found:
        f.pop('_source', None)
    new.setdefault(MASTER_SLOT, old.get(MASTER_SLOT, {}))
    report['moved'].sort(key=lambda m: m['to'])
    return dict((s, new[s]) for s in sorted(new)), report


def updated_file(data, found, board_name=None, hostname_format=None, board_id=None):
    """(new file data, report): a deep copy of the file's data with the board's slots updated and,
    with board_id, its id recorded in the board's vars (turingpi_board_id)."""
    data = copy.deepcopy(data)
    board = find_board(data, board_name)
    slots, report = update_board(board, found, hostname_format=hostname_format, board_id=board_id)
    board['slots'] = slots
    if board_id:
        known = (board.get('vars') or {}).get(BOARD_ID_VAR)
        if known and known != board_id:
            report['flags'].insert(0, "the file describes the board with id %s, but the census ran on the board with id %s:"
                                      " another board, or its EEPROM was rewritten" % (known, board_id))
        board.setdefault('vars', {})[BOARD_ID_VAR] = board_id
    return data, report
