"""The coding agents people run through relays, unchanged, in non-interactive mode
against ringrelay's gateway and ringrelay-mock: Claude Code (`claude -p`, npm
`@anthropic-ai/claude-code`, pointed at the gateway with ANTHROPIC_BASE_URL) and the
Codex CLI (`codex exec`, npm `@openai/codex`, a custom model provider whose base URL
is the gateway; it speaks the Responses API). Both are pinned in tests/sdk/ and run
with a throw-away HOME, telemetry and updates off, loopback only.

The mock calls the first tool an agent offers and, once the agent hands the tool's
result back, answers in text: so Claude Code's run is a real two-turn agent loop (a
tool call, its result, the answer) through the gateway.

Needs node and tests/sdk/node_modules (tools/install-sdk-deps.sh); without them every
test is skipped and the run exits 77 (meson SKIP).
"""

import json
import os
import subprocess
import unittest

import harness
from harness import HOST, last_header
from test_sdks import SDK_DIR, main, node_binary

AGENT_TIMEOUT = 120  # seconds per agent run (each takes about a second here)
CLAUDE_MODEL = 'claude-sonnet-4-5'
CODEX_MODEL = 'gpt-5-codex'
ANTHROPIC_SECRET = 'sk-ant-upstream-agents'
OPENAI_SECRET = 'sk-openai-upstream-agents'


ARCH = {'x86_64': 'x64', 'aarch64': 'arm64'}.get(os.uname().machine, os.uname().machine)


def agent_bin(name):
    """claude: the native binary of its platform package (npm ci --ignore-scripts leaves
    the package's own bin a placeholder; its install script only copies this one).
    codex: its node launcher, which finds its own platform binary."""
    modules = os.path.join(SDK_DIR, 'node_modules')
    if name == 'claude':
        return os.path.join(modules, '@anthropic-ai', 'claude-code-linux-' + ARCH, 'claude')
    return os.path.join(modules, '.bin', name)


def missing_requirements():
    if not node_binary():
        return 'node is not installed (tools/install-sdk-deps.sh installs it)'
    for name in ('claude', 'codex'):
        if not os.access(agent_bin(name), os.X_OK):
            return '%s is not installed in %s (run tools/install-sdk-deps.sh)' % (name, os.path.normpath(SDK_DIR))
    return None


