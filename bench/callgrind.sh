#!/usr/bin/env bash
# Instructions per request, counted by callgrind: the figure in docs/BENCHMARKS.md that
# does not depend on the machine's load, so a change's before and after can be compared
# on a busy machine.
#   bench/callgrind.sh BUILD_DIR [relay|gateway] [FEW] [MANY]
# Runs ringrelay-mock, then `ringrelay serve --shards 1` under callgrind on 127.0.0.1
# twice: once for FEW (default 200) POSTs and once for MANY (default 1200), each over one
# keep-alive connection, and prints (count(MANY) - count(FEW)) / (MANY - FEW): start-up,
# shutdown and the first requests' cache fills cancel out. Everything started here is
# stopped by pid.
# Note: valgrind hides CPU extensions it does not emulate (SHA-NI among them), so a
# library that picks its code by CPUID (nettle) runs its portable C path here.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR [relay|gateway] [FEW] [MANY]}
mode=${2:-gateway}
few=${3:-200}
many=${4:-1200}
rr=$build/ringrelay
mock=$build/ringrelay-mock
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
wait_port() { # PORT
  for _ in $(seq 600); do
    python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),0.2)" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$0: nothing listens on $1" >&2
  exit 1
}

up_port=$(free_port)
"$mock" --listen "127.0.0.1:$up_port" >"$tmp/mock.log" 2>&1 &
pids+=("$!")
wait_port "$up_port"

key=
args=(--mode relay --upstream "http://127.0.0.1:$up_port")
if [[ $mode == gateway ]]; then
  key=$("$rr" key create --data "$tmp/data" --name bench --max-concurrency 8 --json |
    sed 's/.*"secret":"\([^"]*\)".*/\1/')
  "$rr" channel add --data "$tmp/data" --name up --base-url "http://127.0.0.1:$up_port" \
    --api-key x --models gpt-bench >/dev/null
  args=()
fi
# One run of the server under callgrind for COUNT requests, stopped by SIGTERM (the
# profile is written at exit; callgrind_control -d would wait for the idle loop to run).
# Sets TOTAL to the run's instructions (not a $(...) subshell: pids must reach cleanup).
run() { # COUNT
  local port admin pid
  port=$(free_port)
  admin=$(free_port)
  valgrind --tool=callgrind --callgrind-out-file="$tmp/cg.$1" \
    "$rr" serve "${args[@]}" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$admin" \
    --shards 1 --data "$tmp/data" --log-level error >"$tmp/rr.$1.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_port "$port"
  send "$port" "$1"
  kill -TERM "$pid"
  # Under valgrind a signal waits for some thread to run; while every thread sleeps in
  # the kernel, a connection attempt wakes the loop (natively the exit takes ~50 ms).
  for _ in $(seq 300); do
    kill -0 "$pid" 2>/dev/null || break
    python3 -c "import socket; socket.create_connection(('127.0.0.1',$port),0.2)" 2>/dev/null || true
    sleep 0.2
  done
  wait "$pid" || true
  TOTAL=$(callgrind_annotate "$tmp/cg.$1" 2>/dev/null |
    awk '/PROGRAM TOTALS/ && !n++ { gsub(",", "", $1); print $1 }')
}

send() { # PORT COUNT
  python3 - "$1" "$2" "$key" <<'PY'
import http.client, sys
port, count, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
body = b'{"model":"gpt-bench","messages":[{"role":"user","content":"hi"}]}'
headers = {"Content-Type": "application/json"}
if key:
    headers["Authorization"] = "Bearer " + key
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
for _ in range(count):
    conn.request("POST", "/v1/chat/completions", body, headers)
    r = conn.getresponse()
    r.read()
    if r.status != 200:
        sys.exit(f"status {r.status}")
conn.close()
PY
}

run "$few"
a=$TOTAL
run "$many"
b=$TOTAL
# RR_CALLGRIND_KEEP=DIR keeps both profiles (cg.FEW, cg.MANY) for callgrind_annotate.
if [[ -n ${RR_CALLGRIND_KEEP:-} ]]; then cp "$tmp/cg.$few" "$tmp/cg.$many" "$RR_CALLGRIND_KEEP/"; fi
echo "$mode: $(((b - a) / (many - few))) instructions per request ((${many} - ${few}) requests, callgrind, 1 shard)"
