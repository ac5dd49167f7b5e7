"""TLS end to end, with the test certificates of tests/data/tls (a test CA, a server
certificate for localhost and 127.0.0.1, an unrelated CA):

    client --TLS--> ringrelay A (--tls-cert) --plain--> ringrelay-mock
    client --plain--> ringrelay B (--upstream https://A, --upstream-ca) --TLS--> A --> mock

Python's ssl module is the TLS client on the outside, ringrelay's own client
(wolfSSL) the one inside B; curl joins in when installed. SNI, reloads and
resumption use certificates made at test time (MadeCertificates, the openssl tool),
and for resumption to upstreams a Python TLS server that counts resumed handshakes."""

import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import harness
from harness import HOST, http_request

CHAT = '/v1/chat/completions'
TLS_DATA = os.environ.get('RR_TLS_TEST_DATA') or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', 'data', 'tls')
CA = os.path.join(TLS_DATA, 'ca.pem')
OTHER_CA = os.path.join(TLS_DATA, 'other-ca.pem')
CERT = os.path.join(TLS_DATA, 'server.pem')
KEY = os.path.join(TLS_DATA, 'server.key')


def client_context(cafile=CA, alpn=None):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if alpn:
        ctx.set_alpn_protocols(alpn)
    return ctx


class TlsConnection(harness.RawConnection):
    """A RawConnection inside TLS (SNI and certificate checked against server_hostname)."""

    def __init__(self, port, ctx=None, server_hostname='localhost', timeout=harness.IO_TIMEOUT):
        super().__init__(port, HOST, timeout)
        self.sock = (ctx or client_context()).wrap_socket(self.sock, server_hostname=server_hostname)


def https_connection(port, ctx=None, timeout=harness.IO_TIMEOUT):
    # 127.0.0.1 is checked against the certificate's IP subjectAltName.
    return http.client.HTTPSConnection(HOST, port, timeout=timeout, context=ctx or client_context())


def https_request(port, method, path, timeout=harness.IO_TIMEOUT, **kwargs):
    """One request on its own TLS connection, closed afterwards."""
    conn = https_connection(port, timeout=timeout)
    try:
        return http_request(port, method, path, conn=conn, **kwargs)
    finally:
        conn.close()


def sse_data_lines(body):
    return [line[len(b'data: '):] for line in body.replace(b'\r\n', b'\n').split(b'\n')
            if line.startswith(b'data: ')]


