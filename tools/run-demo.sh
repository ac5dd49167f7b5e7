#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and runs the gateway
# on 127.0.0.1:8080 in front of ringrelay-mock, with a demo key and a channel for the
# mock in ./data (kept between runs). Prints the key and a curl line. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh build
tools/build.sh build >/dev/null

PORT=${PORT:-8080}
MOCK_PORT=${MOCK_PORT:-18090}
ADMIN_PORT=${ADMIN_PORT:-9090}
export RINGRELAY_DATA=${RINGRELAY_DATA:-./data}
rr=build/ringrelay

build/ringrelay-mock --listen "127.0.0.1:$MOCK_PORT" >/dev/null &
mock_pid=$!
rr_pid=
trap 'kill $mock_pid $rr_pid 2>/dev/null; wait 2>/dev/null' EXIT INT TERM

# The id of the record named $2 in `ringrelay $1 list --json`, or nothing.
id_of() {
  "$rr" "$1" list --json | tr '{' '\n' | grep "\"name\":\"$2\"" | sed 's/.*"id":"\([^"]*\)".*/\1/;q'
}

key_id=$(id_of key demo || true)
if [ -z "$key_id" ]; then
  secret=$("$rr" key create --name demo --max-concurrency 4 --max-wait 8 --json | sed 's/.*"secret":"\([^"]*\)".*/\1/')
else
  # Secrets are shown only once: give the demo key a fresh one for this run.
  secret=$("$rr" key rotate "$key_id" --grace 0s --json | sed 's/.*"secret":"\([^"]*\)".*/\1/')
fi
channel_id=$(id_of channel mock || true)
if [ -z "$channel_id" ]; then
  "$rr" channel add --name mock --base-url "http://127.0.0.1:$MOCK_PORT" --api-key sk-mock \
    --models gpt-4o-mini,gpt-4o,claude-3-5-haiku-latest >/dev/null
else
  "$rr" channel update "$channel_id" --base-url "http://127.0.0.1:$MOCK_PORT" >/dev/null
fi

"$rr" serve --listen "127.0.0.1:$PORT" --admin-listen "127.0.0.1:$ADMIN_PORT" &
rr_pid=$!
for _ in $(seq 50); do
  curl -sf "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<MSG

ringrelay (gateway) is serving on 127.0.0.1:$PORT, in front of ringrelay-mock on 127.0.0.1:$MOCK_PORT.
Demo key (shown once per run): $secret

  curl -s http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $secret" \\
    -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'

  curl -sN http://127.0.0.1:$PORT/v1/chat/completions -H "Authorization: Bearer $secret" \\
    -H 'x-mock-chunk-delay-ms: 300' -d '{"model":"gpt-4o-mini","stream":true,"messages":[]}'

Manage it live from another shell: RINGRELAY_DATA=$RINGRELAY_DATA build/ringrelay key list
Ctrl-C stops it.
MSG
wait "$rr_pid"
