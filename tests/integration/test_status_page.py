"""The admin status page (GET / on the admin listener) in a real browser: headless
Chromium, driven over the DevTools protocol (cdp.py, stdlib only), loads the page
against a running gateway while a little traffic flows, signs in with the admin
token, and reads the rendered numbers as they change. Without a token the page
shows the login form and no data; a wrong token is refused. A screenshot of the
live page is written to the test's temp dir (kept, its path printed).

Exits 77 (meson: SKIP) only when Chromium is missing or cannot start here."""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import cdp
import harness
from harness import HOST, http_request

CHAT = '/v1/chat/completions'


class StatusPageHttp(harness.IntegrationTestCase):
    """What any client gets, browser or not."""

    def test_the_page_is_served_without_a_token_and_holds_no_data(self):
        g = GatewayFixture(self)
        resp = http_request(g.gw.admin_port, 'GET', '/')
        self.assertStatus(resp, 200)
        self.assertEqual(resp.header('Content-Type'), 'text/html; charset=utf-8')
        csp = resp.header('Content-Security-Policy')
        self.assertIn("default-src 'none'", csp)
        self.assertIn("connect-src 'self'", csp)
        self.assertEqual(resp.header('Cache-Control'), 'no-store')
        body = resp.text
        self.assertIn('id="login-form"', body)
        self.assertNotIn(g.channel['id'], body)
        self.assertNotIn(g.token, body)
        self.assertStatus(http_request(g.gw.admin_port, 'HEAD', '/'), 200)
        # The data behind it still needs the token.
        for path in ('/admin/state', '/metrics', '/admin/channels'):
            self.assertStatus(http_request(g.gw.admin_port, 'GET', path), 401)
            self.assertStatus(http_request(g.gw.admin_port, 'GET', path,
                                           headers={'Authorization': 'Bearer wrong'}), 401)


class GatewayFixture:
    """A gateway with one channel (health-checked) in front of a mock, and a key."""

    def __init__(self, test):
        self.data = test.make_tempdir()
        self.mock = test.start_mock()
        self.channel = json.loads(self.cli('channel', 'add', '--name', 'primary upstream', '--base-url',
                                           self.mock.url, '--api-key', 'sk-up', '--models', 'gpt-test',
                                           '--health-path', '/v1/models', '--health-interval', '1s', '--json'))
        self.key = json.loads(self.cli('key', 'create', '--name', 'dashboard', '--max-concurrency', '8', '--json'))
        port, admin = harness.free_port(), harness.free_port()
        self.gw = test.start_ringrelay(['serve', '--listen', '%s:%d' % (HOST, port), '--admin-listen',
                                        '%s:%d' % (HOST, admin), '--shards', '2', '--data', self.data])
        harness.wait_for(lambda: harness.tcp_connectable(admin), message='the admin listener')
        with open(os.path.join(self.data, 'admin.token')) as f:
            self.token = f.read().strip()

    def cli(self, *args):
        out = subprocess.run([harness.binary_from_env('RINGRELAY_BIN')] + list(args) + ['--data', self.data],
                             capture_output=True, text=True, timeout=30, check=True)
        return out.stdout

    def traffic(self, count, bad_every=4):
        """count requests (every bad_every-th with a wrong key: an invalid_api_key error), some slow."""
        for i in range(count):
            key = 'rr-' + 'x' * 40 if i % bad_every == 0 else self.key['secret']
            http_request(self.gw.port, 'POST', CHAT, json_body={'model': 'gpt-test', 'messages': []},
                         headers={'Authorization': 'Bearer ' + key, 'x-mock-delay-ms': str(20 * (i % 3))})


