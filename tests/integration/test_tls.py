"""TLS end to end, with the test certificates of tests/data/tls (a test CA, a server
certificate for localhost and 127.0.0.1, an unrelated CA):

    client --TLS--> ringrelay A (--tls-cert) --plain--> ringrelay-mock
    client --plain--> ringrelay B (--upstream https://A, --upstream-ca) --TLS--> A --> mock

Python's ssl module is the TLS client on the outside, ringrelay's own client
(wolfSSL) the one inside B; curl joins in when installed."""

import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
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

    def test_an_unreadable_upstream_ca_exits_1(self):
        missing = os.path.join(self.make_tempdir(), 'no-ca.pem')
        self.assertFailsWith(['--upstream-ca', missing], 1, missing)


if __name__ == '__main__':
    harness.main()
