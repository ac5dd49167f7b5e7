"""ringrelay-mock, driven directly through the harness: every endpoint, every
x-mock-* behaviour, stream shapes and timing, the introspection counters, and the
HTTP/1.1 connection handling the proxy tests will lean on."""

import json
import resource
import socket
import subprocess
import time

import harness
from harness import HOST, RawConnection, SSEStream, http_request

CHAT = '/v1/chat/completions'


def post_json(port, path, body, headers=None, conn=None):
    return http_request(port, 'POST', path, json_body=body, headers=headers, conn=conn)


def request_bytes(method, path, body=b'', headers=(), version='HTTP/1.1'):
    """A request with Content-Length (when there is a body) and the given extra headers."""
    lines = ['%s %s %s' % (method, path, version), 'Host: %s' % HOST]
    if body:
        lines.append('Content-Length: %d' % len(body))
    lines += ['%s: %s' % kv for kv in headers]
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body


def chat_body(model='gpt-test', stream=False):
    return json.dumps({'model': model, 'stream': stream,
                       'messages': [{'role': 'user', 'content': 'hello'}]}).encode()


def stats_on(conn):
    """/__mock/stats read over an existing keep-alive RawConnection."""
    conn.send(request_bytes('GET', '/__mock/stats'))
    return conn.read_response().json()


