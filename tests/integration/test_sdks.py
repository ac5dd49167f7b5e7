"""Real clients, unchanged, against ringrelay's gateway mode: the official OpenAI SDK
(npm `openai`) and Anthropic SDK (npm `@anthropic-ai/sdk`), and the Vercel AI SDK (npm
`ai` with its providers `@ai-sdk/openai` and `@ai-sdk/anthropic`), pinned in tests/sdk/,
pointed at ringrelay with a gateway key as their apiKey. Each SDK's node script
(tests/sdk/*_client.mjs) makes the calls and prints one JSON line of what the SDK
returned or threw; this file asserts on it, and on what reached ringrelay-mock.
Covered: plain and streamed answers, the Responses API (create, stream, retrieve), /v1/models, the gateway's own errors as the SDKs'
error classes, and streams that must wait (REFERENCE.md section 3: 200 and the SSE head at
once, then the answer, or the gateway's SSE error event when the wait fails). The AI SDK:
generateText and streamText on the Responses API, chat completions and Anthropic
messages, each answer's usage checked against the mock's rule and the gateway's access
log (--log-file), and a bad key as the provider's APICallError with the gateway's 401.

Needs node (>= 18) and tests/sdk/node_modules (tools/install-sdk-deps.sh). Without
them every test is skipped, and the run exits 77 so meson reports SKIP, not OK.

Environment, besides the harness's binaries:
    RR_SDK_DIR   the tests/sdk folder (default: beside this file's folder)
    RR_NODE      the node binary (default: node on PATH)
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

import harness
from harness import HOST, last_header

SDK_DIR = os.environ.get('RR_SDK_DIR') or os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                                       os.pardir, 'sdk')
SDK_MODULES = ('openai', os.path.join('@anthropic-ai', 'sdk'), 'ai', os.path.join('@ai-sdk', 'openai'),
               os.path.join('@ai-sdk', 'anthropic'))
MIN_NODE_MAJOR = 18
SCRIPT_TIMEOUT_MS = 60000   # the script's own watchdog
REQUEST_TIMEOUT_MS = 10000  # each SDK call (the SDK's timeout option)
CHUNKS = 7                  # x-mock-chunks: words in the mock's answer
HOLD_MS = 2000              # how long the key_in_use holder keeps the key busy
# The waiting checks: a holder call keeps a key or the gateway's one upstream token busy
# (from when it reaches the mock) while a stream waits for it. The margins (>= 1.2 s
# each side) are for a loaded machine; a failure message shows the times measured.
QUEUE_TIMEOUT = '2500ms'    # the gateway's --upstream-queue-timeout
SHORT_HOLD_MS = 1200        # a holder a waiting stream outlasts (< QUEUE_TIMEOUT)
LONG_HOLD_MS = 5000         # a holder a waiting stream gives up on (> QUEUE_TIMEOUT)

# The mock answers N chunks as the words "w0 w1 ... w<N-1> ".
EXPECTED_TEXT = ''.join('w%d ' % i for i in range(CHUNKS))

OPENAI_SECRET = 'sk-openai-upstream-secret'
ANTHROPIC_SECRET = 'sk-ant-upstream-secret'


def missing_requirements():
    """Why the SDK tests cannot run here, or None when they can."""
    node = os.environ.get('RR_NODE') or shutil.which('node')
    if not node:
        return 'node is not installed (tools/install-sdk-deps.sh installs it)'
    try:
        version = subprocess.run([node, '--version'], capture_output=True, text=True,
                                 timeout=30).stdout.strip()
        major = int(version.lstrip('v').split('.')[0])
    except (OSError, ValueError, subprocess.TimeoutExpired) as e:
        return 'cannot run %s --version: %s' % (node, e)
    if major < MIN_NODE_MAJOR:
        return 'node %s is older than %d' % (version, MIN_NODE_MAJOR)
    for module in SDK_MODULES:
        if not os.path.isfile(os.path.join(SDK_DIR, 'node_modules', module, 'package.json')):
            return ('SDK module %s is not installed in %s/node_modules '
                    '(run tools/install-sdk-deps.sh)' % (module, os.path.normpath(SDK_DIR)))
    return None


def node_binary():
    return os.environ.get('RR_NODE') or shutil.which('node')


class SdkGateway(harness.IntegrationTestCase):
    """Per class: a mock, a data dir with keys and channels made by the real CLI, a
    gateway with 2 shards, and one run of the class's node script (cls.out)."""

    script = None  # set by subclasses

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        reason = missing_requirements()
        if reason:
            sys.stderr.write('test_sdks: skipped: %s\n' % reason)
            raise unittest.SkipTest(reason)
        cls.data = tempfile.mkdtemp(prefix='rr-sdk-')
        cls.addClassCleanup(shutil.rmtree, cls.data, True)
        cls.mock = cls.start_class_mock()
        cls.key = cls.cli('key', 'create', '--name', 'sdk',
                          '--models', 'gpt-sdk,gpt-sdk-mini,claude-sdk,gpt-nowhere')
        cls.busy_key = cls.cli('key', 'create', '--name', 'busy', '--max-concurrency', '1',
                               '--max-wait', '0')
        cls.waiter_key = cls.cli('key', 'create', '--name', 'waiter', '--max-concurrency', '1',
                                 '--max-wait', '1')
        cls.cli('channel', 'add', '--name', 'openai-mock', '--type', 'openai',
                '--base-url', cls.mock.url, '--api-key', OPENAI_SECRET,
                '--models', 'gpt-sdk,gpt-sdk-mini,gpt-hidden')
        cls.cli('channel', 'add', '--name', 'anthropic-mock', '--type', 'anthropic',
                '--base-url', cls.mock.url, '--api-key', ANTHROPIC_SECRET, '--models', 'claude-sdk')
        # One upstream token, so that a second key's call has to wait for it.
        port, admin = harness.free_port(), harness.free_port()
        cls.gateway = harness.RingrelayServer(
            ['serve', '--mode', 'gateway', '--listen', '%s:%d' % (HOST, port),
             '--admin-listen', '%s:%d' % (HOST, admin), '--shards', '2', '--data', cls.data,
             '--upstream-max-concurrent', '1', '--upstream-queue-timeout', QUEUE_TIMEOUT,
             '--log-file', cls.access_log_path()],
            health_path='/readyz')
        cls.addClassCleanup(cls._finish_process, cls.gateway)
        cls.gateway.start()
        cls.out = cls.run_script()

    @classmethod
    def access_log_path(cls):
        return os.path.join(cls.data, 'access.log')

    def access_line(self, trace_id):
        """The gateway's access-log line of the request whose X-Request-Id was trace_id
        (the writer flushes every few ms: wait for it)."""
        self.assertTrue(trace_id, 'no X-Request-Id reached the SDK')
        found = []

        def scan():
            with open(self.access_log_path()) as f:
                records = [json.loads(line) for line in f if line.endswith('\n')]
            found[:] = [rec for rec in records
                        if rec.get('msg') == 'request' and rec.get('trace_id') == trace_id]
            return found
        harness.wait_for(scan, timeout=5, message='access-log line of %s' % trace_id)
        self.assertEqual(len(found), 1, found)
        return found[0]

    @classmethod
    def cli(cls, *args):
        argv = [harness.binary_from_env('RINGRELAY_BIN')] + list(args) + ['--json', '--data', cls.data]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        if out.returncode != 0:
            raise harness.HarnessError('ringrelay %s failed (%d): %s'
                                       % (' '.join(args), out.returncode, out.stderr))
        return json.loads(out.stdout)

    @classmethod
    def config(cls):
        return {
            'base_url': cls.gateway.url,
            'key': cls.key['secret'],
            'busy_key': cls.busy_key['secret'],
            'waiter_key': cls.waiter_key['secret'],
            'bad_key': 'rr-' + 'x' * 40,
            'chunks': CHUNKS,
            'hold_ms': HOLD_MS,
            'mock_url': cls.mock.url,
            'short_hold_ms': SHORT_HOLD_MS,
            'long_hold_ms': LONG_HOLD_MS,
            'request_timeout_ms': REQUEST_TIMEOUT_MS,
            'script_timeout_ms': SCRIPT_TIMEOUT_MS,
        }

    @classmethod
    def run_script(cls):
        """Runs the node script once; its parsed JSON line, or HarnessError with its output."""
        argv = [node_binary(), os.path.join(SDK_DIR, cls.script), json.dumps(cls.config())]
        try:
            proc = subprocess.run(argv, cwd=SDK_DIR, capture_output=True, text=True,
                                  timeout=SCRIPT_TIMEOUT_MS / 1000 + 15)
        except subprocess.TimeoutExpired as e:
            raise harness.HarnessError('%s did not finish: %s\n%s' % (cls.script, e,
                                                                      cls.gateway.describe()))
        lines = [line for line in proc.stdout.splitlines() if line.startswith('{')]
        if proc.returncode != 0 or len(lines) != 1:
            raise harness.HarnessError('%s exited %d\n  stdout: %s\n  stderr: %s\n%s'
                                       % (cls.script, proc.returncode, proc.stdout[-2000:],
                                          proc.stderr[-4000:], cls.gateway.describe()))
        out = json.loads(lines[0])
        sys.stderr.write('%s: %s SDK %s on node %s\n' % (cls.script, out['sdk'], out['version'],
                                                          out['node']))
        return out

    def result(self, name):
        """One check's observations; fails the test if the SDK threw where it should not."""
        value = self.out['results'][name]
        if 'unexpected' in value:
            self.fail('%s: the SDK threw %s' % (name, json.dumps(value['unexpected'], indent=1)))
        return value

    def assert_gateway_error(self, err, status, code, message):
        """err: describeError() of an SDK error for a gateway-made error."""
        self.assertTrue(err.get('is_api_error'), err)
        self.assertEqual(err['status'], status, err)
        self.assertEqual(err['x_ringrelay_error'], code, err)
        body = err['error']
        if 'error' in (body or {}):  # the Anthropic SDK keeps the whole body
            body = body['error']
        self.assertEqual(body, {'message': message, 'type': 'ringrelay_error', 'code': code})

    def assert_early_head(self, stream):
        """A stream that had to wait got 200 and the SSE head before its wait ended."""
        self.assertIsNotNone(stream['head'], stream)
        self.assertEqual(stream['head']['status'], 200, stream)
        self.assertTrue(stream['head']['content_type'].startswith('text/event-stream'), stream)
        self.assertFalse(stream['head']['holder_done'],
                         'the head came only after the call holding the key/token ended: %r' % stream)

    def assert_queue_timeout_event(self, stream):
        """The SDK threw the gateway's SSE error event: an APIError without a status
        (the status line said 200) carrying the queue_timeout error."""
        self.assert_early_head(stream)
        err = stream['error']
        self.assertIsNotNone(err, 'the SDK read the stream to its end without an error: %r' % stream)
        self.assertTrue(err['is_api_error'], err)
        self.assertIsNone(err['status'], err)
        self.assertFalse(stream['holder_done_at_end'], 'the error came only after the token was free')
        body = err['error']
        if 'error' in (body or {}):
            body = body['error']
        self.assertEqual(body, {'message': 'timeout waiting for upstream concurrency slot',
                                'type': 'ringrelay_error', 'code': 'queue_timeout'})

    def assert_only_relayed_calls_reached_anthropic(self, requests, streams):
        """The mock saw requests calls (streams of them streams, each completed), the
        last on /v1/messages with the channel credential and no gateway secret."""
        stats = self.mock.stats()
        self.assertEqual(stats['requests'], requests, stats)
        self.assertEqual((stats['streams_started'], stats['streams_completed']), (streams, streams), stats)
        last = self.mock.last()
        self.assertEqual(last['path'], '/v1/messages')
        self.assertEqual(last_header(last, 'x-api-key'), ANTHROPIC_SECRET)
        self.assertIsNone(last_header(last, 'Authorization'))
        self.assert_secrets_absent(last)
        return last

    def assert_secrets_absent(self, last):
        for key in (self.key, self.busy_key, self.waiter_key):
            self.assertNotIn(key['secret'], json.dumps(last))


