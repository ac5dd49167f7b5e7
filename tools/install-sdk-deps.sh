#!/usr/bin/env bash
# Installs what tests/integration/test_sdks.py needs: node and npm (Debian 12's nodejs
# and npm packages, through apt-get, only when the commands are missing), then the
# pinned official SDKs of tests/sdk/package-lock.json with `npm ci`, only when
# tests/sdk/node_modules is missing or was installed from another lock file.
# Without them test_sdks.py reports SKIP; this script makes it run.
#
#   tools/install-sdk-deps.sh        exit 0: ready; 1: something could not be installed
set -euo pipefail
cd "$(dirname "$0")/.."
sdk_dir=tests/sdk
stamp=$sdk_dir/node_modules/.ringrelay-lock.sha256

say() { echo "install-sdk-deps.sh: $*" >&2; }

install_node() {
    local missing=()
    command -v node >/dev/null || missing+=(nodejs)
    command -v npm >/dev/null || missing+=(npm)
    [ ${#missing[@]} -eq 0 ] && return 0
    local as_root=()
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null || { say "need root or sudo to install: ${missing[*]}"; return 1; }
        as_root=(sudo)
    fi
    say "installing: ${missing[*]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The lock file's hash, recorded in node_modules after a successful `npm ci`.
lock_hash() { sha256sum "$sdk_dir/package-lock.json" | cut -d' ' -f1; }

install_sdks() {
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$(lock_hash)" ]; then
        return 0
    fi
    say "npm ci in $sdk_dir"
    # npm ci removes node_modules first, so a half-installed tree never looks current.
    # No package's install script runs: the SDKs have none, and Claude Code's (which
    # only copies its native binary into place, and wants node 22) is not needed:
    # test_agents.py runs the binary from its platform package.
    (cd "$sdk_dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) || {
        say "npm ci failed in $sdk_dir"
        return 1
    }
    lock_hash >"$stamp"
}

install_node || exit 1
major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$major" -lt 18 ]; then
    say "node $(node --version) is older than 18: the SDK tests will be skipped"
    exit 1
fi
install_sdks || exit 1
