"""Integration-test harness: start ringrelay-mock and ringrelay on loopback, talk
to them the way clients do, and always stop them again (by pid).

Python 3 standard library only. Binaries come from the environment (meson's
test() sets them):

    RINGRELAY_MOCK_BIN   path of ringrelay-mock
    RINGRELAY_BIN        path of ringrelay

A test file:

    import harness

    class RelayTest(harness.IntegrationTestCase):
        def test_post_reaches_upstream(self):
            mock = self.start_mock()
            relay = self.start_relay(mock)
            resp = harness.http_request(relay.port, 'POST', '/v1/chat/completions',
                                        json_body={'model': 'm'})
            self.assertStatus(resp, 200)
            self.assertEqual(mock.last()['path'], '/v1/chat/completions')

    if __name__ == '__main__':
        harness.main()

Every wait is bounded; a process that fails to come up is reported with its
stderr; processes are stopped with SIGTERM, then SIGKILL after 5 s, in the test's
cleanup and again at interpreter exit.
"""

import atexit
import http.client
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

HOST = '127.0.0.1'
READY_TIMEOUT = 10.0   # seconds for a process to accept connections
STOP_GRACE = 5.0       # seconds between SIGTERM and SIGKILL
IO_TIMEOUT = 10.0      # default bound on any single client exchange

SANITIZER_MARKERS = ('ERROR: AddressSanitizer', 'ERROR: LeakSanitizer', 'runtime error:',
                     'WARNING: ThreadSanitizer', 'ERROR: ThreadSanitizer')


class HarnessError(AssertionError):
    """A process or an exchange did not behave; the message says what and shows stderr."""


class PeerClosed(Exception):
    """The peer closed the connection before the expected bytes arrived."""


# ---------------------------------------------------------------------------
# Ports and waiting

_handed_out_ports = set()


def free_port():
    """A loopback TCP port that was free a moment ago (never the same one twice per run)."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = s.getsockname()[1]
        if port not in _handed_out_ports:
            _handed_out_ports.add(port)
            return port
    raise HarnessError('no free loopback port found')


def wait_for(predicate, timeout=5.0, interval=0.02, message='condition'):
    """Polls predicate() until it returns a true value (returned) or timeout passes."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise HarnessError('timed out after %.1fs waiting for %s (last value: %r)'
                               % (timeout, message, last))
        time.sleep(interval)


def tcp_connectable(port, host=HOST):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------
# Processes

_live_processes = set()


def _stop_all_at_exit():
    for proc in list(_live_processes):
        proc.stop()


atexit.register(_stop_all_at_exit)


def binary_from_env(variable):
    path = os.environ.get(variable)
    if not path:
        raise HarnessError('%s is not set: run the tests through meson (meson test -C BUILD), '
                           'or export it with the path of the binary' % variable)
    if not os.access(path, os.X_OK):
        raise HarnessError('%s=%s is not an executable file' % (variable, path))
    return path


