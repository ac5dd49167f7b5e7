"""Exact usage accounting (OPERATIONS.md, "Usage accounting"): on every ending of an
answer the gateway counts exactly what the upstream reported, and when it reported
nothing the access line says "usage":"unknown" and ringrelay_usage_unknown_total
moves; nothing is estimated and no error is billed. Real binaries, loopback only."""

import json
import os
import signal

import harness
from harness import http_request
from test_ops import Ops

CHAT = '/v1/chat/completions'
MESSAGES = '/v1/messages'


class Accounting(Ops):
    def setUp(self):
        super().setUp()
        self.log = os.path.join(self.make_tempdir(), 'access.log')
        self.make_channel(models='gpt-test')
        self.make_channel(name='claude', models='claude-test', type='anthropic')

    def channel_id(self, name):
        return next(c['id'] for c in json.loads(self.cli('channel', 'list', '--json').stdout) if c['name'] == name)

    def start(self, *extra):
        return self.start_ops_gateway(*extra, log_file=self.log, shards=1)

    def lines(self, gw):
        gw.stop()  # the log writer flushes as the server exits
        out = []
        with open(self.log) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get('msg') == 'request' and rec['path'].startswith('/v1/'):
                    out.append(rec)
        return out

    def unknown_count(self, expected):
        """ringrelay_usage_unknown_total once it reads expected (the count is filed
        as the request ends, just after its last byte went out)."""
        harness.wait_for(lambda: self.total(self.metrics(), 'ringrelay_usage_unknown_total') == expected,
                         timeout=5, message='usage_unknown_total == %d' % expected)
        return expected

    def usage_of(self, rec):
        return rec['usage'], rec['prompt_tokens'], rec['completion_tokens']

    def stream(self, gw, key, path, body, headers=None):
        h = {'Authorization': 'Bearer ' + key['secret']}
        h.update(headers or {})
        with harness.SSEStream(gw.port, path, body, headers=h) as s:
            return s.read_all(), s.complete

    def test_a_json_answer_is_counted_as_the_upstream_reported_it(self):
        key = self.make_key()
        gw = self.start()
        resp = self.chat(gw, key)
        self.assertStatus(resp, 200)
        u = resp.json()['usage']
        self.unknown_count(0)
        [rec] = self.lines(gw)
        self.assertEqual(self.usage_of(rec), ('reported', u['prompt_tokens'], u['completion_tokens']))

    def test_an_openai_stream_without_usage_is_unknown_and_counts_nothing(self):
        key = self.make_key(quota=1)  # any counted token would use the quota up
        gw = self.start()
        events, complete = self.stream(gw, key, CHAT, {'model': 'gpt-test', 'stream': True})
        self.assertTrue(complete)
        self.assertEqual(events[-1].data, '[DONE]')
        self.unknown_count(1)
        self.assertStatus(self.chat(gw, key), 200)  # still under the quota: nothing was guessed
        first = self.lines(gw)[0]
        self.assertEqual(self.usage_of(first), ('unknown', None, None))

    def test_an_openai_stream_with_include_usage_is_counted_from_its_last_chunk(self):
        key = self.make_key()
        gw = self.start()
        events, _ = self.stream(gw, key, CHAT, {'model': 'gpt-test', 'stream': True,
                                                'stream_options': {'include_usage': True}})
        usage = next(e.json()['usage'] for e in events if e.data != '[DONE]' and e.json().get('usage'))
        [rec] = self.lines(gw)
        self.assertEqual(self.usage_of(rec), ('reported', usage['prompt_tokens'], usage['completion_tokens']))

    def test_an_anthropic_stream_takes_input_from_message_start_and_output_from_message_delta(self):
        key = self.make_key()
        gw = self.start()
        events, _ = self.stream(gw, key, MESSAGES, {'model': 'claude-test', 'max_tokens': 64, 'stream': True,
                                                    'messages': []}, headers={'x-mock-chunks': '7'})
        start = next(e.json() for e in events if e.event == 'message_start')['message']['usage']
        delta = next(e.json() for e in events if e.event == 'message_delta')['usage']
        self.assertEqual(start['output_tokens'], 1)  # the running count that message_delta replaces
        [rec] = self.lines(gw)
        self.assertEqual(self.usage_of(rec), ('reported', start['input_tokens'], delta['output_tokens']))
        self.assertEqual(delta['output_tokens'], 7)

    def test_a_stream_the_upstream_cuts_counts_what_it_had_reported(self):
        key = self.make_key()
        gw = self.start()
        events, complete = self.stream(gw, key, MESSAGES, {'model': 'claude-test', 'max_tokens': 64,
                                                           'stream': True, 'messages': []},
                                       headers={'x-mock-behavior': 'close-mid-stream', 'x-mock-chunks': '6'})
        self.assertFalse(complete)
        start = next(e.json() for e in events if e.event == 'message_start')['message']['usage']
        self.assertFalse(any(e.event == 'message_delta' for e in events))
        [rec] = self.lines(gw)
        self.assertEqual(self.usage_of(rec), ('reported', start['input_tokens'], 1))

    def test_an_openai_stream_the_upstream_cuts_before_usage_is_unknown(self):
        key = self.make_key()
        gw = self.start()
        _, complete = self.stream(gw, key, CHAT, {'model': 'gpt-test', 'stream': True,
                                                  'stream_options': {'include_usage': True}},
                                  headers={'x-mock-behavior': 'close-mid-stream', 'x-mock-chunks': '6'})
        self.assertFalse(complete)
        self.unknown_count(1)
        [rec] = self.lines(gw)
        self.assertEqual(self.usage_of(rec), ('unknown', None, None))

    def test_a_client_gone_mid_stream_counts_what_the_upstream_had_reported(self):
        key = self.make_key()
        gw = self.start()
        s = harness.SSEStream(gw.port, MESSAGES, {'model': 'claude-test', 'max_tokens': 64, 'stream': True,
                                                  'messages': []},
                              headers={'Authorization': 'Bearer ' + key['secret'], 'x-mock-chunks': '50',
                                       'x-mock-chunk-delay-ms': '50'})
        first = next(s.events())
        self.assertEqual(first.event, 'message_start')
        s.abort()
        # The key's slot comes back once the gateway has seen the client go.
        harness.wait_for(lambda: self.chat(gw, key, model='gpt-test').status == 200, timeout=10,
                         message='the key usable again')
        rec = self.lines(gw)[0]
        self.assertEqual(rec['path'], MESSAGES)
        self.assertEqual(self.usage_of(rec), ('reported', first.json()['message']['usage']['input_tokens'], 1))

    def test_a_stream_the_drain_cuts_counts_what_the_upstream_had_reported(self):
        key = self.make_key()
        gw = self.start('--drain-timeout', '500ms')
        s = harness.SSEStream(gw.port, MESSAGES, {'model': 'claude-test', 'max_tokens': 64, 'stream': True,
                                                  'messages': []},
                              headers={'Authorization': 'Bearer ' + key['secret'], 'x-mock-chunks': '100',
                                       'x-mock-chunk-delay-ms': '100'})
        first = next(s.events())
        os.kill(gw.pid, signal.SIGTERM)
        self.assertEqual(self.wait_exit(gw, 10), 0)
        rest = list(s.events())
        s.close()
        self.assertFalse(s.complete)  # cut by the drain, not finished
        self.assertFalse(any(e.event == 'message_stop' for e in rest))
        rec = self.lines(gw)[0]
        self.assertEqual(self.usage_of(rec), ('reported', first.json()['message']['usage']['input_tokens'], 1))

    def test_inject_usage_makes_an_openai_stream_carry_and_count_its_usage(self):
        self.cli('channel', 'update', self.channel_id('mock'), '--inject-usage', 'true')
        key = self.make_key()
        gw = self.start()
        shapes = [{}, {'stream_options': None}, {'stream_options': {'include_usage': False}},
                  {'stream_options': {'include_obfuscation': False}}]
        for extra in shapes:
            with self.subTest(extra=extra):
                events, complete = self.stream(gw, key, CHAT, dict({'model': 'gpt-test', 'stream': True}, **extra))
                self.assertTrue(complete)
                usage = [e.json()['usage'] for e in events if e.data != '[DONE]' and e.json().get('usage')]
                self.assertEqual(len(usage), 1)
                sent = json.loads(self.mock.last()['body'])
                self.assertIs(sent['stream_options']['include_usage'], True)
                if 'include_obfuscation' in (extra.get('stream_options') or {}):
                    self.assertIs(sent['stream_options']['include_obfuscation'], False)  # kept
        # Anthropic channels stream usage anyway: their bodies are left alone.
        self.stream(gw, key, MESSAGES, {'model': 'claude-test', 'max_tokens': 8, 'stream': True, 'messages': []})
        self.assertNotIn('stream_options', json.loads(self.mock.last()['body']))
        self.unknown_count(0)
        recs = self.lines(gw)
        self.assertEqual([r['usage'] for r in recs], ['reported'] * 5)

    def test_without_inject_usage_the_body_is_sent_as_the_client_wrote_it(self):
        key = self.make_key()
        gw = self.start()
        body = {'model': 'gpt-test', 'stream': True, 'stream_options': {'include_obfuscation': False}}
        self.stream(gw, key, CHAT, body)
        self.assertEqual(json.loads(self.mock.last()['body']), body)
        self.unknown_count(1)

    def test_an_upstream_error_is_not_billed(self):
        key = self.make_key()
        gw = self.start()
        resp = self.chat(gw, key, headers={'x-mock-status': '400'})
        self.assertStatus(resp, 400)
        self.unknown_count(0)
        [rec] = self.lines(gw)
        self.assertEqual(self.usage_of(rec), (None, None, None))

    def test_count_tokens_is_not_billable(self):
        key = self.make_key()
        gw = self.start()
        resp = http_request(gw.port, 'POST', MESSAGES + '/count_tokens',
                            json_body={'model': 'claude-test', 'messages': []},
                            headers={'x-api-key': key['secret']})
        self.assertStatus(resp, 200)
        self.unknown_count(0)
        [rec] = self.lines(gw)
        self.assertEqual(self.usage_of(rec), (None, None, None))


if __name__ == '__main__':
    harness.main()
