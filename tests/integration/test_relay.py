"""ringrelay in relay mode in front of ringrelay-mock, driven as clients drive it:
http.client, raw sockets for malformed and pipelined input, ab -k when installed."""

import json
import shutil
import socket
import subprocess
import threading
import time

import harness
from harness import HOST, RawConnection, http_request, last_header, raw_request

CHAT = '/v1/chat/completions'


class RelayBasics(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = cls.start_class_mock()

    def setUp(self):
        self.mock.reset()
        self.relay = self.start_relay(self.mock, extra_args=['--header-timeout', '1s'])

    def test_post_is_relayed_and_answered_with_the_upstream_body(self):
        resp = http_request(self.relay.port, 'POST', CHAT, json_body={'model': 'gpt-x', 'messages': []})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'gpt-x')
        last = self.mock.last()
        self.assertEqual(last['method'], 'POST')
        self.assertEqual(last['path'], CHAT)
        self.assertEqual(json.loads(last['body'])['model'], 'gpt-x')

    def test_relay_mode_passes_the_upstreams_account_headers(self):
        # Relay mode fronts one's own upstream: nothing about its account is hidden.
        resp = http_request(self.relay.port, 'POST', CHAT, json_body={'model': 'gpt-x', 'messages': []})
        self.assertStatus(resp, 200)
        self.assertTrue(resp.header('openai-organization'))
        self.assertTrue(resp.header('openai-project'))

    def test_get_with_query_keeps_path_and_query(self):
        resp = http_request(self.relay.port, 'GET', '/v1/models?limit=5')
        self.assertStatus(resp, 200)
        last = self.mock.last()
        self.assertEqual(last['path'], '/v1/models')
        self.assertEqual(last['query'], 'limit=5')

    def test_request_id_is_created_returned_and_passed_upstream(self):
        resp = http_request(self.relay.port, 'POST', CHAT, json_body={'model': 'm'})
        rid = resp.header('X-Request-Id')
        self.assertRegex(rid or '', r'^[0-9a-f]{32}$')
        self.assertEqual(last_header(self.mock.last(), 'X-Request-Id'), rid)
        given = http_request(self.relay.port, 'POST', CHAT, json_body={'model': 'm'},
                             headers={'X-Request-Id': 'client-chosen-42'})
        self.assertEqual(given.header('X-Request-Id'), 'client-chosen-42')
        self.assertEqual(last_header(self.mock.last(), 'X-Request-Id'), 'client-chosen-42')

    def test_forwarding_headers_are_rewritten_and_hop_by_hop_dropped(self):
        http_request(self.relay.port, 'POST', CHAT, json_body={'model': 'm'},
                     headers={'X-Forwarded-For': '203.0.113.9', 'Connection': 'keep-alive, X-Secret-Hop',
                              'X-Secret-Hop': 'must-not-pass', 'Keep-Alive': 'timeout=5',
                              'TE': 'trailers', 'X-End-To-End': 'passes'})
        last = self.mock.last()
        self.assertEqual(last_header(last, 'X-Forwarded-For'), '203.0.113.9, 127.0.0.1')
        self.assertEqual(last_header(last, 'Host'), self.mock.url.split('//')[1])
        self.assertEqual(last_header(last, 'X-End-To-End'), 'passes')
        for hop in ('X-Secret-Hop', 'Keep-Alive', 'TE', 'Connection'):
            self.assertIsNone(last_header(last, hop), hop)

    def test_healthz_is_answered_locally(self):
        resp = http_request(self.relay.port, 'GET', '/healthz')
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json(), {'status': 'ok'})
        self.assertIsNone(self.mock.last())

    def test_keep_alive_reuses_one_client_and_one_upstream_connection(self):
        import http.client
        before = self.mock.stats()['connections_accepted']
        conn = http.client.HTTPConnection(HOST, self.relay.port, timeout=5)
        for i in range(30):
            resp = http_request(self.relay.port, 'POST', CHAT, json_body={'model': 'm%d' % i}, conn=conn)
            self.assertStatus(resp, 200)
            self.assertEqual(resp.json()['model'], 'm%d' % i)
        conn.close()
        # One shard serves this client, so one pooled upstream connection carries it
        # all (the second stats call opens one more connection of its own).
        relay_connections = self.mock.stats()['connections_accepted'] - before - 1
        self.assertEqual(relay_connections, 1)

    def test_a_lowercase_head_is_an_extension_method_and_gets_its_body(self):
        # RFC 9110 9.1: methods are case-sensitive, so "head" is not HEAD. The mock
        # answers it (an unknown method) with a 404 and a JSON body, which must reach
        # the client whole; a relay that took it for HEAD would drop the body and
        # leave the client waiting for the Content-Length it announced.
        with RawConnection(self.relay.port, timeout=5) as c:
            for _ in range(2):  # and the connection stays usable after it
                c.send(b'head /v1/models HTTP/1.1\r\nHost: x\r\n\r\n')
                try:
                    resp = c.read_response('GET', timeout=5)
                except socket.timeout:
                    self.fail('the body of the answer to "head" never came: it was treated as HEAD')
                self.assertStatus(resp, 404)
                self.assertTrue(resp.complete)
                self.assertEqual(len(resp.body), int(resp.header('Content-Length')))
                self.assertGreater(len(resp.body), 0)
                self.assertEqual(self.mock.last()['method'], 'head')

    def test_pipelined_requests_are_answered_in_order(self):
        reqs = b''.join(
            b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
            b'Content-Length: %d\r\n\r\n%s' % (len(body), body)
            for body in (json.dumps({'model': 'p%d' % i}).encode() for i in range(3)))
        with RawConnection(self.relay.port) as c:
            c.send(reqs)
            models = [c.read_response('POST').json()['model'] for _ in range(3)]
        self.assertEqual(models, ['p0', 'p1', 'p2'])

    def test_a_request_split_into_single_bytes_is_relayed(self):
        body = b'{"model":"slow-writer"}'
        req = (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n' % len(body)) + body
        with RawConnection(self.relay.port) as c:
            for i in range(len(req)):
                c.send(req[i:i + 1])
            resp = c.read_response('POST')
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'slow-writer')

    def test_chunked_request_body_reaches_the_upstream_whole(self):
        body = json.dumps({'model': 'chunky', 'messages': [{'role': 'user', 'content': 'x' * 3000}]}).encode()
        chunks = b''.join(b'%x\r\n%s\r\n' % (len(body[i:i + 700]), body[i:i + 700]) for i in range(0, len(body), 700))
        req = b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' + chunks + b'0\r\n\r\n'
        with RawConnection(self.relay.port) as c:
            c.send(req)
            resp = c.read_response('POST')
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'chunky')
        self.assertEqual(json.loads(self.mock.last()['body']), json.loads(body))

    def test_expect_100_continue_gets_its_interim_response(self):
        body = b'{"model":"expecting"}'
        with RawConnection(self.relay.port) as c:
            c.send(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n'
                   b'Content-Length: %d\r\n\r\n' % len(body))
            interim = c.read_until(b'\r\n\r\n', timeout=3)
            self.assertTrue(interim.startswith(b'HTTP/1.1 100'), interim)
            c.send(body)
            resp = c.read_response('POST')
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'expecting')

    def test_a_client_that_half_closes_after_its_request_gets_the_answer(self):
        # HTTP/1.1 lets a client shut its write side once the request is out; the
        # FIN arrives while the upstream is still working (it answers after 300 ms).
        with RawConnection(self.relay.port) as conn:
            conn.send(b'GET /v1/models HTTP/1.1\r\nHost: relay.test\r\nx-mock-delay-ms: 300\r\n\r\n')
            conn.sock.shutdown(socket.SHUT_WR)
            resp = conn.read_response()
            self.assertStatus(resp, 200)
            self.assertEqual(self.mock.last()['path'], '/v1/models')
            conn.read_until_close()  # then the relay closes: nothing more will come

    def test_http10_keep_alive_as_ab_sends_it(self):
        req = b'GET /v1/models HTTP/1.0\r\nConnection: Keep-Alive\r\nHost: x\r\n\r\n'
        with RawConnection(self.relay.port) as c:
            for _ in range(3):
                c.send(req)
                resp = c.read_response('GET')
                self.assertStatus(resp, 200)
                self.assertEqual((resp.header('Connection') or '').lower(), 'keep-alive')
                self.assertIsNotNone(resp.header('Content-Length'))

    def test_http10_client_gets_a_streamed_body_dechunked_and_close_delimited(self):
        body = json.dumps({'model': 'm', 'stream': True}).encode()
        req = (b'POST /v1/chat/completions HTTP/1.0\r\nContent-Length: %d\r\nx-mock-chunks: 3\r\n\r\n' % len(body)) + body
        data = raw_request(self.relay.port, req)
        head, _, payload = data.partition(b'\r\n\r\n')
        self.assertNotIn(b'transfer-encoding', head.lower())
        self.assertIn(b'data: [DONE]', payload)
        self.assertNotIn(b'\r\n0\r\n', payload)