class MockTestCase(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        cls.mock = cls.start_class_mock(threads=2)
        cls.port = cls.mock.port

    def setUp(self):
        self.mock.reset()

    def stats_delta(self, before):
        after = self.mock.stats()
        return {k: after[k] - before.get(k, 0) for k in after}


class EndpointTest(MockTestCase):
    def test_chat_completion_echoes_model_and_reports_usage(self):
        resp = post_json(self.port, CHAT, {'model': 'gpt-echo', 'messages': []})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.header('Content-Type'), 'application/json')
        body = resp.json()
        self.assertEqual(body['object'], 'chat.completion')
        self.assertEqual(body['model'], 'gpt-echo')
        self.assertTrue(body['id'])
        self.assertEqual(body['choices'][0]['message']['role'], 'assistant')
        self.assertIsInstance(body['choices'][0]['message']['content'], str)
        usage = body['usage']
        self.assertGreater(usage['prompt_tokens'], 0)
        self.assertEqual(usage['total_tokens'], usage['prompt_tokens'] + usage['completion_tokens'])

    def test_completion_length_follows_x_mock_chunks(self):
        resp = post_json(self.port, '/v1/completions', {'model': 'davinci', 'prompt': 'x'},
                         headers={'x-mock-chunks': '5'})
        self.assertStatus(resp, 200)
        body = resp.json()
        self.assertEqual(body['object'], 'text_completion')
        self.assertEqual(body['model'], 'davinci')
        self.assertEqual(len(body['choices'][0]['text'].split()), 5)
        self.assertEqual(body['usage']['completion_tokens'], 5)

    def test_embeddings_return_one_vector_per_input(self):
        resp = post_json(self.port, '/v1/embeddings', {'model': 'emb', 'input': ['a', 'b', 'c']})
        self.assertStatus(resp, 200)
        body = resp.json()
        self.assertEqual(body['model'], 'emb')
        self.assertEqual([d['index'] for d in body['data']], [0, 1, 2])
        self.assertTrue(all(isinstance(x, float) for x in body['data'][0]['embedding']))
        self.assertGreater(body['usage']['prompt_tokens'], 0)

    def test_responses_api_answers_a_response_object(self):
        resp = post_json(self.port, '/v1/responses', {'model': 'gpt-r', 'input': 'hi'})
        self.assertStatus(resp, 200)
        body = resp.json()
        self.assertEqual(body['object'], 'response')
        self.assertEqual(body['model'], 'gpt-r')
        self.assertEqual(body['output'][0]['content'][0]['type'], 'output_text')
        self.assertIn('input_tokens', body['usage'])

    def test_responses_by_id_answer_for_ids_this_mock_made(self):
        made = post_json(self.port, '/v1/responses', {'model': 'gpt-r', 'input': 'hi there'}).json()
        rid = made['id']
        self.assertRegex(rid, r'^resp_mock%d_\d+$' % self.port)  # the default name: mock<port>
        got = http_request(self.port, 'GET', '/v1/responses/' + rid)
        self.assertStatus(got, 200)
        self.assertEqual(got.json(), made)
        items = http_request(self.port, 'GET', '/v1/responses/%s/input_items' % rid).json()
        self.assertEqual(items['data'][0]['content'][0], {'type': 'input_text', 'text': 'hi there'})
        self.assertFalse(items['has_more'])
        self.assertEqual(http_request(self.port, 'POST', '/v1/responses/%s/cancel' % rid).json()['id'], rid)
        deleted = http_request(self.port, 'DELETE', '/v1/responses/' + rid)
        self.assertEqual(deleted.json(), {'id': rid, 'object': 'response', 'deleted': True})
        for method, path in (('GET', rid), ('DELETE', rid), ('GET', rid + '/input_items'),
                             ('GET', 'resp_other_1')):
            gone = http_request(self.port, method, '/v1/responses/' + path)
            self.assertStatus(gone, 404)
            self.assertEqual(gone.json()['error']['type'], 'invalid_request_error')
        # /__mock/reset forgets them.
        again = post_json(self.port, '/v1/responses', {'model': 'gpt-r', 'input': 'x'}).json()['id']
        self.mock.reset()
        self.assertStatus(http_request(self.port, 'GET', '/v1/responses/' + again), 404)

    def test_a_named_mock_puts_its_name_in_ids(self):
        named = self.start_mock(extra_args=['--name', 'alpha7'])
        made = post_json(named.port, '/v1/responses', {'model': 'gpt-r', 'input': 'x'}).json()
        self.assertRegex(made['id'], r'^resp_alpha7_\d+$')
        self.assertRegex(made['output'][0]['id'], r'^msg_alpha7_\d+$')

    def test_models_list(self):
        resp = http_request(self.port, 'GET', '/v1/models')
        self.assertStatus(resp, 200)
        body = resp.json()
        self.assertEqual(body['object'], 'list')
        self.assertTrue(body['data'])
        self.assertTrue(all(m['object'] == 'model' for m in body['data']))

    def test_anthropic_message(self):
        resp = post_json(self.port, '/v1/messages',
                         {'model': 'claude-x', 'max_tokens': 10,
                          'messages': [{'role': 'user', 'content': 'hi'}]})
        self.assertStatus(resp, 200)
        body = resp.json()
        self.assertEqual(body['type'], 'message')
        self.assertEqual(body['model'], 'claude-x')
        self.assertEqual(body['content'][0]['type'], 'text')
        self.assertGreater(body['usage']['input_tokens'], 0)
        self.assertEqual(body['usage']['output_tokens'], 3)

    def test_endpoints_match_behind_a_base_path_prefix(self):
        resp = post_json(self.port, '/openai' + CHAT + '?api-version=1', {'model': 'm'})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['object'], 'chat.completion')

    def test_model_with_escapes_round_trips(self):
        model = 'we"ird\\model\u00e9\u2603\n'
        resp = post_json(self.port, CHAT, {'model': model})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], model)

    def test_unknown_path_is_404_json(self):
        resp = http_request(self.port, 'GET', '/v2/nothing')
        self.assertStatus(resp, 404)
        self.assertIn('/v2/nothing', resp.json()['error']['message'])

    def test_head_gets_the_head_without_a_body(self):
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('HEAD', '/v1/models') + request_bytes('GET', '/v1/models'))
            head = conn.read_response(request_method='HEAD')
            get = conn.read_response()
        self.assertEqual(head.status, 200)
        self.assertEqual(head.body, b'')
        self.assertEqual(head.header('Content-Length'), str(len(get.body)))
        self.assertEqual(get.json()['object'], 'list')

    def test_wrong_method_is_404(self):
        self.assertStatus(http_request(self.port, 'GET', CHAT), 404)

    def test_bad_json_is_400(self):
        for body in (b'{"model":', b'not json', b'[1,2]', b'{"model":"m"} trailing', b'',
                     b'{"model":5}', b'{"model":"m","stream":"yes"}'):
            with self.subTest(body=body):
                resp = http_request(self.port, 'POST', CHAT, body=body)
                self.assertStatus(resp, 400)
                self.assertIn('message', resp.json()['error'])

    def test_missing_model_is_400(self):
        resp = post_json(self.port, CHAT, {'messages': []})
        self.assertStatus(resp, 400)
        self.assertIn('model', resp.json()['error']['message'])

    def test_anthropic_errors_use_the_anthropic_shape(self):
        resp = http_request(self.port, 'POST', '/v1/messages', body=b'{oops')
        self.assertStatus(resp, 400)
        self.assertEqual(resp.json()['type'], 'error')
        self.assertEqual(resp.json()['error']['type'], 'invalid_request_error')