class OpenAISdk(SdkGateway):
    script = 'openai_client.mjs'

    @classmethod
    def config(cls):
        return dict(super().config(), model='gpt-sdk', unknown_model='gpt-nowhere')

    def test_chat_completion_returns_the_model_text_and_usage(self):
        chat = self.result('chat')
        self.assertEqual(chat['object'], 'chat.completion')
        self.assertEqual(chat['model'], 'gpt-sdk')
        self.assertEqual(chat['content'], EXPECTED_TEXT)
        self.assertEqual(chat['finish_reason'], 'stop')
        usage = chat['usage']
        self.assertEqual(usage['completion_tokens'], CHUNKS)
        self.assertGreater(usage['prompt_tokens'], 0)
        self.assertEqual(usage['total_tokens'], usage['prompt_tokens'] + usage['completion_tokens'])

    def test_the_sdk_sends_bearer_auth_and_sees_the_gateways_request_id(self):
        chat = self.result('chat')
        self.assertEqual(len(chat['sent']), 1, chat['sent'])
        sent = chat['sent'][0]
        self.assertEqual((sent['method'], sent['url']),
                         ('POST', self.gateway.url + '/v1/chat/completions'))
        self.assertIn('authorization', sent['header_names'])
        self.assertNotIn('x-api-key', sent['header_names'])
        self.assertTrue(chat['request_id'], 'no X-Request-Id reached the SDK')

    def test_a_stream_concatenates_to_the_text_and_ends_with_usage(self):
        stream = self.result('stream')
        self.assertEqual(stream['content'], EXPECTED_TEXT)
        self.assertGreaterEqual(stream['chunks'], CHUNKS)
        self.assertEqual(stream['finish_reason'], 'stop')
        self.assertEqual(stream['models'], ['gpt-sdk'])
        self.assertEqual(stream['objects'], ['chat.completion.chunk'])
        self.assertIsNotNone(stream['usage'], 'no usage chunk with stream_options.include_usage')
        self.assertEqual(stream['usage']['completion_tokens'], CHUNKS)

    def test_models_list_returns_the_keys_models_served_by_a_channel(self):
        models = self.result('models')
        self.assertEqual(sorted(models['ids']), ['claude-sdk', 'gpt-sdk', 'gpt-sdk-mini'])
        self.assertEqual(models['owned_by'], ['ringrelay'])

    def test_an_unknown_model_is_a_not_found_error_with_the_gateways_code(self):
        err = self.result('unknown_model')
        self.assertTrue(err.get('is_not_found'), err)
        self.assertEqual((err['code'], err['type']), ('model_not_found', 'ringrelay_error'))
        self.assertEqual(err['message'], '404 no channel serves model gpt-nowhere')
        self.assert_gateway_error(err, 404, 'model_not_found', 'no channel serves model gpt-nowhere')

    def test_an_invalid_key_is_an_authentication_error(self):
        err = self.result('invalid_key')
        self.assertTrue(err.get('is_authentication_error'), err)
        self.assertEqual(err['code'], 'invalid_api_key')
        self.assert_gateway_error(err, 401, 'invalid_api_key', 'invalid api key')

    def test_key_in_use_is_a_rate_limit_error_with_the_ringrelay_header(self):
        busy = self.result('key_in_use')
        err = busy['refused']
        self.assertTrue(err.get('is_rate_limit_error'), err)
        self.assertEqual(err['code'], 'key_in_use')
        self.assert_gateway_error(err, 429, 'key_in_use', 'api key is already in use')
        self.assertEqual(busy['holder'], {'ok': True, 'model': 'gpt-sdk'})
        self.assertEqual(busy['after_release'], {'ok': True, 'model': 'gpt-sdk'})

    def test_a_stream_that_waits_for_its_key_gets_its_head_at_once_then_the_answer(self):
        stream = self.result('stream_after_wait')
        self.assertIsNone(stream['error'])
        self.assert_early_head(stream)
        self.assertEqual(stream['content'], EXPECTED_TEXT)
        self.assertTrue(stream['holder_done_at_end'], 'the stream ended before its key was free')
        self.assertEqual(stream['holder'], {'ok': True, 'model': 'gpt-sdk'})

    def test_a_stream_whose_wait_times_out_ends_with_the_gateways_error_event(self):
        stream = self.result('stream_wait_fails')
        self.assert_queue_timeout_event(stream)
        self.assertEqual(stream['error']['code'], 'queue_timeout')
        self.assertEqual(stream['content'], '')
        self.assertEqual(stream['holder'], {'ok': True, 'model': 'gpt-sdk'})

    def test_responses_create_returns_the_response_with_output_text_and_usage(self):
        r = self.result('responses_create')
        self.assertTrue(r['id'].startswith('resp_'), r)
        self.assertEqual((r['object'], r['status'], r['model']), ('response', 'completed', 'gpt-sdk'))
        self.assertEqual(r['output_text'], EXPECTED_TEXT)
        usage = r['usage']
        self.assertEqual(usage['output_tokens'], CHUNKS)
        self.assertEqual(usage['total_tokens'], usage['input_tokens'] + usage['output_tokens'])

    def test_a_responses_stream_yields_typed_events_ending_in_response_completed(self):
        s = self.result('responses_stream')
        self.assertEqual(s['types'][:4], ['response.created', 'response.in_progress',
                                          'response.output_item.added', 'response.content_part.added'])
        self.assertEqual(s['types'][-1], 'response.completed')
        self.assertEqual(s['types'].count('response.output_text.delta'), CHUNKS)
        self.assertEqual(s['sequence'], list(range(len(s['types']))))
        self.assertEqual(s['text'], EXPECTED_TEXT)
        self.assertEqual(s['completed']['id'], s['created_id'])
        self.assertEqual(s['completed']['status'], 'completed')
        self.assertEqual(s['completed']['usage']['output_tokens'], CHUNKS)

    def test_responses_retrieve_finds_the_response_and_an_unknown_id_is_not_found(self):
        r = self.result('responses_retrieve')
        self.assertEqual((r['id'], r['object'], r['status']), (r['created_id'], 'response', 'completed'))
        self.assertEqual(r['output_text'], EXPECTED_TEXT)
        missing = r['missing']
        self.assertTrue(missing.get('is_not_found'), missing)
        self.assertEqual(missing['status'], 404, missing)
        self.assertIsNone(missing['x_ringrelay_error'], missing)  # the upstream's answer

    def test_only_relayed_calls_reached_the_upstream_with_the_channel_credential(self):
        # chat, stream, the key_in_use holder and the call after it, the two calls of
        # stream_after_wait and the holder of stream_wait_fails, then the Responses
        # calls (create, stream, and create + retrieve + retrieve of an unknown id):
        # models.list is answered locally and the refused and timed-out calls never
        # leave the gateway.
        stats = self.mock.stats()
        self.assertEqual(stats['requests'], 12, stats)
        self.assertEqual((stats['streams_started'], stats['streams_completed']), (3, 3), stats)
        last = self.mock.last()
        self.assertEqual(last_header(last, 'Authorization'), 'Bearer ' + OPENAI_SECRET)
        # The SDK's own headers pass through as it sent them.
        sdk_sent = self.result('chat')['sent'][0]['header_values']
        self.assertEqual(sdk_sent.get('x-stainless-package-version'), self.out['version'])
        for name in ('x-stainless-lang', 'x-stainless-package-version'):
            self.assertEqual(last_header(last, name), sdk_sent.get(name), name)
        self.assert_secrets_absent(last)