class TlsServing(harness.IntegrationTestCase):
    """ringrelay A serves TLS in front of the mock."""

    @classmethod
    def setUpClass(cls):
        cls.mock = cls.start_class_mock()

    def setUp(self):
        self.mock.reset()
        self.a = self.start_relay(self.mock, extra_args=['--tls-cert', CERT, '--tls-key', KEY,
                                                         '--header-timeout', '1s'])

    def test_post_over_tls_is_relayed_and_answered(self):
        resp = https_request(self.a.port, 'POST', CHAT, json_body={'model': 'tls-m'})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'tls-m')
        self.assertEqual(json.loads(self.mock.last()['body'])['model'], 'tls-m')

    def test_tls13_with_sni_and_alpn_http11_is_negotiated(self):
        with TlsConnection(self.a.port, client_context(alpn=['h2', 'http/1.1'])) as conn:
            self.assertEqual(conn.sock.version(), 'TLSv1.3')
            self.assertEqual(conn.sock.selected_alpn_protocol(), 'http/1.1')
            conn.send('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
            resp = conn.read_response()
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json(), {'status': 'ok'})

    def test_tls12_clients_are_served_too(self):
        ctx = client_context()
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        with TlsConnection(self.a.port, ctx) as conn:
            self.assertEqual(conn.sock.version(), 'TLSv1.2')
            conn.send('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
            self.assertStatus(conn.read_response(), 200)

    def test_keep_alive_carries_many_requests_over_one_tls_connection(self):
        conn = https_connection(self.a.port)
        first_socket = None
        for i in range(25):
            resp = http_request(self.a.port, 'POST', CHAT, json_body={'model': 'k%d' % i}, conn=conn)
            self.assertStatus(resp, 200)
            self.assertEqual(resp.json()['model'], 'k%d' % i)
            first_socket = first_socket or conn.sock
            self.assertIs(conn.sock, first_socket, 'the TLS connection was not kept alive')
        conn.close()

    def test_sse_stream_arrives_event_by_event_over_tls(self):
        body = json.dumps({'model': 'm', 'stream': True}).encode()
        with TlsConnection(self.a.port) as conn:
            conn.send(b'POST ' + CHAT.encode() + b' HTTP/1.1\r\nHost: localhost\r\n'
                      b'Content-Type: application/json\r\nx-mock-chunks: 4\r\nx-mock-chunk-delay-ms: 150\r\n'
                      b'Content-Length: %d\r\n\r\n' % len(body) + body)
            resp = conn.read_head()
            self.assertStatus(resp, 200)
            self.assertIn('text/event-stream', resp.header('Content-Type', ''))
            arrivals, data = [], b''
            for at, piece in conn.iter_body(resp, 'POST'):
                arrivals.append(at)
                data += piece
        events = sse_data_lines(data)
        self.assertEqual(events[-1], b'[DONE]')
        self.assertGreaterEqual(len(events), 5)
        # Streamed as produced, not buffered whole: the pieces span the chunk delays.
        self.assertGreater(arrivals[-1] - arrivals[0], 0.3)

    def test_a_large_request_body_is_decrypted_and_relayed_whole(self):
        filler = 'x' * (3 << 20)
        resp = https_request(self.a.port, 'POST', CHAT, json_body={'model': 'big', 'filler': filler}, timeout=30)
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'big')
        self.assertEqual(len(json.loads(self.mock.last()['body'])['filler']), len(filler))

    def test_plain_http_on_the_tls_port_gets_no_http_answer(self):
        data = harness.raw_request(self.a.port, b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', timeout=3)
        self.assertFalse(data.startswith(b'HTTP/'), data[:80])

    def test_a_silent_client_is_dropped_at_the_header_timeout(self):
        with harness.RawConnection(self.a.port) as conn:
            started = time.monotonic()
            self.assertTrue(conn.wait_closed(timeout=5))
            self.assertLess(time.monotonic() - started, 4)

    def test_a_client_that_does_not_trust_the_ca_fails_and_others_are_still_served(self):
        with self.assertRaises(ssl.SSLCertVerificationError):
            TlsConnection(self.a.port, client_context(cafile=OTHER_CA))
        resp = https_request(self.a.port, 'GET', '/healthz')
        self.assertStatus(resp, 200)

    def test_curl_with_cacert_gets_the_answer(self):
        curl = shutil.which('curl')
        if not curl:
            self.skipTest('curl is not installed')
        out = subprocess.run([curl, '-sS', '--max-time', '10', '--cacert', CA,
                              '--resolve', 'localhost:%d:127.0.0.1' % self.a.port,
                              '-H', 'Content-Type: application/json', '-d', '{"model":"via-curl"}',
                              'https://localhost:%d%s' % (self.a.port, CHAT)],
                             capture_output=True, timeout=20)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(json.loads(out.stdout)['model'], 'via-curl')


class TlsUpstream(harness.IntegrationTestCase):
    """ringrelay B relays to https://A (A serving TLS in front of the mock)."""

    @classmethod
    def setUpClass(cls):
        cls.mock = cls.start_class_mock()

    def setUp(self):
        self.mock.reset()
        self.a = self.start_relay(self.mock, extra_args=['--tls-cert', CERT, '--tls-key', KEY])

    def start_b(self, ca, extra_args=()):
        port, admin = harness.free_port(), harness.free_port()
        return self.start_ringrelay(
            ['serve', '--mode', 'relay', '--upstream', 'https://%s:%d' % (HOST, self.a.port),
             '--upstream-ca', ca, '--listen', '%s:%d' % (HOST, port),
             '--admin-listen', '%s:%d' % (HOST, admin), '--shards', '1',
             '--upstream-timeout', '5s', '--data', self.make_tempdir()] + list(extra_args))

    def test_a_plain_client_through_b_gets_the_mocks_answer(self):
        b = self.start_b(CA)
        resp = http_request(b.port, 'POST', CHAT, json_body={'model': 'through-b'})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'through-b')
        self.assertEqual(json.loads(self.mock.last()['body'])['model'], 'through-b')

    def test_keep_alive_and_a_stream_through_b(self):
        b = self.start_b(CA)
        conn = http.client.HTTPConnection(HOST, b.port, timeout=10)
        for i in range(10):
            resp = http_request(b.port, 'POST', CHAT, json_body={'model': 'b%d' % i}, conn=conn)
            self.assertStatus(resp, 200)
            self.assertEqual(resp.json()['model'], 'b%d' % i)
        conn.close()
        stream = harness.SSEStream(b.port, CHAT, {'model': 'm', 'stream': True},
                                   headers={'x-mock-chunks': '3', 'x-mock-chunk-delay-ms': '50'})
        events = stream.read_all()
        stream.close()
        self.assertTrue(stream.complete)
        self.assertEqual(events[-1].data, '[DONE]')

    def test_an_upstream_signed_by_an_untrusted_ca_gives_502_upstream_error(self):
        b = self.start_b(OTHER_CA)
        resp = http_request(b.port, 'POST', CHAT, json_body={'model': 'm'})
        self.assertStatus(resp, 502)
        self.assertEqual(resp.header('X-Ringrelay-Error'), 'upstream_error')
        self.assertEqual(resp.json()['error']['code'], 'upstream_error')
        self.assertIsNone(self.mock.last(), 'nothing may reach the upstream past a failed handshake')