class Agents(harness.IntegrationTestCase):
    @classmethod
    def setUpClass(cls):
        why = missing_requirements()
        if why:
            raise unittest.SkipTest(why)

    def setUp(self):
        self.data = self.make_tempdir()
        self.home = self.make_tempdir()
        self.mock = self.start_mock()
        self.cli('channel', 'add', '--name', 'claude', '--type', 'anthropic', '--base-url', self.mock.url,
                 '--api-key', ANTHROPIC_SECRET, '--models', CLAUDE_MODEL)
        self.cli('channel', 'add', '--name', 'openai', '--base-url', self.mock.url,
                 '--api-key', OPENAI_SECRET, '--models', CODEX_MODEL)
        # An agent runs several requests at once (its main turn beside side calls).
        self.key = json.loads(self.cli('key', 'create', '--name', 'agent', '--max-concurrency', '4',
                                       '--json').stdout)
        self.log = os.path.join(self.make_tempdir(), 'access.log')
        port, admin = harness.free_port(), harness.free_port()
        self.gw = self.start_ringrelay(['serve', '--listen', '%s:%d' % (HOST, port), '--admin-listen',
                                        '%s:%d' % (HOST, admin), '--shards', '2', '--data', self.data,
                                        '--log-file', self.log])

    def env(self, **extra):
        env = {'HOME': self.home, 'PATH': os.environ.get('PATH', '/usr/bin:/bin'), 'LANG': 'C.UTF-8',
               'NO_COLOR': '1', 'CI': '1'}
        env.update(extra)
        return env

    def run_agent(self, argv, env):
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=AGENT_TIMEOUT, env=env,
                              cwd=self.home, stdin=subprocess.DEVNULL)
        self.assertEqual(proc.returncode, 0, 'exit %d\nstdout: %s\nstderr: %s' %
                         (proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
        return proc

    def request_lines(self):
        self.gw.stop()  # the log writer flushes as the server exits
        with open(self.log) as f:
            return [r for r in map(json.loads, f) if r.get('msg') == 'request' and r['path'].startswith('/v1/')]

    def test_claude_code_runs_a_tool_call_and_its_answer_through_the_gateway(self):
        env = self.env(ANTHROPIC_BASE_URL=self.gw.url, ANTHROPIC_API_KEY=self.key['secret'],
                       ANTHROPIC_MODEL=CLAUDE_MODEL, ANTHROPIC_SMALL_FAST_MODEL=CLAUDE_MODEL,
                       DISABLE_TELEMETRY='1', DISABLE_AUTOUPDATER='1', DISABLE_ERROR_REPORTING='1',
                       CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC='1')
        proc = self.run_agent([agent_bin('claude'), '-p', 'Say hello through ringrelay.',
                               '--output-format', 'json'], env)
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        self.assertFalse(result['is_error'], result)
        self.assertEqual(result['subtype'], 'success')
        self.assertEqual(result['result'].strip(), 'w0 w1 w2')  # the mock's answer, as the agent saw it
        self.assertEqual(result['num_turns'], 2)  # the tool call, then the answer to its result
        last = self.mock.last()
        self.assertEqual(last['path'], '/v1/messages')
        self.assertEqual(last_header(last, 'x-api-key'), ANTHROPIC_SECRET)  # the channel's, not the key
        sent = json.loads(last['body'])
        self.assertTrue(sent.get('tools'), 'Claude Code offers its tools')
        self.assertEqual(sent['messages'][-1]['content'][0]['type'], 'tool_result')
        lines = self.request_lines()
        messages = [r for r in lines if r['path'] == '/v1/messages']
        self.assertEqual(len(messages), 2, lines)
        self.assertTrue(all(r['status'] == 200 and r['usage'] == 'reported' for r in messages), messages)
        self.assertTrue(all(r['api_key_id'] == self.key['id'] for r in lines))
        with open(self.log) as f:
            text = f.read()
        for secret in (self.key['secret'], ANTHROPIC_SECRET):
            self.assertNotIn(secret, text)

    def test_codex_exec_streams_the_responses_api_through_the_gateway(self):
        codex_home = os.path.join(self.home, '.codex')
        os.makedirs(codex_home)
        with open(os.path.join(codex_home, 'config.toml'), 'w') as f:
            f.write('model = "%s"\nmodel_provider = "ringrelay"\n\n[model_providers.ringrelay]\n'
                    'name = "ringrelay"\nbase_url = "%s/v1"\nenv_key = "RINGRELAY_KEY"\nwire_api = "responses"\n'
                    % (CODEX_MODEL, self.gw.url))
        env = self.env(CODEX_HOME=codex_home, RINGRELAY_KEY=self.key['secret'])
        proc = self.run_agent([agent_bin('codex'), 'exec', '--skip-git-repo-check', 'Say hello through ringrelay.'],
                              env)
        self.assertEqual(proc.stdout.strip().splitlines()[-1].strip(), 'w0 w1 w2')  # its final message
        last = self.mock.last()
        self.assertEqual(last['path'], '/v1/responses')
        self.assertEqual(last_header(last, 'Authorization'), 'Bearer ' + OPENAI_SECRET)
        sent = json.loads(last['body'])
        self.assertIs(sent.get('stream'), True)
        self.assertEqual(sent['model'], CODEX_MODEL)
        lines = self.request_lines()
        responses = [r for r in lines if r['path'] == '/v1/responses']
        self.assertGreaterEqual(len(responses), 1, lines)
        self.assertTrue(all(r['status'] == 200 and r['stream'] and r['usage'] == 'reported' for r in responses),
                        responses)


if __name__ == '__main__':
    main()
