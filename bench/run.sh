#!/usr/bin/env bash
# Side-by-side benchmark: ringrelay vs nginx vs HAProxy in front of one nginx upstream,
# all on 127.0.0.1, same worker count, wrk runs interleaved across proxies. See
# bench/README.md for what is measured and how to read the table.
set -Eeuo pipefail
trap 'printf "bench: failed at line %s: %s\n" "$LINENO" "$BASH_COMMAND" >&2' ERR

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$BENCH_DIR")
# shellcheck source=lib/common.sh
source "$BENCH_DIR/lib/common.sh"

usage() {
  cat <<EOF
usage: bench/run.sh [options]
  --proxies LIST        ringrelay,nginx,haproxy (default; env BENCH_PROXIES)
  --modes LIST          ringrelay modes: relay,gateway (default; env BENCH_MODES), and
                        gateway-logged: gateway mode with the access log on (--log-level
                        info --log-file), to price the log against 'gateway' in one run
  --workers LIST        worker counts, each a separate pass (default 1,2; env BENCH_WORKERS)
  --rounds N            interleaved rounds per worker count (default 3; env BENCH_ROUNDS)
  --duration S          seconds per measured wrk run (default 10; env BENCH_DURATION)
  --warmup S            seconds of unmeasured wrk per proxy first (default 2)
  --connections N       wrk -c (default 50)      --threads N   wrk -t (default 1)
  --idle-conns N        idle keep-alive connections for the memory test (default 10000;
                        0 skips it; env BENCH_IDLE_CONNS)
  --upstream-workers N  nginx upstream worker_processes (default 1)
  --quiet-wait S        before each run, wait up to S seconds for other load on the
                        machine to fall below 10% of a core (default 60; 0 = never)
  --profile             perf stat + perf record of ringrelay during one extra run
  --profile-proxies L   which proxies --profile covers (default ringrelay)
  --build-dir DIR       meson build dir holding ringrelay (else RINGRELAY_BIN, else
                        build-bench/ is set up and built)
  --tls                 the proxies terminate TLS (wrk speaks https): ringrelay and nginx
                        with one certificate made at bench time (ECDSA P-256) and the
                        same TLS 1.3 cipher and group (the ones ringrelay picks, checked
                        with openssl s_client); keep-alive as usual, so the figure is
                        the cost of record encryption per request. HAProxy and the idle
                        test are left out (env BENCH_TLS=1)
  --rr-args "ARGS"      extra arguments for every 'ringrelay serve'
  --rr-log-level L      ringrelay --log-level (default warn: no per-request access log,
                        like nginx's access_log off; info turns it on)
  --results-dir DIR     where latest.md / latest-*.tsv go (default bench/results)
  --keep-tmp            keep the temp dir (configs, logs, raw wrk output)
EOF
}

PROXIES=${BENCH_PROXIES:-ringrelay,nginx,haproxy}
MODES=${BENCH_MODES:-relay,gateway}
WORKERS=${BENCH_WORKERS:-1,2}
ROUNDS=${BENCH_ROUNDS:-3}
DURATION=${BENCH_DURATION:-10}
WARMUP=${BENCH_WARMUP:-2}
CONNECTIONS=${BENCH_CONNECTIONS:-50}
THREADS=${BENCH_THREADS:-1}
IDLE_CONNS=${BENCH_IDLE_CONNS:-10000}
UPSTREAM_WORKERS=1
QUIET_WAIT=${BENCH_QUIET_WAIT:-60}
QUIET_PERCENT=10
PROFILE=0
PROFILE_PROXIES=ringrelay
BUILD_DIR=
RR_ARGS=
RR_LOG_LEVEL=${BENCH_RR_LOG_LEVEL:-warn}
RESULTS_DIR=$BENCH_DIR/results
KEEP_TMP=0
TLS=${BENCH_TLS:-0}
# TLS mode: nginx is told this suite and group; the run checks ringrelay picks the same.
TLS_CIPHER=TLS_AES_128_GCM_SHA256
TLS_GROUP=X25519

while (($#)); do
  case $1 in
    --proxies) PROXIES=$2; shift ;;
    --modes) MODES=$2; shift ;;
    --workers) WORKERS=$2; shift ;;
    --rounds) ROUNDS=$2; shift ;;
    --duration) DURATION=$2; shift ;;
    --warmup) WARMUP=$2; shift ;;
    --connections) CONNECTIONS=$2; shift ;;
    --threads) THREADS=$2; shift ;;
    --idle-conns) IDLE_CONNS=$2; shift ;;
    --upstream-workers) UPSTREAM_WORKERS=$2; shift ;;
    --quiet-wait) QUIET_WAIT=$2; shift ;;
    --profile) PROFILE=1 ;;
    --profile-proxies) PROFILE_PROXIES=$2; shift ;;
    --build-dir) BUILD_DIR=$2; shift ;;
    --rr-args) RR_ARGS=$2; shift ;;
    --rr-log-level) RR_LOG_LEVEL=$2; shift ;;
    --results-dir) RESULTS_DIR=$2; shift ;;
    --keep-tmp) KEEP_TMP=1 ;;
    --tls) TLS=1 ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
  shift
