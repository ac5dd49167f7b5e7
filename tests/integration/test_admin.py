"""The admin API of REFERENCE.md section 5 against the real binary: every endpoint with
and without the token, the same JSON and the same store as the CLI, changes that the
gateway obeys on its very next request, the force release of a stuck key, circuits,
blocks, backups and /admin/state. Keys and channels are also made with the real CLI
so both sides are checked against each other.

The admin listener must accept connections within 5 s of the server being up; if it
does not (a build without it), every test here is skipped with that reason and the
run exits 77 (meson: SKIP), so the file never passes without testing anything."""

import http.client
import json
import os
import stat
import subprocess
import sys
import threading
import time
import unittest

import harness
from harness import HOST, http_request

CHAT = '/v1/chat/completions'
ADMIN_WAIT = 5.0


def admin_port_accepts(port):
    deadline = time.monotonic() + ADMIN_WAIT
    while time.monotonic() < deadline:
        if harness.tcp_connectable(port):
            return True
        time.sleep(0.05)
    return False


class Admin(harness.IntegrationTestCase):
    """Helpers: a data dir, the CLI, a gateway in front of a mock, the admin client."""

    def setUp(self):
        self.data = self.make_tempdir()
        self.mock = self.start_mock()
        self.token = None

    def cli(self, *args, check=True, data=None):
        out = subprocess.run([harness.binary_from_env('RINGRELAY_BIN')] + list(args) + ['--data', data or self.data],
                             capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            self.fail('ringrelay %s failed (%d): %s' % (' '.join(args), out.returncode, out.stderr))
        return out

    def start_server(self, *extra, env=None, mode='gateway'):
        port, admin = harness.free_port(), harness.free_port()
        args = ['serve', '--listen', '%s:%d' % (HOST, port), '--admin-listen', '%s:%d' % (HOST, admin),
                '--shards', '2', '--data', self.data, '--mode', mode]
        if mode == 'relay':
            args += ['--upstream', self.mock.url]
        server = self.start_ringrelay(args + list(extra), env=env)
        if not admin_port_accepts(admin):
            self.skipTest('the admin listener on %s:%d did not accept connections within %.0f s'
                          % (HOST, admin, ADMIN_WAIT))
        token_file = os.path.join(self.data, 'admin.token')
        if os.path.exists(token_file):
            with open(token_file) as f:
                self.token = f.read().strip()
        return server

    def admin(self, gw, method, path, body=None, token=None, headers=None, raw=None):
        h = dict(headers or {})
        token = self.token if token is None else token
        if token:
            h['Authorization'] = 'Bearer ' + token
        if raw is not None:
            return http_request(gw.admin_port, method, path, body=raw, headers=h)
        return http_request(gw.admin_port, method, path, json_body=body, headers=h)

    def ok(self, resp, status=200):
        self.assertStatus(resp, status)
        self.assertEqual(resp.header('Content-Type'), 'application/json')
        return resp.json()

    def assert_error(self, resp, status, code, mentions=None):
        self.assertStatus(resp, status)
        self.assertEqual(resp.header('X-Ringrelay-Error'), code)
        err = resp.json()['error']
        self.assertEqual((err['type'], err['code']), ('ringrelay_error', code))
        if mentions:
            self.assertIn(mentions, err['message'])

    def make_channel(self, gw, name='mock', **fields):
        body = {'name': name, 'base_url': self.mock.url, 'api_key': 'sk-upstream-' + name, 'models': ['gpt-test']}
        body.update(fields)
        return self.ok(self.admin(gw, 'POST', '/admin/channels', body), 201)

    def make_key(self, gw, name='k', **fields):
        body = {'name': name}
        body.update(fields)
        return self.ok(self.admin(gw, 'POST', '/admin/keys', body), 201)

    def chat(self, gw, secret, headers=None, timeout=10):
        h = {'Authorization': 'Bearer ' + secret}
        h.update(headers or {})
        return http_request(gw.port, 'POST', CHAT, json_body={'model': 'gpt-test', 'messages': []},
                            headers=h, timeout=timeout)

    def state(self, gw):
        return self.ok(self.admin(gw, 'GET', '/admin/state'))


class Access(Admin):
    ENDPOINTS = [('GET', '/metrics'), ('GET', '/admin/state'), ('GET', '/admin/keys'), ('POST', '/admin/keys'),
                 ('GET', '/admin/keys/k_x'), ('POST', '/admin/keys/k_x/revoke'),
                 ('POST', '/admin/keys/k_x/unrevoke'), ('POST', '/admin/keys/k_x/rotate'),
                 ('PUT', '/admin/keys/k_x/limits'), ('POST', '/admin/keys/k_x/release'),
                 ('GET', '/admin/channels'), ('POST', '/admin/channels'), ('GET', '/admin/channels/c_x'),
                 ('PUT', '/admin/channels/c_x'), ('DELETE', '/admin/channels/c_x'),
                 ('POST', '/admin/channels/c_x/enable'), ('POST', '/admin/channels/c_x/disable'),
                 ('POST', '/admin/channels/c_x/circuit'), ('GET', '/admin/blocks'), ('POST', '/admin/blocks'),
                 ('DELETE', '/admin/blocks'), ('POST', '/admin/backup'), ('GET', '/admin/no-such-route')]

    def test_health_endpoints_answer_without_a_token(self):
        gw = self.start_server()
        self.assertEqual(self.ok(self.admin(gw, 'GET', '/healthz', token=''))['status'], 'ok')
        self.assertStatus(self.admin(gw, 'GET', '/readyz', token=''), 503)  # no channel yet
        self.cli('channel', 'add', '--name', 'c', '--base-url', self.mock.url, '--api-key', 'k',
                 '--models', 'gpt-test')
        self.assertEqual(self.ok(self.admin(gw, 'GET', '/readyz', token=''))['status'], 'ready')

    def test_every_other_endpoint_refuses_a_missing_or_wrong_token(self):
        gw = self.start_server()
        for method, path in self.ENDPOINTS:
            for token in ('', 'wrong-' + self.token, self.token[:-1]):
                with self.subTest(method=method, path=path, token=token[:8]):
                    self.assert_error(self.admin(gw, method, path, {'name': 'x'}, token=token), 401,
                                      'invalid_admin_token')
        basic = http_request(gw.admin_port, 'GET', '/admin/keys', headers={'Authorization': 'Basic ' + self.token})
        self.assert_error(basic, 401, 'invalid_admin_token')
        self.assertEqual(self.ok(self.admin(gw, 'GET', '/admin/keys')), [])

    def test_the_token_file_is_private_and_the_environment_token_wins(self):
        self.start_server()
        mode = stat.S_IMODE(os.stat(os.path.join(self.data, 'admin.token')).st_mode)
        self.assertEqual(mode, 0o600)
        self.assertEqual(len(self.token), 43)
        file_token = self.token
        self.data = self.make_tempdir()
        gw = self.start_server(env={'RINGRELAY_ADMIN_TOKEN': 'env-token-123'})
        self.assert_error(self.admin(gw, 'GET', '/admin/keys', token=file_token), 401, 'invalid_admin_token')
        self.assertStatus(self.admin(gw, 'GET', '/admin/keys', token='env-token-123'), 200)
        self.assertFalse(os.path.exists(os.path.join(self.data, 'admin.token')))

    def test_the_token_survives_a_restart(self):
        gw = self.start_server()
        first = self.token
        gw.stop()
        gw = self.start_server()
        self.assertEqual(self.token, first)
        self.assertStatus(self.admin(gw, 'GET', '/admin/keys', token=first), 200)

    def test_unknown_routes_are_404_and_wrong_methods_405_with_allow(self):
        gw = self.start_server()
        self.assert_error(self.admin(gw, 'GET', '/admin/nothing'), 404, 'not_found')
        resp = self.admin(gw, 'DELETE', '/admin/keys')
        self.assert_error(resp, 405, 'method_not_allowed')
        self.assertEqual(resp.header('Allow'), 'GET, POST')

    def test_metrics_are_prometheus_text(self):
        gw = self.start_server()
        resp = self.admin(gw, 'GET', '/metrics')
        self.assertStatus(resp, 200)
        self.assertTrue(resp.header('Content-Type').startswith('text/plain; version=0.0.4'))
        self.assertIn('ringrelay_requests_total', resp.text)

    def test_relay_mode_has_no_store_endpoints(self):
        gw = self.start_server(mode='relay')
        self.assert_error(self.admin(gw, 'GET', '/admin/keys'), 404, 'not_found')
        self.assertStatus(self.admin(gw, 'GET', '/healthz', token=''), 200)
        self.assertIsNone(self.state(gw)['tokens'])

    def test_one_connection_carries_many_requests_errors_included(self):
        gw = self.start_server()
        conn = http.client.HTTPConnection(HOST, gw.admin_port, timeout=10)
        try:
            auth = {'Authorization': 'Bearer ' + self.token}
            for body, status in ((b'{"name":"a"}', 201), (b'{"name":', 400), (b'{"nme":"a"}', 400),
                                 (b'{"name":"b"}', 201)):
                resp = http_request(gw.admin_port, 'POST', '/admin/keys', body=body, headers=auth, conn=conn)
                self.assertStatus(resp, status)
            self.assertEqual(len(self.ok(http_request(gw.admin_port, 'GET', '/admin/keys', headers=auth,
                                                      conn=conn))), 2)
        finally:
            conn.close()


class Keys(Admin):
    def test_created_keys_work_on_the_gateway_and_list_exactly_as_the_cli_does(self):
        gw = self.start_server()
        self.make_channel(gw)
        created = self.make_key(gw, name='svc', models=['gpt-test'], max_concurrency=2, expires='30d')
        self.assertTrue(created['secret'].startswith('rr-'))
        self.assertStatus(self.chat(gw, created['secret']), 200)
        cli_key = json.loads(self.cli('key', 'create', '--name', 'from-cli', '--json').stdout)
        listed = self.admin(gw, 'GET', '/admin/keys')
        self.assertEqual(listed.text, self.cli('key', 'list', '--json').stdout.rstrip('\n'))
        shown = self.admin(gw, 'GET', '/admin/keys/' + cli_key['id'])
        self.assertEqual(shown.text, self.cli('key', 'show', cli_key['id'], '--json').stdout.rstrip('\n'))
        self.assertNotIn('secret', shown.json())
        self.assertEqual(self.ok(listed)[0]['max_concurrency'], 2)

    def test_revoke_and_unrevoke_take_effect_on_the_next_request(self):
        gw = self.start_server()
        self.make_channel(gw)
        key = self.make_key(gw)
        self.assertStatus(self.chat(gw, key['secret']), 200)
        revoked = self.ok(self.admin(gw, 'POST', '/admin/keys/%s/revoke' % key['id'], {'reason': 'leaked'}))
        self.assertEqual((revoked['status'], revoked['revoke_reason']), ('revoked', 'leaked'))
        self.assert_error(self.chat(gw, key['secret']), 401, 'key_revoked')
        self.ok(self.admin(gw, 'POST', '/admin/keys/%s/unrevoke' % key['id']))
        self.assertStatus(self.chat(gw, key['secret']), 200)

    def test_rotate_gives_a_new_secret_and_the_old_one_works_through_the_grace(self):
        gw = self.start_server()
        self.make_channel(gw)
        key = self.make_key(gw)
        rotated = self.ok(self.admin(gw, 'POST', '/admin/keys/%s/rotate?grace=1s' % key['id']))
        self.assertNotEqual(rotated['secret'], key['secret'])
        self.assertStatus(self.chat(gw, rotated['secret']), 200)
        self.assertStatus(self.chat(gw, key['secret']), 200)
        time.sleep(1.2)
        self.assert_error(self.chat(gw, key['secret']), 401, 'key_expired')
        self.assertStatus(self.chat(gw, rotated['secret']), 200)

    def test_limits_change_what_the_gateway_enforces(self):
        gw = self.start_server()
        self.make_channel(gw)
        key = self.make_key(gw)
        changed = self.ok(self.admin(gw, 'PUT', '/admin/keys/%s/limits' % key['id'], {'rpm': 1, 'models': 'gpt-test'}))
        self.assertEqual((changed['rpm'], changed['models']), (1, ['gpt-test']))
        self.assertEqual(json.loads(self.cli('key', 'show', key['id'], '--json').stdout)['rpm'], 1)
        self.assertStatus(self.chat(gw, key['secret']), 200)
        self.assert_error(self.chat(gw, key['secret']), 429, 'rate_limited')

    def test_bad_bodies_and_unknown_ids(self):
        gw = self.start_server()
        self.assert_error(self.admin(gw, 'POST', '/admin/keys', raw=b'{"name":'), 400, 'invalid_request', 'JSON')
        self.assert_error(self.admin(gw, 'POST', '/admin/keys', {'name': 'k', 'max_concurrency': 0}), 400,
                          'invalid_request', 'max_concurrency')
        self.assert_error(self.admin(gw, 'POST', '/admin/keys', {'name': 'k', 'expires': 'soon'}), 400,
                          'invalid_request', 'expires')
        self.assert_error(self.admin(gw, 'POST', '/admin/keys', {'group': 'g'}), 400, 'invalid_request', 'name')
        self.assert_error(self.admin(gw, 'GET', '/admin/keys/k_nothing'), 404, 'not_found')
        self.assert_error(self.admin(gw, 'PUT', '/admin/keys/k_nothing/limits', {'rpm': 1}), 404, 'not_found')
        self.assertEqual(self.ok(self.admin(gw, 'GET', '/admin/keys')), [])

    def test_release_frees_a_stuck_key_and_counts_it(self):
        gw = self.start_server()
        self.make_channel(gw)
        key = self.make_key(gw)
        slow = threading.Thread(target=lambda: self.chat(gw, key['secret'], headers={'x-mock-delay-ms': '2500'}))
        slow.start()
        try:
            busy = harness.wait_for(lambda: [k for k in self.state(gw)['keys'] if k['in_flight'] == 1],
                                    timeout=3, message='the key in flight in /admin/state')
            self.assertEqual(busy[0]['id'], key['id'])
            self.assertEqual(self.state(gw)['tokens']['in_use'], 1)
            self.assert_error(self.chat(gw, key['secret']), 429, 'key_in_use')
            released = self.ok(self.admin(gw, 'POST', '/admin/keys/%s/release' % key['id']))
            self.assertEqual(released['released'], 1)
            self.assertStatus(self.chat(gw, key['secret']), 200)  # while the first still runs
            self.assertIn('ringrelay_key_force_releases_total 1', self.admin(gw, 'GET', '/metrics').text)
        finally:
            slow.join(10)
        harness.wait_for(lambda: not self.state(gw)['keys'], timeout=3, message='no key in flight')
        self.assertEqual(self.state(gw)['tokens']['in_use'], 0)
        self.assert_error(self.admin(gw, 'POST', '/admin/keys/k_nothing/release'), 404, 'not_found')


class Channels(Admin):
    def test_a_channel_added_over_the_api_serves_and_hides_its_credential(self):
        gw = self.start_server()
        ch = self.make_channel(gw, api_key='sk-secret-upstream', model_map={'alias': 'gpt-test'})
        self.assertNotIn('api_key', ch)
        self.assertEqual(ch['model_map'], {'alias': 'gpt-test'})
        key = json.loads(self.cli('key', 'create', '--name', 'k', '--json').stdout)
        self.assertStatus(self.chat(gw, key['secret']), 200)
        self.assertEqual(harness.last_header(self.mock.last(), 'Authorization'), 'Bearer sk-secret-upstream')
        shown = self.admin(gw, 'GET', '/admin/channels/' + ch['id'])
        # The same record as the CLI prints, plus the timeout in effect, which only the
        # server knows (the CLI shows an unset timeout as null, "inherited").
        from_server = shown.json()
        self.assertEqual(from_server.pop('effective_timeout_ms'), 30000)
        self.assertEqual(from_server.pop('effective_first_byte_timeout_ms'), 0)  # no --first-byte-timeout: off
        self.assertEqual(from_server, json.loads(self.cli('channel', 'show', ch['id'], '--json').stdout))
        self.assertNotIn('sk-secret-upstream', shown.text)
        self.assertNotIn('sk-secret-upstream', self.admin(gw, 'GET', '/admin/channels').text)
        revealed = self.ok(self.admin(gw, 'GET', '/admin/channels/%s?reveal=true' % ch['id']))
        self.assertEqual(revealed['api_key'], 'sk-secret-upstream')

    def test_update_disable_enable_and_remove(self):
        gw = self.start_server('--upstream-timeout', '1s')
        ch = self.make_channel(gw)
        key = self.make_key(gw)
        self.assertEqual((ch['timeout_ms'], ch['effective_timeout_ms']), (None, 1000))  # --upstream-timeout 1s
        updated = self.ok(self.admin(gw, 'PUT', '/admin/channels/' + ch['id'], {'weight': 7, 'timeout': '5s'}))
        self.assertEqual((updated['weight'], updated['timeout_ms'], updated['effective_timeout_ms']), (7, 5000, 5000))
        for inherit in (None, 'inherit'):
            back = self.ok(self.admin(gw, 'PUT', '/admin/channels/' + ch['id'], {'timeout': inherit}))
            self.assertEqual((back['timeout_ms'], back['effective_timeout_ms']), (None, 1000))
            self.ok(self.admin(gw, 'PUT', '/admin/channels/' + ch['id'], {'timeout': '5s'}))
        # The first-byte timeout: a duration, "off" (or 0), null / "inherit".
        for value, stored, effective in (('300ms', 300, 300), ('off', 0, 0), (0, 0, 0), (None, None, 0),
                                         ('inherit', None, 0)):
            got = self.ok(self.admin(gw, 'PUT', '/admin/channels/' + ch['id'], {'first_byte_timeout': value}))
            self.assertEqual((got['first_byte_timeout_ms'], got['effective_first_byte_timeout_ms']),
                             (stored, effective), value)
        self.assert_error(self.admin(gw, 'PUT', '/admin/channels/' + ch['id'], {'first_byte_timeout': 'soon'}),
                          400, 'invalid_request')
        self.ok(self.admin(gw, 'POST', '/admin/channels/%s/disable' % ch['id']))
        self.assert_error(self.chat(gw, key['secret']), 503, 'no_available_channel')
        self.assertStatus(self.admin(gw, 'GET', '/readyz', token=''), 503)
        self.ok(self.admin(gw, 'POST', '/admin/channels/%s/enable' % ch['id']))
        self.assertStatus(self.chat(gw, key['secret']), 200)
        self.assertEqual(self.ok(self.admin(gw, 'DELETE', '/admin/channels/' + ch['id'])),
                         {'id': ch['id'], 'removed': True})
        self.assert_error(self.admin(gw, 'GET', '/admin/channels/' + ch['id']), 404, 'not_found')
        self.assertEqual(json.loads(self.cli('channel', 'list', '--json').stdout), [])
        self.assert_error(self.chat(gw, key['secret']), 404, 'model_not_found')

    def test_forcing_the_circuit_open_stops_routing_until_it_is_closed(self):
        gw = self.start_server()
        ch = self.make_channel(gw)
        key = self.make_key(gw)
        opened = self.ok(self.admin(gw, 'POST', '/admin/channels/%s/circuit' % ch['id'],
                                    {'state': 'open', 'for': '300s'}))
        self.assertEqual(opened['circuit'], 'open')
        self.assert_error(self.chat(gw, key['secret']), 503, 'no_available_channel')
        listed = [c for c in self.state(gw)['channels'] if c['id'] == ch['id']]
        self.assertEqual(listed[0]['circuit'], 'open')
        self.assertIsNotNone(listed[0]['open_until'])
        closed = self.ok(self.admin(gw, 'POST', '/admin/channels/%s/circuit' % ch['id'], {'state': 'closed'}))
        self.assertEqual(closed['circuit'], 'closed')
        self.assertStatus(self.chat(gw, key['secret']), 200)
        self.assert_error(self.admin(gw, 'POST', '/admin/channels/c_nothing/circuit', {'state': 'closed'}),
                          404, 'not_found')
        self.assert_error(self.admin(gw, 'POST', '/admin/channels/%s/circuit' % ch['id'], {'state': 'ajar'}),
                          400, 'invalid_request', 'state')

    def test_bad_channel_bodies_name_the_field(self):
        gw = self.start_server()
        self.assert_error(self.admin(gw, 'POST', '/admin/channels', {'name': 'c', 'base_url': 'ftp://x',
                                                                       'api_key': 'k', 'models': ['m']}),
                          400, 'invalid_request', 'base_url')
        self.assert_error(self.admin(gw, 'POST', '/admin/channels', {'name': 'c', 'base_url': 'http://x',
                                                                       'api_key': 'k'}),
                          400, 'invalid_request', 'models')
        self.assertEqual(self.ok(self.admin(gw, 'GET', '/admin/channels')), [])


class BlocksAndBackup(Admin):
    def test_a_block_refuses_the_address_until_it_is_removed(self):
        gw = self.start_server()
        self.make_channel(gw)
        key = self.make_key(gw)
        added = self.ok(self.admin(gw, 'POST', '/admin/blocks', {'address': '127.0.0.1', 'ttl': '1h',
                                                                 'reason': 'test'}), 201)
        self.assertEqual(added['prefix'], '127.0.0.1')
        self.assert_error(self.chat(gw, key['secret']), 403, 'ip_blocked')
        listed = self.ok(self.admin(gw, 'GET', '/admin/blocks'))
        self.assertEqual([(b['prefix'], b['reason'], b['active']) for b in listed], [('127.0.0.1', 'test', True)])
        self.assertEqual(listed, json.loads(self.cli('block', 'list', '--json').stdout))
        self.ok(self.admin(gw, 'DELETE', '/admin/blocks?address=127.0.0.1'))
        self.assertStatus(self.chat(gw, key['secret']), 200)
        self.assert_error(self.admin(gw, 'DELETE', '/admin/blocks', {'address': '127.0.0.1'}), 404, 'not_found')
        self.assert_error(self.admin(gw, 'POST', '/admin/blocks', {'address': 'nowhere'}), 400,
                          'invalid_request', 'address')

    def test_a_backup_is_a_data_dir_with_the_keys_in_it(self):
        gw = self.start_server()
        key = self.make_key(gw)
        dest = os.path.join(self.make_tempdir(), 'copy')
        done = self.ok(self.admin(gw, 'POST', '/admin/backup', {'path': dest}))
        self.assertEqual(done['backup'], dest)
        self.assertEqual(done['size'], os.path.getsize(os.path.join(dest, 'data.mdb')))
        keys = json.loads(self.cli('key', 'list', '--json', data=dest).stdout)
        self.assertEqual([k['id'] for k in keys], [key['id']])
        self.assert_error(self.admin(gw, 'POST', '/admin/backup', {'path': dest}), 400, 'invalid_request',
                          'data.mdb')
        self.assert_error(self.admin(gw, 'POST', '/admin/backup', {'path': 'relative'}), 400, 'invalid_request',
                          'path')


def admin_listener_works():
    """Starts a server once; True when its admin port accepts within ADMIN_WAIT."""
    case = Admin('run')
    case.setUp()
    try:
        port, admin = harness.free_port(), harness.free_port()
        case.start_ringrelay(['serve', '--listen', '%s:%d' % (HOST, port), '--admin-listen', '%s:%d' % (HOST, admin),
                              '--shards', '1', '--data', case.data])
        return admin_port_accepts(admin)
    finally:
        case.doCleanups()


if __name__ == '__main__':
    if not admin_listener_works():
        print('SKIP: the admin listener did not accept connections within %.0f s (not wired yet)' % ADMIN_WAIT)
        sys.exit(77)
    harness.main()