class AnthropicSdk(SdkGateway):
    script = 'anthropic_client.mjs'

    @classmethod
    def config(cls):
        return dict(super().config(), model='claude-sdk')

    def test_messages_create_returns_the_message_and_usage(self):
        msg = self.result('create')
        self.assertEqual((msg['type'], msg['role'], msg['model']), ('message', 'assistant', 'claude-sdk'))
        self.assertEqual(msg['text'], EXPECTED_TEXT)
        self.assertEqual(msg['stop_reason'], 'end_turn')
        self.assertEqual(msg['usage']['output_tokens'], CHUNKS)
        self.assertGreater(msg['usage']['input_tokens'], 0)

    def test_the_sdk_authenticates_with_x_api_key_and_sees_the_request_id(self):
        msg = self.result('create')
        self.assertEqual(len(msg['sent']), 1, msg['sent'])
        sent = msg['sent'][0]
        self.assertEqual((sent['method'], sent['url']), ('POST', self.gateway.url + '/v1/messages'))
        self.assertIn('x-api-key', sent['header_names'])
        self.assertIn('anthropic-version', sent['header_names'])
        self.assertNotIn('authorization', sent['header_names'])
        self.assertTrue(msg['x_request_id'], 'no X-Request-Id reached the SDK')

    def test_stream_true_events_concatenate_to_the_text_and_end_with_usage(self):
        stream = self.result('create_stream')
        self.assertEqual(stream['event_types'], ['message_start', 'content_block_start', 'content_block_delta',
                                                 'content_block_stop', 'message_delta', 'message_stop'])
        self.assertEqual(stream['model'], 'claude-sdk')
        self.assertEqual(stream['text'], EXPECTED_TEXT)
        self.assertEqual(stream['stop_reason'], 'end_turn')
        self.assertEqual(stream['usage']['output_tokens'], CHUNKS)

    def test_the_stream_helper_assembles_the_final_message(self):
        helper = self.result('stream_helper')
        self.assertEqual(helper['text_events'], CHUNKS)
        self.assertEqual(helper['text'], EXPECTED_TEXT)
        self.assertEqual(helper['final_text'], EXPECTED_TEXT)
        self.assertEqual((helper['model'], helper['stop_reason']), ('claude-sdk', 'end_turn'))
        self.assertEqual(helper['usage']['output_tokens'], CHUNKS)
        self.assertGreater(helper['usage']['input_tokens'], 0)

    def test_a_thinking_and_tool_use_stream_reassembles_in_the_sdk(self):
        agent = self.result('agent_stream')
        self.assertEqual(agent['block_types'], ['thinking', 'text', 'tool_use'])
        self.assertEqual((agent['thinking'], agent['signature']), ('mock reasoning', 'mock-signature'))
        self.assertEqual(agent['text'], EXPECTED_TEXT)
        self.assertEqual((agent['tool_name'], agent['tool_input']), ('get_weather', {'city': 'Paris'}))
        self.assertEqual(agent['stop_reason'], 'tool_use')
        self.assertEqual(agent['usage']['output_tokens'], CHUNKS)

    def test_count_tokens_answers_through_the_gateway(self):
        self.assertGreater(self.result('count_tokens')['input_tokens'], 0)

    def test_an_invalid_key_is_an_authentication_error(self):
        err = self.result('invalid_key')
        self.assertTrue(err.get('is_authentication_error'), err)
        self.assert_gateway_error(err, 401, 'invalid_api_key', 'invalid api key')

    def test_a_stream_that_waits_for_its_key_gets_its_head_at_once_then_the_events(self):
        stream = self.result('stream_after_wait')
        self.assertIsNone(stream['error'])
        self.assert_early_head(stream)
        self.assertEqual(stream['text'], EXPECTED_TEXT)
        self.assertEqual(stream['event_types'][0], 'message_start')
        self.assertEqual(stream['event_types'][-1], 'message_stop')
        self.assertTrue(stream['holder_done_at_end'], 'the stream ended before its key was free')
        self.assertEqual(stream['holder'], {'ok': True, 'model': 'claude-sdk'})

    def test_a_stream_whose_wait_times_out_ends_with_the_gateways_error_event(self):
        stream = self.result('stream_wait_fails')
        self.assert_queue_timeout_event(stream)
        self.assertEqual((stream['text'], stream['event_types']), ('', []))
        self.assertEqual(stream['holder'], {'ok': True, 'model': 'claude-sdk'})

    def test_only_relayed_calls_reached_the_upstream_with_the_channel_credential(self):
        # create, create_stream, stream_helper, agent_stream, count_tokens, the two
        # calls of stream_after_wait and the holder of stream_wait_fails.
        last = self.assert_only_relayed_calls_reached_anthropic(8, 4)
        sdk_sent = self.result('create')['sent'][0]['header_values']
        self.assertTrue(sdk_sent.get('anthropic-version'), sdk_sent)
        self.assertEqual(last_header(last, 'anthropic-version'), sdk_sent['anthropic-version'])


