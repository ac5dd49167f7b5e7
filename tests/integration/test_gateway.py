"""The gateway path against the real binary and ringrelay-mock: every row of the
REFERENCE.md error table the gateway makes, the concurrency semantics of REFERENCE.md section 4,
routing, model mapping, credential swap and retries. Keys and channels are made with
the real CLI, while the server runs."""

import json
import os
import signal
import socket
import threading
import time

import harness
from harness import HOST, http_request, last_header

CHAT = '/v1/chat/completions'


class Gateway(harness.IntegrationTestCase):
    """Helpers: a data dir, the CLI, a gateway in front of a mock."""

    def setUp(self):
        self.data = self.make_tempdir()
        self.mock = self.start_mock()

    def make_key(self, name='k', **flags):
        args = ['key', 'create', '--name', name, '--json']
        for flag, value in flags.items():
            args += ['--' + flag.replace('_', '-'), str(value)]
        return json.loads(self.cli(*args).stdout)

    def make_channel(self, name='mock', url=None, models='gpt-test', **flags):
        args = ['channel', 'add', '--name', name, '--base-url', url or self.mock.url,
                '--api-key', flags.pop('api_key', 'sk-upstream-' + name), '--models', models, '--json']
        for flag, value in flags.items():
            args += ['--' + flag.replace('_', '-'), str(value)]
        return json.loads(self.cli(*args).stdout)

    def start_gateway(self, *extra, shards=2):
        port, admin = harness.free_port(), harness.free_port()
        return self.start_ringrelay(['serve', '--listen', '%s:%d' % (HOST, port),
                                     '--admin-listen', '%s:%d' % (HOST, admin), '--shards', str(shards),
                                     '--data', self.data] + list(extra))

    def chat(self, gw, key, model='gpt-test', headers=None, body=None, timeout=10):
        h = {'Authorization': 'Bearer ' + key['secret']} if key else {}
        h.update(headers or {})
        return http_request(gw.port, 'POST', CHAT, json_body=body or {'model': model, 'messages': []},
                            headers=h, timeout=timeout)

    def parallel(self, calls):
        """Runs the callables at once; returns their results in order."""
        results = [None] * len(calls)

        def run(i, fn):
            try:
                results[i] = fn()
            except Exception as e:  # pylint: disable=broad-except
                results[i] = e
        threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
        for t in threads:
            t.start()
            time.sleep(0.01)  # keep the arrival order
        for t in threads:
            t.join(30)
        return results

    def start_holder(self, gw, key, delay_ms):
        """A request of key that the mock holds for delay_ms, in a thread; returns once
        it is at the upstream (so it holds the key's slot and a token), however slowly
        the thread starts on a loaded machine."""
        before = self.mock.stats()['requests']
        holder = threading.Thread(target=lambda: self.chat(gw, key, headers={'x-mock-delay-ms': str(delay_ms)}))
        holder.start()
        harness.wait_for(lambda: self.mock.stats()['requests'] == before + 1, timeout=5,
                         message='the holding request at the upstream')
        return holder

    def key_waiting(self, gw):
        """How many requests wait for a key slot, summed over the keys /admin/state lists."""
        with open(os.path.join(self.data, 'admin.token')) as f:
            token = f.read().strip()
        resp = http_request(gw.admin_port, 'GET', '/admin/state', headers={'Authorization': 'Bearer ' + token})
        self.assertStatus(resp, 200)
        return sum(k['waiting'] for k in resp.json()['keys'])

    def metrics(self, gw):
        """The admin /metrics text of gw, as {sample (name{labels}): value}."""
        with open(os.path.join(self.data, 'admin.token')) as f:
            token = f.read().strip()
        resp = http_request(gw.admin_port, 'GET', '/metrics', headers={'Authorization': 'Bearer ' + token})
        self.assertStatus(resp, 200)
        out = {}
        for line in resp.text.splitlines():
            if line and not line.startswith('#'):
                name, _, value = line.rpartition(' ')
                out[name] = float(value)
        return out

    def replays(self, gw, reason):
        return self.metrics(gw).get('ringrelay_upstream_replays_total{reason="%s"}' % reason)

    def upstream_requests_seen(self):
        return self.mock.stats()['requests']

    def assert_error(self, resp, status, code, message=None):
        self.assertStatus(resp, status)
        self.assertEqual(resp.header('X-Ringrelay-Error'), code)
        err = resp.json()['error']
        self.assertEqual((err['type'], err['code']), ('ringrelay_error', code))
        if message is not None:
            self.assertEqual(err['message'], message)