done

for n in "$ROUNDS" "$DURATION" "$WARMUP" "$CONNECTIONS" "$THREADS" "$IDLE_CONNS" "$UPSTREAM_WORKERS" "$QUIET_WAIT"; do
  [[ $n =~ ^[0-9]+$ ]] || { usage >&2; exit 2; }
done
if ((TLS)); then
  if [[ ",$PROXIES," == *",haproxy,"* ]]; then
    log "--tls: HAProxy is left out (the TLS comparison is ringrelay against nginx)"
    PROXIES=$(tr ',' '\n' <<<"$PROXIES" | grep -vx haproxy | paste -sd, -)
  fi
  if ((IDLE_CONNS > 0)); then
    log "--tls: the idle-connection test is left out (it speaks plain HTTP)"
    IDLE_CONNS=0
  fi
fi
IFS=, read -r -a PROXY_LIST <<<"$PROXIES"
IFS=, read -r -a MODE_LIST <<<"$MODES"
IFS=, read -r -a WORKER_LIST <<<"$WORKERS"
for p in "${PROXY_LIST[@]}"; do
  [[ $p == ringrelay || $p == nginx || $p == haproxy ]] || die "unknown proxy '$p'"
done
for m in "${MODE_LIST[@]}"; do
  [[ $m == relay || $m == gateway || $m == gateway-logged ]] || die "unknown ringrelay mode '$m'"
done
for w in "${WORKER_LIST[@]}"; do
  [[ $w =~ ^[1-9][0-9]*$ ]] || die "bad worker count '$w'"
done
wants() { [[ ",$PROXIES," == *",$1,"* ]]; }

# ---------------------------------------------------------------- tools and binary

ensure_commands python3=python3 wrk=wrk
ensure_commands nginx=nginx # the upstream is always nginx
if wants haproxy; then ensure_commands haproxy=haproxy; fi
if ((PROFILE)) && ! have perf; then
  apt_install linux-perf || log "perf could not be installed; --profile will be skipped"
fi