class VercelAiSdk(SdkGateway):
    script = 'vercel_ai_client.mjs'

    @classmethod
    def config(cls):
        return dict(super().config(), model='gpt-sdk', anthropic_model='claude-sdk')

    # check name -> (the provider's API path, the model the answer names)
    CALLS = {
        'responses': ('/v1/responses', 'gpt-sdk'),
        'chat': ('/v1/chat/completions', 'gpt-sdk'),
        'anthropic': ('/v1/messages', 'claude-sdk'),
    }

    def assert_answer(self, name, stream):
        """One generateText or streamText call: the mock's text, the usage the mock
        reported (prompt tokens: its request body's bytes / 4 + 1), and the gateway's
        access line for it, which counted the same usage."""
        path, model = self.CALLS[name]
        r = self.result('%s_%s' % (name, 'stream' if stream else 'generate'))
        self.assertEqual(r['sent'], [{'url': self.gateway.url + path, 'method': 'POST'}])
        self.assertEqual(r['upstream']['path'], path)
        self.assertEqual(r['text'], EXPECTED_TEXT)
        self.assertEqual(r['finish_reason'], 'stop')
        self.assertEqual(r['model_id'], model)
        prompt = r['upstream']['body_bytes'] // 4 + 1
        self.assertEqual(r['usage'], {'input': prompt, 'output': CHUNKS, 'total': prompt + CHUNKS})
        line = self.access_line(r['request_id'])
        self.assertEqual((line['path'], line['status'], line['model'], line['stream']),
                         (path, 200, model, stream))
        self.assertEqual((line['usage'], line['prompt_tokens'], line['completion_tokens']),
                         ('reported', prompt, CHUNKS))
        return r

    def assert_stream_pieces(self, name):
        r = self.assert_answer(name, stream=True)
        self.assertEqual(r['pieces'], ['w%d ' % i for i in range(CHUNKS)])
        self.assertEqual(r['errors'], [])

    def test_generate_text_on_the_responses_api(self):
        self.assert_answer('responses', stream=False)

    def test_stream_text_on_the_responses_api(self):
        self.assert_stream_pieces('responses')

    def test_generate_text_on_chat_completions(self):
        self.assert_answer('chat', stream=False)

    def test_stream_text_on_chat_completions(self):
        self.assert_stream_pieces('chat')

    def test_generate_text_on_anthropic_messages(self):
        self.assert_answer('anthropic', stream=False)

    def test_stream_text_on_anthropic_messages(self):
        self.assert_stream_pieces('anthropic')

    def assert_invalid_key(self, name):
        """generateText throws, and streamText reports to onError, the provider's
        APICallError with the gateway's 401 and its error body."""
        path = self.CALLS[name][0]
        r = self.result(name + '_invalid_key')
        self.assertEqual(r['stream']['pieces'], [])
        self.assertEqual(len(r['stream']['errors']), 1, r['stream'])
        for err in (r['generate'], r['stream']['errors'][0]):
            self.assertTrue(err.get('is_api_call_error'), err)
            self.assertEqual((err['status'], err['url'], err['x_ringrelay_error']),
                             (401, self.gateway.url + path, 'invalid_api_key'), err)
            self.assertEqual(json.loads(err['response_body']),
                             {'type': 'error', 'error': {'message': 'invalid api key', 'type': 'ringrelay_error',
                                                         'code': 'invalid_api_key'}})
        return r

    def test_an_invalid_key_is_an_api_call_error_401_on_the_responses_api(self):
        r = self.assert_invalid_key('responses')
        self.assertEqual(r['generate']['message'], 'invalid api key')

    def test_an_invalid_key_is_an_api_call_error_401_on_chat_completions(self):
        r = self.assert_invalid_key('chat')
        self.assertEqual(r['generate']['message'], 'invalid api key')

    def test_an_invalid_key_is_an_api_call_error_401_on_anthropic_messages(self):
        # The anthropic provider takes its message only from an Anthropic-shaped error
        # body ({"type":"error","error":{...}}), which the gateway's body also is (it
        # fell back to the status text, "Unauthorized", while the body was only
        # OpenAI-shaped).
        r = self.assert_invalid_key('anthropic')
        self.assertEqual(r['generate']['message'], 'invalid api key')

    def test_only_the_answered_calls_reached_the_upstream_with_the_channel_credential(self):
        # Two calls (generateText, streamText) per API; the six with a bad key never
        # leave the gateway.
        self.assert_only_relayed_calls_reached_anthropic(6, 3)


def main():
    """unittest with exit status 77 (meson's SKIP) when every test was skipped."""
    result = unittest.main(module='__main__', verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped and result.testsRun <= len(result.skipped):
        sys.exit(77)
    sys.exit(0)


if __name__ == '__main__':
    main()
