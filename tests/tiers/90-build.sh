#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
# Build the collection artifact and run on it the checks a certifiable collection passes:
#  1. ansible-galaxy collection build and install;
#  2. ansible-doc on every plugin of every type and every role, none missing or broken;
#  3. version_added of every plugin, option, return value and role against galaxy.yml and
#     changelogs/changelog.yaml; antsibull-changelog lint-changelog-yaml;
#  4. galaxy-importer on the tarball: no ERROR and no WARNING line;
#  5. antsibull-docs lint-collection-docs --plugin-docs;
#  6. the docs site rendered by antsibull-docs and Sphinx, kept in .tmp/build/docs-html
#     (the CI artifact);
#  7. ansible-builder: reads meta/execution-environment.yml and creates a build context.
# The tools of 4-7 live in their own venv ($TP_VENV_BUILD, tests/requirements-build.txt).
set -euo pipefail
. "$(dirname "$0")/../lib/env.sh"
out=$TP_TMP/build; rm -rf "$out"; mkdir -p "$out"
tools=$TP_VENV_BUILD/bin
t0=$SECONDS
step() { echo "--- $* ($((SECONDS - t0)) s)"; }
fail() { echo "90-build: $*"; exit 1; }

step "ansible-galaxy collection build"
ansible-galaxy collection build "$TP_ROOT" --output-path "$out" --force
tarballs=("$out"/turingpi-cluster-*.tar.gz)
tarball=${tarballs[0]}
installed=$out/installed
ansible-galaxy collection install "$tarball" -p "$installed" --force >/dev/null 2>&1 \
    || ansible-galaxy collection install "$tarball" -p "$installed" --force
coll=$installed/ansible_collections/turingpi/cluster

step "ansible-doc on every plugin and role of the built collection"
# One dump of every documented plugin and role; --no-fail-on-errors records a broken one with
# its error instead of stopping, so the check below can name all of them.
ANSIBLE_COLLECTIONS_PATH=$installed ansible-doc --metadata-dump --no-fail-on-errors turingpi.cluster \
    > "$out/metadata.json" 2> "$out/metadata.err" || { cat "$out/metadata.err"; fail "ansible-doc --metadata-dump failed"; }
# What the tree holds, per plugin type, so that a plugin the dump leaves out is noticed too.
# A filter or test file may hold several plugins documented in <name>.yml files beside it.
if python3 - "$coll" "$out/metadata.json" > "$out/plugins.txt" <<'PY'
import json
import os
import sys

coll, dump = sys.argv[1], json.load(open(sys.argv[2]))['all']
skip = {'module_utils', 'doc_fragments', 'plugin_utils', 'action', '__pycache__'}
problems, listed = [], []
expected = {}
for kind in sorted(os.listdir(os.path.join(coll, 'plugins'))):
    path = os.path.join(coll, 'plugins', kind)
    if kind in skip or not os.path.isdir(path):
        continue
    ptype = 'module' if kind == 'modules' else kind
    names = set()
    for name in os.listdir(path):
        base, ext = os.path.splitext(name)
        if base == '__init__' or ext not in ('.py', '.yml', '.yaml'):
            continue
        if ext == '.py' and kind in ('filter', 'test'):
            with open(os.path.join(path, name)) as f:
                if 'DOCUMENTATION' not in f.read():
                    continue  # several plugins in one file, documented in .yml files
        names.add(base)
    expected[ptype] = names
roles = os.path.join(coll, 'roles')
expected['role'] = set(r for r in os.listdir(roles) if os.path.isdir(os.path.join(roles, r))) if os.path.isdir(roles) else set()
for ptype, names in sorted(expected.items()):
    found = dump.get(ptype) or {}
    for name in sorted(names):
        fq = 'turingpi.cluster.' + name
        entry = found.get(fq)
        if entry is None:
            problems.append('%s %s: not documented (ansible-doc does not list it)' % (ptype, fq))
        elif 'error' in entry:
            problems.append('%s %s: %s' % (ptype, fq, entry['error']))
    for fq, entry in sorted(found.items()):
        if fq.startswith('turingpi.cluster.') and 'error' not in entry:
            listed.append('%s %s' % (ptype, fq))
for line in problems:
    sys.stderr.write('  ' + line + '\n')
print('\n'.join(listed))
sys.exit(1 if problems else 0)
PY
then :; else fail "plugins or roles above are not documented or their documentation is broken"; fi
[ -s "$out/plugins.txt" ] || fail "no plugin or role documented"
# Render each one as a user would see it (one ansible-doc call per type).
while read -r ptype; do
    # shellcheck disable=SC2046  # one word per plugin name
    ANSIBLE_COLLECTIONS_PATH=$installed ansible-doc -t "$ptype" $(awk -v t="$ptype" '$1 == t {print $2}' "$out/plugins.txt") >/dev/null \
        || fail "ansible-doc -t $ptype failed"
done < <(awk '{print $1}' "$out/plugins.txt" | sort -u)
echo "documented: $(awk '{print $1}' "$out/plugins.txt" | sort | uniq -c | awk '{printf "%s%s %s", sep, $1, $2; sep=", "}')"

