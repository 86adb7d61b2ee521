# SPDX-License-Identifier: GPL-3.0-or-later
"""TEST-HARNESS SPEED-UP for the real-kernel test guest (tests/kernel). NOT part of turingpi.cluster.

Ansible runs every module from a fresh zip (AnsiballZ), and Python's zipimport compiles each
module in it from source every time: no .pyc can be written into the zip. Under QEMU's TCG that
compilation alone costs seconds per task (measured: an Ansible ping module, 9 s uncached, 4 s with
compiled code). This caches the compiled code objects of zip-imported sources in
/var/cache/tp-zipimport, keyed by the SHA-256 of the source and its path inside the zip, and
points the cached code at the current archive's path (co_filename) so tracebacks stay right.

Nothing changes but the compile step: same source, same code object as compile() gives. Any
failure falls back to the normal compile. Loaded by tp_zipimport_cache.pth.
"""
import hashlib
import marshal
import os
import sys
import types
import zipimport

CACHE = '/var/cache/tp-zipimport'
_compile_source = zipimport._compile_source


def _refile(code, filename):
    consts = tuple(_refile(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _cached_compile_source(pathname, source):
    try:
        sep = pathname.find('.zip' + os.sep)
        inner = pathname[sep + 5:] if sep >= 0 else pathname
        digest = hashlib.sha256(b'%s\0%s\0' % (sys.version.encode(), inner.encode()) + source).hexdigest()
        path = os.path.join(CACHE, digest)
        try:
            with open(path, 'rb') as handle:
                return _refile(marshal.loads(handle.read()), pathname)
        except (OSError, ValueError, EOFError, TypeError):
            pass
        code = _compile_source(pathname, source)
        os.makedirs(CACHE, mode=0o700, exist_ok=True)
        tmp = '%s.%d.tmp' % (path, os.getpid())
        with open(tmp, 'wb') as handle:
            handle.write(marshal.dumps(code))
        os.replace(tmp, path)
        return code
    except Exception:  # never break an import: fall back to the plain compile
        return _compile_source(pathname, source)


if os.geteuid() == 0:  # the cache is root's only
    zipimport._compile_source = _cached_compile_source
