"""Upstream side of the server: keep-alive reuse as /metrics reports it, and a drain
of many idle client connections that stays linear. Real binaries, loopback only."""

import http.client
import os
import resource
import signal
import socket
import time
import unittest

import harness
from harness import HOST
from test_ops import Ops

CHAT = '/v1/chat/completions'


class UpstreamReuse(Ops):
    def test_metrics_show_more_than_one_request_per_upstream_connection_under_keep_alive_load(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_ops_gateway(shards=1)
        conn = http.client.HTTPConnection(HOST, gw.port, timeout=10)
        try:
            for _ in range(40):
                conn.request('POST', CHAT, body='{"model":"gpt-test","messages":[]}',
                             headers={'Authorization': 'Bearer ' + key['secret'],
                                      'Content-Type': 'application/json'})
                resp = conn.getresponse()
                resp.read()
                self.assertEqual(resp.status, 200)
        finally:
            conn.close()
        values = self.metrics()
        requests = values.get('ringrelay_upstream_requests_total', 0)
        connections = values.get('ringrelay_upstream_connections_total', 0)
        self.assertEqual(requests, 40)  # each request sent once, counted once (it was counted twice)
        self.assertGreater(connections, 0, 'no upstream connection counted: the reuse ratio divides by zero')
        self.assertGreater(requests / connections, 1.0,
                           'requests %d on %d upstream connections: no keep-alive reuse' % (requests, connections))


class LinearDrain(Ops):
    def open_idle_connections(self, port, n):
        """n keep-alive connections that each had one request answered, spread over
        several source addresses (the ephemeral port range of one is shared)."""
        socks = []
        request = b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
        for i in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(10)
            s.bind(('127.0.0.%d' % (2 + i % 8), 0))
            s.connect((HOST, port))
            s.sendall(request)
            socks.append(s)
        for s in socks:
            head = b''
            while b'\r\n\r\n' not in head or not head.endswith(b'}'):
                chunk = s.recv(4096)
                if not chunk:
                    self.fail('a connection closed before its /healthz answer')
                head += chunk
            self.assertIn(b' 200 ', head.split(b'\r\n', 1)[0])
        return socks

    def test_a_drain_of_many_idle_keep_alive_connections_on_one_shard_is_fast(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        # 20,000 where the hard limit allows; the server (which takes its hard limit
        # too) needs some descriptors of its own besides the connections.
        n = min(20000, hard - 200)
        if n < 5000:
            raise unittest.SkipTest('RLIMIT_NOFILE hard limit %d is too low for this test' % hard)
        gw = self.start_ops_gateway(shards=1)
        socks = self.open_idle_connections(gw.port, n)
        try:
            cpu_before = self.cpu_seconds(gw.pid)
            os.kill(gw.pid, signal.SIGTERM)
            status, usage = self.reap(gw, timeout=60)
        finally:
            for s in socks:
                s.close()
        self.assertEqual(status, 0, gw.describe())
        self.assertIn('"draining"', gw.stderr_text())
        # CPU, not wall time: the machine may be busy with other work. The drain's own
        # work is linear (a few ms here); the quadratic one took seconds of CPU.
        drain_cpu = usage.ru_utime + usage.ru_stime - cpu_before
        self.assertLess(drain_cpu, 1.0, 'drain of %d idle connections took %.2f s of CPU' % (n, drain_cpu))

    @staticmethod
    def cpu_seconds(pid):
        """User + system CPU the process (all its threads) used so far."""
        with open('/proc/%d/stat' % pid) as f:
            fields = f.read().rsplit(')', 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')

    @staticmethod
    def reap(proc, timeout):
        """Waits for the signalled process; returns its exit code and resource usage."""
        deadline = time.monotonic() + timeout
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid == proc.pid:
                code = os.waitstatus_to_exitcode(status)
                proc.proc.returncode = code
                proc.returncode = code
                return code, usage
            if time.monotonic() > deadline:
                raise harness.HarnessError('%s did not exit within %d s' % (proc.name, timeout))
            time.sleep(0.05)


if __name__ == '__main__':
    harness.main()
