#!/bin/bash
# CI step: build llmq with AddressSanitizer + UndefinedBehaviorSanitizer (every error fatal) in
# its own build directory and run every test suite there except the slow or separately driven
# ones (reference: float64 PyTorch checks; fuzz: libFuzzer targets with their own clang build,
# run by tests/fuzz/run-fuzz.sh; benchmarks are never run by `meson test`).
#
#   tests/integration/run_sanitizers.sh BUILD_DIR [meson test arguments...]
#
# BUILD_DIR is configured on first use and rebuilt incrementally afterwards. Extra arguments go to
# `meson test` (e.g. --suite ipc to run one suite). Exits non-zero when the build or any test
# fails. NINJA_JOBS sets the build's parallelism (default 2).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [meson test arguments...]" >&2
    exit 2
fi
build=$1
shift
source_root=$(cd "$(dirname "$0")/../.." && pwd)

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
# The integration and fault tests bound latencies (clean-up within 1 s, busy at once, ...);
# sanitized binaries run a few times slower, so those bounds are scaled by this factor.
export LLMQ_TEST_TIME_SCALE=${LLMQ_TEST_TIME_SCALE:-3}

started=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" "$source_root" \
        -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
fi
ninja -C "$build" -j "${NINJA_JOBS:-2}"
built=$(date +%s)

status=0
meson test -C "$build" --no-rebuild --print-errorlogs --timeout-multiplier 3 \
    --no-suite reference --no-suite fuzz "$@" || status=$?
finished=$(date +%s)
echo "run_sanitizers.sh: build $((built - started)) s, tests $((finished - built)) s, exit $status"
exit $status
