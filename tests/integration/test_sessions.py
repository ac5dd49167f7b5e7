"""Session stickiness (--session-from): requests of one session (prompt_cache_key,
metadata.user_id, or a session_id / x-session-id header) go to the same channel while
it is usable, so the upstream's prompt cache keeps hitting; when that channel is lost
the session moves, and it comes back when the channel does. No state is kept: the pick
is weighted rendezvous hashing. Real binaries, two mocks, loopback only."""

import harness
from harness import http_request
from test_gateway import Gateway

CHAT = '/v1/chat/completions'
MESSAGES = '/v1/messages'


class Sessions(Gateway):
    def setUp(self):
        super().setUp()
        self.other = self.start_mock()
        self.channels = {'a': self.make_channel(name='a', url=self.mock.url),
                         'b': self.make_channel(name='b', url=self.other.url)}
        self.key = self.make_key(max_concurrency=4)

    def served_by(self, call):
        """Which mock ('a' or 'b') answered call(); the answer must be a 200."""
        before = (self.mock.stats()['requests'], self.other.stats()['requests'])
        resp = call()
        self.assertStatus(resp, 200)
        after = (self.mock.stats()['requests'], self.other.stats()['requests'])
        delta = (after[0] - before[0], after[1] - before[1])
        self.assertIn(delta, ((1, 0), (0, 1)))
        return 'a' if delta == (1, 0) else 'b'

    def chat_of(self, gw, session=None, header=None, body_extra=None):
        headers = {'Authorization': 'Bearer ' + self.key['secret']}
        if header:
            headers[header] = session
        body = {'model': 'gpt-test', 'messages': []}
        if session and not header:
            body['prompt_cache_key'] = session
        body.update(body_extra or {})
        return lambda: http_request(gw.port, 'POST', CHAT, json_body=body, headers=headers)

    def session_picks(self, gw):
        m = self.metrics(gw)
        return (m.get('ringrelay_session_picks_total{result="home"}'),
                m.get('ringrelay_session_picks_total{result="moved"}'))

    def test_each_session_stays_on_one_channel_and_sessions_spread_over_both(self):
        gw = self.start_gateway()
        homes = {}
        for s in range(40):
            session = 'conv-%d' % s
            seen = {self.served_by(self.chat_of(gw, session)) for _ in range(3)}
            self.assertEqual(len(seen), 1, 'session %s went to %s' % (session, seen))
            homes[session] = seen.pop()
        # 40 sessions on two equal channels: each gets some (all on one: p = 2^-39).
        self.assertEqual(set(homes.values()), {'a', 'b'})
        self.assertEqual(self.session_picks(gw), (120, 0))

    def test_a_session_header_and_anthropic_metadata_name_sessions_too(self):
        gw = self.start_gateway()
        for header in ('session_id', 'x-session-id'):
            seen = {self.served_by(self.chat_of(gw, 'hdr-session-7', header=header)) for _ in range(4)}
            self.assertEqual(len(seen), 1)
        claude = self.make_channel(name='claude-a', url=self.mock.url, models='claude-test', type='anthropic')
        self.make_channel(name='claude-b', url=self.other.url, models='claude-test', type='anthropic')
        self.assertTrue(claude['id'])
        body = {'model': 'claude-test', 'max_tokens': 8, 'messages': [],
                'metadata': {'user_id': 'user_abc_account__session_1234'}}
        headers = {'x-api-key': self.key['secret']}
        seen = {self.served_by(lambda: http_request(gw.port, 'POST', MESSAGES, json_body=body, headers=headers))
                for _ in range(4)}
        self.assertEqual(len(seen), 1)
        home, moved = self.session_picks(gw)
        self.assertEqual((home, moved), (12, 0))

    def test_a_session_moves_when_its_channel_is_lost_and_comes_back_when_it_returns(self):
        gw = self.start_gateway()
        call = self.chat_of(gw, 'conv-moving')
        home = self.served_by(call)
        away = 'b' if home == 'a' else 'a'
        self.cli('channel', 'disable', self.channels[home]['id'])
        harness.wait_for(lambda: self.served_by(call) == away, timeout=5, message='the session moved')
        for _ in range(3):
            self.assertEqual(self.served_by(call), away)
        self.cli('channel', 'enable', self.channels[home]['id'])
        harness.wait_for(lambda: self.served_by(call) == home, timeout=5, message='the session came back')
        for _ in range(3):
            self.assertEqual(self.served_by(call), home)
        # A disabled channel is nobody's home: the picks on the other were home picks
        # while it was off; no pick moved.
        self.assertEqual(self.session_picks(gw)[1], 0)

    def test_a_failing_channel_moves_the_session_to_the_other_at_once(self):
        gw = self.start_gateway()
        call = self.chat_of(gw, 'conv-failover')
        home = self.served_by(call)
        mock = self.mock if home == 'a' else self.other
        # The home channel's upstream dies: the request is retried on the other channel
        # (the client sees one clean answer) and the pick there counts as moved.
        mock.stop()
        resp = call()
        self.assertStatus(resp, 200)
        self.assertGreaterEqual(self.session_picks(gw)[1], 1)

    def test_requests_without_a_session_are_spread_at_random(self):
        gw = self.start_gateway()
        seen = {self.served_by(self.chat_of(gw)) for _ in range(40)}
        self.assertEqual(seen, {'a', 'b'})
        self.assertEqual(self.session_picks(gw), (0, 0))

    def test_session_from_none_turns_stickiness_off(self):
        gw = self.start_gateway('--session-from', 'none')
        seen = {self.served_by(self.chat_of(gw, 'conv-1')) for _ in range(40)}
        self.assertEqual(seen, {'a', 'b'})
        self.assertEqual(self.session_picks(gw), (0, 0))


if __name__ == '__main__':
    harness.main()
