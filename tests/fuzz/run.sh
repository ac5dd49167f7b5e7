#!/bin/sh
# Runs each libFuzzer target of a build for SECONDS over its seed corpus.
#   tests/fuzz/run.sh BUILD_DIR SECONDS
# BUILD_DIR must be configured with CXX=clang++ and -Dfuzz=true. New inputs go
# to BUILD_DIR/tests/fuzz/corpus-work/<target> (the seeds in the repo are only
# read); crashes to BUILD_DIR/tests/fuzz/artifacts/.
# Exit: 0 no crash, 1 a target crashed or broke an invariant, 2 usage,
# 77 the targets were not built (meson's "skipped").
set -u

if [ $# -ne 2 ]; then
    echo "usage: $0 BUILD_DIR SECONDS" >&2
    exit 2
fi
build=$1
seconds=$2
here=$(cd "$(dirname "$0")" && pwd)
fuzz_dir=$build/tests/fuzz

run_target() {
    target=$1
    corpus=$2
    work=$fuzz_dir/corpus-work/$target
    mkdir -p "$work" "$fuzz_dir/artifacts"
    echo "== $target: ${seconds}s over $here/corpus/$corpus"
    "$fuzz_dir/$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$fuzz_dir/artifacts/$target-" \
        "$work" "$here/corpus/$corpus"
}

for target in http_request_fuzz chunked_fuzz; do
    if [ ! -x "$fuzz_dir/$target" ]; then
        echo "$0: $fuzz_dir/$target not built (needs CXX=clang++ and -Dfuzz=true)" >&2
        exit 77
    fi
done

status=0
run_target http_request_fuzz http_request || status=1
run_target chunked_fuzz chunked || status=1
exit $status
