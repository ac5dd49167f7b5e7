"""Active health checks of channels (`--health-path`) against the real binary and
ringrelay-mock: a channel whose health path fails is marked down (circuit open,
ringrelay_channel_up 0) and skipped, its requests go to the other channel, and it
is used again once its checks pass. The mock's POST /__mock/fail makes one path
fail, since a health check carries no x-mock-* header."""

import json
import re
import urllib.parse

import harness
from harness import HOST, http_request

CHAT = '/v1/chat/completions'
CHECK_WAIT = 20.0  # two failed checks at a 1 s interval take ~2 s; generous for a loaded box


def fail_path(mock, path, status):
    query = urllib.parse.urlencode({'path': path, 'status': status})
    return http_request(mock.port, 'POST', '/__mock/fail?' + query, timeout=5.0)


class MockFailingPath(harness.IntegrationTestCase):
    def test_a_failing_path_answers_its_status_until_cleared(self):
        mock = self.start_mock()
        self.assertStatus(fail_path(mock, '/a/v1/models', 503), 200)
        self.assertStatus(http_request(mock.port, 'GET', '/a/v1/models'), 503)
        # Headers cannot undo it, other paths are untouched.
        self.assertStatus(http_request(mock.port, 'GET', '/a/v1/models', headers={'x-mock-status': '200'}), 503)
        self.assertStatus(http_request(mock.port, 'GET', '/b/v1/models'), 200)
        self.assertStatus(fail_path(mock, '/a/v1/models', 0), 200)
        self.assertStatus(http_request(mock.port, 'GET', '/a/v1/models'), 200)
        self.assertStatus(fail_path(mock, '/a/v1/models', 500), 200)
        harness.mock_reset(mock.port)
        self.assertStatus(http_request(mock.port, 'GET', '/a/v1/models'), 200)

    def test_a_bad_fail_request_is_400(self):
        mock = self.start_mock()
        for query in ('path=/x&status=200', 'path=x&status=500', 'status=500', 'path=/x', 'path=/x&status=abc'):
            self.assertStatus(http_request(mock.port, 'POST', '/__mock/fail?' + query), 400)


