#!/bin/sh
# Runs each libFuzzer target of a build for a bounded time over its seed corpus.
#   tests/fuzz/run.sh BUILD_DIR SECONDS [TARGET...]
# SECONDS is per target: 30 in CI (tools/test.sh, FUZZ_SECONDS), 3600 or more for a
# long campaign; a number or one with a unit: 90s, 20m, 2h. TARGET limits the run to
# some of: http_request_fuzz http_response_fuzz chunked_fuzz usage_tap_fuzz
# admin_body_fuzz (default all). docs/TESTING.md says more.
# BUILD_DIR must be configured with CXX=clang++ and -Dfuzz=true. New inputs go
# to BUILD_DIR/tests/fuzz/corpus-work/<target> (the seeds in the repo are only
# read; a long campaign resumes from what the last one found); crashes to
# BUILD_DIR/tests/fuzz/artifacts/.
# Exit: 0 no crash, 1 a target crashed or broke an invariant, 2 usage,
# 77 the targets were not built (meson's "skipped").
set -u

usage() {
    echo "usage: $0 BUILD_DIR SECONDS|Nm|Nh [TARGET...]" >&2
    exit 2
}
[ $# -ge 2 ] || usage
build=$1
case $2 in
    *[!0-9smh]* | '' | [smh]*) usage ;;
    *h) seconds=$(( ${2%h} * 3600 )) ;;
    *m) seconds=$(( ${2%m} * 60 )) ;;
    *s) seconds=${2%s} ;;
    *) seconds=$2 ;;
esac
shift 2
here=$(cd "$(dirname "$0")" && pwd)
fuzz_dir=$build/tests/fuzz

all="http_request_fuzz http_response_fuzz chunked_fuzz usage_tap_fuzz admin_body_fuzz"
targets=${*:-$all}

# The seed corpus of a target: tests/fuzz/corpus/<target without _fuzz>.
corpus_of() {
    case $1 in
        chunked_fuzz) echo chunked ;;
        *) echo "${1%_fuzz}" ;;
    esac
}

run_target() {
    target=$1
    corpus=$here/corpus/$(corpus_of "$target")
    work=$fuzz_dir/corpus-work/$target
    mkdir -p "$work" "$fuzz_dir/artifacts"
    echo "== $target: ${seconds}s over $corpus"
    "$fuzz_dir/$target" -max_total_time="$seconds" -print_final_stats=1 \
        -artifact_prefix="$fuzz_dir/artifacts/$target-" \
        "$work" "$corpus"
}

for target in $targets; do
    case " $all " in *" $target "*) ;; *) echo "$0: unknown target $target (one of: $all)" >&2; exit 2 ;; esac
    if [ ! -x "$fuzz_dir/$target" ]; then
        echo "$0: $fuzz_dir/$target not built (needs CXX=clang++ and -Dfuzz=true)" >&2
        exit 77
    fi
done

status=0
for target in $targets; do
    run_target "$target" || status=1
done
exit $status