class StreamTest(MockTestCase):
    def test_openai_stream_deltas_then_usage_then_done(self):
        before = self.mock.stats()
        with SSEStream(self.port, CHAT, {'model': 'gpt-s', 'stream': True,
                                         'stream_options': {'include_usage': True}},
                       headers={'x-mock-chunks': '4'}) as stream:
            self.assertEqual(stream.response.status, 200)
            self.assertTrue(stream.response.header('Content-Type').startswith('text/event-stream'))
            self.assertEqual(stream.response.header('Transfer-Encoding'), 'chunked')
            events = stream.read_all()
            self.assertTrue(stream.complete)
        self.assertEqual(events[-1].data, '[DONE]')
        chunks = [e.json() for e in events[:-1]]
        deltas = [c['choices'][0]['delta'].get('content') for c in chunks if 'usage' not in c]
        self.assertEqual(len(deltas), 4)
        self.assertTrue(all(d for d in deltas))
        self.assertTrue(all(c['model'] == 'gpt-s' for c in chunks))
        final = chunks[-1]
        self.assertEqual(final['usage']['completion_tokens'], 4)
        self.assertEqual(final['choices'][0]['finish_reason'], 'stop')
        delta = self.stats_delta(before)
        self.assertEqual((delta['streams_started'], delta['streams_completed']), (1, 1))

    def test_completions_stream(self):
        with SSEStream(self.port, '/v1/completions', {'model': 'c', 'stream': True,
                                                      'stream_options': {'include_usage': True}}) as stream:
            events = stream.read_all()
        self.assertEqual(events[-1].data, '[DONE]')
        self.assertEqual(events[0].json()['object'], 'text_completion')
        self.assertIn('usage', events[-2].json())

    def test_a_stream_carries_usage_only_when_include_usage_asked_for_it(self):
        for path in (CHAT, '/v1/completions'):
            with SSEStream(self.port, path, {'model': 'c', 'stream': True}) as stream:
                events = stream.read_all()
            self.assertEqual(events[-1].data, '[DONE]')
            self.assertFalse(any('usage' in e.json() for e in events[:-1]), path)
            self.assertEqual(events[-2].json()['choices'][0]['finish_reason'], 'stop')

    def test_anthropic_stream_event_sequence(self):
        with SSEStream(self.port, '/v1/messages', {'model': 'claude-s', 'stream': True},
                       headers={'x-mock-chunks': '2'}) as stream:
            events = stream.read_all()
            self.assertTrue(stream.complete)
        self.assertEqual([e.event for e in events],
                         ['message_start', 'ping', 'content_block_start', 'content_block_delta',
                          'content_block_delta', 'content_block_stop', 'message_delta',
                          'message_stop'])
        self.assertTrue(all(e.json()['type'] == e.event for e in events))
        self.assertEqual(events[0].json()['message']['model'], 'claude-s')
        self.assertEqual(events[6].json()['usage']['output_tokens'], 2)

    def test_anthropic_thinking_and_tool_use_stream(self):
        body = {'model': 'claude-s', 'stream': True, 'thinking': {'type': 'enabled', 'budget_tokens': 1024},
                'tools': [{'name': 'lookup', 'input_schema': {'type': 'object'}}]}
        with SSEStream(self.port, '/v1/messages', body, headers={'x-mock-chunks': '2'}) as stream:
            events = stream.read_all()
            self.assertTrue(stream.complete)
        blocks = [e.json()['content_block']['type'] for e in events if e.event == 'content_block_start']
        self.assertEqual(blocks, ['thinking', 'text', 'tool_use'])
        starts = [e.json() for e in events if e.event == 'content_block_start']
        self.assertEqual([s['index'] for s in starts], [0, 1, 2])
        self.assertEqual(starts[2]['content_block']['name'], 'lookup')
        deltas = [e.json()['delta'] for e in events if e.event == 'content_block_delta']
        self.assertEqual([d['type'] for d in deltas], ['thinking_delta', 'signature_delta', 'text_delta',
                                                       'text_delta', 'input_json_delta', 'input_json_delta'])
        tool_input = ''.join(d['partial_json'] for d in deltas if d['type'] == 'input_json_delta')
        self.assertEqual(json.loads(tool_input), {'city': 'Paris'})
        final = next(e.json() for e in events if e.event == 'message_delta')
        self.assertEqual(final['delta']['stop_reason'], 'tool_use')

    def test_anthropic_json_answer_with_thinking_and_tools(self):
        body = {'model': 'claude-s', 'thinking': {'type': 'enabled', 'budget_tokens': 1024},
                'tools': [{'name': 'lookup', 'input_schema': {'type': 'object'}}]}
        resp = http_request(self.port, 'POST', '/v1/messages', json_body=body)
        self.assertEqual(resp.status, 200)
        msg = resp.json()
        self.assertEqual([b['type'] for b in msg['content']], ['thinking', 'text', 'tool_use'])
        self.assertEqual(msg['content'][2]['input'], {'city': 'Paris'})
        self.assertEqual(msg['stop_reason'], 'tool_use')

    def test_a_tool_result_gets_a_text_answer_so_an_agent_loop_ends(self):
        tools = [{'name': 'lookup', 'input_schema': {'type': 'object'}}]
        asked = [{'role': 'user', 'content': 'weather?'}]
        answered = asked + [{'role': 'assistant', 'content': [{'type': 'tool_use', 'id': 't1', 'name': 'lookup',
                                                                'input': {}}]},
                            {'role': 'user', 'content': [{'type': 'tool_result', 'tool_use_id': 't1',
                                                          'content': 'sunny'}]}]
        first = http_request(self.port, 'POST', '/v1/messages', json_body={'model': 'c', 'tools': tools,
                                                                           'messages': asked}).json()
        self.assertEqual(first['stop_reason'], 'tool_use')
        second = http_request(self.port, 'POST', '/v1/messages', json_body={'model': 'c', 'tools': tools,
                                                                            'messages': answered}).json()
        self.assertEqual(second['stop_reason'], 'end_turn')
        self.assertEqual([b['type'] for b in second['content']], ['text'])

    def test_count_tokens_answers_input_tokens(self):
        resp = http_request(self.port, 'POST', '/v1/messages/count_tokens',
                            json_body={'model': 'claude-s', 'messages': [{'role': 'user', 'content': 'hi'}]})
        self.assertEqual(resp.status, 200)
        self.assertEqual(list(resp.json()), ['input_tokens'])
        self.assertGreater(resp.json()['input_tokens'], 0)

    def test_responses_stream_ends_with_completed_usage(self):
        with SSEStream(self.port, '/v1/responses', {'model': 'r', 'stream': True}) as stream:
            events = stream.read_all()
        self.assertEqual([e.event for e in events],
                         ['response.created', 'response.in_progress', 'response.output_item.added',
                          'response.content_part.added'] + ['response.output_text.delta'] * 3 +
                         ['response.output_text.done', 'response.content_part.done',
                          'response.output_item.done', 'response.completed'])
        self.assertEqual([e.json()['type'] for e in events], [e.event for e in events])
        self.assertEqual([e.json()['sequence_number'] for e in events], list(range(len(events))))
        self.assertIn('output_tokens', events[-1].json()['response']['usage'])
        self.assertEqual(events[-2].json()['item']['content'][0]['text'], 'w0 w1 w2 ')

    def test_zero_chunks_still_sends_usage(self):
        with SSEStream(self.port, CHAT, {'model': 'm', 'stream': True,
                                         'stream_options': {'include_usage': True}},
                       headers={'x-mock-chunks': '0'}) as stream:
            events = stream.read_all()
        self.assertEqual(len(events), 2)
        self.assertEqual(events[0].json()['usage']['completion_tokens'], 0)

    def test_first_event_arrives_well_before_the_last(self):
        with SSEStream(self.port, CHAT, {'model': 'm', 'stream': True},
                       headers={'x-mock-chunks': '4', 'x-mock-chunk-delay-ms': '150'}) as stream:
            events = stream.read_all()
        # delta 0 leaves with the head; three pauses before the other deltas and one
        # before the usage event. Timers never fire early, so the last event cannot
        # arrive before 600 ms; the first one must come long before that.
        first, last = events[0].at - stream.sent_at, events[-1].at - stream.sent_at
        self.assertGreaterEqual(last, 0.6)
        self.assertLess(first, last / 2)
        gaps = [b.at - a.at for a, b in zip(events[:4], events[1:5])]
        self.assertTrue(all(g >= 0.05 for g in gaps), gaps)

    def test_stream_to_http10_client_is_close_delimited(self):
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('POST', CHAT, chat_body(stream=True), version='HTTP/1.0'))
            data = conn.read_until_close()
        resp = harness.parse_response(data)
        self.assertIsNone(resp.header('Transfer-Encoding'))
        self.assertTrue(resp.body.endswith(b'data: [DONE]\n\n'))


