"""A small Chrome DevTools Protocol client over a websocket, Python stdlib only: it
starts headless Chromium, opens one page and runs Runtime/Page commands on it.
Used by test_status_page.py to load the admin status page in a real browser."""

import base64
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import time
import urllib.request

FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync',
         '--disable-dev-shm-usage', '--hide-scrollbars', '--remote-debugging-port=0']


class BrowserUnavailable(Exception):
    """Chromium is not installed or does not start here (the test then exits 77)."""


def find_chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        path = shutil.which(name)
        if path:
            return path
    return None


class WebSocket:
    """Client side of RFC 6455, text frames only (what CDP speaks)."""

    def __init__(self, url, timeout=30.0):
        m = re.match(r'ws://([^/:]+):(\d+)(/.*)', url)
        self.sock = socket.create_connection((m.group(1), int(m.group(2))), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(('GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                           'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n'
                           % (m.group(3), m.group(1), m.group(2), key)).encode())
        head = b''
        while b'\r\n\r\n' not in head:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise BrowserUnavailable('the DevTools websocket closed during the handshake')
            head += chunk
        if b' 101 ' not in head.split(b'\r\n', 1)[0]:
            raise BrowserUnavailable('DevTools refused the websocket: %r' % head[:200])
        self.buf = head.split(b'\r\n\r\n', 1)[1]

    def send(self, text):
        data = text.encode()
        header = bytes([0x81])
        n = len(data)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack('>H', n)
        else:
            header += bytes([0x80 | 127]) + struct.pack('>Q', n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError('DevTools websocket closed')
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self):
        message = b''
        while True:
            b0, b1 = self._read(2)
            n = b1 & 0x7f
            if n == 126:
                n = struct.unpack('>H', self._read(2))[0]
            elif n == 127:
                n = struct.unpack('>Q', self._read(8))[0]
            payload = self._read(n)
            opcode = b0 & 0x0f
            if opcode == 8:
                raise ConnectionError('DevTools closed the websocket')
            if opcode in (0, 1, 2):
                message += payload
                if b0 & 0x80:
                    return message.decode()

    def close(self):
        self.sock.close()


class Browser:
    """Headless Chromium with one page; stop() ends it (by pid) and removes its profile."""

    def __init__(self, width=1440, height=1100):
        path = find_chromium()
        if not path:
            raise BrowserUnavailable('chromium is not installed (apt-get install chromium)')
        self.profile = tempfile.mkdtemp(prefix='rr-chromium-')
        # stderr to a file, not a pipe: Chromium keeps logging, and a full pipe would stall it.
        self.stderr_path = os.path.join(self.profile, 'stderr.log')
        with open(self.stderr_path, 'wb') as err:
            self.proc = subprocess.Popen([path] + FLAGS + ['--user-data-dir=' + os.path.join(self.profile, 'p'),
                                                           '--window-size=%d,%d' % (width, height), 'about:blank'],
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        port = self._devtools_port()
        self.page = self._open_page(port)
        self.next_id = 0

    def _devtools_port(self):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with open(self.stderr_path, 'rb') as f:
                text = f.read()
            if self.proc.poll() is not None:
                self.stop()
                raise BrowserUnavailable('chromium exited at start: %s' % text.decode('utf-8', 'replace')[-800:])
            m = re.search(rb'DevTools listening on ws://[^:]+:(\d+)/', text)
            if m:
                return int(m.group(1))
            time.sleep(0.05)
        self.stop()
        raise BrowserUnavailable('chromium did not open its DevTools port within 30 s')

    def _open_page(self, port):
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with urllib.request.urlopen('http://127.0.0.1:%d/json/list' % port, timeout=5) as r:
                pages = [t for t in json.load(r) if t.get('type') == 'page']
            if pages:
                return WebSocket(pages[0]['webSocketDebuggerUrl'])
            time.sleep(0.1)
        raise BrowserUnavailable('chromium opened no page')

    def call(self, method, **params):
        self.next_id += 1
        my_id = self.next_id
        self.page.send(json.dumps({'id': my_id, 'method': method, 'params': params}))
        while True:
            msg = json.loads(self.page.recv())
            if msg.get('id') == my_id:
                if 'error' in msg:
                    raise RuntimeError('%s failed: %s' % (method, msg['error']))
                return msg.get('result', {})

    def evaluate(self, expression):
        """The value of a JavaScript expression (awaited if it is a promise)."""
        r = self.call('Runtime.evaluate', expression=expression, returnByValue=True, awaitPromise=True)
        if 'exceptionDetails' in r:
            raise RuntimeError('JavaScript failed: %s' % r['exceptionDetails'])
        return r['result'].get('value')

    def navigate(self, url):
        self.call('Page.enable')
        self.call('Page.navigate', url=url)

    def screenshot(self, path):
        data = self.call('Page.captureScreenshot', format='png', captureBeyondViewport=True)['data']
        with open(path, 'wb') as f:
            f.write(base64.b64decode(data))

    def stop(self):
        if getattr(self, 'page', None):
            self.page.close()
            self.page = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        shutil.rmtree(self.profile, ignore_errors=True)
