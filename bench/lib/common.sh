# shellcheck shell=bash
# Helpers for bench/run.sh (sourced, not run). Everything here binds 127.0.0.1 only and
# stops only the processes recorded in STARTED_PIDS.

STARTED_PIDS=()

log() { printf '[bench] %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }

# as_root CMD...: run CMD as root, through sudo only when we are not root already.
as_root() {
  if [[ $(id -u) -eq 0 ]]; then
    "$@"
  elif have sudo; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

# apt_install PKG...: install the named Debian packages (one apt-get update first).
APT_UPDATED=0
apt_install() {
  (($# > 0)) || return 0
  have apt-get || die "missing $*, and no apt-get to install them with"
  if ((APT_UPDATED == 0)); then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# ensure_commands CMD=PKG...: install PKG for every CMD that is not on PATH.
ensure_commands() {
  local missing=() pair
  for pair in "$@"; do
    have "${pair%%=*}" || missing+=("${pair#*=}")
  done
  apt_install "${missing[@]}"
  for pair in "$@"; do
    have "${pair%%=*}" || die "${pair%%=*} still missing after installing ${pair#*=}"
  done
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# render TEMPLATE OUT NAME=VALUE...: copy TEMPLATE to OUT replacing each @NAME@.
render() {
  local template=$1 out=$2 pair script=()
  shift 2
  for pair in "$@"; do
    script+=(-e "s|@${pair%%=*}@|${pair#*=}|g")
  done
  sed "${script[@]}" "$template" >"$out"
  if grep -q '@[A-Z_]*@' "$out"; then
    die "unsubstituted placeholder left in $out"
  fi
}

# start_bg LOG CMD...: start CMD in the background with output to LOG; sets BG_PID.
start_bg() {
  local logfile=$1
  shift
  "$@" >"$logfile" 2>&1 &
  BG_PID=$!
  STARTED_PIDS+=("$BG_PID")
}

alive() { kill -0 "$1" 2>/dev/null; }

# stop_pid PID: SIGTERM, up to 5 s to exit, then SIGKILL. Only for pids we started.
stop_pid() {
  local pid=$1 i
  if ! alive "$pid"; then
    wait "$pid" 2>/dev/null || true
    forget_pid "$pid"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    log "pid $pid ignored SIGTERM for 5 s; SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
  forget_pid "$pid"
}

# forget_pid PID: drop a reaped pid from STARTED_PIDS so a later reuse is never signalled.
forget_pid() {
  local kept=() p
  for p in "${STARTED_PIDS[@]}"; do
    [[ $p == "$1" ]] || kept+=("$p")
  done
  STARTED_PIDS=("${kept[@]}")
}

stop_all_started() {
  local pids=("${STARTED_PIDS[@]}") i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    stop_pid "${pids[i]}"
  done
}

# kv_get LINE NAME: the value of NAME=VALUE in a space-separated LINE.
kv_get() {
  local field
  for field in $1; do
    if [[ $field == "$2="* ]]; then
      printf '%s\n' "${field#*=}"
      return 0
    fi
  done
  return 1
}