class StatusPageBrowser(harness.IntegrationTestCase):
    def setUp(self):
        try:
            self.browser = cdp.Browser()
        except cdp.BrowserUnavailable as e:
            self.skipTest(str(e))
        self.addCleanup(self.browser.stop)
        self.g = GatewayFixture(self)
        self.url = 'http://%s:%d/' % (HOST, self.g.gw.admin_port)

    def js(self, expr):
        return self.browser.evaluate(expr)

    def wait_js(self, expr, message, timeout=20.0):
        return harness.wait_for(lambda: self.js(expr), timeout=timeout, interval=0.1, message=message)

    def text_of(self, testid):
        return self.js('(document.querySelector(\'[data-testid="%s"]\') || {}).textContent || ""' % testid)

    def number(self, testid):
        return int(self.text_of(testid).replace(',', '') or '-1') if self.text_of(testid).replace(',', '').isdigit() else -1

    def sign_in(self, token):
        self.js('document.getElementById("token").value = %s; document.getElementById("login-form").requestSubmit(); 1'
                % json.dumps(token))

    def open_page(self):
        self.browser.navigate(self.url)
        self.wait_js('document.readyState === "complete" && !!document.getElementById("login-form")', 'the page')

    def test_without_a_token_only_the_login_form_shows_and_a_wrong_token_is_refused(self):
        self.open_page()
        self.assertTrue(self.js('!document.getElementById("login").hidden'))
        self.assertTrue(self.js('document.getElementById("dashboard").hidden'))
        self.assertFalse(self.js('document.body.innerText.includes(%s)' % json.dumps(self.g.channel['id'])))
        self.sign_in('not-the-token')
        self.wait_js('document.getElementById("login-error").textContent.includes("refused")', 'the refusal')
        self.assertTrue(self.js('document.getElementById("dashboard").hidden'))
        self.assertEqual(self.js('document.querySelectorAll("[data-testid=channel-row]").length'), 0)
        self.assertIsNone(self.js('sessionStorage.getItem("ringrelay.admin_token")'))
        self.assertEqual(self.js('document.cookie'), '')

    def test_the_live_page_shows_the_numbers_changing_as_traffic_flows(self):
        self.open_page()
        self.sign_in(self.g.token)
        self.wait_js('!document.getElementById("dashboard").hidden', 'the dashboard')
        self.assertEqual(self.js('location.href'), self.url)  # the token never goes into the URL
        self.assertEqual(self.js('document.cookie'), '')
        harness.wait_for(lambda: self.number('requests-total') >= 0, timeout=20, message='a first poll')
        before = self.number('requests-total')

        load = threading.Thread(target=self.g.traffic, args=(80,))
        load.start()
        try:
            harness.wait_for(lambda: self.number('requests-total') >= before + 10, timeout=30,
                             message='the request count rendered to grow under load')
            harness.wait_for(lambda: self.js('parseFloat(document.getElementById("rps").textContent) > 0'),
                             timeout=30, message='a request rate above 0')
        finally:
            load.join(60)
        harness.wait_for(lambda: self.number('requests-total') >= before + 80, timeout=30,
                         message='every request counted on the page')
        harness.wait_for(lambda: 'invalid_api_key' in self.text_of('legend-errors'), timeout=30,
                         message='the error code in the error chart legend')
        self.assertGreater(self.js('document.querySelectorAll("#chart-errors rect").length'), 0)
        # The rate chart draws a line once it has two rates, i.e. three polls; a fast
        # load can be counted in fewer, so wait for the polls rather than assert now.
        harness.wait_for(lambda: self.js('document.querySelectorAll("#chart-rate path").length') > 0, timeout=30,
                         message='the rate chart drawn (script errors: %s)'
                         % self.js('JSON.stringify(window.__statusPageErrors)'))
        row = '[data-channel-id="%s"]' % self.g.channel['id']
        harness.wait_for(lambda: self.js('(document.querySelector(\'%s\') || {}).textContent || ""' % row)
                         .startswith('primary upstream'), timeout=30, message='the channel row with its name')
        self.assertEqual(self.js('document.querySelector(\'%s [data-testid=channel-state]\').textContent' % row), 'up')
        harness.wait_for(lambda: '/v1/models · 200' in self.js('document.querySelector(\'%s\').textContent' % row),
                         timeout=30, message='the health check result in the channel row')
        self.assertEqual(self.js('document.querySelectorAll("[data-testid=shard-row]").length'), 2)
        shard_sum = self.js('[...document.querySelectorAll("[data-testid=shard-requests]")]'
                            '.reduce((s, e) => s + parseInt(e.textContent.replace(/,/g, "")), 0)')
        self.assertGreaterEqual(shard_sum, 80)
        self.assertNotEqual(self.text_of('latency').strip(), '–')
        self.assertEqual(self.js('window.__statusPageErrors'), [])

        shots = tempfile.mkdtemp(prefix='rr-status-page-')
        path = os.path.join(shots, 'status-page.png')
        self.browser.screenshot(path)
        self.assertGreater(os.path.getsize(path), 10000)
        print('status page screenshot: %s' % path, file=sys.stderr)

        # Signing out forgets the token and the data.
        self.js('document.getElementById("sign-out").click(); 1')
        self.wait_js('!document.getElementById("login").hidden', 'the login form again')
        self.assertIsNone(self.js('sessionStorage.getItem("ringrelay.admin_token")'))
        self.assertEqual(self.js('document.querySelectorAll("[data-testid=channel-row]").length'), 0)


def main():
    try:
        cdp.Browser().stop()
    except cdp.BrowserUnavailable as e:
        print('SKIP: %s' % e)
        sys.exit(77)
    harness.main()


if __name__ == '__main__':
    main()