class BehaviourTest(MockTestCase):
    def test_delay_comes_before_the_head(self):
        start = time.monotonic()
        resp = post_json(self.port, CHAT, {'model': 'm'}, headers={'x-mock-delay-ms': '300'})
        elapsed = time.monotonic() - start
        self.assertStatus(resp, 200)
        self.assertGreaterEqual(elapsed, 0.3)
        self.assertLess(elapsed, 3.0)

    def test_status_header_gives_a_json_error(self):
        resp = post_json(self.port, CHAT, {'model': 'm'}, headers={'x-mock-status': '503'})
        self.assertStatus(resp, 503)
        self.assertEqual(resp.json()['error']['type'], 'server_error')
        resp = post_json(self.port, '/v1/messages', {'model': 'm'},
                         headers={'x-mock-status': '529'})
        self.assertStatus(resp, 529)
        self.assertEqual(resp.json()['error']['type'], 'overloaded_error')

    def test_status_header_applies_to_any_path_and_to_streams(self):
        resp = http_request(self.port, 'GET', '/anything', headers={'x-mock-status': '429'})
        self.assertStatus(resp, 429)
        resp = post_json(self.port, CHAT, {'model': 'm', 'stream': True},
                         headers={'x-mock-status': '500'})
        self.assertStatus(resp, 500)
        self.assertEqual(resp.header('Content-Type'), 'application/json')

    def test_success_status_header_keeps_the_body(self):
        resp = post_json(self.port, CHAT, {'model': 'm'}, headers={'x-mock-status': '201'})
        self.assertStatus(resp, 201)
        self.assertEqual(resp.json()['model'], 'm')

    def test_bad_mock_header_value_is_400(self):
        for name, value in (('x-mock-delay-ms', 'soon'), ('x-mock-status', '99'),
                            ('x-mock-behavior', 'explode'), ('x-mock-chunks', '-1')):
            with self.subTest(name=name):
                resp = post_json(self.port, CHAT, {'model': 'm'}, headers={name: value})
                self.assertStatus(resp, 400)
                self.assertIn(name, resp.json()['error']['message'])

    def test_first_event_delay_sends_the_head_then_waits_before_the_first_event(self):
        with SSEStream(self.port, CHAT, {'model': 'm', 'stream': True},
                       headers={'x-mock-first-event-delay-ms': '300', 'x-mock-chunks': '2'}) as stream:
            self.assertEqual(stream.response.status, 200)
            events = stream.read_all()
            self.assertTrue(stream.complete)
        self.assertEqual(events[-1].data, '[DONE]')
        self.assertGreaterEqual(events[0].at - stream.head_at, 0.29)  # a lower bound only: never flaky

    def test_hang_holds_the_connection_until_the_peer_closes(self):
        before = self.mock.stats()
        conn = RawConnection(self.port)
        conn.send(request_bytes('POST', CHAT, chat_body(), [('x-mock-behavior', 'hang')]))
        self.assertEqual(conn.read_available(0.5), b'')
        self.assertFalse(conn.eof)
        self.assertEqual(self.stats_delta(before)['hangs_aborted'], 0)
        conn.close()
        harness.wait_for(lambda: self.stats_delta(before)['hangs_aborted'] == 1, timeout=2,
                         message='hangs_aborted to count the closed client')

    def test_reset_closes_with_rst_after_reading_the_request(self):
        before = self.mock.stats()
        with socket.create_connection((HOST, self.port), timeout=5) as s:
            s.sendall(request_bytes('POST', CHAT, chat_body(), [('x-mock-behavior', 'reset')]))
            with self.assertRaises(ConnectionResetError):
                while s.recv(4096):
                    pass
        delta = self.stats_delta(before)
        self.assertEqual((delta['resets'], delta['requests']), (1, 1))

    def test_close_mid_stream_ends_without_the_last_chunk(self):
        before = self.mock.stats()
        headers = {'x-mock-behavior': 'close-mid-stream', 'x-mock-chunks': '4'}
        with SSEStream(self.port, CHAT, {'model': 'm', 'stream': True}, headers=headers) as stream:
            events = stream.read_all()
            self.assertFalse(stream.complete)
        self.assertEqual(len(events), 2)
        self.assertTrue(all('usage' not in e.json() for e in events))
        delta = self.stats_delta(before)
        self.assertEqual((delta['streams_broken'], delta['streams_completed']), (1, 0))

    def test_close_mid_stream_cuts_a_json_body_short(self):
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('POST', CHAT, chat_body(),
                                    [('x-mock-behavior', 'close-mid-stream')]))
            resp = conn.read_response()
        self.assertEqual(resp.status, 200)
        self.assertFalse(resp.complete)
        self.assertLess(len(resp.body), int(resp.header('Content-Length')))

    def test_client_leaving_mid_stream_counts_as_cut_promptly(self):
        before = self.mock.stats()
        # The next chunk is due 60 s on: a cut seen within the wait below was noticed
        # during the chunk delay, not at a later write. (The margin is the point: a
        # loaded machine can stretch the notice, never to a minute.)
        stream = SSEStream(self.port, CHAT, {'model': 'm', 'stream': True},
                           headers={'x-mock-chunks': '10', 'x-mock-chunk-delay-ms': '60000'})
        next(stream.events())
        stream.close()
        harness.wait_for(lambda: self.stats_delta(before)['streams_cut'] == 1, timeout=10,
                         message='streams_cut after the client closed')
        delta = self.stats_delta(before)
        self.assertEqual((delta['streams_started'], delta['streams_completed']), (1, 0))

    def test_client_reset_mid_stream_counts_as_cut(self):
        before = self.mock.stats()
        stream = SSEStream(self.port, CHAT, {'model': 'm', 'stream': True},
                           headers={'x-mock-chunks': '10', 'x-mock-chunk-delay-ms': '300'})
        next(stream.events())
        stream.abort()
        harness.wait_for(lambda: self.stats_delta(before)['streams_cut'] == 1, timeout=2,
                         message='streams_cut after the client reset')

    def test_client_leaving_during_delay_counts_as_aborted(self):
        before = self.mock.stats()
        conn = RawConnection(self.port)
        conn.send(request_bytes('POST', CHAT, chat_body(), [('x-mock-delay-ms', '5000')]))
        time.sleep(0.1)
        conn.close()
        harness.wait_for(lambda: self.stats_delta(before)['delays_aborted'] == 1, timeout=2,
                         message='delays_aborted after the client closed')


