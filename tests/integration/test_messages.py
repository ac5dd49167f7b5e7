"""Anthropic's /v1/messages through the gateway, as the coding agents use it: thinking
and tool-use streams pass untouched, and /v1/messages/count_tokens (fired in bursts at
an agent's start) is relayed without touching the key's RPM or concurrency slot unless
--count-tokens-exempt false. Real binaries, loopback only."""

import json
import re

import harness
from harness import http_request, last_header
from test_gateway import Gateway

MESSAGES = '/v1/messages'
COUNT = '/v1/messages/count_tokens'
TOOL = {'name': 'get_weather', 'description': 'Weather of a city',
        'input_schema': {'type': 'object', 'properties': {'city': {'type': 'string'}}}}
AGENT_BODY = {'model': 'claude-test', 'max_tokens': 64, 'stream': True,
              'thinking': {'type': 'enabled', 'budget_tokens': 1024}, 'tools': [TOOL],
              'messages': [{'role': 'user', 'content': 'weather in Paris?'}]}


def normalized(raw):
    """An SSE body with the per-request ids made equal (the mock numbers them)."""
    return re.sub(rb'(msg|toolu)_mock_\d+', rb'\1_mock_N', raw)


class Messages(Gateway):
    def setUp(self):
        super().setUp()
        self.make_channel(models='claude-test', type='anthropic')

    def anthropic_headers(self, key, extra=None):
        h = {'x-api-key': key['secret'], 'anthropic-version': '2023-06-01'}
        h.update(extra or {})
        return h

    def stream_bytes(self, port, headers):
        with harness.SSEStream(port, MESSAGES, AGENT_BODY, headers=headers) as s:
            events = s.read_all()
            self.assertTrue(s.complete)
        return events

    def test_a_thinking_and_tool_use_stream_passes_event_by_event_untouched(self):
        key = self.make_key()
        gw = self.start_gateway()
        through = self.stream_bytes(gw.port, self.anthropic_headers(key))
        direct = self.stream_bytes(self.mock.port, {'x-api-key': 'sk-upstream-mock'})
        self.assertEqual([e.event for e in through], [e.event for e in direct])
        self.assertEqual([normalized(e.raw) for e in through], [normalized(e.raw) for e in direct])
        kinds = [json.loads(e.data).get('delta', {}).get('type') for e in through if e.event == 'content_block_delta']
        for kind in ('thinking_delta', 'signature_delta', 'text_delta', 'input_json_delta'):
            self.assertIn(kind, kinds)
        tool_input = ''.join(json.loads(e.data)['delta']['partial_json'] for e in through
                             if e.event == 'content_block_delta' and '"input_json_delta"' in e.data)
        self.assertEqual(json.loads(tool_input), {'city': 'Paris'})
        stop = next(json.loads(e.data) for e in through if e.event == 'message_delta')
        self.assertEqual(stop['delta']['stop_reason'], 'tool_use')
        self.assertEqual(through[0].event, 'message_start')
        self.assertEqual(through[-1].event, 'message_stop')

    def count_tokens(self, gw, key):
        return http_request(gw.port, 'POST', COUNT, json_body={'model': 'claude-test', 'messages': [
            {'role': 'user', 'content': 'hello'}]}, headers=self.anthropic_headers(key))

    def test_count_tokens_is_relayed_and_answers_the_upstreams_count(self):
        key = self.make_key()
        gw = self.start_gateway()
        resp = self.count_tokens(gw, key)
        self.assertStatus(resp, 200)
        self.assertGreater(resp.json()['input_tokens'], 0)
        self.assertEqual(self.mock.last()['path'], COUNT)
        self.assertEqual(last_header(self.mock.last(), 'x-api-key'), 'sk-upstream-mock')

    def test_count_tokens_bursts_beside_a_running_request_without_key_in_use(self):
        key = self.make_key()  # max_concurrency 1, max_wait 0: a second request is refused
        gw = self.start_gateway()
        running = harness.SSEStream(gw.port, MESSAGES, dict(AGENT_BODY, thinking=None, tools=[]),
                                    headers=self.anthropic_headers(key, {'x-mock-chunks': '20',
                                                                         'x-mock-chunk-delay-ms': '100'}))
        self.assertEqual(running.response.status, 200)
        # The slot is held: an ordinary request is refused...
        busy = http_request(gw.port, 'POST', MESSAGES, json_body={'model': 'claude-test', 'max_tokens': 8,
                                                                  'messages': []},
                            headers=self.anthropic_headers(key))
        self.assert_error(busy, 429, 'key_in_use')
        # ...but the burst of count_tokens an agent sends at start-up is answered.
        results = self.parallel([lambda: self.count_tokens(gw, key) for _ in range(20)])
        self.assertEqual([r.status for r in results], [200] * 20)
        running.read_all()
        self.assertTrue(running.complete)
        running.close()

    def test_count_tokens_does_not_use_up_the_keys_rpm(self):
        key = self.make_key(rpm=2)
        gw = self.start_gateway()
        for _ in range(10):
            self.assertStatus(self.count_tokens(gw, key), 200)
        for _ in range(2):
            resp = http_request(gw.port, 'POST', MESSAGES, json_body={'model': 'claude-test', 'max_tokens': 8,
                                                                      'messages': []},
                                headers=self.anthropic_headers(key))
            self.assertStatus(resp, 200)

    def test_count_tokens_still_needs_a_valid_key(self):
        gw = self.start_gateway()
        resp = self.count_tokens(gw, {'secret': 'rr-' + 'q' * 40})
        self.assert_error(resp, 401, 'invalid_api_key')

    def test_count_tokens_exempt_false_counts_it_like_any_request(self):
        key = self.make_key(rpm=2)
        gw = self.start_gateway('--count-tokens-exempt', 'false')
        self.assertStatus(self.count_tokens(gw, key), 200)
        self.assertStatus(self.count_tokens(gw, key), 200)
        self.assert_error(self.count_tokens(gw, key), 429, 'rate_limited')


if __name__ == '__main__':
    harness.main()
