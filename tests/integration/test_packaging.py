"""What a `meson install` user gets: `meson install --destdir` stages every file under
the prefix (binaries, man pages, systemd unit, logrotate snippet, example config,
docs), the unit passes `systemd-analyze verify` and has the settings the runbook
needs, and `serve --config` accepts the example config.
RR_BUILD_ROOT is the build directory to install from (meson passes it)."""

import json
import os
import re
import shutil
import subprocess
import tempfile

import harness
from harness import HOST, http_request

BUILD = os.environ.get('RR_BUILD_ROOT', '')


def build_options():
    out = subprocess.run(['meson', 'introspect', '--buildoptions', BUILD], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return {o['name']: o['value'] for o in json.loads(out)}


def under_prefix(prefix, value):
    return value if os.path.isabs(value) else os.path.join(prefix, value)


SYSTEM_PREFIXES = ('/usr', '/usr/local')


def logrotate_include_dirs(conf='/etc/logrotate.conf'):
    """The directories the system's logrotate reads snippets from."""
    with open(conf, encoding='utf-8') as f:
        return [line.split()[1].rstrip('/') for line in f if line.strip().startswith('include ')]


def seconds(text):
    m = re.fullmatch(r'(\d+)(ms|s|min|m|h)?', text)
    n = int(m.group(1))
    return n * {'ms': 0.001, 's': 1, None: 1, 'min': 60, 'm': 60, 'h': 3600}[m.group(2)]


class Packaging(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        if not BUILD or not shutil.which('meson'):
            raise AssertionError('RR_BUILD_ROOT must name the build directory, and meson must be on PATH')
        cls.destdir = tempfile.mkdtemp(prefix='rr-destdir-')
        cls.addClassCleanup(shutil.rmtree, cls.destdir, True)
        subprocess.run(['meson', 'install', '-C', BUILD, '--destdir', cls.destdir, '--no-rebuild', '--quiet'],
                       check=True, timeout=300, stdout=subprocess.DEVNULL)
        o = build_options()
        prefix = o['prefix']
        cls.paths = {
            'bin': under_prefix(prefix, o['bindir']),
            'man1': os.path.join(under_prefix(prefix, o['mandir']), 'man1'),
            'unit': os.path.join(prefix, 'lib', 'systemd', 'system'),
            # logrotate reads only /etc/logrotate.d: a system prefix installs there.
            'logrotate': o['logrotate_dir'] or (
                '/etc/logrotate.d' if prefix in SYSTEM_PREFIXES
                else os.path.join(under_prefix(prefix, o['sysconfdir']), 'logrotate.d')),
            'doc': os.path.join(under_prefix(prefix, o['datadir']), 'doc', 'ringrelay'),
        }
        cls.prefix = prefix

    def staged(self, *parts):
        return os.path.join(self.destdir, os.path.join(*parts).lstrip('/'))

    def test_meson_install_stages_every_file_under_destdir(self):
        expected = {
            os.path.join(self.paths['bin'], 'ringrelay'),
            os.path.join(self.paths['bin'], 'ringrelay-mock'),
            os.path.join(self.paths['man1'], 'ringrelay.1'),
            os.path.join(self.paths['man1'], 'ringrelay-mock.1'),
            os.path.join(self.paths['unit'], 'ringrelay.service'),
            os.path.join(self.paths['logrotate'], 'ringrelay'),
            os.path.join(self.paths['doc'], 'ringrelay.example.json'),
            os.path.join(self.paths['doc'], 'REFERENCE.md'),
            os.path.join(self.paths['doc'], 'OPERATIONS.md'),
            os.path.join(self.paths['doc'], 'README.md'),
        }
        installed = set()
        for base, _, files in os.walk(self.destdir):
            for name in files:
                installed.add('/' + os.path.relpath(os.path.join(base, name), self.destdir))
        self.assertEqual(sorted(expected - installed), [], 'not staged under DESTDIR')
        for path in installed:
            self.assertTrue(path.startswith(self.prefix.rstrip('/') + '/') or path.startswith('/etc/'),
                            '%s installed outside the prefix' % path)
        for name in ('ringrelay', 'ringrelay-mock'):
            self.assertTrue(os.access(self.staged(self.paths['bin'], name), os.X_OK), name)

    def unit_text(self):
        with open(self.staged(self.paths['unit'], 'ringrelay.service'), encoding='utf-8') as f:
            return f.read()

    def test_the_unit_has_the_settings_the_runbook_needs(self):
        unit = self.unit_text()
        settings = dict(re.findall(r'^(\w+)=(.*)$', unit, re.M))
        self.assertEqual(settings['ExecStart'].split()[0], os.path.join(self.paths['bin'], 'ringrelay'))
        self.assertEqual(settings['KillSignal'], 'SIGTERM')
        self.assertGreaterEqual(int(settings['LimitNOFILE']), 65536)
        # Stop must outwait the drain (the server's default, unless the unit changes it).
        self.assertGreater(seconds(settings['TimeoutStopSec']), 30)
        for key, value in (('ProtectSystem', 'strict'), ('ProtectHome', 'yes'), ('NoNewPrivileges', 'yes'),
                           ('PrivateTmp', 'yes'), ('DynamicUser', 'yes'), ('StateDirectory', 'ringrelay')):
            self.assertEqual(settings.get(key), value, key)
        self.assertIn('RINGRELAY_DATA=/var/lib/ringrelay', unit)

    def test_the_unit_passes_systemd_analyze_verify(self):
        if not shutil.which('systemd-analyze'):
            self.skipTest('systemd-analyze is not installed (package systemd)')
        unit_dir = self.make_tempdir()
        staged_bin = self.staged(self.paths['bin'], 'ringrelay')
        unit = self.unit_text().replace('ExecStart=' + os.path.join(self.paths['bin'], 'ringrelay'),
                                        'ExecStart=' + staged_bin)
        path = os.path.join(unit_dir, 'ringrelay.service')
        with open(path, 'w', encoding='utf-8') as f:
            f.write(unit)
        # Documentation=man:ringrelay(1) is checked against the staged man pages.
        env = dict(os.environ, MANPATH=self.staged(os.path.dirname(self.paths['man1'])))
        man = [] if shutil.which('man') else ['--man=no']
        proc = subprocess.run(['systemd-analyze', 'verify'] + man + [path], capture_output=True, text=True,
                              env=env, timeout=60)
        self.assertEqual((proc.returncode, proc.stdout + proc.stderr), (0, ''))

    def test_serve_accepts_the_example_config(self):
        config = self.staged(self.paths['doc'], 'ringrelay.example.json')
        with open(config, encoding='utf-8') as f:
            self.assertIsInstance(json.load(f), dict)
        port, admin = harness.free_port(), harness.free_port()
        data = self.make_tempdir()
        # Flags win over the file: only the ports and the data directory are ours.
        self.start_ringrelay(['serve', '--config', config, '--listen', '%s:%d' % (HOST, port),
                              '--admin-listen', '%s:%d' % (HOST, admin), '--shards', '1', '--data', data],
                             health_path='/healthz')
        self.assertStatus(http_request(admin, 'GET', '/healthz'), 200)

    def test_the_logrotate_snippet_lands_where_the_systems_logrotate_reads(self):
        if self.prefix not in SYSTEM_PREFIXES:
            self.skipTest('a private prefix (%s) keeps the snippet under itself' % self.prefix)
        if not os.path.exists('/etc/logrotate.conf'):
            self.skipTest('logrotate is not installed')
        staged = [os.path.join(base, name) for base, _, files in os.walk(self.destdir) for name in files
                  if name == 'ringrelay' and os.path.basename(base) == 'logrotate.d']
        self.assertEqual(len(staged), 1, staged)
        installed_dir = '/' + os.path.relpath(os.path.dirname(staged[0]), self.destdir)
        self.assertIn(installed_dir, logrotate_include_dirs())

    def test_logrotate_accepts_the_snippet(self):
        if not shutil.which('logrotate'):
            self.skipTest('logrotate is not installed')
        state = os.path.join(self.make_tempdir(), 'state')
        proc = subprocess.run(['logrotate', '--debug', '--state', state,
                               self.staged(self.paths['logrotate'], 'ringrelay')],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertNotIn('error', proc.stderr.lower())


if __name__ == '__main__':
    harness.main()