class ManagedProcess:
    """A child process with stderr captured to a temp file, stopped by pid.

    allowed_exit_codes: exit statuses that count as a clean stop (negative = killed
    by that signal). Anything else, an exit before stop(), or a sanitizer report in
    stderr makes check() raise.
    """

    def __init__(self, name, argv, env=None, allowed_exit_codes=(0, -signal.SIGTERM)):
        self.name = name
        self.argv = [str(a) for a in argv]
        self.env = dict(os.environ, **(env or {}))
        self.allowed_exit_codes = tuple(allowed_exit_codes)
        self.proc = None
        self.returncode = None
        self.exited_early = False
        self.killed = False
        self._stderr_file = None
        self._stdout_file = None

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, stdout_pipe=False):
        self._stderr_file = tempfile.NamedTemporaryFile(prefix='rr-%s-' % self.name,
                                                        suffix='.stderr', delete=False)
        if stdout_pipe:
            stdout = subprocess.PIPE
        else:
            self._stdout_file = tempfile.NamedTemporaryFile(prefix='rr-%s-' % self.name,
                                                            suffix='.stdout', delete=False)
            stdout = self._stdout_file
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=stdout,
                                     stderr=self._stderr_file, env=self.env)
        _live_processes.add(self)
        return self

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr_text(self):
        if not self._stderr_file:
            return ''
        with open(self._stderr_file.name, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stdout_text(self):
        if not self._stdout_file:
            return ''
        with open(self._stdout_file.name, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def describe(self, tail=4000):
        text = self.stderr_text()
        if len(text) > tail:
            text = '...' + text[-tail:]
        status = 'running' if self.running() else 'exit code %r' % (self.proc.returncode
                                                                    if self.proc else None)
        return '%s (pid %s, %s)\n  argv: %s\n  stderr:\n%s' % (
            self.name, self.pid, status, ' '.join(self.argv), text or '    (empty)')

    def wait_ready(self, check, timeout=READY_TIMEOUT, what='ready'):
        """Polls check() until true; fails at once, with stderr, if the process exits."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.running():
                raise HarnessError('%s exited before it was %s\n%s' % (self.name, what,
                                                                      self.describe()))
            if check():
                return
            if time.monotonic() >= deadline:
                raise HarnessError('%s not %s after %.0fs\n%s' % (self.name, what, timeout,
                                                                  self.describe()))
            time.sleep(0.02)

    def stop(self):
        """SIGTERM, then SIGKILL after STOP_GRACE; returns the exit status. Idempotent."""
        if self.proc is None:
            return None
        if self.returncode is None:
            if self.proc.poll() is not None:
                self.exited_early = True
            else:
                self.proc.send_signal(signal.SIGTERM)
                try:
                    self.proc.wait(timeout=STOP_GRACE)
                except subprocess.TimeoutExpired:
                    self.killed = True
                    self.proc.kill()
                    self.proc.wait()
            self.returncode = self.proc.returncode
            if self.proc.stdout:
                self.proc.stdout.close()
            for f in (self._stderr_file, self._stdout_file):
                if f:
                    f.close()
        _live_processes.discard(self)
        return self.returncode

    def check(self):
        """Raises HarnessError if the process crashed, stopped badly or left a sanitizer report."""
        problems = []
        if self.exited_early:
            problems.append('exited on its own before the test stopped it')
        if self.killed:
            problems.append('ignored SIGTERM for %.0fs and was killed' % STOP_GRACE)
        elif self.returncode not in self.allowed_exit_codes:
            problems.append('stopped with exit status %r' % self.returncode)
        stderr = self.stderr_text()
        if any(marker in stderr for marker in SANITIZER_MARKERS):
            problems.append('reported a sanitizer error')
        if problems:
            raise HarnessError('%s %s\n%s' % (self.name, ' and '.join(problems), self.describe()))

    def remove_logs(self):
        for f in (self._stderr_file, self._stdout_file):
            if f:
                try:
                    os.unlink(f.name)
                except OSError:
                    pass


class MockServer(ManagedProcess):
    """ringrelay-mock on a free loopback port (port 0: it prints the one it bound)."""

    def __init__(self, threads=2, extra_args=(), env=None):
        argv = [binary_from_env('RINGRELAY_MOCK_BIN'), '--listen', '%s:0' % HOST,
                '--threads', str(threads)] + list(extra_args)
        super().__init__('ringrelay-mock', argv, env=env)
        self.port = None

    def start(self, stdout_pipe=True):
        super().start(stdout_pipe=True)
        line = self._read_first_line(READY_TIMEOUT)
        match = re.fullmatch(r'listening on (\S+):(\d+)', line.strip())
        if not match:
            raise HarnessError('ringrelay-mock printed %r instead of "listening on HOST:PORT"\n%s'
                               % (line, self.describe()))
        self.port = int(match.group(2))
        self.wait_ready(lambda: tcp_connectable(self.port), what='accepting connections')
        return self

    def _read_first_line(self, timeout):
        fd = self.proc.stdout.fileno()
        data = b''
        deadline = time.monotonic() + timeout
        while b'\n' not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise HarnessError('ringrelay-mock printed no address within %.0fs\n%s'
                                   % (timeout, self.describe()))
            readable, _, _ = select.select([fd], [], [], left)
            if readable:
                piece = os.read(fd, 4096)
                if not piece:
                    raise HarnessError('ringrelay-mock closed stdout before printing its '
                                       'address\n%s' % self.describe())
                data += piece
        return data.split(b'\n', 1)[0].decode('utf-8', 'replace')

    @property
    def url(self):
        return 'http://%s:%d' % (HOST, self.port)

    def stats(self):
        return mock_stats(self.port)

    def last(self):
        return mock_last(self.port)

    def reset(self):
        mock_reset(self.port)


class RingrelayServer(ManagedProcess):
    """ringrelay with the arguments a test gives, ready once its port accepts
    connections (or GET /healthz answers 200 when health_path is given)."""

    def __init__(self, args, ready_port=None, health_path=None, env=None,
                 allowed_exit_codes=(0, -signal.SIGTERM)):
        args = [str(a) for a in args]
        super().__init__('ringrelay', [binary_from_env('RINGRELAY_BIN')] + args, env=env,
                         allowed_exit_codes=allowed_exit_codes)
        self.port = ready_port or _port_of_flag(args, '--listen')
        self.admin_port = _port_of_flag(args, '--admin-listen')
        self.health_path = health_path
        self.data_dir = _value_of_flag(args, '--data')

    def start(self, stdout_pipe=False):
        super().start(stdout_pipe=stdout_pipe)
        if self.port is not None:
            if self.health_path:
                self.wait_ready(self._healthy, what='answering %s' % self.health_path)
            else:
                self.wait_ready(lambda: tcp_connectable(self.port), what='accepting connections')
        return self

    def _healthy(self):
        try:
            return http_request(self.port, 'GET', self.health_path, timeout=1.0).status == 200
        except (OSError, http.client.HTTPException):
            return False

    @property
    def url(self):
        return 'http://%s:%d' % (HOST, self.port)


def _value_of_flag(args, flag):
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + '='):
            return arg[len(flag) + 1:]
    return None


def _port_of_flag(args, flag):
    value = _value_of_flag(args, flag)
    if value is None:
        return None
    return int(value.rsplit(':', 1)[1])


# ---------------------------------------------------------------------------
# Responses and raw sockets

class Response:
    """One HTTP response: status line, headers as sent (order and case kept), body."""

    def __init__(self, version, status, reason, headers, body=b''):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) str pairs
        self.body = body                # bytes (chunked: decoded)
        self.complete = True            # False when the body ended early
        self.raw_head = b''

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return default

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def text(self):
        return self.body.decode('utf-8', 'replace')

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return '<Response %s %s %r%s>' % (self.status, self.reason, self.body[:200],
                                          '' if self.complete else ' (incomplete)')


def parse_status_line(data):
    """(version, status, reason) from the first line of a response."""
    line = data.split(b'\r\n', 1)[0].decode('latin-1')
    match = re.fullmatch(r'(HTTP/\d\.\d) (\d{3})(?: (.*))?', line)
    if not match:
        raise HarnessError('not an HTTP status line: %r' % line)
    return match.group(1), int(match.group(2)), match.group(3) or ''


def body_framing(resp, request_method='GET'):
    """'none', ('length', n), 'chunked' or 'close' for a response head (RFC 9112 6.3)."""
    if request_method == 'HEAD' or resp.status in (204, 304) or 100 <= resp.status < 200:
        return 'none'
    te = resp.header('Transfer-Encoding')
    if te and te.lower().split(',')[-1].strip() == 'chunked':
        return 'chunked'
    cl = resp.header('Content-Length')
    if cl is not None:
        return ('length', int(cl))
    return 'close'


class RawConnection:
    """A client socket with a receive buffer, for byte-exact requests.

    Every read takes a deadline (timeout seconds from the call); reads raise
    socket.timeout when it passes and PeerClosed when the peer closes first.
    """

    def __init__(self, port, host=HOST, timeout=IO_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = b''
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def abort(self):
        """Closes with RST (SO_LINGER 0), like a client that crashed."""
        if self.sock:
            linger_zero = struct.pack('ii', 1, 0)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
            self.close()

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('latin-1')
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Receives more bytes into buf; False on EOF."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout('read deadline passed')
        self.sock.settimeout(left)
        try:
            piece = self.sock.recv(65536)
        except ConnectionResetError:
            piece = b''
        if not piece:
            self.eof = True
            return False
        self.buf += piece
        return True

    def _deadline(self, timeout):
        return time.monotonic() + (self.timeout if timeout is None else timeout)

    def read_until(self, marker, timeout=None):
        deadline = self._deadline(timeout)
        while marker not in self.buf:
            if not self._fill(deadline):
                raise PeerClosed('closed before %r; got %r' % (marker, self.buf[:300]))
        data, self.buf = self.buf.split(marker, 1)
        return data + marker

    def read_exact(self, n, timeout=None):
        deadline = self._deadline(timeout)
        while len(self.buf) < n:
            if not self._fill(deadline):
                raise PeerClosed('closed after %d of %d bytes' % (len(self.buf), n))
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_until_close(self, timeout=None):
        """Everything until the peer closes; socket.timeout if it does not."""
        deadline = self._deadline(timeout)
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b''
        return data

    def read_available(self, wait=0.2):
        """Whatever arrives within `wait` seconds (possibly b''), without failing."""
        deadline = time.monotonic() + wait
        try:
            while self._fill(deadline):
                pass
        except (socket.timeout, TimeoutError):
            pass
        data, self.buf = self.buf, b''
        return data

    def wait_closed(self, timeout=None):
        """True when the peer closes (FIN or RST) within timeout; unread bytes are dropped."""
        deadline = self._deadline(timeout)
        try:
            while self._fill(deadline):
                self.buf = b''
        except (socket.timeout, TimeoutError):
            return False
        return True

    def read_head(self, timeout=None):
        """The next response head (1xx heads included) as a Response without body."""
        head = self.read_until(b'\r\n\r\n', timeout)
        version, status, reason = parse_status_line(head)
        headers = []
        for line in head.split(b'\r\n')[1:]:
            if line:
                name, _, value = line.decode('latin-1').partition(':')
                headers.append((name, value.strip()))
        resp = Response(version, status, reason, headers)
        resp.raw_head = head
        return resp

    def iter_body(self, resp, request_method='GET', timeout=None):
        """Yields (monotonic time, bytes) for each piece of the body as it arrives
        (chunk payloads for chunked bodies). Sets resp.complete to False and stops
        when the peer closes before the body's end."""
        deadline = self._deadline(timeout)
        framing = body_framing(resp, request_method)
        try:
            if framing == 'none':
                return
            if framing == 'chunked':
                yield from self._iter_chunked(deadline)
            elif framing == 'close':
                while True:
                    if self.buf:
                        data, self.buf = self.buf, b''
                        yield time.monotonic(), data
                    if not self._fill(deadline):
                        return
            else:
                left = framing[1]
                while left > 0:
                    if not self.buf and not self._fill(deadline):
                        raise PeerClosed('body cut with %d bytes missing' % left)
                    data, self.buf = self.buf[:left], self.buf[left:]
                    left -= len(data)
                    yield time.monotonic(), data
        except PeerClosed:
            resp.complete = False

    def _iter_chunked(self, deadline):
        while True:
            line = self.read_until(b'\r\n', deadline - time.monotonic())
            size = int(line.split(b';', 1)[0].strip(), 16)
            if size == 0:
                while self.read_until(b'\r\n', deadline - time.monotonic()) != b'\r\n':
                    pass  # trailer fields
                return
            data = self.read_exact(size, deadline - time.monotonic())
            if self.read_exact(2, deadline - time.monotonic()) != b'\r\n':
                raise HarnessError('chunk not followed by CRLF')
            yield time.monotonic(), data

    def read_response(self, request_method='GET', timeout=None, skip_interim=True):
        """The next whole response. 1xx heads are skipped unless skip_interim is False."""
        while True:
            resp = self.read_head(timeout)
            if not (skip_interim and 100 <= resp.status < 200):
                break
        resp.body = b''.join(piece for _, piece in self.iter_body(resp, request_method, timeout))
        return resp


def raw_request(port, data, timeout=5.0, host=HOST):
    """Sends data on a new connection and returns everything read until the peer
    closes or timeout passes (whichever comes first)."""
    with RawConnection(port, host, timeout) as conn:
        conn.send(data)
        return conn.read_available(timeout)


def parse_responses(data, request_methods=None):
    """Splits bytes holding one or more complete responses (pipelining) into Responses."""
    out = []
    rest = data
    while rest:
        conn = _BufferConnection(rest)
        method = request_methods[len(out)] if request_methods else 'GET'
        out.append(conn.read_response(request_method=method))
        rest = conn.buf
    return out


class _BufferConnection(RawConnection):
    """A RawConnection over bytes already received (for parse_responses)."""

    def __init__(self, data):  # pylint: disable=super-init-not-called
        self.sock = None
        self.timeout = 0.0
        self.buf = data
        self.eof = True

    def _deadline(self, timeout):
        return float('inf')


def parse_response(data, request_method='GET'):
    return parse_responses(data, [request_method])[0]


# ---------------------------------------------------------------------------
# http.client requests

def parse_metrics(text):
    """Prometheus text exposition as {'name{labels}': value}, comments skipped."""
    values = {}
    for line in text.splitlines():
        if line and not line.startswith('#'):
            name, _, value = line.rpartition(' ')
            values[name] = float(value)
    return values


def http_request(port, method, path, body=None, headers=None, json_body=None,
                 timeout=IO_TIMEOUT, conn=None, host=HOST):
    """One request with http.client; returns a Response. Pass conn (an
    http.client.HTTPConnection) to reuse a keep-alive connection."""
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers.setdefault('Content-Type', 'application/json')
    own = conn is None
    if own:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        r = conn.getresponse()
        data = r.read()
        version = 'HTTP/1.1' if r.version == 11 else 'HTTP/1.0'
        return Response(version, r.status, r.reason, list(r.getheaders()), data)
    finally:
        if own:
            conn.close()


# ---------------------------------------------------------------------------
# Server-sent events

class SSEEvent:
    def __init__(self, at, event, data, raw):
        self.at = at          # time.monotonic() when its blank line arrived
        self.event = event    # the `event:` field, or None
        self.data = data      # the `data:` lines joined with \n
        self.raw = raw        # the event's bytes

    def json(self):
        return json.loads(self.data)

    def __repr__(self):
        return '<SSEEvent %s %r>' % (self.event, self.data[:120])


class SSEStream:
    """A streaming request on its own connection, read event by event.

        stream = SSEStream(port, '/v1/chat/completions', {'model': 'm', 'stream': True})
        for ev in stream.events(): ...
        stream.complete   # False when the body ended without its last chunk
    """

    def __init__(self, port, path, json_body, headers=None, method='POST', timeout=IO_TIMEOUT,
                 host=HOST):
        self.sent_at = time.monotonic()
        self.conn = RawConnection(port, host, timeout)
        body = json.dumps(json_body).encode()
        lines = ['%s %s HTTP/1.1' % (method, path), 'Host: %s:%d' % (host, port),
                 'Content-Type: application/json', 'Accept: text/event-stream',
                 'Content-Length: %d' % len(body)]
        lines += ['%s: %s' % kv for kv in (headers or {}).items()]
        self.conn.send(('\r\n'.join(lines) + '\r\n\r\n').encode('latin-1') + body)
        self.response = self.conn.read_head(timeout)
        self.head_at = time.monotonic()
        self.timeout = timeout

    @property
    def complete(self):
        return self.response.complete

    def events(self, timeout=None):
        """Yields SSEEvents as they complete; ends with the body (or when it is cut)."""
        pending = b''
        for at, piece in self.conn.iter_body(self.response, 'POST', timeout or self.timeout):
            pending += piece.replace(b'\r\n', b'\n')
            while b'\n\n' in pending:
                block, pending = pending.split(b'\n\n', 1)
                event = _parse_sse_block(block, at)
                if event:
                    yield event

    def read_all(self, timeout=None):
        return list(self.events(timeout))

    def close(self):
        self.conn.close()

    def abort(self):
        self.conn.abort()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _parse_sse_block(block, at):
    event, data, seen = None, [], False
    for line in block.decode('utf-8', 'replace').split('\n'):
        if not line or line.startswith(':'):
            continue  # comment (e.g. ": ping")
        name, _, value = line.partition(':')
        value = value[1:] if value.startswith(' ') else value
        seen = True
        if name == 'event':
            event = value
        elif name == 'data':
            data.append(value)
    return SSEEvent(at, event, '\n'.join(data), block) if seen else None


# ---------------------------------------------------------------------------
# The mock's introspection endpoints

def mock_stats(port):
    """GET /__mock/stats as a dict of counters."""
    resp = http_request(port, 'GET', '/__mock/stats', timeout=5.0)
    if resp.status != 200:
        raise HarnessError('/__mock/stats answered %r' % resp)
    return resp.json()


def mock_last(port):
    """GET /__mock/last as a dict (method, path, query, http_version, headers, body),
    or None when the mock has received nothing since start or reset."""
    resp = http_request(port, 'GET', '/__mock/last', timeout=5.0)
    if resp.status == 404:
        return None
    if resp.status != 200:
        raise HarnessError('/__mock/last answered %r' % resp)
    return resp.json()


def mock_reset(port):
    resp = http_request(port, 'POST', '/__mock/reset', timeout=5.0)
    if resp.status != 200:
        raise HarnessError('/__mock/reset answered %r' % resp)


def last_header(last, name):
    """The first value of header `name` (case-insensitive) in a mock_last() dict, or None."""
    for k, v in last['headers']:
        if k.lower() == name.lower():
            return v
    return None


# ---------------------------------------------------------------------------
# Test case base

class IntegrationTestCase(unittest.TestCase):
    """Starts processes through start_mock / start_ringrelay / start_relay (per test)
    or start_class_mock (per class, in setUpClass); each is stopped after the test
    or class, and the test fails if it crashed, left a sanitizer report, or did not
    stop cleanly."""

    maxDiff = None

    def cli(self, *args, check=True):
        """`ringrelay ARGS --data self.data`, the real CLI; with check, a failure fails the test."""
        out = subprocess.run([binary_from_env('RINGRELAY_BIN')] + list(args) + ['--data', self.data],
                             capture_output=True, text=True, timeout=30)
        if check and out.returncode != 0:
            self.fail('ringrelay %s failed (%d): %s' % (' '.join(args), out.returncode, out.stderr))
        return out

    def _adopt(self, proc):
        self.addCleanup(self._finish_process, proc)
        return proc

    @staticmethod
    def _finish_process(proc):
        proc.stop()
        proc.check()
        proc.remove_logs()

    def start_mock(self, threads=2, extra_args=()):
        mock = MockServer(threads=threads, extra_args=extra_args)
        self._adopt(mock)
        return mock.start()

    @classmethod
    def start_class_mock(cls, threads=2, extra_args=()):
        mock = MockServer(threads=threads, extra_args=extra_args)
        cls.addClassCleanup(cls._finish_process, mock)
        return mock.start()

    def start_ringrelay(self, args, ready_port=None, health_path=None, env=None,
                        allowed_exit_codes=(0, -signal.SIGTERM)):
        proc = RingrelayServer(args, ready_port=ready_port, health_path=health_path, env=env,
                               allowed_exit_codes=allowed_exit_codes)
        self._adopt(proc)
        return proc.start()

    def make_tempdir(self):
        path = tempfile.mkdtemp(prefix='rr-it-')
        self.addCleanup(shutil.rmtree, path, True)
        return path

    def start_relay(self, mock, shards=2, extra_args=(), env=None):
        """ringrelay serve --mode relay in front of mock, on fresh ports and data dir."""
        port, admin = free_port(), free_port()
        args = ['serve', '--mode', 'relay', '--upstream', mock.url,
                '--listen', '%s:%d' % (HOST, port), '--admin-listen', '%s:%d' % (HOST, admin),
                '--shards', str(shards), '--data', self.make_tempdir()] + list(extra_args)
        return self.start_ringrelay(args, env=env)

    def assertStatus(self, resp, status, msg=None):
        if resp.status != status:
            self.fail(msg or 'expected status %d, got %d %s; body: %r'
                      % (status, resp.status, resp.reason, resp.body[:500]))


def main():
    """unittest.main with the usual summary; exit status 1 on any failure."""
    unittest.main(module='__main__', verbosity=2)


if __name__ == '__main__':
    sys.exit('harness.py is a library; run a test_*.py file')
