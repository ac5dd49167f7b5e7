#!/usr/bin/env python3
"""Checks that every #include in the source tree follows the layer diagram.

Usage: tools/check_layers.py [ROOT]    (ROOT: the repository; default: the one this file is in)

Walks src/, include/ringrelay/ and tools/mock/, gives each file its module (src/<m>/...,
include/ringrelay/<m>/... and include/ringrelay/<m>.hpp belong to <m>; tools/mock/ is
`mock`), resolves every `#include "..."` (relative to the including file's folder first,
then to include/) and every `#include <ringrelay/...>` (to include/), and prints one line
per violation:
  - a module includes a module it does not list in LAYERS (one above it, or an unrelated one);
  - a file includes another module's private header (a header under src/<other>/), or a
    public header (include/) includes a private one;
  - a folder belongs to a module that LAYERS does not list: a new module is placed on
    purpose, by adding its row.
An include that resolves to no file is left alone: it is a system header or one the build
generates (src/admin's status_page_html.hpp), and the compiler reports a missing one.
Exit status: 0 clean, 1 violations.
"""
import re
import sys
from pathlib import Path

# The layer diagram of docs/ARCHITECTURE.md: each module, and the modules it may include
# besides itself. A lower layer never includes a higher one. The rows from common to
# upstream grant exactly what those modules use (so a new dependency down there is a
# deliberate edit of this table); relay and above follow the diagram.
LAYERS = {
    'common':   set(),
    'http':     set(),
    'io':       {'common'},
    'store':    {'common'},
    'obs':      {'common'},
    'upstream': {'io', 'obs', 'http', 'common'},
    'relay':    {'upstream', 'io', 'http', 'obs', 'common'},
    'gateway':  {'relay', 'upstream', 'store', 'io', 'http', 'obs', 'common'},
    'admin':    {'gateway', 'relay', 'store', 'upstream', 'io', 'http', 'obs', 'common'},
    'server':   {'admin', 'gateway', 'relay', 'store', 'upstream', 'io', 'http', 'obs', 'common'},
    'cli':      {'server', 'admin', 'gateway', 'relay', 'store', 'upstream', 'io', 'http', 'obs',
                 'common'},
    'mock':     {'common', 'http', 'io'},  # tools/mock: a program of its own, beside the relay
}

# include/ringrelay/<name>.hpp single headers whose name is not their module's.
SINGLE_HEADER_MODULE = {'serve': 'server'}

SOURCE_SUFFIXES = {'.cpp', '.cc', '.hpp', '.h', '.ipp'}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^">]+)[">]')


def module_of(rel):
    """The module a repository-relative path belongs to, or None outside the module trees."""
    parts = rel.parts
    if len(parts) >= 3 and parts[0] == 'src':
        return parts[1]
    if len(parts) >= 3 and parts[:2] == ('include', 'ringrelay'):
        if len(parts) == 3:  # a single header: include/ringrelay/<m>.hpp
            stem = Path(parts[2]).stem
            return SINGLE_HEADER_MODULE.get(stem, stem)
        return parts[2]
    if parts[:2] == ('tools', 'mock'):
        return 'mock'
    return None


def source_files(root):
    trees = [root / 'src', root / 'include' / 'ringrelay', root / 'tools' / 'mock']
    for tree in trees:
        if tree.is_dir():
            yield from sorted(p for p in tree.rglob('*') if p.suffix in SOURCE_SUFFIXES and p.is_file())


def resolve(root, source, bracket, name):
    """The repository-relative path an include names, or None (system or generated header)."""
    candidates = [root / 'include' / name]
    if bracket == '"':
        candidates.insert(0, source.parent / name)
    elif not name.startswith('ringrelay/'):
        return None
    for c in candidates:
        if c.is_file():
            try:
                return c.resolve().relative_to(root.resolve())
            except ValueError:  # outside the repository: not ours to check
                return None
    return None


def check_include(rel, lineno, mod, target):
    """The violation an include of `target` from `rel` (module `mod`) makes, or None."""
    where = f'{rel}:{lineno}: module {mod}'
    if target.parts[0] == 'src' and rel.parts[0] == 'include':
        return f'{where}: the public header includes the private header {target}'
    target_mod = module_of(target)
    if target_mod is None:
        return f'{where} includes {target}, which belongs to no module'
    if target_mod != mod and target.parts[0] == 'src':
        return f'{where} includes the private header {target} of module {target_mod}'
    if target_mod == mod or target_mod in LAYERS[mod]:
        return None
    if mod in LAYERS.get(target_mod, ()):
        return f'{where} includes {target_mod} ({target}), which sits above it'
    return f'{where} includes {target_mod} ({target}), which is not below it in the layer table'


def check(root):
    violations = []
    unknown = {}  # module -> the first folder seen of it
    files = list(source_files(root))
    for path in files:
        rel = path.relative_to(root)
        mod = module_of(rel)
        if mod not in LAYERS:
            unknown.setdefault(mod, Path(*rel.parts[:2 if rel.parts[0] == 'src' else 3]))
            continue
        for lineno, line in enumerate(path.read_text(errors='replace').splitlines(), 1):
            m = INCLUDE_RE.match(line)
            target = m and resolve(root, path, m.group(1), m.group(2))
            problem = target and check_include(rel, lineno, mod, target)
            if problem:
                violations.append(problem)
    for mod, where in sorted(unknown.items()):
        violations.append(f'{where}: module {mod} is not in the layer table (LAYERS in '
                          f'tools/check_layers.py): add its row to place it')
    return files, violations


def main(argv):
    root = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent
    if not (root / 'src').is_dir():
        print(f'check_layers: {root} has no src/ folder', file=sys.stderr)
        return 2
    files, violations = check(root)
    for v in violations:
        print(v)
    print(f'check_layers: {len(files)} files, {len(violations)} violations', file=sys.stderr)
    return 1 if violations else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