step "version_added against galaxy.yml and the changelog"
# Every version_added of this collection (plugins, their options and return values, roles and
# their entry points and options) is <= galaxy.yml's version, and is either a release in
# changelogs/changelog.yaml or galaxy.yml's version (the next release). galaxy.yml's version is
# not older than the newest release.
if python3 - "$TP_ROOT" "$out/metadata.json" <<'PY'
import json
import os
import sys

import yaml
from packaging.version import Version

root, dump = sys.argv[1], json.load(open(sys.argv[2]))['all']
galaxy = yaml.safe_load(open(os.path.join(root, 'galaxy.yml')))
upcoming = Version(galaxy['version'])
releases = (yaml.safe_load(open(os.path.join(root, 'changelogs', 'changelog.yaml'))) or {}).get('releases') or {}
released = sorted(Version(v) for v in releases)
problems = []
if released and upcoming < released[-1]:
    problems.append('galaxy.yml version %s is older than the newest release %s in changelogs/changelog.yaml' % (upcoming, released[-1]))


def check(where, value):
    try:
        version = Version(str(value))
    except Exception:
        problems.append('%s: version_added %r is not a version' % (where, value))
        return
    if version > upcoming:
        problems.append('%s: version_added %s is newer than galaxy.yml version %s' % (where, version, upcoming))
    elif version != upcoming and version not in released:
        problems.append('%s: version_added %s is neither a release in changelogs/changelog.yaml (%s) nor the next release %s'
                        % (where, version, ', '.join(str(v) for v in released) or 'none', upcoming))


def walk(where, node, ours):
    if isinstance(node, dict):
        mine = node.get('version_added_collection', 'turingpi.cluster' if ours else None) == 'turingpi.cluster'
        if 'version_added' in node and mine:
            check(where, node['version_added'])
        for key, value in node.items():
            walk('%s.%s' % (where, key), value, ours)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk('%s[%d]' % (where, i), value, ours)


count = 0
for ptype, plugins in dump.items():
    if ptype == 'keyword':
        continue
    for fq, entry in (plugins or {}).items():
        if not fq.startswith('turingpi.cluster.') or 'error' in entry:
            continue
        count += 1
        if ptype == 'role':
            walk('role %s' % fq, entry.get('entry_points'), True)
            continue
        doc = entry.get('doc') or {}
        if 'version_added' not in doc:
            problems.append('%s %s: no version_added' % (ptype, fq))
        walk('%s %s' % (ptype, fq), doc, False)
        walk('%s %s RETURN' % (ptype, fq), entry.get('return'), True)
for line in problems:
    print('  ' + line)
if problems:
    sys.exit(1)
print('version_added of %d plugins and roles agrees with galaxy.yml %s (releases: %s)'
      % (count, upcoming, ', '.join(str(v) for v in released) or 'none yet'))
PY
then :; else fail "version_added does not agree with galaxy.yml and changelogs/changelog.yaml"; fi
(cd "$TP_ROOT" && "$tools/antsibull-changelog" lint-changelog-yaml changelogs/changelog.yaml)

step "galaxy-importer"
# Configured as Galaxy imports, except what cannot run here:
#  - run_ansible_test = false: galaxy-importer runs ansible-test sanity only with --docker (or
#    in a local image it builds), and no container engine or image registry is available. The
#    sanity tier (20-sanity) runs ansible-test sanity on every claimed ansible-core instead.
#  - ansible-lint runs (production profile, as Galaxy runs it) with offline_ansible_lint, so it
#    installs nothing from Galaxy.
#  - run_flake8 = false: Galaxy's default. Its --isolated flake8 reports W503 (line break before
#    a binary operator), which PEP 8 now recommends; ruff (lint tier) and ansible-test's pep8
#    check the Python code.
cat > "$out/galaxy-importer.cfg" <<EOF
[galaxy-importer]
log_level_main = INFO
run_ansible_doc = true
run_ansible_lint = true
offline_ansible_lint = true
run_ansible_test = false
ansible_test_local_image = false
local_image_docker = false
run_flake8 = false
check_required_tags = true
check_changelog = true
require_v1_or_greater = true
ansible_local_tmp = $out/importer-tmp
tmp_root_dir = $out
EOF
mkdir -p "$out/importer-tmp"
rc=0
(cd "$out" && PATH=$tools:$PATH GALAXY_IMPORTER_CONFIG=$out/galaxy-importer.cfg \
    "$tools/python" -m galaxy_importer.main "$tarball" > "$out/galaxy-importer.log" 2>&1) || rc=$?
if [ $rc -ne 0 ] || grep -qE '^(WARNING|ERROR|CRITICAL)|Traceback' "$out/galaxy-importer.log" \
    || ! grep -q '^Importer processing completed successfully' "$out/galaxy-importer.log"; then
    grep -E '^(WARNING|ERROR|CRITICAL)|Traceback|completed' "$out/galaxy-importer.log" || tail -30 "$out/galaxy-importer.log"
    fail "galaxy-importer reported errors or warnings (exit $rc; full log: $out/galaxy-importer.log)"
