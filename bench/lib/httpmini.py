"""Just enough HTTP/1.1 client for the bench's probes and idle connections.

Sends the same POST the wrk script sends and reads one response (Content-Length or
chunked framing) off a blocking socket, leaving the connection open for keep-alive.
"""
import os
import socket
import ssl

BENCH_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BODY_FILE = os.path.join(BENCH_DIR, "wrk", "chat-body.json")


def chat_request(host, port, api_key=None):
    """The bytes of one POST /v1/chat/completions, as bench/wrk/chat.lua sends it."""
    with open(BODY_FILE, "rb") as f:
        body = f.read()
    head = [
        "POST /v1/chat/completions HTTP/1.1",
        f"Host: {host}:{port}",
        "Content-Type: application/json",
        "Accept: application/json",
        f"Content-Length: {len(body)}",
    ]
    if api_key:
        head.append(f"Authorization: Bearer {api_key}")
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-case name -> value (last one wins)
        self.body = body


def _recv_more(sock, buf):
    chunk = sock.recv(65536)
    if not chunk:
        raise ConnectionError("connection closed before the response ended")
    buf.extend(chunk)


def _read_chunked(sock, buf):
    body = bytearray()
    while True:
        while b"\r\n" not in buf:
            _recv_more(sock, buf)
        line, _, rest = bytes(buf).partition(b"\r\n")
        size = int(line.split(b";")[0], 16)
        del buf[: len(line) + 2]
        if size == 0:
            while b"\r\n\r\n" not in buf and not buf.startswith(b"\r\n"):
                _recv_more(sock, buf)
            return bytes(body)
        while len(buf) < size + 2:
            _recv_more(sock, buf)
        body.extend(buf[:size])
        del buf[: size + 2]


def read_response(sock):
    """Read exactly one response; raises ConnectionError/ValueError on trouble."""
    buf = bytearray()
    while b"\r\n\r\n" not in buf:
        _recv_more(sock, buf)
    head, _, _ = bytes(buf).partition(b"\r\n\r\n")
    del buf[: len(head) + 4]
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Response(status, headers, _read_chunked(sock, buf))
    length = int(headers.get("content-length", "0"))
    while len(buf) < length:
        _recv_more(sock, buf)
    return Response(status, headers, bytes(buf[:length]))


def exchange(host, port, api_key=None, timeout=5.0, tls=False):
    """Open a connection (TLS without verification when tls), send one chat request,
    return (socket, Response)."""
    sock = socket.create_connection((host, port), timeout=timeout)
    try:
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE  # the bench's own certificate, made at bench time
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        sock.sendall(chat_request(host, port, api_key))
        return sock, read_response(sock)
    except BaseException:
        sock.close()
        raise