class MadeCertificates:
    """A CA and server certificates made now with the openssl tool, in dir."""

    def __init__(self, dir):
        self.dir = dir
        self.ca = os.path.join(dir, 'ca.pem')
        self._sh('openssl ecparam -name prime256v1 -genkey -noout -out ca.key && '
                 "openssl req -x509 -new -key ca.key -sha256 -days 2 -subj '/CN=made CA' "
                 '-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign '
                 '-out ca.pem')

    def _sh(self, cmd):
        out = subprocess.run(['sh', '-c', cmd], cwd=self.dir, capture_output=True, timeout=60)
        if out.returncode != 0:
            raise harness.HarnessError('openssl failed: %s\n%s' % (cmd, out.stderr.decode()))

    def make(self, stem, san, cn=None):
        """<stem>.pem / <stem>.key for san ('DNS:a.test,IP:127.0.0.1'), replaced atomically."""
        cn = cn or stem
        self._sh('openssl ecparam -name prime256v1 -genkey -noout -out {s}.ec && '
                 'openssl pkcs8 -topk8 -nocrypt -in {s}.ec -out {s}.key.new && '
                 "openssl req -new -key {s}.key.new -subj '/CN={cn}' -out {s}.csr && "
                 "printf 'basicConstraints=critical,CA:FALSE\\nsubjectAltName={san}\\n' > {s}.ext && "
                 'openssl x509 -req -in {s}.csr -CA ca.pem -CAkey ca.key -CAcreateserial -sha256 '
                 '-days 2 -extfile {s}.ext -out {s}.pem.new && '
                 'mv {s}.pem.new {s}.pem && mv {s}.key.new {s}.key'.format(s=stem, san=san, cn=cn))
        return os.path.join(self.dir, stem + '.pem'), os.path.join(self.dir, stem + '.key')


def peer_cn(sock):
    subject = dict(x[0] for x in sock.getpeercert()['subject'])
    return subject.get('commonName')


def healthz_over(sock_conn):
    sock_conn.send('GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n')
    return sock_conn.read_response()


