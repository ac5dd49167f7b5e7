#!/usr/bin/env bash
# The README's second command: installs what is missing, builds, and runs every
# test: unit + integration in a release build (warnings as errors), the same under
# AddressSanitizer+UBSan, the unit suites under ThreadSanitizer, and a short fuzz
# run when clang is there. Ends with one line "N passed, N failed, N skipped".
#
#   tools/test.sh            everything
#   QUICK=1 tools/test.sh    release build only
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
tools/install-deps.sh build test || exit 1
# The official OpenAI and Anthropic SDKs (node + npm from Debian, packages from npm).
tools/install-sdk-deps.sh || echo "warning: SDK dependencies unavailable; the SDK tests will be skipped"

passed=0; failed=0; skipped=0
failed_names=()
failure_tails=$(mktemp /tmp/ringrelay-failures.XXXXXX)
trap 'rm -f "$failure_tails"' EXIT

# Adds one meson test run's results (from its testlog.json) to the totals.
count_results() {
  local log=$1/meson-logs/testlog.json label=$2
  local p=0 f=0 s=0 fn=()
  [ -f "$log" ] || { failed=$((failed + 1)); failed_names+=("$label: no test log"); return; }
  eval "$(python3 - "$log" "$label" "$failure_tails" <<'PY'
import json, sys
p = f = s = 0
names = []
for line in open(sys.argv[1]):
    r = json.loads(line)
    res = r.get("result")
    if res in ("OK", "EXPECTEDFAIL"): p += 1
    elif res == "SKIP": s += 1
    else:
        f += 1
        names.append(f"{sys.argv[2]}: {r.get('name')} ({res})")
        # CI keeps only the end of the output: the cause is repeated there.
        with open(sys.argv[3], "a") as tails:
            out = (r.get("stdout") or "").splitlines()[-40:]
            tails.write(f"--- {sys.argv[2]}: {r.get('name')} ({res}), last lines:\n")
            tails.write("\n".join(out) + "\n")
print(f"p={p}; f={f}; s={s}")
print("fn=(" + " ".join("'" + n.replace("'", "") + "'" for n in names) + ")")
PY
)"
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  failed_names+=("${fn[@]}")
}

# run_suite LABEL BUILD_DIR "MESON_SETUP_OPTIONS" "MESON_TEST_ARGS" ["NINJA_TARGETS"]
run_suite() {
  local label=$1 dir=$2 setup=$3 testargs=$4 targets=${5:-}
  echo "=== $label ($dir)"
  if [ ! -f "$dir/build.ninja" ]; then
    # shellcheck disable=SC2086
    if ! meson setup "$dir" $setup >"/tmp/ringrelay-setup-$label.log" 2>&1; then
      cat "/tmp/ringrelay-setup-$label.log"; failed=$((failed + 1)); failed_names+=("$label: meson setup"); return
    fi
  fi
  # shellcheck disable=SC2086
  if ! ninja -C "$dir" $targets >"/tmp/ringrelay-build-$label.log" 2>&1; then
    tail -60 "/tmp/ringrelay-build-$label.log"; failed=$((failed + 1)); failed_names+=("$label: build"); return
  fi
  rm -f "$dir/meson-logs/testlog.json"
  # shellcheck disable=SC2086
  meson test -C "$dir" --no-rebuild --print-errorlogs $testargs
  count_results "$dir" "$label"
}

# The gateway soaks run a minute in the release build, shorter under the sanitizers:
# RR_SOAK_SECONDS for test_gateway.py's, RR_SOAK_REQUESTS for test_soak.py's (wrk).
RR_SOAK_SECONDS=${RR_SOAK_SECONDS:-60} RR_SOAK_REQUESTS=${RR_SOAK_REQUESTS:-150000} \
  run_suite release build-test "-Dwerror=true -Dbuildtype=release" "--suite unit --suite integration"
if [ -z "${QUICK:-}" ]; then
  RR_SOAK_SECONDS=15 RR_SOAK_REQUESTS=20000 run_suite asan build-asan "-Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized" \
    "--suite unit --suite integration --timeout-multiplier 3"
  # ThreadSanitizer: the code shared between threads (token pool, key slots, limits,
  # the loop's cross-thread wake-ups, metrics and the access log ring).
  run_suite tsan build-tsan "-Db_sanitize=thread -Dbuildtype=debugoptimized" \
    "unit-gateway unit-gateway-chaos unit-io unit-obs --timeout-multiplier 3" \
    "tests/unit/gateway/unit_gateway tests/unit/gateway/unit_gateway_chaos tests/unit/io/unit-io tests/unit/obs/unit-obs"
  if command -v clang++ >/dev/null; then
    echo "=== fuzz"
    if [ ! -f build-fuzz/build.ninja ]; then
      CXX=clang++ meson setup build-fuzz -Dfuzz=true -Dtests=disabled -Dbuildtype=debugoptimized >/tmp/ringrelay-setup-fuzz.log 2>&1
    fi
    if ninja -C build-fuzz >/tmp/ringrelay-build-fuzz.log 2>&1 && tests/fuzz/run.sh build-fuzz "${FUZZ_SECONDS:-30}"; then
      passed=$((passed + 1))
    else
      rc=$?
      if [ "$rc" -eq 77 ]; then skipped=$((skipped + 1)); else failed=$((failed + 1)); failed_names+=("fuzz"); fi
    fi
  fi
fi

cat "$failure_tails"
for n in "${failed_names[@]}"; do [ -n "$n" ] && echo "FAILED: $n"; done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
