#!/usr/bin/env bash
# Installs the Debian 12 packages ringrelay needs, only those missing.
#   tools/install-deps.sh build     compiler, meson, libraries
#   tools/install-deps.sh test      build + what the test suite drives (python3, curl, ab, wrk for the soak,
#                                   clang for fuzzing, promtool, systemd-analyze and logrotate for the packaging checks)
#   tools/install-deps.sh bench     build + nginx, haproxy, wrk
set -euo pipefail

build_pkgs=(g++ meson ninja-build pkg-config cmake liburing-dev libwolfssl-dev liblmdb-dev nettle-dev libsimdjson-dev doctest-dev)
test_pkgs=(python3 curl apache2-utils wrk lmdb-utils clang libclang-rt-14-dev procps prometheus systemd logrotate chromium)
bench_pkgs=(nginx haproxy wrk procps python3 curl)

want=("${build_pkgs[@]}")
for group in "$@"; do
  case "$group" in
    build) ;;
    test) want+=("${test_pkgs[@]}") ;;
    bench) want+=("${bench_pkgs[@]}") ;;
    *) echo "install-deps.sh: unknown group '$group' (build, test, bench)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps.sh: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  as_root=(sudo)
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -qq
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
