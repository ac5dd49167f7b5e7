#!/usr/bin/env python3
"""Wait until a proxy relays the bench request, and check what comes back.

probe.py HOST PORT [--key KEY] [--expect TEXT] [--status N] [--wait SECONDS] [--tls]
Exits 0 once a response has status N (default 200) and a body containing TEXT; exits 1
with the last status/body (or connection error) when SECONDS pass first.
"""
import argparse
import sys
import time

import httpmini


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("host")
    ap.add_argument("port", type=int)
    ap.add_argument("--key", default=None)
    ap.add_argument("--expect", default="chat.completion")
    ap.add_argument("--status", type=int, default=200)
    ap.add_argument("--wait", type=float, default=10.0)
    ap.add_argument("--tls", action="store_true", help="speak TLS (no certificate check)")
    args = ap.parse_args()

    deadline = time.monotonic() + args.wait
    last = "no attempt"
    while time.monotonic() < deadline:
        try:
            sock, resp = httpmini.exchange(args.host, args.port, args.key, timeout=2.0, tls=args.tls)
            sock.close()
            body = resp.body.decode("utf-8", "replace")
            if resp.status == args.status and args.expect in body:
                return 0
            last = f"status {resp.status}, body {body[:200]!r}"
        except (OSError, ValueError) as err:
            last = f"{type(err).__name__}: {err}"
        time.sleep(0.1)
    print(f"probe {args.host}:{args.port}: {last}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
