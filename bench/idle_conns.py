#!/usr/bin/env python3
"""Resident memory a proxy spends per idle keep-alive connection.

Opens COUNT connections to HOST:PORT; on each it sends one full chat request (the one
bench/wrk/chat.lua sends) and reads the whole response, then leaves the connection open
and idle. The proxy's RSS (VmRSS summed over the process tree of each --pid, as
bench/lib/procstat.py reads it) is taken before the first connection and again once
all COUNT are idle and the proxy has settled; the difference divided by COUNT is the
figure. Prints one line:

  IDLE conns=N ok=M rss_before=B rss_after=A bytes_per_conn=X

and closes everything. Exits 1 if fewer than COUNT exchanges succeeded.
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import httpmini  # noqa: E402
import procstat  # noqa: E402


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, hard), max(need, hard)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        sys.exit(f"idle_conns: open-files limit {soft} < {need}; raise ulimit -n")


def settle_rss(pids, seconds):
    """RSS once it stops moving (a proxy may finish its bookkeeping lazily)."""
    last = procstat.rss_bytes(pids)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = procstat.rss_bytes(pids)
        if now == last:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--pid", type=int, action="append", required=True,
                    help="root pid of the proxy (repeatable)")
    ap.add_argument("--key", default=None, help="gateway API key")
    ap.add_argument("--settle", type=float, default=3.0)
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="give up opening connections after this many seconds")
    args = ap.parse_args()

    raise_fd_limit(args.count + 64)
    before = settle_rss(args.pid, args.settle)
    socks, last_error = [], ""
    deadline = time.monotonic() + args.timeout
    for _ in range(args.count):
        if time.monotonic() > deadline:
            last_error = "timed out opening connections"
            break
        try:
            sock, resp = httpmini.exchange(args.host, args.port, args.key)
        except (OSError, ValueError) as err:
            last_error = f"{type(err).__name__}: {err}"
            continue
        if resp.status != 200:
            last_error = f"status {resp.status}"
            sock.close()
            continue
        socks.append(sock)
    after = settle_rss(args.pid, args.settle)
    # Every connection must still be open: a proxy that closed idle ones would look cheap.
    alive = sum(1 for s in socks if _still_open(s))
    ok = alive
    per_conn = (after - before) / ok if ok else 0.0
    print(f"IDLE conns={args.count} ok={ok} rss_before={before} rss_after={after} "
          f"bytes_per_conn={per_conn:.0f}")
    for s in socks:
        s.close()
    if ok < args.count:
        print(f"idle_conns: only {ok}/{args.count} idle connections held; last error: "
              f"{last_error or 'connection closed by the proxy'}", file=sys.stderr)
        return 1
    return 0


def _still_open(sock):
    """True if the peer has not closed: a non-blocking peek finds nothing to read."""
    sock.setblocking(False)
    try:
        return sock.recv(1, 0x02) != b""  # MSG_PEEK; b"" means FIN received
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


if __name__ == "__main__":
    sys.exit(main())
