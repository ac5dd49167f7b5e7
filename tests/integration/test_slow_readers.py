"""Slow readers must not starve a shard's receive buffers: 1,000 streaming clients
that never read, on one shard, and a fast client's requests keep their latency.
Real binaries, loopback only."""

import http.client
import os
import resource
import socket
import sys
import time
import unittest

import harness
from harness import HOST, http_request

CHAT = '/v1/chat/completions'
TOKEN = 'test-admin-token-0123456789'
SLOW_CLIENTS = 1000
FAST_REQUESTS = 200
ROUNDS = 3                 # idle/loaded pairs tried before the latency check fails
LATENCY_FLOOR_S = 0.001    # idle p99 below this is scheduler noise on a shared machine
REQUEST_TIMEOUT_S = 10.0   # a fast request stalled this long is a stall, not noise


def p99(samples):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


class SlowReaders(harness.IntegrationTestCase):
    def setUp(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < SLOW_CLIENTS * 3 + 200:
            raise unittest.SkipTest('RLIMIT_NOFILE hard limit %d is too low for this test' % hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE, (soft, hard))
        self.mock = self.start_mock(threads=2)
        self.port, self.admin_port = harness.free_port(), harness.free_port()
        args = ['serve', '--mode', 'relay', '--upstream', self.mock.url,
                '--listen', '%s:%d' % (HOST, self.port), '--admin-listen', '%s:%d' % (HOST, self.admin_port),
                '--shards', '1', '--data', self.make_tempdir()]
        self.relay = self.start_ringrelay(args, env=dict(os.environ, RINGRELAY_ADMIN_TOKEN=TOKEN))
        self.fast = http.client.HTTPConnection(HOST, self.port, timeout=REQUEST_TIMEOUT_S)
        self.addCleanup(self.fast.close)

    def fast_request(self):
        started = time.monotonic()
        try:
            resp = http_request(self.port, 'POST', CHAT, json_body={'model': 'm', 'messages': []},
                                conn=self.fast)
        except (OSError, http.client.HTTPException) as e:
            self.fail('a fast request got no answer (%r): the shard stalled' % e)
        self.assertStatus(resp, 200)
        return time.monotonic() - started

    def fast_p99(self):
        return p99([self.fast_request() for _ in range(FAST_REQUESTS)])

    def metrics(self):
        resp = http_request(self.admin_port, 'GET', '/metrics', headers={'Authorization': 'Bearer ' + TOKEN},
                            timeout=120)
        self.assertStatus(resp, 200)
        return harness.parse_metrics(resp.text)

    def open_slow_clients(self):
        """SLOW_CLIENTS long streams whose clients never read (a small receive buffer
        so the relay's sends to them block soon)."""
        body = b'{"model":"m","stream":true,"messages":[]}'
        request = (b'POST ' + CHAT.encode() + b' HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n'
                   b'x-mock-chunks: 1000000\r\nx-mock-chunk-delay-ms: 0\r\n'
                   b'Content-Length: ' + str(len(body)).encode() + b'\r\n\r\n' + body)
        socks = []
        try:
            for i in range(SLOW_CLIENTS):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(s)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(10)
                s.bind(('127.0.0.%d' % (2 + i % 8), 0))
                s.connect((HOST, self.port))
                s.sendall(request)
        except BaseException:
            self.close_all(socks)
            raise
        return socks

    @staticmethod
    def close_all(socks):
        for s in socks:
            s.close()

    def streams_live(self):
        try:
            st = self.mock.stats()
        except (OSError, harness.HarnessError):
            return -1
        return st['streams_started'] - st['streams_completed'] - st['streams_cut'] - st['streams_broken']

    def mock_streams_started(self):
        try:
            return self.mock.stats()['streams_started']
        except (OSError, harness.HarnessError):
            return -1  # the mock is busy filling 1,000 streams: ask again

    def spills(self):
        """The shard's spill count, after one request through it (its gauges move with
        its requests); a request slow to come back during the slow streams' start is
        no latency sample."""
        try:
            http_request(self.port, 'POST', CHAT, json_body={'model': 'm', 'messages': []}, timeout=120)
        except (OSError, http.client.HTTPException) as e:
            self.fail('a request got no answer while the slow streams ran (%r): the shard is starved' % e)
        return self.metrics().get('ringrelay_recv_spills_total', 0)

    def loaded_p99(self):
        """Opens the slow clients, waits until their streams run, the shard's ring is
        under pressure and the streams have filled their windows, measures, and
        closes them again."""
        started_before = self.mock_streams_started()
        socks = self.open_slow_clients()
        try:
            harness.wait_for(lambda: self.mock_streams_started() - started_before >= SLOW_CLIENTS,
                             timeout=120, interval=0.2, message='all slow streams to start upstream')
            harness.wait_for(lambda: self.spills() > self.spills_before, timeout=60, interval=0.2,
                             message='the slow streams to fill half the receive ring')
            last = [self.spills()]

            def windows_full():  # fewer new spills than streams: they are blocked, not flowing
                now = self.spills()
                growing = now - last[0] >= SLOW_CLIENTS
                last[0] = now
                return not growing

            harness.wait_for(windows_full, timeout=60, interval=0.2, message='the slow streams to block')
            loaded = self.fast_p99()
            values = self.metrics()
            in_use = values.get('ringrelay_recv_buffers_in_use', 0)
            # Slow streams hold about half the ring (1,024 buffers), never all of it.
            self.assertLessEqual(in_use, 1024 * 3 // 4, 'slow streams pin %d of 1024 receive buffers' % in_use)
            self.spills_before = values.get('ringrelay_recv_spills_total', 0)
        finally:
            self.close_all(socks)
        harness.wait_for(lambda: self.streams_live() == 0, timeout=60, interval=0.2,
                         message='the relay to cut the slow streams upstream')
        return loaded

    def test_a_thousand_slow_stream_readers_do_not_stall_a_fast_client(self):
        self.spills_before = 0
        self.fast_request()  # warm: the pooled upstream connection exists
        results = []
        for _ in range(ROUNDS):
            measured_idle = self.fast_p99()
            idle = max(measured_idle, LATENCY_FLOOR_S)
            loaded = self.loaded_p99()
            results.append((idle, loaded))
            sys.stderr.write('idle p99 %.2f ms, loaded p99 %.2f ms\n' % (measured_idle * 1e3, loaded * 1e3))
            if loaded <= 2 * idle:
                break
        else:
            self.fail('fast client p99 under %d slow readers exceeded 2x idle in every round: %s'
                      % (SLOW_CLIENTS, ', '.join('idle %.2f ms / loaded %.2f ms' % (i * 1e3, l * 1e3)
                                                 for i, l in results)))


if __name__ == '__main__':
    harness.main()