class Auth(Gateway):
    def test_a_valid_key_is_relayed_with_the_channel_credential_in_place_of_its_own(self):
        key = self.make_key()
        self.make_channel(api_key='sk-upstream-secret')
        gw = self.start_gateway()
        resp = self.chat(gw, key)
        self.assertStatus(resp, 200)
        self.assertEqual(resp.json()['model'], 'gpt-test')
        last = self.mock.last()
        self.assertEqual(last_header(last, 'Authorization'), 'Bearer sk-upstream-secret')
        self.assertNotIn(key['secret'], json.dumps(last))

    def test_x_api_key_works_and_an_anthropic_channel_gets_x_api_key(self):
        key = self.make_key()
        self.make_channel(type='anthropic', models='claude-test', api_key='sk-ant-upstream')
        gw = self.start_gateway()
        resp = http_request(gw.port, 'POST', '/v1/messages', json_body={'model': 'claude-test', 'messages': []},
                            headers={'x-api-key': key['secret'], 'anthropic-version': '2023-06-01'})
        self.assertStatus(resp, 200)
        last = self.mock.last()
        self.assertEqual(last_header(last, 'x-api-key'), 'sk-ant-upstream')
        self.assertIsNone(last_header(last, 'Authorization'))
        self.assertEqual(last_header(last, 'anthropic-version'), '2023-06-01')

    def test_client_billing_headers_reach_only_a_channel_that_lets_them_pass(self):
        # OpenAI-Organization / OpenAI-Project pick what the channel's account is billed
        # for: a key holder must not choose that, unless the channel says so.
        key = self.make_key(models='gpt-strict,gpt-open,gpt-org')
        self.make_channel(name='strict', models='gpt-strict')
        both = self.make_channel(name='open', models='gpt-open', pass_headers='OpenAI-Organization,OpenAI-Project')
        self.make_channel(name='org', models='gpt-org', pass_headers='openai-organization')
        self.assertEqual(both['pass_headers'], ['OpenAI-Organization', 'OpenAI-Project'])
        gw = self.start_gateway()
        sent = {'OpenAI-Organization': 'org-client', 'OpenAI-Project': 'proj-client', 'OpenAI-Beta': 'assistants=v2'}
        expected = {'gpt-strict': (None, None), 'gpt-open': ('org-client', 'proj-client'), 'gpt-org': ('org-client', None)}
        for model, (org, project) in expected.items():
            with self.subTest(model=model):
                self.assertStatus(self.chat(gw, key, model=model, headers=sent), 200)
                last = self.mock.last()
                self.assertEqual(last_header(last, 'OpenAI-Organization'), org)
                self.assertEqual(last_header(last, 'OpenAI-Project'), project)
                self.assertEqual(last_header(last, 'OpenAI-Beta'), 'assistants=v2')  # other fields pass
        # "none" takes the permission back; an unknown header name is refused.
        self.cli('channel', 'update', both['id'], '--pass-headers', 'none')
        self.assertStatus(self.chat(gw, key, model='gpt-open', headers=sent), 200)
        self.assertIsNone(last_header(self.mock.last(), 'OpenAI-Organization'))
        bad = self.cli('channel', 'update', both['id'], '--pass-headers', 'X-Anything', check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn('OpenAI-Organization', bad.stderr)

    def test_the_upstream_accounts_billing_headers_reach_the_client_only_where_the_channel_passes_them(self):
        # OpenAI answers with openai-organization / openai-project naming the account it
        # billed: the reseller's upstream account, not the client's business, unless the
        # channel lets clients choose their own (then they are the client's own values).
        key = self.make_key(models='gpt-strict,gpt-open,gpt-org')
        self.make_channel(name='strict', models='gpt-strict')
        self.make_channel(name='open', models='gpt-open', pass_headers='OpenAI-Organization,OpenAI-Project')
        self.make_channel(name='org', models='gpt-org', pass_headers='openai-organization')
        gw = self.start_gateway()
        direct = http_request(self.mock.port, 'POST', CHAT, json_body={'model': 'gpt-strict', 'messages': []})
        org, project = direct.header('openai-organization'), direct.header('openai-project')
        self.assertTrue(org and project, 'the mock sends the account headers as OpenAI does')
        expected = {'gpt-strict': (None, None), 'gpt-open': (org, project), 'gpt-org': (org, None)}
        for model, wanted in expected.items():
            for stream in (False, True):
                with self.subTest(model=model, stream=stream):
                    if stream:
                        with harness.SSEStream(gw.port, CHAT, {'model': model, 'stream': True},
                                               headers={'Authorization': 'Bearer ' + key['secret']}) as s:
                            resp = s.response
                            s.read_all()
                    else:
                        resp = self.chat(gw, key, model=model)
                    self.assertStatus(resp, 200)
                    self.assertEqual((resp.header('openai-organization'), resp.header('openai-project')), wanted)
                    self.assertEqual(resp.header('Server'), 'ringrelay-mock')  # other fields pass

    def test_missing_or_unknown_key_is_invalid_api_key(self):
        self.make_channel()
        gw = self.start_gateway()
        self.assert_error(self.chat(gw, None), 401, 'invalid_api_key', 'invalid api key')
        self.assert_error(self.chat(gw, {'secret': 'rr-' + 'x' * 40}), 401, 'invalid_api_key')
        self.assertIsNone(self.mock.last())

    def test_revoking_with_the_cli_while_serving_refuses_the_very_next_request(self):
        key = self.make_key()
        self.make_channel()
        # One shard: the requests before the revoke leave the secret's digest in that
        # shard's memo, and the revoke must still win.
        gw = self.start_gateway(shards=1)
        for _ in range(3):
            self.assertStatus(self.chat(gw, key), 200)
        self.cli('key', 'revoke', key['id'], '--reason', 'leaked')
        self.assert_error(self.chat(gw, key), 401, 'key_revoked', 'api key has been revoked')
        self.cli('key', 'unrevoke', key['id'])
        self.assertStatus(self.chat(gw, key), 200)

    def test_an_expired_key_and_a_rotated_secret_past_its_grace_are_key_expired(self):
        short = self.make_key(name='short', expires='1s')
        key = self.make_key(name='rotating')
        self.make_channel()
        gw = self.start_gateway()
        out = json.loads(self.cli('key', 'rotate', key['id'], '--grace', '500ms', '--json').stdout)
        new = {'secret': out['secret']}
        self.assertStatus(self.chat(gw, key), 200)  # old secret, within grace
        self.assertStatus(self.chat(gw, new), 200)
        time.sleep(1.2)
        self.assert_error(self.chat(gw, short), 401, 'key_expired', 'api key has expired')
        self.assert_error(self.chat(gw, key), 401, 'key_expired')
        self.assertStatus(self.chat(gw, new), 200)

    def test_a_blocked_address_is_refused_until_unblocked(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_gateway()
        self.cli('block', 'add', '127.0.0.0/8', '--reason', 'test')
        self.assert_error(self.chat(gw, key), 403, 'ip_blocked', 'client address is blocked')
        self.cli('block', 'remove', '127.0.0.0/8')
        self.assertStatus(self.chat(gw, key), 200)

    def test_a_model_outside_the_keys_list_is_not_allowed(self):
        key = self.make_key(models='gpt-test')
        self.make_channel(models='gpt-test,gpt-other')
        gw = self.start_gateway()
        self.assert_error(self.chat(gw, key, model='gpt-other'), 403, 'model_not_allowed',
                          'model not allowed for this key')
        self.assertStatus(self.chat(gw, key, model='gpt-test'), 200)

    def test_v1_models_lists_what_the_key_may_use(self):
        key = self.make_key(models='gpt-a,gpt-b')
        self.make_channel(models='gpt-a,gpt-b,gpt-c')
        gw = self.start_gateway()
        resp = http_request(gw.port, 'GET', '/v1/models', headers={'Authorization': 'Bearer ' + key['secret']})
        self.assertStatus(resp, 200)
        body = resp.json()
        self.assertEqual(body['object'], 'list')
        self.assertEqual(sorted(m['id'] for m in body['data']), ['gpt-a', 'gpt-b'])

    def test_readyz_needs_an_enabled_channel(self):
        gw = self.start_gateway()
        self.assertStatus(http_request(gw.port, 'GET', '/readyz'), 503)
        self.assertStatus(http_request(gw.port, 'GET', '/healthz'), 200)
        self.make_channel()
        self.assertStatus(http_request(gw.port, 'GET', '/readyz'), 200)


class BodyAndRouting(Gateway):
    def test_bad_bodies_are_invalid_request(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_gateway()
        auth = {'Authorization': 'Bearer ' + key['secret']}
        for body in (b'hello', b'{"messages": []}', b'{"model": 5}', b'[1,2]'):
            with self.subTest(body=body):
                self.assert_error(http_request(gw.port, 'POST', CHAT, body=body, headers=auth), 400, 'invalid_request')

    def test_a_body_with_model_twice_is_refused_before_any_upstream_sees_it(self):
        # The key may use gpt-test only; an upstream reading the first "model" would
        # run gpt-secret for it.
        key = self.make_key(models='gpt-test')
        self.make_channel(models='gpt-test,gpt-secret')
        gw = self.start_gateway()
        auth = {'Authorization': 'Bearer ' + key['secret'], 'Content-Type': 'application/json'}
        body = b'{"model": "gpt-secret", "messages": [], "model": "gpt-test"}'
        self.assert_error(http_request(gw.port, 'POST', CHAT, body=body, headers=auth), 400, 'invalid_request',
                          'request body has more than one "model" field')
        self.assertIsNone(self.mock.last())

    def test_unknown_model_is_model_not_found(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_gateway()
        self.assert_error(self.chat(gw, key, model='nope'), 404, 'model_not_found', 'no channel serves model nope')

    def test_only_disabled_channels_is_no_available_channel(self):
        key = self.make_key()
        ch = self.make_channel()
        gw = self.start_gateway()
        self.cli('channel', 'disable', ch['id'])
        self.assert_error(self.chat(gw, key), 503, 'no_available_channel', 'no available channel for model gpt-test')
        self.cli('channel', 'enable', ch['id'])
        self.assertStatus(self.chat(gw, key), 200)

    def test_model_map_rewrites_the_model_in_the_body(self):
        key = self.make_key()
        self.make_channel(models='alias', model_map='alias=gpt-real')
        gw = self.start_gateway()
        resp = self.chat(gw, key, model='alias', body={'model': 'alias', 'messages': [{'role': 'user', 'content': 'x'}]})
        self.assertStatus(resp, 200)
        sent = json.loads(self.mock.last()['body'])
        self.assertEqual(sent['model'], 'gpt-real')
        self.assertEqual(sent['messages'], [{'role': 'user', 'content': 'x'}])
        self.assertEqual(int(last_header(self.mock.last(), 'Content-Length')), len(self.mock.last()['body']))

    def test_channels_on_one_host_keep_their_own_base_paths(self):
        # Two deployments behind one host (Azure-style): same address, different paths.
        key = self.make_key()
        self.make_channel(name='one', url=self.mock.url + '/deployments/one', models='model-one')
        self.make_channel(name='two', url=self.mock.url + '/deployments/two', models='model-two')
        self.make_channel(name='root', models='model-three')
        gw = self.start_gateway(shards=1)
        for model, path in (('model-one', '/deployments/one' + CHAT), ('model-two', '/deployments/two' + CHAT),
                            ('model-one', '/deployments/one' + CHAT), ('model-three', CHAT)):
            self.assertStatus(self.chat(gw, key, model=model), 200)
            self.assertEqual(self.mock.last()['path'], path, model)

    def test_a_channel_named_by_host_name_is_reached(self):
        # The name is looked up on the resolver thread, not on the shard. A minimal
        # system may have no /etc/hosts: then nothing resolves "localhost" for us either.
        import socket
        try:
            addresses = {a[4][0] for a in socket.getaddrinfo('localhost', self.mock.port, socket.AF_INET)}
        except socket.gaierror:
            addresses = set()
        if '127.0.0.1' not in addresses:
            self.skipTest('"localhost" does not resolve to 127.0.0.1 here')
        key = self.make_key()
        self.make_channel(name='named', url='http://localhost:%d/named' % self.mock.port)
        gw = self.start_gateway(shards=1)
        for _ in range(2):
            self.assertStatus(self.chat(gw, key), 200)
            self.assertEqual(self.mock.last()['path'], '/named' + CHAT)
            self.assertEqual(last_header(self.mock.last(), 'Host'), 'localhost:%d' % self.mock.port)

    def test_a_dead_first_channel_is_retried_on_the_next(self):
        key = self.make_key()
        self.make_channel(name='dead', url='http://127.0.0.1:%d' % harness.free_port(), priority=0)
        self.make_channel(name='alive', priority=1)
        gw = self.start_gateway()
        resp = self.chat(gw, key)
        self.assertStatus(resp, 200)
        self.assertEqual(self.mock.last()['path'], CHAT)

    def test_a_dead_first_channel_counts_a_connect_failed_replay(self):
        key = self.make_key()
        self.make_channel(name='dead', url='http://127.0.0.1:%d' % harness.free_port(), priority=0)
        self.make_channel(name='alive', priority=1)
        gw = self.start_gateway()
        self.assertStatus(self.chat(gw, key), 200)
        self.assertEqual(self.replays(gw, 'connect_failed'), 1)
        self.assertEqual(self.upstream_requests_seen(), 1)

    def test_a_post_the_upstream_read_then_reset_is_sent_exactly_once(self):
        # Two channels and a pooled connection: the old code sent the POST again on a
        # fresh connection, then on the other channel (the upstream may have billed each).
        key = self.make_key()
        self.make_channel(name='a')
        self.make_channel(name='b')
        gw = self.start_gateway(shards=1)
        self.assertStatus(self.chat(gw, key), 200)  # leaves a pooled upstream connection
        before = self.upstream_requests_seen()
        self.assert_error(self.chat(gw, key, headers={'x-mock-behavior': 'reset'}), 502, 'upstream_error')
        self.assertEqual(self.upstream_requests_seen() - before, 1)
        self.assertEqual(self.mock.stats()['resets'], 1)
        for reason in ('no_response', 'upstream_failed'):
            self.assertEqual(self.replays(gw, reason), 0, reason)

    def test_a_post_cut_mid_stream_is_sent_exactly_once(self):
        key = self.make_key()
        self.make_channel(name='a')
        self.make_channel(name='b')
        gw = self.start_gateway(shards=1)
        stream = harness.SSEStream(gw.port, CHAT, {'model': 'gpt-test', 'messages': [], 'stream': True},
                                   headers={'Authorization': 'Bearer ' + key['secret'],
                                            'x-mock-behavior': 'close-mid-stream'})
        self.assertEqual(stream.response.status, 200)
        stream.read_all()
        self.assertFalse(stream.complete)  # the answer had begun: the cut reaches the client as a cut
        self.assertEqual(self.upstream_requests_seen(), 1)
        self.assertEqual(self.replays(gw, 'upstream_failed'), 0)

    def test_retry_non_idempotent_sends_a_reset_post_again_and_counts_it(self):
        key = self.make_key()
        self.make_channel(name='a')
        self.make_channel(name='b')
        gw = self.start_gateway('--retry-non-idempotent', 'true', shards=1)
        self.assertStatus(self.chat(gw, key), 200)
        before = self.upstream_requests_seen()
        self.assert_error(self.chat(gw, key, headers={'x-mock-behavior': 'reset'}), 502, 'upstream_error')
        sent = self.upstream_requests_seen() - before
        self.assertGreater(sent, 1)
        replays = self.replays(gw, 'no_response') + self.replays(gw, 'upstream_failed')
        self.assertEqual(replays, sent - 1)

    def test_an_upstream_503_is_tried_elsewhere_but_a_500_to_a_post_is_relayed(self):
        key = self.make_key()
        self.make_channel(name='a')
        self.make_channel(name='b')
        gw = self.start_gateway()
        # 503 is the upstream's own "not now": it did not run the request.
        resp = self.chat(gw, key, headers={'x-mock-status': '503'})
        self.assertStatus(resp, 503)  # both channels (one mock) said so; the last answer is relayed
        self.assertEqual(self.upstream_requests_seen(), 2)
        self.assertEqual(self.replays(gw, 'upstream_refused'), 1)
        # A 500 may come after the upstream ran (and billed) it: a POST is not sent again.
        self.mock.reset()
        resp = self.chat(gw, key, headers={'x-mock-status': '500'})
        self.assertStatus(resp, 500)
        self.assertIsNone(resp.header('X-Ringrelay-Error'))  # the upstream's own answer
        self.assertEqual(self.upstream_requests_seen(), 1)

    def test_a_dead_only_channel_is_upstream_error(self):
        key = self.make_key()
        self.make_channel(name='dead', url='http://127.0.0.1:%d' % harness.free_port())
        gw = self.start_gateway()
        self.assert_error(self.chat(gw, key), 502, 'upstream_error')

    def test_a_hung_upstream_is_upstream_timeout(self):
        key = self.make_key()
        self.make_channel(timeout='400ms')
        gw = self.start_gateway()
        started = time.monotonic()
        self.assert_error(self.chat(gw, key, headers={'x-mock-behavior': 'hang'}), 504, 'upstream_timeout',
                          'upstream timed out')
        self.assertLess(time.monotonic() - started, 3)

    def test_a_channel_without_its_own_timeout_takes_the_servers_upstream_timeout(self):
        # A channel added without --timeout stored 30s and overrode --upstream-timeout.
        key = self.make_key()
        channel = self.make_channel()
        self.assertIsNone(channel['timeout_ms'])
        gw = self.start_gateway('--upstream-timeout', '1s')
        started = time.monotonic()
        self.assert_error(self.chat(gw, key, headers={'x-mock-behavior': 'hang'}, timeout=40), 504,
                          'upstream_timeout', 'upstream timed out')
        elapsed = time.monotonic() - started
        self.assertGreaterEqual(elapsed, 0.9)  # the timeout, not something earlier
        self.assertLess(elapsed, 15)           # far from the 30 s a stored default would take

    def test_an_upstream_429_on_the_last_channel_is_relayed_untouched(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_gateway()
        resp = self.chat(gw, key, headers={'x-mock-status': '429'})
        self.assertStatus(resp, 429)
        self.assertIsNone(resp.header('X-Ringrelay-Error'))


class Limits(Gateway):
    def test_rpm_refuses_past_the_limit_with_retry_after(self):
        key = self.make_key(rpm=2)
        self.make_channel()
        gw = self.start_gateway()
        self.assertStatus(self.chat(gw, key), 200)
        self.assertStatus(self.chat(gw, key), 200)
        resp = self.chat(gw, key)
        self.assert_error(resp, 429, 'rate_limited', 'rate limit exceeded')
        self.assertGreaterEqual(int(resp.header('Retry-After')), 1)

    def test_tpm_counts_the_tokens_the_upstream_reported(self):
        key = self.make_key(tpm=5)  # the mock reports more than 5 tokens per answer
        self.make_channel()
        gw = self.start_gateway()
        self.assertStatus(self.chat(gw, key), 200)
        resp = self.chat(gw, key)
        self.assert_error(resp, 429, 'rate_limited')
        self.assertIsNotNone(resp.header('Retry-After'))

    def test_tokens_of_a_stream_count_too(self):
        key = self.make_key(tpm=5)
        self.make_channel()
        gw = self.start_gateway()
        stream = harness.SSEStream(gw.port, CHAT, {'model': 'gpt-test', 'stream': True,
                                                   'stream_options': {'include_usage': True}},
                                   headers={'Authorization': 'Bearer ' + key['secret']})
        stream.read_all()
        stream.close()
        self.assert_error(self.chat(gw, key), 429, 'rate_limited')

    def test_quota_is_enforced_and_survives_a_restart(self):
        key = self.make_key(quota=5)
        self.make_channel()
        gw = self.start_gateway()
        self.assertStatus(self.chat(gw, key), 200)
        self.assert_error(self.chat(gw, key), 429, 'quota_exceeded', 'quota exceeded')
        gw.stop()  # the drain flushes usage to the store
        gw2 = self.start_gateway()
        self.assert_error(self.chat(gw2, key), 429, 'quota_exceeded')

    def test_a_client_that_asks_again_at_once_finds_its_tokens_counted(self):
        # Each answer's tokens must be counted before its last byte reaches the client:
        # the next request (on a new connection, maybe another shard) checks the quota
        # at once. Counted after, a run of back-to-back requests gets one too many.
        key = self.make_key(quota=1)
        self.make_channel()
        gw = self.start_gateway()
        first = self.chat(gw, key)
        self.assertStatus(first, 200)
        tokens = first.json()['usage']['total_tokens']
        self.cli('key', 'update', key['id'], '--quota', str(tokens * 30 - 1))
        served = 1
        while served <= 30:
            r = self.chat(gw, key)
            if r.status != 200:
                break
            served += 1
        self.assert_error(r, 429, 'quota_exceeded')
        self.assertEqual(served, 30)  # 29 answers leave it under the quota, 30 reach it


def thread_signal_masks(pid):
    """{thread name: blocked-signal bit mask} of every thread of pid but its main one."""
    masks = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        if int(tid) == pid:
            continue  # main takes the signals: inside sigtimedwait they show as unblocked
        try:
            with open('/proc/%d/task/%s/comm' % (pid, tid)) as f:
                name = f.read().strip()
            with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
                blocked = next(line for line in f if line.startswith('SigBlk:'))
        except (FileNotFoundError, ProcessLookupError):
            continue  # a thread that ended meanwhile
        masks[name] = int(blocked.split()[1], 16)
    return masks


class Shutdown(Gateway):
    def test_no_thread_but_main_can_take_sigterm(self):
        # A process-directed SIGTERM goes to any thread that does not block it. One that
        # took it would die of the default action: no drain, and the usage counted since
        # the last flush lost (the quota then forgot tokens across a restart).
        gw = self.start_gateway()

        def masks_once_shards_run():
            masks = thread_signal_masks(gw.pid)
            return masks if {'rr-shard-0', 'rr-shard-1'} <= masks.keys() else None
        masks = harness.wait_for(masks_once_shards_run, message='both shard threads')
        termination = (1 << (signal.SIGTERM - 1)) | (1 << (signal.SIGINT - 1))
        takers = sorted(name for name, mask in masks.items() if mask & termination != termination)
        self.assertEqual(takers, [], 'threads that would take SIGTERM/SIGINT: %s' % takers)
        self.assertEqual(gw.stop(), 0)  # and the drain runs to a clean exit


class Concurrency(Gateway):
    def test_five_requests_on_one_key_serve_one_and_refuse_four(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_gateway()
        results = self.parallel([lambda: self.chat(gw, key, headers={'x-mock-delay-ms': '600'})] * 5)
        statuses = sorted(r.status for r in results)
        self.assertEqual(statuses, [200, 429, 429, 429, 429])
        for r in results:
            if r.status == 429:
                self.assert_error(r, 429, 'key_in_use', 'api key is already in use')
        self.assertStatus(self.chat(gw, key), 200)  # and the key is free again

    def test_two_tokens_and_a_queue_of_two_serve_four_of_six_keys(self):
        keys = [self.make_key(name='k%d' % i) for i in range(6)]
        self.make_channel()
        gw = self.start_gateway('--upstream-max-concurrent', '2', '--upstream-max-queue', '2')
        results = self.parallel([lambda k=k: self.chat(gw, k, headers={'x-mock-delay-ms': '700'}) for k in keys])
        codes = sorted((r.status, r.header('X-Ringrelay-Error') or '') for r in results)
        self.assertEqual(codes, [(200, '')] * 4 + [(429, 'upstream_queue_full')] * 2)

    def test_requests_waiting_for_a_token_hold_no_channel_slot(self):
        # One global token, a channel of two slots. While one request runs, the others
        # wait for the token; a waiter that held a channel slot would leave the channel
        # full, and the next newcomer would get 503 no_available_channel at once.
        keys = [self.make_key(name='k%d' % i) for i in range(4)]
        self.make_channel(max_concurrency=2)
        gw = self.start_gateway('--upstream-max-concurrent', '1', '--upstream-max-queue', '8',
                                '--upstream-queue-timeout', '60s')
        results = self.parallel([lambda k=k: self.chat(gw, k, headers={'x-mock-delay-ms': '800'}, timeout=60)
                                 for k in keys])
        for r in results:
            self.assertIsInstance(r, harness.Response)
        self.assertEqual([(r.status, r.header('X-Ringrelay-Error')) for r in results], [(200, None)] * 4)
        self.assertEqual(self.upstream_requests_seen(), 4)

    def test_a_wait_past_the_queue_timeout_is_queue_timeout(self):
        a, b = self.make_key(name='a'), self.make_key(name='b')
        self.make_channel()
        gw = self.start_gateway('--upstream-max-concurrent', '1', '--upstream-queue-timeout', '300ms')
        before = self.mock.stats()['requests']
        held = []
        holder = threading.Thread(target=lambda: held.append(self.chat(gw, a, headers={'x-mock-delay-ms': '3000'})))
        holder.start()
        # b asks only once a holds the one token (its request is at the upstream): the
        # order does not depend on how fast two threads start on a loaded machine.
        harness.wait_for(lambda: self.mock.stats()['requests'] == before + 1, timeout=5,
                         message='the first request at the upstream')
        waited = self.chat(gw, b)
        holder.join(10)
        self.assertStatus(held[0], 200)
        self.assert_error(waited, 429, 'queue_timeout', 'timeout waiting for upstream concurrency slot')

    def test_waiters_on_a_key_are_served_in_arrival_order(self):
        key = self.make_key(max_wait=3)
        self.make_channel()
        gw = self.start_gateway()
        done = []

        def call(i, delay):
            r = self.chat(gw, key, model='gpt-test', headers={'x-mock-delay-ms': str(delay)})
            done.append(i)
            return r
        results = [None] * 4

        def start(i, delay):
            t = threading.Thread(target=lambda: results.__setitem__(i, call(i, delay)))
            t.start()
            return t
        # Each arrives once the one before holds the slot or waits for it: the arrival
        # order is the one asked for, however slowly threads start on a loaded machine.
        before = self.mock.stats()['requests']
        threads = [start(0, 500)]
        harness.wait_for(lambda: self.mock.stats()['requests'] == before + 1, message='the first at the upstream')
        for i in (1, 2, 3):
            threads.append(start(i, 100))
            harness.wait_for(lambda: self.key_waiting(gw) == i, message='%d waiting for the key' % i)
        for t in threads:
            t.join(30)
        self.assertEqual([r.status for r in results], [200] * 4)
        self.assertEqual(done, [0, 1, 2, 3])

    def test_a_client_that_leaves_while_queued_frees_nothing_twice(self):
        key = self.make_key(max_wait=2)
        self.make_channel()
        gw = self.start_gateway()
        holder = self.start_holder(gw, key, 800)
        body = json.dumps({'model': 'gpt-test'}).encode()
        s = socket.create_connection((HOST, gw.port))
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
                  b'Content-Length: %d\r\n\r\n%s' % (key['secret'].encode(), len(body), body))
        time.sleep(0.15)
        s.close()  # leaves while waiting for the key
        waiter = self.parallel([lambda: self.chat(gw, key)])[0]
        holder.join(10)
        self.assertStatus(waiter, 200)
        # max_concurrency 1 still holds: two at once give one 200 and one key_in_use/200-after-wait
        results = self.parallel([lambda: self.chat(gw, key, headers={'x-mock-delay-ms': '300'})] * 2)
        self.assertEqual(sorted(r.status for r in results), [200, 200])  # second waited its turn
        self.assertEqual(self.mock.stats()['requests'], 4)

    def test_a_client_that_leaves_mid_stream_frees_its_key_at_once(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_gateway()
        stream = harness.SSEStream(gw.port, CHAT, {'model': 'gpt-test', 'stream': True},
                                   headers={'Authorization': 'Bearer ' + key['secret'], 'x-mock-chunks': '100',
                                            'x-mock-chunk-delay-ms': '200'})
        next(stream.events())
        stream.conn.abort()
        # Freed long before the stream's 20 s would end: once the gateway has heard
        # the reset (a moment, or longer on a loaded machine).
        harness.wait_for(lambda: self.metrics(gw).get('ringrelay_keys_in_flight') == 0, timeout=5,
                         message='the key freed')
        self.assertStatus(self.chat(gw, key), 200)
        harness.wait_for(lambda: self.mock.stats()['streams_cut'] >= 1, timeout=3, message='upstream stream cut')


class EarlyStream(Gateway):
    def test_a_waiting_stream_gets_its_sse_head_at_once_then_the_stream(self):
        key = self.make_key(max_wait=1)
        self.make_channel()
        gw = self.start_gateway()
        holder = self.start_holder(gw, key, 800)
        sent = time.monotonic()
        stream = harness.SSEStream(gw.port, CHAT, {'model': 'gpt-test', 'stream': True},
                                   headers={'Authorization': 'Bearer ' + key['secret']})
        self.assertLess(stream.head_at - sent, 0.5)  # long before the holder is done
        self.assertEqual(stream.response.status, 200)
        self.assertEqual(stream.response.header('Content-Type'), 'text/event-stream')
        events = stream.read_all()
        stream.close()
        holder.join(10)
        self.assertTrue(stream.complete)
        self.assertEqual(events[-1].data, '[DONE]')
        self.assertGreater(events[0].at - sent, 0.5)  # the content came after the wait

    def test_a_failed_wait_ends_the_stream_with_an_error_event(self):
        key = self.make_key(max_wait=1)
        self.make_channel()
        gw = self.start_gateway('--upstream-queue-timeout', '300ms')
        holder = self.start_holder(gw, key, 1000)
        stream = harness.SSEStream(gw.port, CHAT, {'model': 'gpt-test', 'stream': True},
                                   headers={'Authorization': 'Bearer ' + key['secret']})
        events = stream.read_all()
        stream.close()
        holder.join(10)
        self.assertEqual(stream.response.status, 200)
        self.assertTrue(stream.complete)
        self.assertEqual(events[-1].event, 'error')
        self.assertEqual(events[-1].json()['error']['code'], 'key_in_use')


class Soak(Gateway):
    def test_thousands_of_requests_with_faults_leave_nothing_held(self):
        """Many keys, random client disconnects and upstream faults; afterwards every
        key serves at once and all tokens are free (capacity-many requests run
        concurrently without queueing)."""
        import random
        rng = random.Random(7)
        keys = [self.make_key(name='s%d' % i, max_concurrency=2, max_wait=2) for i in range(32)]
        channel = self.make_channel()
        capacity = 8
        gw = self.start_gateway('--upstream-max-concurrent', str(capacity), '--upstream-max-queue', '64',
                                '--upstream-timeout', '1s', '--upstream-queue-timeout', '5s')
        seconds = float(os.environ.get('RR_SOAK_SECONDS', '20'))
        deadline = time.monotonic() + seconds
        counts = {'ok': 0, 'err': 0, 'cut': 0}
        lock = threading.Lock()

        def worker(seed):
            r = random.Random(seed)
            while time.monotonic() < deadline:
                key = r.choice(keys)
                fault = r.random()
                headers = {'Authorization': 'Bearer ' + key['secret']}
                if fault < 0.05:
                    headers['x-mock-behavior'] = 'reset'
                elif fault < 0.06:  # holds its key and a token until the 1 s upstream timeout
                    headers['x-mock-behavior'] = 'hang'
                elif fault < 0.10:
                    headers['x-mock-status'] = '500'
                if r.random() < 0.1:  # a client that goes away mid-request
                    body = json.dumps({'model': 'gpt-test', 'stream': True}).encode()
                    try:
                        s = socket.create_connection((HOST, gw.port), timeout=5)
                        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
                                  b'x-mock-chunks: 20\r\nx-mock-chunk-delay-ms: 20\r\nContent-Length: %d\r\n\r\n%s'
                                  % (key['secret'].encode(), len(body), body))
                        s.recv(100)
                        s.close()
                    except OSError:
                        pass
                    with lock:
                        counts['cut'] += 1
                    continue
                try:
                    resp = self.chat(gw, key, headers=headers, timeout=10)
                    with lock:
                        counts['ok' if resp.status == 200 else 'err'] += 1
                except OSError:
                    with lock:
                        counts['err'] += 1
        threads = [threading.Thread(target=worker, args=(rng.random(),)) for _ in range(12)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        self.assertGreater(counts['ok'], 30 * seconds, counts)
        time.sleep(1.5)  # hung upstreams time out (1 s)
        # The injected faults (resets, 500s, and hangs that now end as 504 after the
        # server's 1 s --upstream-timeout, which the channel inherits) may have opened the
        # channel's circuit; what is checked here is slots and tokens, so close it as an
        # operator would.
        with open(os.path.join(self.data, 'admin.token')) as f:
            token = f.read().strip()
        closed = http_request(gw.admin_port, 'POST', '/admin/channels/%s/circuit' % channel['id'],
                              json_body={'state': 'closed'}, headers={'Authorization': 'Bearer ' + token})
        self.assertStatus(closed, 200)
        # At rest: every key serves at once...
        for key in keys:
            self.assertStatus(self.chat(gw, key), 200)
        # ...and all tokens are free: `capacity` slow requests on distinct keys run together.
        started = time.monotonic()
        results = self.parallel([lambda k=k: self.chat(gw, k, headers={'x-mock-delay-ms': '500'})
                                 for k in keys[:capacity]])
        self.assertEqual([r.status for r in results], [200] * capacity)
        self.assertLess(time.monotonic() - started, 2.0)



class HalfClose(Gateway):
    def test_a_client_that_half_closes_after_its_request_gets_the_answer(self):
        key = self.make_key()
        self.make_channel()
        gw = self.start_gateway(shards=1)
        body = json.dumps({'model': 'gpt-test', 'messages': []}).encode()
        head = ('POST %s HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer %s\r\n'
                'Content-Type: application/json\r\nContent-Length: %d\r\nx-mock-delay-ms: 300\r\n\r\n'
                % (CHAT, key['secret'], len(body))).encode()
        with harness.RawConnection(gw.port) as conn:
            conn.send(head + body)
            conn.sock.shutdown(socket.SHUT_WR)
            resp = conn.read_response(request_method='POST')
            self.assertStatus(resp, 200)
            self.assertEqual(resp.json()['model'], 'gpt-test')
            conn.read_until_close()

    def test_a_client_that_closes_fully_before_the_answer_frees_its_key_at_once(self):
        # A FIN alone cannot tell a full close from a half-close: the probe (an interim
        # 100 Continue) does, the closed client's kernel answering it with RST. Without
        # it the hung request would hold the key until the channel's 30 s timeout.
        key = self.make_key(max_concurrency=1, max_wait=0)
        self.make_channel()
        gw = self.start_gateway(shards=1)
        body = json.dumps({'model': 'gpt-test', 'messages': []}).encode()
        head = ('POST %s HTTP/1.1\r\nHost: gw.test\r\nAuthorization: Bearer %s\r\n'
                'Content-Type: application/json\r\nContent-Length: %d\r\nx-mock-behavior: hang\r\n\r\n'
                % (CHAT, key['secret'], len(body))).encode()
        with harness.RawConnection(gw.port) as conn:
            conn.send(head + body)
            harness.wait_for(lambda: self.chat(gw, key).status == 429, timeout=5,
                             message='the hung request to hold the key')
        # closed fully (FIN, nothing unread): the key comes free long before 30 s
        harness.wait_for(lambda: self.chat(gw, key).status == 200, timeout=10, interval=0.1,
                         message='the key to come free after its client closed')

if __name__ == '__main__':
    harness.main()