class TlsCertificatesAndResumption(harness.IntegrationTestCase):
    """The listener with several certificates (SNI), session tickets, SIGHUP reloads."""

    @classmethod
    def setUpClass(cls):
        cls.mock = cls.start_class_mock()

    def setUp(self):
        self.mock.reset()
        self.made = MadeCertificates(self.make_tempdir())

    def start_a(self, pairs, extra_args=()):
        args = []
        for cert, key in pairs:
            args += ['--tls-cert', cert, '--tls-key', key]
        return self.start_relay(self.mock, extra_args=args + list(extra_args))

    def ctx(self, check_hostname=True, max_version=None):
        c = client_context(cafile=self.made.ca)
        c.check_hostname = check_hostname
        if max_version:
            c.maximum_version = max_version
        return c

    def test_sni_picks_each_certificate_and_the_first_answers_no_or_unknown_names(self):
        default = self.made.make('default', 'DNS:localhost,IP:127.0.0.1', cn='default-cert')
        alpha = self.made.make('alpha', 'DNS:alpha.test', cn='alpha-cert')
        beta = self.made.make('beta', 'DNS:*.beta.test', cn='beta-cert')
        a = self.start_a([default, alpha, beta])
        seen = {}
        for name in ('alpha.test', 'x.beta.test', 'unknown.test', None):
            with TlsConnection(a.port, self.ctx(check_hostname=False), server_hostname=name) as conn:
                seen[name] = peer_cn(conn.sock)
                self.assertStatus(healthz_over(conn), 200)
        self.assertEqual(seen, {'alpha.test': 'alpha-cert', 'x.beta.test': 'beta-cert',
                                'unknown.test': 'default-cert', None: 'default-cert'})
        # And with the name checked, as a real client does.
        with TlsConnection(a.port, self.ctx(), server_hostname='alpha.test') as conn:
            self.assertStatus(healthz_over(conn), 200)
        self.assertIn('alpha.test', a.stderr_text())  # the start-up line names what is served

    def assert_resumes(self, port, max_version=None):
        ctx = self.ctx(max_version=max_version)
        with TlsConnection(port, ctx) as first:
            self.assertStatus(healthz_over(first), 200)  # TLS 1.3: the ticket came with it
            self.assertFalse(first.sock.session_reused)
            session = first.sock.session
        raw = socket.create_connection((HOST, port), timeout=harness.IO_TIMEOUT)
        second = ctx.wrap_socket(raw, server_hostname='localhost', session=session)
        try:
            self.assertTrue(second.session_reused, 'the ticket did not resume the session')
        finally:
            second.close()

    def test_a_session_ticket_resumes_the_next_connection_in_tls13_and_tls12(self):
        a = self.start_a([self.made.make('site', 'DNS:localhost')])
        self.assert_resumes(a.port)
        self.assert_resumes(a.port, max_version=ssl.TLSVersion.TLSv1_2)

    def test_sighup_reloads_the_certificates_and_keeps_open_connections(self):
        cert, key = self.made.make('site', 'DNS:old.test')
        a = self.start_a([(cert, key)])
        established = TlsConnection(a.port, self.ctx(), server_hostname='old.test')
        self.addCleanup(established.close)
        self.assertStatus(healthz_over(established), 200)

        self.made.make('site', 'DNS:new.test')
        os.kill(a.pid, signal.SIGHUP)
        harness.wait_for(lambda: 'TLS certificates reloaded' in a.stderr_text(), timeout=10,
                         message='the reload log line')
        with TlsConnection(a.port, self.ctx(), server_hostname='new.test') as conn:
            self.assertStatus(healthz_over(conn), 200)
        with self.assertRaises(ssl.SSLCertVerificationError):
            TlsConnection(a.port, self.ctx(), server_hostname='old.test')
        self.assertStatus(healthz_over(established), 200)  # still open, still served

        with open(cert, 'w') as f:
            f.write('not a certificate\n')
        os.kill(a.pid, signal.SIGHUP)
        harness.wait_for(lambda: 'TLS reload failed' in a.stderr_text(), timeout=10,
                         message='the failed-reload log line')
        line = [l for l in a.stderr_text().splitlines() if 'TLS reload failed' in l][0]
        self.assertIn(cert, line)
        with TlsConnection(a.port, self.ctx(), server_hostname='new.test') as conn:
            self.assertStatus(healthz_over(conn), 200)
        self.assertStatus(healthz_over(established), 200)
        self.assertTrue(a.running())


