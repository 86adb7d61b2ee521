#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) turingpi.cluster contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: census_board
short_description: Bring a Turing Pi board file up to date with what a census found
version_added: 1.0.0
description:
  - Takes the RV(turingpi.cluster.census#module:slots) result of M(turingpi.cluster.census) and a board file
    (the C(turingpi.cluster.board) inventory plugin's), and says what differs; with O(dest), writes the
    updated board file.
  - A slot's entry follows its module, found by its MAC (else its serial). A module found in another slot than
    the file says takes its entry (host name, image, vars) along, so its root on the master keeps its name, and
    is flagged. A slot the census found empty loses its entry and is flagged. A new module gets an entry with
    its MAC, serial and boot source. Slots the census did not power keep their entries.
  - With O(board_id) (the board's id from its EEPROM, C(cmb_identity.id)), records it in the board's C(vars) as
    C(turingpi_board_id), and flags a file that names another board's id.
  - Runs where the board file is (the controller, C(delegate_to=localhost)).
  - The file is written from its data, so comments are not kept. RV(diff_text) (and C(--diff)) show the change
    to the existing file, for a user who keeps a commented file and applies the change by hand.
author:
  - Turing Pi cluster maintainers (@turingpi-cluster)
options:
  path:
    description: The existing board file.
    type: path
    required: true
  slots:
    description: The RV(turingpi.cluster.census#module:slots) result of M(turingpi.cluster.census).
    type: list
    elements: dict
    required: true
  board:
    description: The name of the board the census ran on; needed when the file has more than one.
    type: str
  dest:
    description:
      - Where to write the updated board file. Unset, nothing is written (see RV(diff_text)).
      - The same as O(path) overwrites the file (comments are lost; see O(backup)).
      - The inventory plugin reads only files whose name ends in C(turingpi.yml) or C(turingpi.yaml).
    type: path
  backup:
    description: Keep a copy of O(dest) with a time stamp before overwriting it.
    type: bool
    default: false
  hostname_format:
    description:
      - The host name of a new module's entry, with C({slot}) and C({board}) replaced, such as V(node{slot}).
      - Unset, new entries have no host name and the inventory plugin names them (C(<board>-node<slot>)).
    type: str
  board_id:
    description: The board's id (C(cmb_identity.id) of the C(turingpi.cluster.cmb) role's C(identity) entry point).
    type: str
extends_documentation_fragment:
  - turingpi.cluster._attributes
  - turingpi.cluster._attributes.FULL
requirements:
  - PyYAML (every ansible-core has it)
'''

EXAMPLES = r'''
- name: Write what the census found
  turingpi.cluster.census_board:
    path: board.turingpi.yml
    slots: "{{ census.slots }}"
    dest: census.turingpi.yml
    hostname_format: node{slot}
  delegate_to: localhost
'''

RETURN = r'''
flags:
  description: What the census found that the file did not say (moved modules, empty slots, unknown ones), as sentences.
  returned: always
  type: list
  elements: str
  sample: ["the module of slot 2 ('node2') (MAC 02:00:00:00:00:02, serial 0000aa02) is now in slot 3: its entry moves with it"]
moved:
  description: Modules found in another slot than the file says.
  returned: always
  type: list
  elements: dict
  sample: [{"mac": "02:00:00:00:00:02", "serial": "0000aa02", "from": 2, "to": 3}]
empty:
  description: Surveyed slots that hold no module.
  returned: always
  type: list
  elements: int
new:
  description: Slots whose module the file did not list.
  returned: always
  type: list
  elements: int
unknown:
  description: Slots that hold a module the census could not identify (silent, or running and not in the file).
  returned: always
  type: list
  elements: int
content:
  description: The updated board file.
  returned: always
  type: str
diff_text:
  description: The change to O(path) as a unified diff (empty when nothing changes).
  returned: always
  type: str
dest:
  description: The file written, or null.
  returned: always
  type: str
backup_file:
  description: The backup of O(dest).
  returned: when a backup was made
  type: str
'''

import difflib
import os
import traceback

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.turingpi.cluster.plugins.module_utils import _census_board as census_board
from ansible_collections.turingpi.cluster.plugins.module_utils._board_model import BoardError

YAML_IMPORT_ERROR = None
try:
    import yaml
except ImportError:
    yaml = None
    YAML_IMPORT_ERROR = traceback.format_exc()

HEADER = '# Updated by turingpi.cluster.census: what the census found on the wire (docs/inventory.md, "The census").\n'


# MACs and serials are written quoted, as docs/inventory.md asks of people: whatever their digits,
# no YAML reader takes them for numbers.
QUOTED_KEYS = ('mac', 'serial')


def render(data):
    class Quoted(str):
        pass

    class Dumper(yaml.SafeDumper):
        pass

    Dumper.add_representer(Quoted, lambda dumper, value: dumper.represent_scalar('tag:yaml.org,2002:str', str(value), style="'"))

    def quote(value, key=None):
        if isinstance(value, dict):
            return dict((k, quote(v, k)) for k, v in value.items())
        if isinstance(value, list):
            return [quote(v) for v in value]
        if key in QUOTED_KEYS and isinstance(value, str):
            return Quoted(value)
        return value

    text = yaml.dump(quote(data), Dumper=Dumper, default_flow_style=False, sort_keys=False, width=160)
    return HEADER + text


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            slots=dict(type='list', elements='dict', required=True),
            board=dict(type='str'),
            dest=dict(type='path'),
            backup=dict(type='bool', default=False),
            hostname_format=dict(type='str'),
            board_id=dict(type='str'),
        ),
        supports_check_mode=True,
    )
    if yaml is None:
        module.fail_json(msg=missing_required_lib('PyYAML'), exception=YAML_IMPORT_ERROR)
    params = module.params
    try:
        with open(params['path']) as handle:
            before = handle.read()
        data = yaml.safe_load(before)
    except (IOError, OSError) as exc:
        module.fail_json(msg='cannot read the board file %s: %s; give the board file the inventory is read from (path)' % (params['path'], exc))
    except yaml.YAMLError as exc:
        module.fail_json(msg='the board file %s is not YAML: %s' % (params['path'], exc))
    for entry in params['slots']:
        if 'slot' not in entry or 'state' not in entry:
            module.fail_json(msg='slots: expected the slots result of turingpi.cluster.census (each with slot and state), got %r' % (entry,))
    try:
        new_data, report = census_board.updated_file(data, [dict(e) for e in params['slots']], board_name=params['board'],
                                                     hostname_format=params['hostname_format'], board_id=params['board_id'])
    except BoardError as exc:
        module.fail_json(msg='%s: %s' % (params['path'], exc))
    except (KeyError, IndexError) as exc:
        module.fail_json(msg='hostname_format %r: only {slot} and {board} can be replaced (%s)' % (params['hostname_format'], exc))
    content = render(new_data)
    # The change to the existing file; unchanged data is no change, whatever its comments.
    same = new_data == data
    diff_text = '' if same else ''.join(difflib.unified_diff(
        before.splitlines(True), content.splitlines(True), params['path'], params['dest'] or 'census'))
    result = dict(changed=False, content=content, diff_text=diff_text, dest=params['dest'], **report)
    result.pop('board_id', None)
    dest = params['dest']
    if dest:
        current = None
        if os.path.exists(dest):
            with open(dest) as handle:
                current = handle.read()
        if dest == params['path'] and same:
            current = content  # the file already says it all: keep its comments
        if current != content:
            result['changed'] = True
            if module._diff:
                result['diff'] = dict(before=current or '', after=content, before_header=dest, after_header=dest)
            if not module.check_mode:
                if params['backup'] and current is not None:
                    result['backup_file'] = module.backup_local(dest)
                tmp = '%s.tmp%d' % (dest, os.getpid())
                try:
                    with open(tmp, 'w') as handle:
                        handle.write(content)
                    module.atomic_move(tmp, dest)
                except (IOError, OSError) as exc:
                    module.fail_json(msg='cannot write %s: %s' % (dest, exc))
    elif module._diff and not same:
        result['diff'] = dict(before=before, after=content, before_header=params['path'], after_header='census')
    module.exit_json(**result)


if __name__ == '__main__':
    main()