class RelayStreaming(harness.IntegrationTestCase):
    def setUp(self):
        self.mock = self.start_mock()
        self.relay = self.start_relay(self.mock)

    def test_sse_events_arrive_as_they_are_produced(self):
        stream = harness.SSEStream(self.relay.port, CHAT, {'model': 'm', 'stream': True},
                                   headers={'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '300'})
        events = stream.read_all()
        stream.close()
        self.assertTrue(stream.complete)
        self.assertEqual(events[-1].data, '[DONE]')
        self.assertGreaterEqual(len(events), 5)
        # The first delta reaches us about a second before the last: nothing buffered.
        self.assertGreater(events[-1].at - events[0].at, 0.7)

    def test_client_disconnect_mid_stream_cuts_the_upstream_at_once(self):
        stream = harness.SSEStream(self.relay.port, CHAT, {'model': 'm', 'stream': True},
                                   headers={'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '200'})
        first = next(stream.events())
        self.assertIsNotNone(first)
        stream.conn.abort()
        harness.wait_for(lambda: self.mock.stats()['streams_cut'] >= 1, timeout=3,
                         message='the mock to see the stream cut')

    def test_a_half_closed_client_that_then_resets_still_cuts_the_upstream(self):
        stream = harness.SSEStream(self.relay.port, CHAT, {'model': 'm', 'stream': True},
                                   headers={'x-mock-chunks': '50', 'x-mock-chunk-delay-ms': '200'})
        stream.conn.sock.shutdown(socket.SHUT_WR)
        self.assertIsNotNone(next(stream.events()))  # half-closed, still served
        stream.conn.abort()
        harness.wait_for(lambda: self.mock.stats()['streams_cut'] >= 1, timeout=3,
                         message='the mock to see the stream cut')

    def test_upstream_closing_mid_stream_reaches_the_client_as_a_cut(self):
        stream = harness.SSEStream(self.relay.port, CHAT, {'model': 'm', 'stream': True},
                                   headers={'x-mock-behavior': 'close-mid-stream'})
        stream.read_all(timeout=5)
        stream.close()
        self.assertFalse(stream.complete)


class RelayFailures(harness.IntegrationTestCase):
    def assert_gateway_error(self, resp, status, code):
        self.assertStatus(resp, status)
        self.assertEqual(resp.header('X-Ringrelay-Error'), code)
        err = resp.json()['error']
        self.assertEqual(err['type'], 'ringrelay_error')
        self.assertEqual(err['code'], code)
        self.assertTrue(err['message'])

    def test_dead_upstream_gives_502_upstream_error(self):
        port = harness.free_port()  # nothing listens there
        mock_like = type('Dead', (), {'url': 'http://%s:%d' % (HOST, port)})()
        relay = self.start_relay(mock_like)
        resp = http_request(relay.port, 'POST', CHAT, json_body={'model': 'm'})
        self.assert_gateway_error(resp, 502, 'upstream_error')
        self.assertIn('connect', resp.json()['error']['message'])

    def test_hung_upstream_gives_504_upstream_timeout(self):
        mock = self.start_mock()
        relay = self.start_relay(mock, extra_args=['--upstream-timeout', '400ms'])
        started = time.monotonic()
        resp = http_request(relay.port, 'POST', CHAT, json_body={'model': 'm'},
                            headers={'x-mock-behavior': 'hang'})
        self.assert_gateway_error(resp, 504, 'upstream_timeout')
        self.assertLess(time.monotonic() - started, 3)
        harness.wait_for(lambda: mock.stats()['hangs_aborted'] >= 1, timeout=3,
                         message='the hung upstream connection to be closed')

    def test_upstream_reset_gives_502(self):
        mock = self.start_mock()
        relay = self.start_relay(mock)
        resp = http_request(relay.port, 'POST', CHAT, json_body={'model': 'm'},
                            headers={'x-mock-behavior': 'reset'})
        self.assert_gateway_error(resp, 502, 'upstream_error')
        # The relay stays healthy for the next request.
        self.assertStatus(http_request(relay.port, 'POST', CHAT, json_body={'model': 'm'}), 200)

    def test_upstream_error_statuses_pass_through_untouched(self):
        mock = self.start_mock()
        relay = self.start_relay(mock)
        resp = http_request(relay.port, 'POST', CHAT, json_body={'model': 'm'},
                            headers={'x-mock-status': '429'})
        self.assertStatus(resp, 429)
        self.assertIsNone(resp.header('X-Ringrelay-Error'))

    def test_slow_header_gets_408_and_is_closed(self):
        mock = self.start_mock()
        relay = self.start_relay(mock, extra_args=['--header-timeout', '500ms'])
        with RawConnection(relay.port) as c:
            c.send(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n')
            resp = c.read_response('POST', timeout=3)
            self.assert_gateway_error(resp, 408, 'request_timeout')
            c.wait_closed(timeout=3)

    def test_oversized_body_gets_413(self):
        mock = self.start_mock()
        relay = self.start_relay(mock, extra_args=['--max-body', '1KiB'])
        resp = http_request(relay.port, 'POST', CHAT, body=b'{"model":"m","x":"' + b'a' * 2000 + b'"}')
        self.assert_gateway_error(resp, 413, 'body_too_large')
        self.assertIsNone(mock.last())


MALFORMED = [
    ('content-length with transfer-encoding',
     b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400),
    ('differing content-lengths', b'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd', 400),
    ('bad chunk size', b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n', 400),
    # Chunk extensions must follow RFC 9112 7.1.1; these two reached the upstream verbatim.
    ('chunk extension with no name',
     b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2;\r\naa\r\n0\r\n\r\n', 400),
    ('chunk extension with an open quoted string',
     b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n'
     b'5;a="abc";b="def; ghi\r\nhello\r\n0\r\n\r\n', 400),
    ('obs-fold', b'GET / HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n  folded\r\n\r\n', 400),
    ('bare CR', b'GET / HTTP/1.1\r\nHost: x\rX-A: 1\r\n\r\n', 400),
    ('NUL in a value', b'GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', 400),
    ('space before colon', b'GET / HTTP/1.1\r\nHost : x\r\n\r\n', 400),
    ('missing host on 1.1', b'GET / HTTP/1.1\r\nX-A: 1\r\n\r\n', 400),
    ('over-long request line', b'GET /' + b'a' * 20000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', 414),
    ('over-large header', b'GET / HTTP/1.1\r\nHost: x\r\nX-Big: ' + b'b' * 70000 + b'\r\n\r\n', 431),
    ('HTTP/2.0 request line', b'GET / HTTP/2.0\r\nHost: x\r\n\r\n', 505),
    ('unknown transfer coding', b'POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 501),
]


class RelayRejectsMalformedInput(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = cls.start_class_mock()

    def test_each_malformed_request_gets_its_status_and_a_json_error(self):
        relay = self.start_relay(self.mock)
        for name, data, status in MALFORMED:
            with self.subTest(name):
                reply = raw_request(relay.port, data, timeout=5)
                resp = harness.parse_response(reply)
                self.assertStatus(resp, status, '%s: got %r' % (name, reply[:200]))
                self.assertIsNotNone(resp.header('X-Ringrelay-Error'), name)
                self.assertEqual(resp.json()['error']['type'], 'ringrelay_error')
        self.assertIsNone(self.mock.last(), 'a malformed request reached the upstream')
        # Still serving after all that.
        self.assertStatus(http_request(relay.port, 'GET', '/healthz'), 200)


class RawUpstream:
    """A one-connection upstream on loopback that answers with bytes a test gives: the
    first part at once, the rest when the test calls release() (so a test can have the
    relay send the head on before the rest arrives)."""

    def __init__(self, first, rest=b''):
        self.first, self.rest = first, rest
        self.released = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind((HOST, 0))
        self.listener.listen(4)
        self.url = 'http://%s:%d' % self.listener.getsockname()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.listener.settimeout(harness.IO_TIMEOUT)
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(harness.IO_TIMEOUT)
            data = b''
            while b'\r\n\r\n' not in data:
                piece = conn.recv(65536)
                if not piece:
                    return
                data += piece
            conn.sendall(self.first)
            if self.rest and self.released.wait(harness.IO_TIMEOUT):
                conn.sendall(self.rest)
            conn.recv(1)  # until the relay closes its side (it must not reuse this one)

    def release(self):
        self.released.set()

    def close(self):
        self.released.set()
        self.listener.close()
        self.thread.join(harness.IO_TIMEOUT)


class RelayRejectsMalformedUpstreamChunks(harness.IntegrationTestCase):
    HEAD = b'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n'

    def upstream(self, first, rest=b''):
        up = RawUpstream(first, rest)
        self.addCleanup(up.close)
        return up

    def test_a_malformed_extension_before_any_byte_was_sent_is_502(self):
        for body in (b'2;\r\naa\r\n0\r\n\r\n', b'5;a="abc";b="def; ghi\r\nhello\r\n0\r\n\r\n'):
            with self.subTest(body=body):
                up = self.upstream(self.HEAD + body)
                relay = self.start_relay(type('Up', (), {'url': up.url})())
                resp = http_request(relay.port, 'GET', '/v1/models')
                self.assertStatus(resp, 502)
                self.assertEqual(resp.header('X-Ringrelay-Error'), 'upstream_error')

    def test_a_malformed_extension_after_the_head_went_out_cuts_the_stream(self):
        up = self.upstream(self.HEAD + b'5\r\nhello\r\n', b'2;\r\naa\r\n0\r\n\r\n')
        relay = self.start_relay(type('Up', (), {'url': up.url})())
        with RawConnection(relay.port) as c:
            c.send(b'GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n')
            resp = c.read_head()
            self.assertEqual(resp.status, 200)
            self.assertEqual(c.read_until(b'hello\r\n'), b'5\r\nhello\r\n')
            up.release()
            rest = c.read_until_close()
            self.assertNotIn(b'aa', rest)
            self.assertNotIn(b'0\r\n\r\n', rest)  # no last chunk: the client sees a cut body


class RelayUnderAb(harness.IntegrationTestCase):
    def test_ab_keep_alive_completes_every_request(self):
        ab = shutil.which('ab')
        if not ab:
            self.skipTest('ab (apache2-utils) not installed')
        mock = self.start_mock()
        relay = self.start_relay(mock)
        out = subprocess.run([ab, '-k', '-q', '-n', '3000', '-c', '20', '-s', '10',
                              'http://%s:%d/v1/models' % (HOST, relay.port)],
                             capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r'Complete requests:\s+3000')
        self.assertRegex(out.stdout, r'Failed requests:\s+0')
        self.assertRegex(out.stdout, r'Keep-Alive requests:\s+3000')


if __name__ == '__main__':
    harness.main()