class CountingTlsUpstream:
    """An HTTPS upstream on loopback (Python's ssl) answering every request with
    Connection: close, so each request needs a new TLS connection; it records for
    each handshake whether it resumed a session."""

    def __init__(self, cert, key, max_version=None):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        if max_version:
            self.ctx.maximum_version = max_version
        self.listener = socket.create_server((HOST, 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.resumed = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stopping:
            try:
                raw, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self._answer(raw)
            except (OSError, ssl.SSLError):
                pass

    def _answer(self, raw):
        raw.settimeout(harness.IO_TIMEOUT)
        with self.ctx.wrap_socket(raw, server_side=True) as conn:
            data = b''
            while b'\r\n\r\n' not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            head, body = data.split(b'\r\n\r\n', 1)
            length = 0
            for line in head.split(b'\r\n')[1:]:
                name, _, value = line.partition(b':')
                if name.strip().lower() == b'content-length':
                    length = int(value.strip())
            while len(body) < length:
                body += conn.recv(65536)
            with self.lock:
                self.resumed.append(conn.session_reused)
            answer = json.dumps({'resumed': conn.session_reused}).encode()
            conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n'
                         b'Content-Length: %d\r\n\r\n' % len(answer) + answer)

    def stop(self):
        self.stopping = True
        self.listener.close()
        self.thread.join(timeout=5)


class TlsResumptionToUpstreams(harness.IntegrationTestCase):
    """ringrelay resumes its TLS sessions to an https upstream on new connections."""

    def relay_to(self, upstream, ca):
        port, admin = harness.free_port(), harness.free_port()
        return self.start_ringrelay(
            ['serve', '--mode', 'relay', '--upstream', 'https://%s:%d' % (HOST, upstream.port),
             '--upstream-ca', ca, '--listen', '%s:%d' % (HOST, port),
             '--admin-listen', '%s:%d' % (HOST, admin), '--shards', '1',
             '--upstream-timeout', '5s', '--data', self.make_tempdir()])

    def check_resumes(self, max_version=None):
        made = MadeCertificates(self.make_tempdir())
        cert, key = made.make('upstream', 'IP:127.0.0.1')
        upstream = CountingTlsUpstream(cert, key, max_version)
        self.addCleanup(upstream.stop)
        b = self.relay_to(upstream, made.ca)
        for i in range(4):
            resp = http_request(b.port, 'POST', CHAT, json_body={'model': 'r%d' % i})
            self.assertStatus(resp, 200)
        with upstream.lock:
            resumed = list(upstream.resumed)
        self.assertEqual(len(resumed), 4, 'each request should have had its own upstream connection')
        self.assertEqual(resumed, [False, True, True, True])

    def test_new_upstream_connections_resume_the_tls13_session(self):
        self.check_resumes()

    def test_new_upstream_connections_resume_the_tls12_session(self):
        self.check_resumes(ssl.TLSVersion.TLSv1_2)


class TlsStartup(harness.IntegrationTestCase):
    """Bad TLS settings stop the server at start with one clear line."""

    def run_serve(self, extra_args):
        args = [harness.binary_from_env('RINGRELAY_BIN'), 'serve', '--mode', 'relay',
                '--upstream', 'http://%s:9' % HOST, '--listen', '%s:%d' % (HOST, harness.free_port()),
                '--admin-listen', '%s:%d' % (HOST, harness.free_port()), '--shards', '1',
                '--data', self.make_tempdir()] + list(extra_args)
        out = subprocess.run(args, capture_output=True, timeout=20, stdin=subprocess.DEVNULL)
        return out.returncode, out.stderr.decode('utf-8', 'replace')

    def assertFailsWith(self, extra_args, code, text):
        rc, stderr = self.run_serve(extra_args)
        self.assertEqual(rc, code, stderr)
        lines = [l for l in stderr.splitlines() if l.startswith('ringrelay: ')]
        self.assertEqual(len(lines), 1, stderr)
        self.assertIn(text, lines[0])

    def test_an_unreadable_certificate_exits_1_naming_it(self):
        missing = os.path.join(self.make_tempdir(), 'missing.pem')
        self.assertFailsWith(['--tls-cert', missing, '--tls-key', KEY], 1, missing)

    def test_a_key_that_does_not_match_the_certificate_exits_1(self):
        self.assertFailsWith(['--tls-cert', CA, '--tls-key', KEY], 1, 'does not belong')

    def test_a_certificate_without_its_key_is_a_usage_error(self):
        self.assertFailsWith(['--tls-cert', CERT], 2, '--tls-key')

    def test_a_second_certificate_without_its_key_is_a_usage_error(self):
        self.assertFailsWith(['--tls-cert', CERT, '--tls-key', KEY, '--tls-cert', CERT], 2, 'in pairs')

    def test_a_bad_second_certificate_exits_1_naming_it(self):
        missing = os.path.join(self.make_tempdir(), 'second.pem')
        self.assertFailsWith(['--tls-cert', CERT, '--tls-key', KEY, '--tls-cert', missing, '--tls-key', KEY],
                             1, missing)

    def test_an_unreadable_upstream_ca_exits_1(self):
        missing = os.path.join(self.make_tempdir(), 'no-ca.pem')
        self.assertFailsWith(['--upstream-ca', missing], 1, missing)


if __name__ == '__main__':
    harness.main()