class DefaultBehaviourTest(harness.IntegrationTestCase):
    """--default NAME=VALUE: every request behaves as if it sent x-mock-NAME: VALUE."""

    def test_a_default_applies_to_every_request_and_a_request_header_overrides_it(self):
        mock = self.start_mock(extra_args=['--default', 'status=503', '--default', 'chunks=2'])
        self.assertStatus(post_json(mock.port, CHAT, {'model': 'm'}), 503)
        resp = post_json(mock.port, CHAT, {'model': 'm'}, headers={'x-mock-status': '200'})
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'm')

    def test_a_hanging_default_never_answers(self):
        mock = self.start_mock(extra_args=['--default', 'behavior=hang'])
        conn = RawConnection(mock.port)
        self.addCleanup(conn.close)
        conn.send(request_bytes('POST', CHAT, chat_body(), []))
        self.assertEqual(conn.read_available(0.5), b'')
        self.assertFalse(conn.eof)

    def test_a_bad_default_is_a_usage_error(self):
        for value in ('nope=1', 'delay-ms=soon', 'status'):
            with self.subTest(value=value):
                proc = subprocess.run([harness.binary_from_env('RINGRELAY_MOCK_BIN'), '--default', value],
                                      capture_output=True, text=True, timeout=10)
                self.assertEqual(proc.returncode, 2)
                self.assertIn('--default', proc.stderr)


