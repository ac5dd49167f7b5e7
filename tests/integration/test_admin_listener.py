"""Where the admin listener may listen (issue 14, item 9): its requests carry the admin
token and, with ?reveal=true, upstream credentials, so off loopback it needs TLS
(--admin-tls-cert/--admin-tls-key) or the operator's explicit --admin-insecure, logged
as a warning at every start. Certificates are made here, at test time, with openssl.

A non-loopback address is only ever bound inside a fresh network namespace
(unshare -n), so nothing here listens beyond this machine's loopback."""

import os
import shutil
import ssl
import subprocess
import unittest

import harness
from harness import HOST, http_request

TOKEN = 'admin-listener-test-token-0123456789'


def make_certificate(directory):
    """A self-signed certificate for 127.0.0.1 (and localhost) and its key."""
    cert, key = os.path.join(directory, 'admin.pem'), os.path.join(directory, 'admin.key')
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
                    '-nodes', '-days', '2', '-subj', '/CN=ringrelay admin test', '-keyout', key, '-out', cert,
                    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def in_new_network_namespace():
    """argv prefix that runs a command in a network namespace of its own, or None."""
    unshare = shutil.which('unshare')
    if not unshare:
        return None
    probe = subprocess.run([unshare, '-n', 'true'], capture_output=True, timeout=30)
    return [unshare, '-n'] if probe.returncode == 0 else None


class AdminListener(harness.IntegrationTestCase):
    def setUp(self):
        self.data = self.make_tempdir()
        self.env = dict(os.environ, RINGRELAY_ADMIN_TOKEN=TOKEN)

    def serve_args(self, admin_listen, listen=None):
        return ['serve', '--listen', listen or '%s:%d' % (HOST, harness.free_port()),
                '--admin-listen', admin_listen, '--shards', '1', '--data', self.data]

    def test_a_non_loopback_address_without_tls_is_refused_with_exit_2(self):
        for source in ('flag', 'env', 'config'):
            with self.subTest(source=source):
                args, env = self.serve_args('%s:%d' % (HOST, harness.free_port())), dict(self.env)
                if source == 'flag':
                    args[args.index('--admin-listen') + 1] = '0.0.0.0:9'
                elif source == 'env':
                    del args[args.index('--admin-listen'):args.index('--admin-listen') + 2]
                    env['RINGRELAY_ADMIN_LISTEN'] = '[::]:9'
                else:
                    del args[args.index('--admin-listen'):args.index('--admin-listen') + 2]
                    config = os.path.join(self.data, 'config.json')
                    with open(config, 'w') as f:
                        f.write('{"admin_listen": "0.0.0.0:9"}')
                    args += ['--config', config]
                # In a namespace of its own where there is one: should the check ever fail,
                # the address is bound there and not on this machine's interfaces.
                out = subprocess.run((in_new_network_namespace() or []) + [harness.binary_from_env('RINGRELAY_BIN')]
                                     + args, env=env, capture_output=True, text=True, timeout=20)
                self.assertEqual(out.returncode, 2, out.stderr)
                lines = out.stderr.strip().splitlines()
                self.assertEqual(len(lines), 1, out.stderr)
                self.assertIn('not a loopback address', lines[0])
                for remedy in ('--admin-tls-cert', '--admin-insecure', '127.0.0.1'):
                    self.assertIn(remedy, lines[0])
                self.assertNotIn('ringrelay serving', out.stderr)

    def test_loopback_needs_neither(self):
        admin = harness.free_port()
        server = self.start_ringrelay(self.serve_args('%s:%d' % (HOST, admin)), env=self.env)
        harness.wait_for(lambda: harness.tcp_connectable(admin), message='the admin listener')
        self.assertStatus(http_request(admin, 'GET', '/healthz'), 200)
        self.assertNotIn('--admin-insecure', server.stderr_text())

    def test_admin_insecure_is_accepted_and_warned_about_at_every_start(self):
        netns = in_new_network_namespace()
        if netns is None:
            self.skipTest('cannot make a network namespace here (unshare -n): a non-loopback address '
                          'is bound only inside one')
        for run in range(2):
            proc = harness.ManagedProcess('ringrelay', netns + [harness.binary_from_env('RINGRELAY_BIN')]
                                          + self.serve_args('0.0.0.0:9090', listen='0.0.0.0:8080')
                                          + ['--admin-insecure'], env=self.env)
            self._adopt(proc)
            proc.start()
            proc.wait_ready(lambda: 'ringrelay serving' in proc.stderr_text(), what='serving')
            warnings = [line for line in proc.stderr_text().splitlines()
                        if '"level":"warn"' in line and 'clear text' in line]
            self.assertEqual(len(warnings), 1, 'start %d:\n%s' % (run, proc.stderr_text()))
            self.assertIn('"admin_listen":"0.0.0.0:9090"', warnings[0])
            self.assertEqual(proc.stop(), 0)

    def test_admin_tls_serves_the_admin_api_over_tls_only(self):
        directory = self.make_tempdir()
        try:
            cert, key = make_certificate(directory)
        except (OSError, subprocess.CalledProcessError) as e:
            self.fail('openssl could not make a test certificate: %s' % e)
        admin = harness.free_port()
        self.start_ringrelay(self.serve_args('%s:%d' % (HOST, admin)) + ['--admin-tls-cert', cert,
                                                                          '--admin-tls-key', key], env=self.env)
        harness.wait_for(lambda: harness.tcp_connectable(admin), message='the admin listener')
        ctx = ssl.create_default_context(cafile=cert)
        conn = harness.http.client.HTTPSConnection(HOST, admin, timeout=harness.IO_TIMEOUT, context=ctx)
        try:
            resp = http_request(admin, 'GET', '/admin/state', conn=conn,
                                headers={'Authorization': 'Bearer ' + TOKEN})
        finally:
            conn.close()
        self.assertStatus(resp, 200)
        # Plain HTTP on that port gets no HTTP answer: the token never travels in clear.
        with harness.RawConnection(admin) as c:
            c.send(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
            try:
                reply = c.read_until_close(timeout=5)
            except (OSError, TimeoutError):
                reply = b''
            self.assertFalse(reply.startswith(b'HTTP/'), reply[:100])

    def test_admin_tls_cert_and_key_go_together(self):
        out = subprocess.run([harness.binary_from_env('RINGRELAY_BIN')]
                             + self.serve_args('%s:%d' % (HOST, harness.free_port()))
                             + ['--admin-tls-cert', '/nonexistent.pem'],
                             env=self.env, capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 2, out.stderr)
        self.assertIn('--admin-tls-cert and --admin-tls-key go together', out.stderr)


if __name__ == '__main__':
    harness.main()
