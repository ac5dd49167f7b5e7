#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs ringrelay
# in front of ringrelay-mock on loopback, printing a curl line to try. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh build
tools/build.sh build >/dev/null

PORT=${PORT:-8080}
MOCK_PORT=${MOCK_PORT:-18090}
ADMIN_PORT=${ADMIN_PORT:-9090}
DATA=${RINGRELAY_DATA:-./data}

build/ringrelay-mock --listen "127.0.0.1:$MOCK_PORT" >/dev/null &
mock_pid=$!
trap 'kill "$mock_pid" 2>/dev/null; [ -n "${rr_pid:-}" ] && kill "$rr_pid" 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

build/ringrelay serve --mode relay --upstream "http://127.0.0.1:$MOCK_PORT" \
  --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" --data "$DATA" &
rr_pid=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<MSG

ringrelay is relaying 127.0.0.1:$PORT -> ringrelay-mock on 127.0.0.1:$MOCK_PORT. Try:

  curl -s http://127.0.0.1:$PORT/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

  curl -sN http://127.0.0.1:$PORT/v1/chat/completions -H 'Content-Type: application/json' \\
    -H 'x-mock-chunk-delay-ms: 300' -d '{"model":"gpt-4o-mini","stream":true,"messages":[]}'

Ctrl-C stops it.
MSG
wait "$rr_pid"