class ConnectionTest(MockTestCase):
    def test_keep_alive_serves_many_requests_on_one_connection(self):
        with RawConnection(self.port) as conn:
            before = stats_on(conn)
            for i in range(5):
                conn.send(request_bytes('POST', CHAT, chat_body('m%d' % i)))
                resp = conn.read_response()
                self.assertEqual(resp.json()['model'], 'm%d' % i)
                self.assertIsNone(resp.header('Connection'))
            after = stats_on(conn)
        self.assertEqual(after['connections_accepted'], before['connections_accepted'])
        self.assertEqual(after['requests'] - before['requests'], 5)

    def test_pipelined_requests_are_answered_in_order(self):
        batch = (request_bytes('POST', CHAT, chat_body('first'), [('x-mock-delay-ms', '200')]) +
                 request_bytes('POST', CHAT, chat_body('second', stream=True)) +
                 request_bytes('GET', '/v1/models') +
                 request_bytes('POST', '/v1/messages', chat_body('fourth')))
        with RawConnection(self.port) as conn:
            conn.send(batch)
            answers = [conn.read_response() for _ in range(4)]
        self.assertEqual(answers[0].json()['model'], 'first')
        self.assertIn(b'"model":"second"', answers[1].body)
        self.assertTrue(answers[1].body.endswith(b'data: [DONE]\n\n'))
        self.assertEqual(answers[2].json()['object'], 'list')
        self.assertEqual(answers[3].json()['model'], 'fourth')

    def test_http10_keep_alive_as_ab_sends_it(self):
        with RawConnection(self.port) as conn:
            for _ in range(2):
                conn.send(request_bytes('POST', CHAT, chat_body(), [('Connection', 'keep-alive')],
                                        version='HTTP/1.0'))
                resp = conn.read_response()
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.header('Connection'), 'keep-alive')
            self.assertFalse(conn.wait_closed(0.2))

    def test_http10_without_keep_alive_closes(self):
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('GET', '/v1/models', version='HTTP/1.0'))
            resp = conn.read_response()
            self.assertEqual(resp.header('Connection'), 'close')
            self.assertTrue(conn.wait_closed(2))

    def test_connection_close_is_honoured(self):
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('GET', '/v1/models', headers=[('Connection', 'close')]))
            self.assertEqual(conn.read_response().status, 200)
            self.assertTrue(conn.wait_closed(2))

    def test_chunked_request_body_is_decoded(self):
        body = chat_body('chunky')
        chunked = b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in (body[:7], body[7:20], body[20:]))
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('POST', CHAT, headers=[('Transfer-Encoding', 'chunked')]) +
                      chunked + b'0\r\n\r\n')
            resp = conn.read_response()
        self.assertEqual(resp.json()['model'], 'chunky')
        self.assertEqual(self.mock.last()['body'], body.decode())

    def test_expect_100_continue(self):
        body = chat_body('waiting')
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('POST', CHAT, headers=[('Expect', '100-continue'),
                                                           ('Content-Length', str(len(body)))]))
            interim = conn.read_head(timeout=2)
            self.assertEqual(interim.status, 100)
            conn.send(body)
            resp = conn.read_response()
        self.assertEqual(resp.json()['model'], 'waiting')

    def test_request_split_across_writes(self):
        data = request_bytes('POST', CHAT, chat_body('split'))
        with RawConnection(self.port) as conn:
            for i in range(0, len(data), 17):
                conn.send(data[i:i + 17])
                time.sleep(0.002)
            self.assertEqual(conn.read_response().json()['model'], 'split')

    def test_large_body(self):
        big = json.dumps({'model': 'big',
                          'messages': [{'role': 'user', 'content': 'x' * 2_000_000}]})
        resp = http_request(self.port, 'POST', CHAT, body=big.encode())
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'big')
        self.assertGreater(resp.json()['usage']['prompt_tokens'], 400_000)

    def test_malformed_request_gets_400_and_close(self):
        with RawConnection(self.port) as conn:
            conn.send(b'GARBAGE\r\n\r\n')
            resp = conn.read_response()
            self.assertEqual(resp.status, 400)
            self.assertTrue(conn.wait_closed(2))

    def test_many_concurrent_hangs_do_not_block_other_clients(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 4096)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        count = min(1000, want - 100)
        before = self.mock.stats()
        hung = []
        try:
            for _ in range(count):
                c = RawConnection(self.port)
                c.send(request_bytes('POST', CHAT, chat_body(), [('x-mock-behavior', 'hang')]))
                hung.append(c)
            harness.wait_for(lambda: self.mock.stats()['connections_open'] >= count, timeout=10,
                             message='%d open connections' % count)
            # Answered while every hang is still held (they are released only below):
            # a mock that served them in turn would leave this request unanswered.
            self.assertStatus(post_json(self.port, CHAT, {'model': 'm'}), 200)
            self.assertGreaterEqual(self.mock.stats()['connections_open'], count)
        finally:
            for c in hung:
                c.close()
        harness.wait_for(lambda: self.stats_delta(before)['hangs_aborted'] == count, timeout=10,
                         message='every hang aborted')


