"""The OpenAI Responses API through the gateway (docs/OPERATIONS.md, "Response affinity"):
POST /v1/responses (JSON and stream) is routed by model like chat completions and its
usage counts; the response id it answers is remembered with its channel, so GET/DELETE
/v1/responses/{id}, .../input_items and .../cancel reach the upstream that made it.

Two mocks, alpha and beta (--name: their ids read resp_alpha_N / resp_beta_N), behind one
channel each, both serving the model: a by-id request that went to the wrong mock would
be answered 404 by it (the mocks answer only for ids they made).
"""

import json
import unittest

import harness
from harness import HOST, SSEStream, http_request

MODEL = 'gpt-r'
REPEATS = 20
RESPONSES = '/v1/responses'
STREAM_EVENTS_HEAD = ['response.created', 'response.in_progress', 'response.output_item.added',
                      'response.content_part.added']
STREAM_EVENTS_TAIL = ['response.output_text.done', 'response.content_part.done',
                      'response.output_item.done', 'response.completed']


class Responses(harness.IntegrationTestCase):

    def setUp(self):
        self.data = self.make_tempdir()
        self.mocks = {name: self.start_mock(extra_args=['--name', name]) for name in ('alpha', 'beta')}
        self.channels = {name: self.make_channel(name, mock) for name, mock in self.mocks.items()}
        self.key = self.make_key('k1')

    # --- helpers ---

    def make_key(self, name):
        return json.loads(self.cli('key', 'create', '--name', name, '--json').stdout)

    def make_channel(self, name, mock):
        return json.loads(self.cli('channel', 'add', '--name', name, '--base-url', mock.url,
                                   '--api-key', 'sk-upstream-' + name, '--models', MODEL, '--json').stdout)

    def start_gateway(self, *extra):
        port, admin = harness.free_port(), harness.free_port()
        return self.start_ringrelay(['serve', '--listen', '%s:%d' % (HOST, port),
                                     '--admin-listen', '%s:%d' % (HOST, admin), '--shards', '2',
                                     '--data', self.data] + list(extra))

    @staticmethod
    def auth(key):
        return {'Authorization': 'Bearer ' + key['secret']}

    def create(self, gw, text='hello there', key=None):
        r = http_request(gw.port, 'POST', RESPONSES, json_body={'model': MODEL, 'input': text},
                         headers=self.auth(key or self.key))
        self.assertStatus(r, 200)
        return r.json()

    def by_id(self, gw, method, rid, tail='', key=None):
        return http_request(gw.port, method, '%s/%s%s' % (RESPONSES, rid, tail), headers=self.auth(key or self.key))

    @staticmethod
    def maker(rid):
        """The mock that made a response: resp_<name>_<n>."""
        return rid.split('_')[1]

    def create_on_each_mock(self, gw):
        """One JSON response made on each mock (the pick is random: ask until both answered)."""
        made = {}
        for _ in range(60):
            body = self.create(gw)
            made.setdefault(self.maker(body['id']), body)
            if len(made) == 2:
                return made
        self.fail('60 creates never reached both mocks: %s' % sorted(made))

    def assert_routed_to_maker(self, gw, rid):
        for _ in range(REPEATS):
            r = self.by_id(gw, 'GET', rid)
            self.assertStatus(r, 200)
            self.assertEqual(r.json()['id'], rid)
            self.assertEqual(r.json()['status'], 'completed')

    def requests_seen(self):
        return {name: m.stats()['requests'] for name, m in self.mocks.items()}

    # --- tests ---

    def test_json_response_has_the_real_shape(self):
        gw = self.start_gateway()
        body = self.create(gw, 'what is ringrelay?')
        self.assertTrue(body['id'].startswith('resp_'))
        self.assertEqual((body['object'], body['status'], body['model']), ('response', 'completed', MODEL))
        message = body['output'][0]
        self.assertEqual((message['type'], message['role']), ('message', 'assistant'))
        self.assertEqual(message['content'][0]['type'], 'output_text')
        usage = body['usage']
        self.assertEqual(usage['total_tokens'], usage['input_tokens'] + usage['output_tokens'])
        self.assertEqual(usage['input_tokens_details'], {'cached_tokens': 0})

    def test_get_input_items_cancel_and_delete_reach_the_mock_that_made_the_response(self):
        gw = self.start_gateway()
        for name, body in self.create_on_each_mock(gw).items():
            rid = body['id']
            self.assertEqual(self.maker(rid), name)
            self.assert_routed_to_maker(gw, rid)
            for _ in range(REPEATS // 4):
                items = self.by_id(gw, 'GET', rid, '/input_items')
                self.assertStatus(items, 200)
                self.assertEqual(items.json()['object'], 'list')
                self.assertEqual(items.json()['data'][0]['content'][0]['text'], 'hello there')
                cancel = http_request(gw.port, 'POST', '%s/%s/cancel' % (RESPONSES, rid),
                                      headers=self.auth(self.key))
                self.assertStatus(cancel, 200)
                self.assertEqual(cancel.json()['id'], rid)
            before = self.requests_seen()
            deleted = self.by_id(gw, 'DELETE', rid)
            self.assertStatus(deleted, 200)
            self.assertEqual(deleted.json(), {'id': rid, 'object': 'response', 'deleted': True})
            after = self.requests_seen()
            self.assertEqual(after[name], before[name] + 1)  # the maker, and only it, saw the DELETE
            gone = self.by_id(gw, 'GET', rid)  # the maker answers for itself now
            self.assertStatus(gone, 404)
            self.assertIsNone(gone.header('X-Ringrelay-Error'))
            self.assertIn("No response found with id '%s'" % rid, gone.json()['error']['message'])

    def test_a_streamed_response_is_remembered_from_its_response_created_event(self):
        gw = self.start_gateway()
        seen = set()
        for _ in range(60):
            with SSEStream(gw.port, RESPONSES, {'model': MODEL, 'input': 'hi', 'stream': True},
                           headers={'x-mock-chunks': '3', **self.auth(self.key)}) as stream:
                self.assertEqual(stream.response.status, 200)
                events = stream.read_all()
                self.assertTrue(stream.complete)
            names = [e.event for e in events]
            self.assertEqual(names, STREAM_EVENTS_HEAD + ['response.output_text.delta'] * 3 + STREAM_EVENTS_TAIL)
            datas = [e.json() for e in events]
            self.assertEqual([d['type'] for d in datas], names)
            self.assertEqual([d['sequence_number'] for d in datas], list(range(len(events))))
            rid = datas[0]['response']['id']
            self.assertEqual(datas[-1]['response']['id'], rid)
            self.assertEqual(''.join(d['delta'] for d in datas if 'delta' in d), 'w0 w1 w2 ')
            self.assert_routed_to_maker(gw, rid)
            seen.add(self.maker(rid))
            if len(seen) == 2:
                return
        self.fail('60 streams never reached both mocks: %s' % sorted(seen))

    def test_an_id_the_gateway_does_not_know_is_routed_by_the_key_group(self):
        gw = self.start_gateway()
        before = sum(self.requests_seen().values())
        r = self.by_id(gw, 'GET', 'resp_unknown_1')
        self.assertStatus(r, 404)  # the upstream's own answer: it does not know the id either
        self.assertIsNone(r.header('X-Ringrelay-Error'))
        self.assertEqual(r.json()['error']['type'], 'invalid_request_error')
        self.assertEqual(sum(self.requests_seen().values()), before + 1)

    def test_an_unknown_id_never_goes_to_an_anthropic_channel(self):
        # The Responses API is OpenAI's: a channel of type anthropic in the key's group
        # (here on a third mock) must not be picked for an id nobody remembers.
        claude = self.start_mock(extra_args=['--name', 'claude'])
        json.loads(self.cli('channel', 'add', '--name', 'claude', '--type', 'anthropic', '--base-url', claude.url,
                            '--api-key', 'sk-upstream-claude', '--models', 'claude-x', '--json').stdout)
        gw = self.start_gateway()
        for n in range(20):
            self.assertStatus(self.by_id(gw, 'GET', 'resp_unknown_%d' % n), 404)
        self.assertEqual(claude.stats()['requests'], 0)
        self.assertEqual(sum(self.requests_seen().values()), 20)

    def test_another_key_gets_404_and_nothing_reaches_an_upstream(self):
        other = self.make_key('k2')
        gw = self.start_gateway()
        rid = self.create(gw)['id']
        before = self.requests_seen()
        for method, tail in (('GET', ''), ('GET', '/input_items'), ('DELETE', '')):
            r = self.by_id(gw, method, rid, tail, key=other)
            self.assertStatus(r, 404)
            self.assertEqual(r.header('X-Ringrelay-Error'), 'response_not_found')
            self.assertEqual(r.json()['error']['message'], 'no response with id ' + rid)
        self.assertEqual(self.requests_seen(), before)
        self.assert_routed_to_maker(gw, rid)  # its own key still reaches it

    def test_a_disabled_creator_channel_leaves_the_id_to_normal_routing(self):
        gw = self.start_gateway()
        made = self.create_on_each_mock(gw)
        rid = made['alpha']['id']
        self.cli('channel', 'disable', self.channels['alpha']['id'])
        before = self.requests_seen()
        r = self.by_id(gw, 'GET', rid)
        self.assertStatus(r, 404)  # beta, the only channel left, does not know it
        self.assertIsNone(r.header('X-Ringrelay-Error'))
        after = self.requests_seen()
        self.assertEqual((after['alpha'], after['beta']), (before['alpha'], before['beta'] + 1))

    def test_usage_of_json_and_streamed_responses_counts_toward_the_key(self):
        gw = self.start_gateway()
        tokens = 0
        for _ in range(3):
            tokens += self.create(gw)['usage']['total_tokens']
        with SSEStream(gw.port, RESPONSES, {'model': MODEL, 'input': 'hi', 'stream': True},
                       headers=self.auth(self.key)) as stream:
            events = stream.read_all()
        final = events[-1].json()['response']
        tokens += final['usage']['total_tokens']
        # Retrieving a response answers its usage again: a request, no new tokens.
        self.assertStatus(self.by_id(gw, 'GET', final['id']), 200)
        self.assertEqual(self.by_id(gw, 'GET', final['id']).json()['usage'], final['usage'])
        gw.stop()  # the drain flushes usage to the store
        shown = json.loads(self.cli('key', 'show', self.key['id'], '--json').stdout)
        self.assertEqual(shown['usage'], {'requests': 6, 'tokens': tokens})

    def test_routes_survive_a_restart(self):
        gw = self.start_gateway()
        made = self.create_on_each_mock(gw)
        gw.stop()  # the drain writes the routes not yet flushed
        stats = json.loads(self.cli('db', 'stats', '--json').stdout)
        self.assertGreaterEqual(stats['entries']['responses'], 2)
        gw2 = self.start_gateway()
        for body in made.values():
            self.assert_routed_to_maker(gw2, body['id'])

    def test_ttl_0_remembers_nothing(self):
        gw = self.start_gateway('--response-affinity-ttl', '0')
        self.create(gw)
        gw.stop()
        stats = json.loads(self.cli('db', 'stats', '--json').stdout)
        self.assertEqual(stats['entries']['responses'], 0)


if __name__ == '__main__':
    harness.main()
