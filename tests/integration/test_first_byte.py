"""--first-byte-timeout and the channel's --first-byte-timeout (issue 12): an upstream
that sends no response head (or, for an SSE answer, no first event) within it is cut
and the request goes to the next channel, unseen by the client, even a POST. Two
mocks: one made to hang with --default, one that answers. The first-byte timeout is
small (300 ms) and the upstream timeout large (20 s), so "failed over" and "waited
for the upstream timeout" cannot be mistaken for each other; no assertion depends
on how fast the machine is beyond that."""

import json
import os
import time

import harness
from harness import http_request
from test_gateway import CHAT, Gateway

FAST = '300ms'   # first-byte timeout
SLOW = '20s'     # upstream timeout: a test that waited for it would take 20 s


class FirstByte(Gateway):
    def setUp(self):
        super().setUp()  # self.mock: the one that answers
        self.key = self.make_key()

    def hanging_mock(self, *defaults):
        return self.start_mock(extra_args=[a for d in defaults for a in ('--default', d)])

    def channels(self, first_mock, second_mock=None, **first_flags):
        """Channel 'first' (tried first: priority 0) and 'second' (priority 1)."""
        first = self.make_channel(name='first', url=first_mock.url, priority=0, **first_flags)
        second = self.make_channel(name='second', url=(second_mock or self.mock).url, priority=1)
        return first, second

    def first_byte_timeouts(self, gw, channel):
        # A channel's series appears once a shard has counted something for it.
        return self.metrics(gw).get(
            'ringrelay_upstream_first_byte_timeouts_total{channel="%s"}' % channel['id'], 0)

    def admin_get(self, gw, path):
        with open(os.path.join(self.data, 'admin.token')) as f:
            token = f.read().strip()
        resp = http_request(gw.admin_port, 'GET', path, headers={'Authorization': 'Bearer ' + token})
        self.assertStatus(resp, 200)
        return resp.json()

    def timed_chat(self, gw, **kw):
        started = time.monotonic()
        resp = self.chat(gw, self.key, timeout=40, **kw)
        return resp, time.monotonic() - started

    def test_a_channel_without_a_head_in_time_fails_over_and_the_client_sees_one_answer(self):
        hang = self.hanging_mock('behavior=hang')
        first, second = self.channels(hang)
        gw = self.start_gateway('--first-byte-timeout', FAST, '--upstream-timeout', SLOW)
        resp, elapsed = self.timed_chat(gw)
        self.assertStatus(resp, 200)
        self.assertIsNone(resp.header('X-Ringrelay-Error'))
        self.assertEqual(resp.json()['model'], 'gpt-test')
        self.assertLess(elapsed, 10)  # far below the 20 s upstream timeout
        # Both saw the POST: the replay the operator allowed with --first-byte-timeout.
        self.assertEqual(hang.stats()['requests'], 1)
        self.assertEqual(self.upstream_requests_seen(), 1)
        self.assertEqual(self.first_byte_timeouts(gw, first), 1)
        self.assertEqual(self.first_byte_timeouts(gw, second), 0)
        self.assertEqual(self.replays(gw, 'first_byte_timeout'), 1)

    def test_each_cut_counts_as_a_failure_of_the_channel_and_five_in_a_row_open_its_circuit(self):
        hang = self.hanging_mock('behavior=hang')
        first, _ = self.channels(hang)
        gw = self.start_gateway('--first-byte-timeout', FAST, '--upstream-timeout', SLOW)
        for _ in range(5):
            self.assertStatus(self.chat(gw, self.key, timeout=40), 200)
        self.assertEqual(self.metrics(gw)['ringrelay_circuit_open{channel="%s"}' % first['id']], 1)
        self.assertStatus(self.chat(gw, self.key, timeout=40), 200)  # straight to the second channel
        self.assertEqual(hang.stats()['requests'], 5)
        self.assertEqual(self.upstream_requests_seen(), 6)
        self.assertEqual(self.first_byte_timeouts(gw, first), 5)

    def test_a_stream_whose_first_event_does_not_come_fails_over_before_any_byte_reaches_the_client(self):
        # The head comes at once, the first event never (within the test): cut at the
        # first-byte timeout, and the client's stream is the second channel's, whole.
        slow = self.hanging_mock('first-event-delay-ms=60000')
        first, _ = self.channels(slow)
        gw = self.start_gateway('--first-byte-timeout', FAST, '--upstream-timeout', SLOW)
        stream = harness.SSEStream(gw.port, CHAT, {'model': 'gpt-test', 'stream': True, 'messages': []},
                                   headers={'Authorization': 'Bearer ' + self.key['secret']}, timeout=40)
        self.addCleanup(stream.close)
        self.assertStatus(stream.response, 200)
        self.assertLess(stream.head_at - stream.sent_at, 10)
        events = stream.read_all()
        self.assertTrue(stream.complete)
        self.assertEqual(events[-1].data, '[DONE]')
        self.assertEqual(slow.stats()['requests'], 1)
        self.assertEqual(self.upstream_requests_seen(), 1)
        self.assertEqual(self.first_byte_timeouts(gw, first), 1)

    def test_a_streaming_request_to_a_channel_without_a_head_fails_over_too(self):
        hang = self.hanging_mock('behavior=hang')
        first, _ = self.channels(hang)
        gw = self.start_gateway('--first-byte-timeout', FAST, '--upstream-timeout', SLOW)
        stream = harness.SSEStream(gw.port, CHAT, {'model': 'gpt-test', 'stream': True, 'messages': []},
                                   headers={'Authorization': 'Bearer ' + self.key['secret']}, timeout=40)
        self.addCleanup(stream.close)
        self.assertStatus(stream.response, 200)
        self.assertEqual(stream.read_all()[-1].data, '[DONE]')
        self.assertEqual(self.first_byte_timeouts(gw, first), 1)

    def test_when_every_channel_times_out_the_client_gets_504_upstream_timeout(self):
        hang = self.hanging_mock('behavior=hang')
        other = self.hanging_mock('behavior=hang')
        first, second = self.channels(hang, other)
        gw = self.start_gateway('--first-byte-timeout', FAST, '--upstream-timeout', SLOW)
        resp, elapsed = self.timed_chat(gw)
        self.assert_error(resp, 504, 'upstream_timeout', 'upstream timed out')
        self.assertLess(elapsed, 10)
        self.assertEqual((self.first_byte_timeouts(gw, first), self.first_byte_timeouts(gw, second)), (1, 1))
        self.assertEqual((hang.stats()['requests'], other.stats()['requests']), (1, 1))

    def test_without_a_first_byte_timeout_a_post_waits_for_the_upstream_timeout_and_is_not_replayed(self):
        hang = self.hanging_mock('behavior=hang')
        first, _ = self.channels(hang)
        gw = self.start_gateway('--upstream-timeout', '1500ms')
        resp, elapsed = self.timed_chat(gw)
        self.assert_error(resp, 504, 'upstream_timeout', 'upstream timed out')
        self.assertGreaterEqual(elapsed, 1.4)  # the upstream timeout, not a first-byte one
        self.assertEqual(self.upstream_requests_seen(), 0)
        self.assertEqual(self.first_byte_timeouts(gw, first), 0)
        self.assertEqual(self.replays(gw, 'first_byte_timeout'), 0)

    def test_the_channels_own_value_wins_over_the_servers_and_off_turns_it_off(self):
        hang = self.hanging_mock('behavior=hang')
        first, _ = self.channels(hang, first_byte_timeout=FAST)
        gw = self.start_gateway('--upstream-timeout', SLOW)  # the server has none
        resp, elapsed = self.timed_chat(gw)
        self.assertStatus(resp, 200)
        self.assertLess(elapsed, 10)
        self.assertEqual(self.first_byte_timeouts(gw, first), 1)
        gw.stop()

        self.cli('channel', 'update', first['id'], '--first-byte-timeout', 'off')
        gw = self.start_gateway('--first-byte-timeout', FAST, '--upstream-timeout', '1500ms')
        resp, elapsed = self.timed_chat(gw)
        self.assert_error(resp, 504, 'upstream_timeout')
        self.assertGreaterEqual(elapsed, 1.4)
        self.assertEqual(self.first_byte_timeouts(gw, first), 0)

    def test_unset_inherits_the_server_value_from_the_environment_and_the_cli_shows_it(self):
        channel = self.make_channel(name='plain')
        self.assertIsNone(channel['first_byte_timeout_ms'])
        self.assertIn('inherited', self.cli('channel', 'show', channel['id']).stdout)
        port, admin = harness.free_port(), harness.free_port()
        gw = self.start_ringrelay(['serve', '--listen', '127.0.0.1:%d' % port, '--admin-listen',
                                   '127.0.0.1:%d' % admin, '--shards', '1', '--data', self.data],
                                  env=dict(os.environ, RINGRELAY_FIRST_BYTE_TIMEOUT='250ms'))
        shown = self.admin_get(gw, '/admin/channels/' + channel['id'])
        self.assertEqual((shown['first_byte_timeout_ms'], shown['effective_first_byte_timeout_ms']), (None, 250))

        for value, stored, effective, text in (('2s', 2000, 2000, '2s'), ('off', 0, 0, 'off'),
                                               ('inherit', None, 250, 'inherited')):
            with self.subTest(value=value):
                self.cli('channel', 'update', channel['id'], '--first-byte-timeout', value)
                out = json.loads(self.cli('channel', 'show', channel['id'], '--json').stdout)
                self.assertEqual(out['first_byte_timeout_ms'], stored)
                self.assertIn(text, self.cli('channel', 'show', channel['id']).stdout)
                shown = self.admin_get(gw, '/admin/channels/' + channel['id'])
                self.assertEqual(shown['effective_first_byte_timeout_ms'], effective)
        bad = self.cli('channel', 'update', channel['id'], '--first-byte-timeout', 'soon', check=False)
        self.assertNotEqual(bad.returncode, 0)


if __name__ == '__main__':
    harness.main()
