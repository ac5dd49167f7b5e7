"""docs/REFERENCE.md and the man pages stay true to the binaries: every flag and
subcommand the --help texts list, every metric family (and its labels) /metrics
exposes, and every error code the gateway can answer must be documented.
Source files come from RR_SOURCE_ROOT (meson passes the project root)."""

import os
import re
import shutil
import subprocess

import harness
from harness import HOST, http_request

TOKEN = 'test-admin-token-reference-0123'
ROOT = os.environ.get('RR_SOURCE_ROOT', os.path.join(os.path.dirname(__file__), '..', '..'))


def read(*parts):
    with open(os.path.join(ROOT, *parts), encoding='utf-8') as f:
        return f.read()


def man_text(name):
    # roff writes a literal '-' as '\-'; fonts as \fB..\fR.
    text = read('docs', 'man', name)
    return re.sub(r'\\f[BIRP]', '', text).replace('\\-', '-')


def help_of(binary, *args):
    proc = subprocess.run([binary] + list(args) + ['--help'], capture_output=True, text=True, timeout=30)
    return proc.returncode, proc.stdout + proc.stderr


def flags_in(text):
    return set(re.findall(r'(?<![\w-])--[a-z][a-z0-9-]*', text))


def commands_in(help_text):
    """The names listed under 'Commands:' in a --help text."""
    block = help_text.split('Commands:', 1)[1] if 'Commands:' in help_text else ''
    names = []
    for line in block.splitlines()[1:]:
        m = re.match(r'  (\w+)\b', line)
        if not m:
            if line.strip():
                break
            continue
        names.append(m.group(1))
    return names