class HealthChecks(harness.IntegrationTestCase):
    def setUp(self):
        self.data = self.make_tempdir()
        self.mock = self.start_mock()

    def start_gateway(self):
        port, admin = harness.free_port(), harness.free_port()
        gw = self.start_ringrelay(['serve', '--listen', '%s:%d' % (HOST, port), '--admin-listen',
                                   '%s:%d' % (HOST, admin), '--shards', '2', '--data', self.data])
        harness.wait_for(lambda: harness.tcp_connectable(admin), message='the admin listener')
        with open(self.data + '/admin.token') as f:
            self.token = f.read().strip()
        return gw

    def admin(self, gw, method, path, body=None):
        return http_request(gw.admin_port, method, path, json_body=body,
                            headers={'Authorization': 'Bearer ' + self.token})

    def channel_state(self, gw, cid):
        state = self.admin(gw, 'GET', '/admin/state').json()
        return next((c for c in state['channels'] if c['id'] == cid), {})

    def metric(self, gw, name, channel):
        text = self.admin(gw, 'GET', '/metrics').text
        m = re.search(r'^%s\{channel="%s"\} (\S+)$' % (re.escape(name), re.escape(channel)), text, re.M)
        return float(m.group(1)) if m else None

    def served_by(self, gw, cid):
        return self.metric(gw, 'ringrelay_upstream_duration_seconds_count', cid) or 0

    def wait_served_by(self, gw, cid, n):
        """The channel's exchange count once it reads n: a request's metrics are
        filed as it ends, just after its last byte went out, so a client can read
        the response before the count moves."""
        harness.wait_for(lambda: self.served_by(gw, cid) == n, timeout=5,
                         message='%s served %d requests' % (cid, n))
        return n

    def chat(self, gw, key):
        return http_request(gw.port, 'POST', CHAT, json_body={'model': 'gpt-test', 'messages': []},
                            headers={'Authorization': 'Bearer ' + key})

    def test_a_failing_channel_is_skipped_and_used_again_once_it_recovers(self):
        key = json.loads(self.cli('key', 'create', '--name', 'k', '--max-concurrency', '4', '--json').stdout)['secret']
        a = json.loads(self.cli('channel', 'add', '--name', 'a', '--base-url', self.mock.url + '/a', '--api-key',
                                'sk-a', '--models', 'gpt-test', '--priority', '0', '--health-path', '/v1/models',
                                '--health-interval', '1s', '--health-timeout', '2s', '--json').stdout)
        b = json.loads(self.cli('channel', 'add', '--name', 'b', '--base-url', self.mock.url + '/b', '--api-key',
                                'sk-b', '--models', 'gpt-test', '--priority', '1', '--json').stdout)
        self.assertEqual((a['health_path'], a['health_interval_ms'], a['health_timeout_ms']), ('/v1/models', 1000, 2000))
        self.assertIsNone(b['health_path'])
        gw = self.start_gateway()

        harness.wait_for(lambda: self.channel_state(gw, a['id']).get('health') == 'up', timeout=CHECK_WAIT,
                         message='channel a passing its first check')
        self.assertEqual(self.metric(gw, 'ringrelay_channel_up', a['id']), 1)
        self.assertStatus(self.chat(gw, key), 200)
        self.wait_served_by(gw, a['id'], 1)

        self.assertStatus(fail_path(self.mock, '/a/v1/models', 500), 200)
        down = harness.wait_for(lambda: (lambda s: s if s.get('health') == 'down' else None)(
            self.channel_state(gw, a['id'])), timeout=CHECK_WAIT, message='channel a marked down')
        self.assertEqual((down['circuit'], down['health_last_status']), ('open', 500))
        self.assertEqual(self.metric(gw, 'ringrelay_channel_up', a['id']), 0)
        self.assertEqual(self.metric(gw, 'ringrelay_circuit_open', a['id']), 1)
        for _ in range(5):
            self.assertStatus(self.chat(gw, key), 200)
        self.wait_served_by(gw, b['id'], 5)
        self.assertEqual(self.served_by(gw, a['id']), 1)  # not one more for a

        self.assertStatus(fail_path(self.mock, '/a/v1/models', 0), 200)
        harness.wait_for(lambda: self.metric(gw, 'ringrelay_channel_up', a['id']) == 1, timeout=CHECK_WAIT,
                         message='channel a up again')
        self.assertEqual(self.channel_state(gw, a['id'])['health'], 'up')
        self.assertStatus(self.chat(gw, key), 200)
        self.wait_served_by(gw, a['id'], 2)
        self.assertEqual(self.served_by(gw, b['id']), 5)
        self.assertIn('channel failed its health checks', gw.stderr_text())
        self.assertIn('channel passes its health checks again', gw.stderr_text())

    def test_checks_are_set_through_the_admin_api_and_turned_off_again(self):
        c = json.loads(self.cli('channel', 'add', '--name', 'a', '--base-url', self.mock.url + '/a', '--api-key',
                                'sk-a', '--models', 'gpt-test', '--json').stdout)
        gw = self.start_gateway()
        bad = self.admin(gw, 'PUT', '/admin/channels/' + c['id'], {'health_interval': '100ms'})
        self.assertStatus(bad, 400)
        self.assertIn('health_interval', bad.text)
        self.assertStatus(self.admin(gw, 'PUT', '/admin/channels/' + c['id'], {'health_path': 'no-slash'}), 400)
        self.assertStatus(fail_path(self.mock, '/a/v1/models', 502), 200)
        resp = self.admin(gw, 'PUT', '/admin/channels/' + c['id'],
                          {'health_path': '/v1/models', 'health_interval': '1s', 'health_timeout': '1s'})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['health_path'], '/v1/models')
        harness.wait_for(lambda: self.channel_state(gw, c['id']).get('health') == 'down', timeout=CHECK_WAIT,
                         message='channel marked down')
        # The request path sees it: no usable channel left.
        key = json.loads(self.cli('key', 'create', '--name', 'k', '--json').stdout)['secret']
        resp = self.chat(gw, key)
        self.assertStatus(resp, 503)
        self.assertEqual(resp.header('X-Ringrelay-Error'), 'no_available_channel')
        # Checks off: the verdict is forgotten and the channel serves again.
        self.assertStatus(self.admin(gw, 'PUT', '/admin/channels/' + c['id'], {'health_path': ''}), 200)
        harness.wait_for(lambda: self.channel_state(gw, c['id']).get('health') == 'unchecked', timeout=CHECK_WAIT,
                         message='health forgotten')
        self.assertStatus(self.chat(gw, key), 200)
        show = self.cli('channel', 'show', c['id']).stdout
        self.assertRegex(show, r'health check\s+off')

    def test_the_probe_carries_the_channel_credential_and_base_path(self):
        self.cli('channel', 'add', '--name', 'anth', '--type', 'anthropic', '--base-url', self.mock.url + '/p',
                 '--api-key', 'sk-ant-probe', '--models', 'claude-x', '--health-path', '/v1/models',
                 '--health-interval', '1s')
        self.start_gateway()
        last = harness.wait_for(lambda: (lambda l: l if l and l.get('path') == '/p/v1/models' else None)(
            self.try_last()), timeout=CHECK_WAIT, message='a health check at the mock')
        self.assertEqual(last['method'], 'GET')
        self.assertEqual(harness.last_header(last, 'x-api-key'), 'sk-ant-probe')
        self.assertEqual(harness.last_header(last, 'anthropic-version'), '2023-06-01')
        self.assertEqual(harness.last_header(last, 'user-agent'), 'ringrelay-health-check')

    def test_a_drain_cuts_a_check_that_waits_for_an_answer(self):
        # An upstream that accepts and never answers; the check would wait 60 s.
        import socket
        hole = socket.socket()
        hole.bind((HOST, 0))
        hole.listen(8)
        self.addCleanup(hole.close)
        self.cli('channel', 'add', '--name', 'silent', '--base-url', 'http://%s:%d' % hole.getsockname(),
                 '--api-key', 'sk-s', '--models', 'gpt-test', '--health-path', '/v1/models',
                 '--health-interval', '1s', '--health-timeout', '60s')
        gw = self.start_gateway()
        hole.settimeout(CHECK_WAIT)
        conn, _ = hole.accept()  # the check is connected and waits for the head
        self.addCleanup(conn.close)
        conn.settimeout(CHECK_WAIT)
        self.assertIn(b'GET /v1/models HTTP/1.1', conn.recv(4096))
        self.assertEqual(gw.stop(), 0)  # within the harness's 5 s grace, not after 60 s
        self.assertFalse(gw.killed)
        self.assertIn('draining', gw.stderr_text())

    def try_last(self):
        try:
            return self.mock.last()
        except harness.HarnessError:
            return None


if __name__ == '__main__':
    harness.main()