find_ringrelay_in() {
  local dir=$1 candidate
  for candidate in "$dir/ringrelay" "$dir/src/cli/ringrelay"; do
    if [[ -x $candidate && -f $candidate ]]; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

RR_BIN=
if wants ringrelay; then
  if [[ -n ${RINGRELAY_BIN:-} ]]; then
    RR_BIN=$RINGRELAY_BIN
  elif [[ -n $BUILD_DIR ]]; then
    RR_BIN=$(find_ringrelay_in "$BUILD_DIR") || die "no ringrelay binary in $BUILD_DIR"
  else
    BUILD_DIR=$REPO_DIR/build-bench
    ensure_commands meson=meson ninja=ninja-build g++=g++ pkg-config=pkg-config
    missing_libs=()
    for pair in liburing=liburing-dev wolfssl=libwolfssl-dev lmdb=liblmdb-dev \
      simdjson=libsimdjson-dev; do
      pkg-config --exists "${pair%%=*}" || missing_libs+=("${pair#*=}")
    done
    apt_install "${missing_libs[@]}"
    if [[ ! -f $BUILD_DIR/build.ninja ]]; then
      log "meson setup $BUILD_DIR (release)"
      meson setup "$BUILD_DIR" "$REPO_DIR" --buildtype=release -Dtests=disabled >&2
    fi
    log "building ringrelay in $BUILD_DIR"
    # ninja by output path (regenerates a stale build dir, unlike `meson compile NAME`):
    # the binary sits at the top of the build dir, or in src/cli/ in older trees.
    ninja -C "$BUILD_DIR" -j 2 ringrelay >&2 || ninja -C "$BUILD_DIR" -j 2 src/cli/ringrelay >&2 ||
      die "building ringrelay failed"
    RR_BIN=$(find_ringrelay_in "$BUILD_DIR") ||
      die "the build produced no ringrelay binary (run with --proxies nginx,haproxy to skip it)"
  fi
  [[ -x $RR_BIN ]] || die "ringrelay binary '$RR_BIN' is not executable"
fi

# ---------------------------------------------------------------- work dir, limits

TMP=$(mktemp -d /tmp/rr-bench.XXXXXX)
chmod 755 "$TMP" # nginx workers run as an unprivileged user and read below it
cleanup() {
  local rc=$?
  stop_all_started
  if ((KEEP_TMP)); then
    log "kept $TMP"
  else
    rm -rf "$TMP"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# 10,000 idle connections need that many descriptors in the client and in each proxy,
# which inherit this limit (ringrelay also raises its own soft limit to the hard one).
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
((IDLE_CONNS == 0)) || (($(ulimit -n) > IDLE_CONNS + 256)) ||
  die "open-files limit $(ulimit -n) too low for --idle-conns $IDLE_CONNS"
FD_LIMIT=$(ulimit -n)
# Connection caps for nginx and HAProxy: room for the idle test plus the load and pools.
CONN_LIMIT=$((IDLE_CONNS + 1000 > 4096 ? IDLE_CONNS + 1000 : 4096))

LUA=$BENCH_DIR/wrk/chat.lua
PROCSTAT=$BENCH_DIR/lib/procstat.py
PROBE=$BENCH_DIR/lib/probe.py
RUNS_TSV=$TMP/runs.tsv
IDLE_TSV=$TMP/idle.tsv
printf 'workers\tproxy\tmode\tround\trequests\tduration_us\tp50_us\tp99_us\tcpu_us\terrors\tupstream_cpu_us\twrk_cpu_us\tother_cpu_us\n' >"$RUNS_TSV"
printf 'workers\tproxy\tmode\tconns\tok\trss_before\trss_after\tbytes_per_conn\n' >"$IDLE_TSV"

# ---------------------------------------------------------------- TLS (--tls)

SCHEME=http
PROBE_TLS=()
RR_TLS_ARGS=()
if ((TLS)); then
  ensure_commands openssl=openssl
  SCHEME=https
  PROBE_TLS=(--tls)
  mkdir -p "$TMP/tls"
  # One certificate for both proxies, made now: nothing secret is kept in the repo.
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -sha256 -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$TMP/tls/key.pem" -out "$TMP/tls/cert.pem" >/dev/null 2>&1 ||
    die "openssl could not make the bench certificate"
  chmod 644 "$TMP/tls/key.pem" "$TMP/tls/cert.pem"
  RR_TLS_ARGS=(--tls-cert "$TMP/tls/cert.pem" --tls-key "$TMP/tls/key.pem")
fi

# nginx_tls_conf DIR: the TLS directives of an nginx proxy (empty without --tls).
nginx_tls_conf() {
  if ((TLS)); then
    printf '%s\n' "ssl_certificate $TMP/tls/cert.pem;" "ssl_certificate_key $TMP/tls/key.pem;" \
      "ssl_protocols TLSv1.3;" "ssl_conf_command Ciphersuites $TLS_CIPHER;" \
      "ssl_ecdh_curve $TLS_GROUP;" "ssl_session_tickets on;" >"$1/tls.conf"
  else
    : >"$1/tls.conf"
  fi
}

# tls_negotiated PORT: "protocol cipher group" an OpenSSL client gets from PORT.
tls_negotiated() {
  local out
  out=$(openssl s_client -connect "127.0.0.1:$1" -servername localhost </dev/null 2>/dev/null) || true
  printf '%s %s\n' \
    "$(sed -n 's/^New, \(TLSv[0-9.]*\), Cipher is \(.*\)$/\1 \2/p' <<<"$out")" \
    "$(sed -n 's/^Server Temp Key: \([^,]*\),.*/\1/p' <<<"$out")"
}

# ---------------------------------------------------------------- the upstream

UP_DIR=$TMP/upstream
UP_PORT=$(free_port)
mkdir -p "$UP_DIR"
render "$BENCH_DIR/lib/nginx-upstream.conf.in" "$UP_DIR/nginx.conf" \
  DIR="$UP_DIR" PORT="$UP_PORT" WORKERS="$UPSTREAM_WORKERS" NOFILE="$FD_LIMIT"
start_bg "$UP_DIR/stdout.log" nginx -e "$UP_DIR/error.log" -p "$UP_DIR" -c "$UP_DIR/nginx.conf"
UP_PID=$BG_PID
python3 "$PROBE" 127.0.0.1 "$UP_PORT" --wait 10 ||
  die "upstream nginx did not answer; $(tail -5 "$UP_DIR/error.log" 2>/dev/null)"
log "upstream nginx (pid $UP_PID) on 127.0.0.1:$UP_PORT"

# ---------------------------------------------------------------- the proxies
# A target is "proxy:mode"; these maps hold what the runs need to know about each.
declare -A T_PID T_PORT T_KEY T_LOG
TARGETS=()
GATEWAY_SKIPPED=0

start_nginx_proxy() { # WORKERS
  local dir=$TMP/nginx-w$1 port
  port=$(free_port)
  mkdir -p "$dir"
  nginx_tls_conf "$dir"
  render "$BENCH_DIR/lib/nginx-proxy.conf.in" "$dir/nginx.conf" \
    DIR="$dir" PORT="$port" UPSTREAM_PORT="$UP_PORT" WORKERS="$1" \
    NOFILE="$FD_LIMIT" MAXCONN="$CONN_LIMIT" LISTEN_SSL="$( ((TLS)) && echo 'ssl ')"
  start_bg "$dir/stdout.log" nginx -e "$dir/error.log" -p "$dir" -c "$dir/nginx.conf"
  T_PID[nginx:proxy]=$BG_PID T_PORT[nginx:proxy]=$port T_KEY[nginx:proxy]=
  T_LOG[nginx:proxy]=$dir/error.log
}

start_haproxy() { # WORKERS
  local dir=$TMP/haproxy-w$1 port
  port=$(free_port)
  mkdir -p "$dir"
  render "$BENCH_DIR/lib/haproxy.cfg.in" "$dir/haproxy.cfg" \
    PORT="$port" UPSTREAM_PORT="$UP_PORT" WORKERS="$1" MAXCONN="$CONN_LIMIT"
  start_bg "$dir/haproxy.log" haproxy -db -f "$dir/haproxy.cfg"
  T_PID[haproxy:proxy]=$BG_PID T_PORT[haproxy:proxy]=$port T_KEY[haproxy:proxy]=
  T_LOG[haproxy:proxy]=$dir/haproxy.log
}

start_ringrelay() { # WORKERS MODE
  local w=$1 mode=$2 dir=$TMP/ringrelay-$2-w$1 port admin key='' args=() level=$RR_LOG_LEVEL
  port=$(free_port)
  admin=$(free_port)
  mkdir -p "$dir/data"
  if [[ $mode == gateway-logged ]]; then
    # The same gateway with every request logged to a file, as an operator runs it.
    level=info
    args=(--log-file "$dir/access.log")
  fi
  if [[ $mode == gateway || $mode == gateway-logged ]]; then
    local out
    if ! out=$("$RR_BIN" key create --data "$dir/data" --name bench --max-concurrency 1000 2>&1); then
      log "skipping ringrelay gateway mode: 'ringrelay key create' failed: ${out##*$'\n'}"
      return 1
    fi
    key=$(grep -o 'rr-[A-Za-z0-9]\{40\}' <<<"$out" | head -1) || true
    [[ -n $key ]] || { log "skipping ringrelay gateway mode: no key in: $out"; return 1; }
    if ! out=$("$RR_BIN" channel add --data "$dir/data" --name up \
      --base-url "http://127.0.0.1:$UP_PORT" --api-key x --models gpt-bench 2>&1); then
      log "skipping ringrelay gateway mode: 'ringrelay channel add' failed: ${out##*$'\n'}"
      return 1
    fi
  else
    args=(--mode relay --upstream "http://127.0.0.1:$UP_PORT")
  fi
  # shellcheck disable=SC2086 # RR_ARGS is a list of words by design
  start_bg "$dir/ringrelay.log" "$RR_BIN" serve "${args[@]}" --listen "127.0.0.1:$port" \
    --admin-listen "127.0.0.1:$admin" --shards "$w" --data "$dir/data" \
    --log-level "$level" "${RR_TLS_ARGS[@]}" $RR_ARGS
  T_PID[ringrelay:$mode]=$BG_PID T_PORT[ringrelay:$mode]=$port T_KEY[ringrelay:$mode]=$key
  T_LOG[ringrelay:$mode]=$dir/ringrelay.log
}

start_proxies() { # WORKERS; fills TARGETS in the interleaving order
  local w=$1 mode t
  TARGETS=()
  if wants ringrelay; then
    for mode in "${MODE_LIST[@]}"; do
      [[ $mode == gateway* ]] && ((GATEWAY_SKIPPED)) && continue
      if start_ringrelay "$w" "$mode"; then
        TARGETS+=("ringrelay:$mode")
      else
        GATEWAY_SKIPPED=1
      fi
    done
  fi
  if wants nginx; then start_nginx_proxy "$w" && TARGETS+=(nginx:proxy); fi
  if wants haproxy; then start_haproxy "$w" && TARGETS+=(haproxy:proxy); fi

  local ready=()
  for t in "${TARGETS[@]}"; do
    if python3 "$PROBE" 127.0.0.1 "${T_PORT[$t]}" --key "${T_KEY[$t]}" --wait 15 "${PROBE_TLS[@]}"; then
      # Gateway figures only count if the gateway really checks keys: no key, no relay.
      if [[ $t == ringrelay:gateway* ]] &&
        ! python3 "$PROBE" 127.0.0.1 "${T_PORT[$t]}" --status 401 --expect invalid_api_key --wait 2 \
          "${PROBE_TLS[@]}"; then
        die "ringrelay gateway mode relayed or mis-answered a request without a key"
      fi
      log "$t (pid ${T_PID[$t]}, $w worker(s)) ready on 127.0.0.1:${T_PORT[$t]}"
      if ((TLS)); then
        local got
        got=$(tls_negotiated "${T_PORT[$t]}")
        log "$t negotiates $got"
        [[ $got == "TLSv1.3 $TLS_CIPHER $TLS_GROUP" ]] ||
          die "$t negotiated '$got', not TLSv1.3 $TLS_CIPHER $TLS_GROUP: the comparison would not be like for like"
      fi
      ready+=("$t")
      continue
    fi
    log "$t did not relay the bench request; its log ends:"
    tail -n 5 "${T_LOG[$t]}" >&2 || true
    stop_pid "${T_PID[$t]}"
    if [[ $t == ringrelay:gateway* ]]; then
      log "skipping ringrelay gateway mode"
      GATEWAY_SKIPPED=1
    else
      die "$t failed to start"
    fi
  done
  TARGETS=("${ready[@]}")
}

stop_proxies() {
  local t
  for t in "${TARGETS[@]}"; do stop_pid "${T_PID[$t]}"; done
}

# ---------------------------------------------------------------- one wrk run

# run_wrk TARGET SECONDS OUTFILE: wrk against TARGET; its output goes to OUTFILE.
run_wrk() {
  BENCH_API_KEY=${T_KEY[$1]} wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2"s --latency \
    --timeout 5s -s "$LUA" "$SCHEME://127.0.0.1:${T_PORT[$1]}/v1/chat/completions" >"$3" 2>&1
}

# wait_quiet: give other work on the machine (a build, another bench) a chance to end,
# so it does not steal CPU from the run about to be measured.
wait_quiet() {
  ((QUIET_WAIT > 0)) || return 0
  local busy
  busy=$(python3 "$PROCSTAT" quiet "$QUIET_WAIT" "$QUIET_PERCENT")
  if ((busy >= QUIET_PERCENT)); then
    log "machine still ${busy}% busy (of one core) after ${QUIET_WAIT}s; measuring anyway"
  fi
}

# measure WORKERS ROUND TARGET: one measured run, appended to runs.tsv.
measure() {
  local w=$1 round=$2 t=$3 out cpu0 cpu1 m0 m1 up0 up1 wrk_cpu other_us
  local line requests duration errors=0 e cpu_us rps TIMEFORMAT='%3U %3S'
  out=$TMP/wrk-w$w-r$round-${t/:/-}.txt
  wait_quiet
  read -r m0 cpu0 up0 < <(python3 "$PROCSTAT" snapshot "${T_PID[$t]}" "$UP_PID")
  { time run_wrk "$t" "$DURATION" "$out"; } 2>"$out.time" ||
    die "wrk failed against $t: $(tail -3 "$out")"
  read -r m1 cpu1 up1 < <(python3 "$PROCSTAT" snapshot "${T_PID[$t]}" "$UP_PID")
  # CPU the machine spent on anything but this proxy, the upstream and wrk (the
  # sampler's own start-up, ~25 ms, lands here too): the run's noise indicator.
  wrk_cpu=$(awk '{ printf "%d", ($1 + $2) * 1000000 }' "$out.time")
  other_us=$(((m1 - m0) - (cpu1 - cpu0) - (up1 - up0) - wrk_cpu))
  alive "${T_PID[$t]}" || die "$t died during the run; its log ends: $(tail -5 "${T_LOG[$t]}")"
  line=$(grep '^BENCH ' "$out") || die "no BENCH line in wrk output for $t: $(cat "$out")"
  requests=$(kv_get "$line" requests)
  duration=$(kv_get "$line" duration_us)
  ((requests > 0)) || die "wrk completed no request against $t"
  for e in err_connect err_read err_write err_status err_timeout; do
    errors=$((errors + $(kv_get "$line" $e)))
  done
  cpu_us=$((cpu1 - cpu0))
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "${t%%:*}" "${t#*:}" \
    "$round" "$requests" "$duration" "$(kv_get "$line" p50_us)" "$(kv_get "$line" p99_us)" \
    "$cpu_us" "$errors" "$((up1 - up0))" "$wrk_cpu" "$other_us" >>"$RUNS_TSV"
  rps=$((requests * 1000000 / duration))
  log "$(printf 'w=%s round %s %-18s %7s req/s  p50 %6s us  p99 %6s us  cpu %s us/req  other %s%%%s' \
    "$w" "$round" "$t" "$rps" "$(kv_get "$line" p50_us)" "$(kv_get "$line" p99_us)" \
    "$(awk -v c="$cpu_us" -v r="$requests" 'BEGIN { printf "%.2f", c / r }')" \
    "$((other_us * 100 / duration))" "$( ((errors)) && echo "  ($errors errors)")")"
}

# idle_test WORKERS TARGET: RSS per idle keep-alive connection, appended to idle.tsv.
idle_test() {
  local w=$1 t=$2 line key_args=()
  if [[ -n ${T_KEY[$t]} ]]; then key_args=(--key "${T_KEY[$t]}"); fi
  if ! line=$(python3 "$BENCH_DIR/idle_conns.py" --port "${T_PORT[$t]}" \
    --count "$IDLE_CONNS" --pid "${T_PID[$t]}" "${key_args[@]}" | grep '^IDLE '); then
    log "idle test against $t did not hold $IDLE_CONNS connections${line:+: $line}"
  fi
  [[ -n $line ]] || return 0
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$w" "${t%%:*}" "${t#*:}" \
    "$(kv_get "$line" conns)" "$(kv_get "$line" ok)" "$(kv_get "$line" rss_before)" \
    "$(kv_get "$line" rss_after)" "$(kv_get "$line" bytes_per_conn)" >>"$IDLE_TSV"
  log "w=$w idle $t: $line"
  # Let the proxy see the closes before the next one is measured.
  sleep 1
}

# profile WORKERS TARGET: perf stat + perf record over one extra (unmeasured) run.
profile() {
  local w=$1 t=$2 base pids
  base=$RESULTS_DIR/profile-${t/:/-}-w$w
  pids=$(python3 "$PROCSTAT" pids "${T_PID[$t]}" | tr ' ' ',')
  rm -f "$base.perf.data" # else perf keeps the previous one as .old
  perf stat -e task-clock,context-switches,cpu-migrations,page-faults -p "$pids" \
    -o "$base.stat.txt" -- sleep "$((DURATION + 1))" &
  local stat_pid=$!
  perf record -q -F 1999 -p "$pids" -o "$base.perf.data" -- sleep "$((DURATION + 1))" \
    2>"$base.record.log" &
  local record_pid=$!
  sleep 0.3
  run_wrk "$t" "$DURATION" "$base.wrk.txt" || true
  wait "$stat_pid" "$record_pid" 2>/dev/null || true
  perf report -i "$base.perf.data" --stdio --no-children --sort dso,sym -F overhead,dso,sym \
    2>/dev/null | grep -v -e '^#' -e '^$' | sort -rn >"$base.report.txt" || true
  # awk, not grep | head: with pipefail, head closing early fails the pipeline.
  {
    echo "top 15 symbols, kernel included:"
    awk 'NR <= 15' "$base.report.txt"
    echo "top 15 symbols in user space:"
    awk '!/\[kernel/ && ++n <= 15' "$base.report.txt"
  } >"$base.top.txt"
  log "profile of $t with $w worker(s): $base.{top,stat,report}.txt"
  sed 's/^/    /' "$base.top.txt" >&2
}

# ---------------------------------------------------------------- the passes

mkdir -p "$RESULTS_DIR"
LOADAVG_START=$(cut -d' ' -f1-3 /proc/loadavg)
for w in "${WORKER_LIST[@]}"; do
  log "=== $w worker(s) ==="
  start_proxies "$w"
  for t in "${TARGETS[@]}"; do
    run_wrk "$t" "$WARMUP" "$TMP/warmup-w$w-${t/:/-}.txt" || die "warm-up against $t failed"
  done
  for ((round = 1; round <= ROUNDS; round++)); do
    for t in "${TARGETS[@]}"; do measure "$w" "$round" "$t"; done
  done
  if ((PROFILE)) && have perf; then
    for t in "${TARGETS[@]}"; do
      if [[ ",$PROFILE_PROXIES," == *",${t%%:*},"* ]]; then profile "$w" "$t"; fi
    done
  fi
  if ((IDLE_CONNS > 0)); then
    for t in "${TARGETS[@]}"; do idle_test "$w" "$t"; done
  fi
  stop_proxies
done

# ---------------------------------------------------------------- the report

{
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ); kernel $(uname -r); $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'))"
  echo "load: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, POST /v1/chat/completions ($(wc -c <"$BENCH_DIR/wrk/chat-body.json")-byte body), ${WARMUP}s warm-up per proxy, $ROUNDS interleaved round(s)"
  echo "upstream: nginx, $UPSTREAM_WORKERS worker(s), fixed $(python3 -c "import sys; sys.path.insert(0, '$BENCH_DIR/lib'); import httpmini; s, r = httpmini.exchange('127.0.0.1', $UP_PORT); s.close(); print(len(r.body))")-byte JSON body"
  echo "versions: $(nginx -v 2>&1 | sed 's/^nginx version: //'); $({ haproxy -v 2>/dev/null || true; } | awk 'NR == 1 { print "HAProxy " $3 }'); $({ wrk -v 2>&1 || true; } | awk 'NR == 1 { print "wrk " $2 }')${RR_BIN:+; ringrelay $("$RR_BIN" version 2>/dev/null | awk 'NR == 1')}"
  echo "machine load average (1/5/15 min): $LOADAVG_START at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end (anything else running on the machine skews the figures)"
  if [[ -n $RR_BIN ]]; then
    echo "ringrelay: --log-level $RR_LOG_LEVEL${RR_ARGS:+ $RR_ARGS} (warn: no access log, as nginx runs with access_log off)"
  fi
  if ((TLS)); then
    echo "TLS: the proxies terminate TLS 1.3 ($TLS_CIPHER, $TLS_GROUP, one ECDSA P-256 certificate made at bench time; checked with openssl s_client); wrk keeps its connections alive, so handshakes are $CONNECTIONS per run and the figures price record encryption; the upstream hop stays plain"
  fi
  echo "CPU µs/req: utime+stime of every proxy process (/proc/PID/stat) over the run ÷ requests completed; ratios are medians of per-round ratios to nginx"
  ((GATEWAY_SKIPPED)) && echo "ringrelay gateway mode: skipped (not available in this build)"
} >"$TMP/meta.txt"

python3 "$BENCH_DIR/lib/report.py" "$TMP" >"$RESULTS_DIR/latest.md"
cp "$RUNS_TSV" "$RESULTS_DIR/latest-runs.tsv"
cp "$IDLE_TSV" "$RESULTS_DIR/latest-idle.tsv"
cat "$RESULTS_DIR/latest.md"
log "written $RESULTS_DIR/latest.md"