fi
echo "galaxy-importer: no error, no warning ($(head -1 "$out/galaxy-importer.log"))"

step "antsibull-docs lint-collection-docs --plugin-docs"
(cd "$coll" && PATH=$tools:$PATH ANSIBLE_COLLECTIONS_PATH=$installed "$tools/antsibull-docs" lint-collection-docs \
    --plugin-docs --validate-collection-refs dependent --disallow-unknown-collection-refs .)

step "docs site (antsibull-docs + Sphinx)"
site=$out/docs-site html=$out/docs-html
mkdir -p "$site"
PATH=$tools:$PATH ANSIBLE_COLLECTIONS_PATH=$installed "$tools/antsibull-docs" sphinx-init --use-current \
    --squash-hierarchy --fail-on-error --project turingpi.cluster --title turingpi.cluster \
    --copyright 'turingpi.cluster contributors' --dest-dir "$site" turingpi.cluster >/dev/null
# Offline: Sphinx cannot fetch the Ansible docs' intersphinx inventory. The few labels of the
# Ansible docs that the generated pages link to come from a local inventory instead, with the
# same targets; a new one shows up as "undefined label" below and belongs in this list.
"$tools/python" - "$site/ansible_devel.inv" <<'PY'
import sys
import zlib

labels = [
    ('common_return_values', 'reference_appendices/common_return_values.html#common-return-values', 'Return Values'),
    ('ansible_configuration_settings', 'reference_appendices/config.html#ansible-configuration-settings', 'Ansible Configuration Settings'),
]
body = ''.join('%s std:label -1 %s %s\n' % label for label in labels)
with open(sys.argv[1], 'wb') as f:
    f.write(b'# Sphinx inventory version 2\n# Project: Ansible\n# Version: devel\n'
            b'# The remainder of this file is compressed using zlib.\n' + zlib.compress(body.encode()))
PY
cat >> "$site/conf.py" <<EOF

# Added by tests/tiers/90-build.sh: offline, only the local inventory of the Ansible docs.
intersphinx_mapping = {'ansible_devel': ('https://docs.ansible.com/projects/ansible/devel/', '$site/ansible_devel.inv')}
EOF
(cd "$site" && PATH=$tools:$PATH ANSIBLE_COLLECTIONS_PATH=$installed bash ./build.sh > "$out/docs-site.log" 2>&1) \
    || { grep -E 'WARNING|ERROR|rror' "$out/docs-site.log" || tail -30 "$out/docs-site.log"; fail "the docs site did not build (log: $out/docs-site.log)"; }
mv "$site/build/html" "$html"
[ -f "$html/index.html" ] || fail "the docs site has no index.html"
echo "docs site: $html/index.html ($(find "$html" -name '*.html' | wc -l) pages)"

step "ansible-builder"
# The collection's meta/execution-environment.yml, as ansible-builder reads it when it builds
# an execution environment with the collection: every line of the files it names must come out.
"$tools/ansible-builder" introspect --sanitize "$installed" --write-pip "$out/ee-python.txt" \
    --write-bindep "$out/ee-system.txt" > "$out/ee-introspect.txt"
for kind in python system; do
    file=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['dependencies']['$kind'])" "$coll/meta/execution-environment.yml")
    [ -f "$coll/$file" ] || fail "meta/execution-environment.yml names $file, which the built collection does not hold"
    while read -r line; do
        grep -qF -- "$line" "$out/ee-$kind.txt" || fail "ansible-builder introspect lost '$line' of $file"
    done < <(sed 's/#.*//; s/[[:space:]]*$//; /^$/d' "$coll/$file")
done
# An execution environment definition with the built collection: ansible-builder create must
# write its build context (no container engine is needed for that; building the image is not
# done here: no image registry is reachable).
mkdir -p "$out/ee"
cat > "$out/ee/execution-environment.yml" <<EOF
---
version: 3
images:
  base_image:
    name: quay.io/fedora/fedora-minimal:latest
dependencies:
  python_interpreter:
    package_system: python3
    python_path: /usr/bin/python3
  ansible_core:
    package_pip: ansible-core>=2.19.0
  ansible_runner:
    package_pip: ansible-runner
  galaxy:
    collections:
      - name: collections/$(basename "$tarball")
        type: file
additional_build_files:
  - src: $tarball
    dest: collections
options:
  package_manager_path: /usr/bin/microdnf
EOF
"$tools/ansible-builder" create -f "$out/ee/execution-environment.yml" -c "$out/ee/context" --output-filename Containerfile > "$out/ee/create.log" \
    || { cat "$out/ee/create.log"; fail "ansible-builder create failed"; }
if [ ! -f "$out/ee/context/Containerfile" ] || [ ! -f "$out/ee/context/_build/collections/$(basename "$tarball")" ]; then
    fail "ansible-builder create wrote no Containerfile or left the collection out of the context"
fi
echo "execution environment build context: $out/ee/context"

echo "built and checked: $(basename "$tarball") in $((SECONDS - t0)) s; docs site: $html"