class Reference(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        cls.reference = read('docs', 'REFERENCE.md')
        cls.man = man_text('ringrelay.1')
        cls.mock_man = man_text('ringrelay-mock.1')

    def assertDocumented(self, what, doc_name, doc, needles):
        missing = sorted(n for n in needles if not re.search(r'(?<![\w-])' + re.escape(n) + r'(?![\w-])', doc))
        self.assertEqual(missing, [], '%s missing from %s' % (what, doc_name))

    def test_every_command_and_flag_of_the_help_texts_is_documented(self):
        binary = harness.binary_from_env('RINGRELAY_BIN')
        rc, top = help_of(binary)
        self.assertEqual(rc, 0, top)
        areas = commands_in(top)
        self.assertIn('serve', areas)
        flags, commands = flags_in(top), set()
        for area in areas:
            rc, text = help_of(binary, area)
            self.assertEqual(rc, 0, '%s --help: %s' % (area, text))
            flags |= flags_in(text)
            for sub in commands_in(text):
                commands.add('%s %s' % (area, sub))
                rc, sub_text = help_of(binary, area, sub)
                self.assertEqual(rc, 0, '%s %s --help: %s' % (area, sub, sub_text))
                flags |= flags_in(sub_text)
        self.assertIn('--upstream-max-concurrent', flags)
        self.assertIn('key create', commands)
        for doc_name, doc in (('docs/REFERENCE.md', self.reference), ('ringrelay.1', self.man)):
            self.assertDocumented('flags', doc_name, doc, flags)
            self.assertDocumented('commands', doc_name, doc, commands | set(areas))

    def test_every_flag_of_the_mock_is_documented(self):
        _, text = help_of(harness.binary_from_env('RINGRELAY_MOCK_BIN'))
        flags = flags_in(text)
        self.assertIn('--listen', flags)
        self.assertDocumented('mock flags', 'docs/REFERENCE.md', self.reference, flags)
        self.assertDocumented('mock flags', 'ringrelay-mock.1', self.mock_man, flags)

    def start_server(self):
        data = self.make_tempdir()
        port, admin = harness.free_port(), harness.free_port()
        env = dict(os.environ, RINGRELAY_ADMIN_TOKEN=TOKEN)
        self.start_ringrelay(['serve', '--listen', '%s:%d' % (HOST, port), '--admin-listen', '%s:%d' % (HOST, admin),
                              '--shards', '1', '--data', data], env=env)
        harness.wait_for(lambda: harness.tcp_connectable(admin), message='admin listener accepting')
        # One request so that every per-request family has samples.
        http_request(port, 'POST', '/v1/chat/completions', json_body={'model': 'm'})
        resp = http_request(admin, 'GET', '/metrics', headers={'Authorization': 'Bearer ' + TOKEN})
        self.assertStatus(resp, 200)
        return resp.text

    def test_every_metric_and_error_code_the_server_exposes_is_documented(self):
        text = self.start_server()
        families = dict(re.findall(r'^# TYPE (\S+) (\S+)$', text, re.M))
        self.assertIn('ringrelay_requests_total', families)
        self.assertDocumented('metric families', 'docs/REFERENCE.md', self.reference, families)
        # Every label a family carries is named in that family's row of the table.
        rows = {m.group(1): m.group(0) for m in re.finditer(r'^\| `(ringrelay_\w+)`.*$', self.reference, re.M)}
        for name, labels in re.findall(r'^(ringrelay_\w+?)(?:_bucket|_sum|_count)?\{([^}]*)\}', text, re.M):
            family = name if name in families else re.sub(r'_(bucket|sum|count)$', '', name)
            for label in re.findall(r'(\w+)="', labels):
                if label == 'le':
                    continue
                self.assertIn('`%s`' % label, rows.get(family, ''),
                              'label %s of %s not in its docs/REFERENCE.md row' % (label, family))
        codes = set(re.findall(r'^ringrelay_rejected_total\{code="(\w+)"\}', text, re.M)) - {'none', 'other'}
        self.assertIn('key_in_use', codes)
        self.assertDocumented('error codes', 'docs/REFERENCE.md', self.reference, {'`%s`' % c for c in codes})

    def test_every_error_code_in_the_sources_is_documented(self):
        codes = set()
        for base, _, files in os.walk(os.path.join(ROOT, 'src')):
            for name in files:
                if name.endswith('.cpp'):
                    with open(os.path.join(base, name), encoding='utf-8') as f:
                        codes |= set(re.findall(r'\b[45]\d\d, *"([a-z][a-z_]+)"', f.read()))
        self.assertIn('upstream_timeout', codes)
        self.assertDocumented('error codes', 'docs/REFERENCE.md', self.reference, {'`%s`' % c for c in codes})

    def test_the_man_pages_render_without_warnings(self):
        if not shutil.which('groff'):
            self.skipTest('groff is not installed')
        for name in ('ringrelay.1', 'ringrelay-mock.1'):
            proc = subprocess.run(['groff', '-man', '-ww', '-z', os.path.join(ROOT, 'docs', 'man', name)],
                                  capture_output=True, text=True, timeout=60)
            self.assertEqual((proc.returncode, proc.stderr), (0, ''), name)

    def test_nothing_in_the_repo_points_outside_it(self):
        # The repo stands on its own: no pointer to a sibling ../shared directory.
        hits = []
        for top in ('README.md', 'docs', 'src', 'include', 'tests', 'tools', 'bench', 'dist', 'contrib'):
            path = os.path.join(ROOT, top)
            walk = [(ROOT, [], [top])] if os.path.isfile(path) else os.walk(path)
            for base, dirs, files in walk:
                # Installed packages (tests/sdk/node_modules, git-ignored) are not the
                # repo's: @ai-sdk/provider's own sources import ../shared/.
                if 'node_modules' in dirs:
                    dirs.remove('node_modules')
                for name in files:
                    if name == os.path.basename(__file__) or 'corpus' in base:
                        continue
                    try:
                        with open(os.path.join(base, name), encoding='utf-8') as f:
                            text = f.read()
                    except (UnicodeDecodeError, OSError):
                        continue
                    if re.search(r'\.\./shared/|shared/(SPEC|DESIGN|STYLE)\.md', text):
                        hits.append(os.path.relpath(os.path.join(base, name), ROOT))
        self.assertEqual(hits, [])


if __name__ == '__main__':
    harness.main()