class IntrospectionTest(MockTestCase):
    def test_last_records_the_request_as_received(self):
        body = chat_body('recorded')
        with RawConnection(self.port) as conn:
            conn.send(request_bytes('POST', CHAT + '?a=1&b=2', body,
                                    [('X-Custom-Case', 'Value 1'), ('authorization', 'Bearer k')]))
            conn.read_response()
        last = self.mock.last()
        self.assertEqual((last['method'], last['path'], last['query']), ('POST', CHAT, 'a=1&b=2'))
        self.assertIn(['X-Custom-Case', 'Value 1'], last['headers'])
        self.assertIn(['authorization', 'Bearer k'], last['headers'])
        self.assertEqual(harness.last_header(last, 'x-custom-case'), 'Value 1')
        self.assertEqual(last['body'], body.decode())

    def test_last_is_the_most_recent_across_connections(self):
        for model in ('one', 'two', 'three'):
            post_json(self.port, CHAT, {'model': model})
        self.assertEqual(json.loads(self.mock.last()['body'])['model'], 'three')

    def test_reset_zeroes_counters_and_forgets_last(self):
        post_json(self.port, CHAT, {'model': 'm'})
        self.assertEqual(self.mock.stats()['requests'], 1)
        self.mock.reset()
        self.assertEqual(self.mock.stats()['requests'], 0)
        self.assertIsNone(self.mock.last())

    def test_introspection_is_not_counted_or_recorded(self):
        post_json(self.port, CHAT, {'model': 'kept'})
        self.mock.stats()
        self.mock.stats()
        self.assertEqual(self.mock.stats()['requests'], 1)
        self.assertEqual(self.mock.last()['path'], CHAT)

    def test_connections_open_follows_clients(self):
        # Read the gauge over one keep-alive connection, so the only other open
        # connections are the test's own (earlier ones may take a moment to be reaped).
        with RawConnection(self.port) as watcher:
            def open_now():
                return stats_on(watcher)['connections_open']
            harness.wait_for(lambda: open_now() == 1, timeout=2, message='only the watcher open')
            conns = [RawConnection(self.port) for _ in range(3)]
            harness.wait_for(lambda: open_now() == 4, timeout=2,
                             message='three more open connections')
            for c in conns:
                c.close()
            harness.wait_for(lambda: open_now() == 1, timeout=2,
                             message='connections_open back to 1')


if __name__ == '__main__':
    harness.main()
