#!/bin/bash
# CI step: build llmq with AddressSanitizer + UndefinedBehaviorSanitizer (every error fatal) in
# its own build directory and run every test suite there except the slow or separately driven
# ones (reference: float64 PyTorch checks; fuzz: libFuzzer targets with their own clang build,
# run by tests/fuzz/run-fuzz.sh; benchmarks are never run by `meson test`).
#
#   tests/integration/run_sanitizers.sh BUILD_DIR [meson test arguments...]
#
# BUILD_DIR is configured on first use and rebuilt incrementally afterwards. Extra arguments go to
# `meson test` (e.g. --suite ipc --suite fault for a subset). Exits non-zero when the build or any
# test fails. NINJA_JOBS sets the build's parallelism (default 2).
set -euo pipefail

if [ $# -lt 1 ]; then
    echo "usage: $0 BUILD_DIR [meson test arguments...]" >&2
    exit 2
fi
build=$1
shift
source_root=$(cd "$(dirname "$0")/../.." && pwd)

export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
asan_options=detect_leaks=1:abort_on_error=1
export ASAN_OPTIONS=$asan_options
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

# Tests that run llmqd under mpirun: Open MPI still holds memory at exit, which LeakSanitizer
# reports. They run on their own with the suppressions in lsan_openmpi.supp, which need full
# malloc stacks (fast_unwind_on_malloc=0 slows every allocation, so only there).
all_tests=$(meson test -C "$build" --no-rebuild --list --no-suite reference --no-suite fuzz "$@" 2>/dev/null |
            sed -n 's|^[^ ]* / ||p')
mpi_tests=$(grep mpirun <<<"$all_tests" || true)
other_tests=$(grep -v mpirun <<<"$all_tests" || true)

status=0
run() {
    # shellcheck disable=SC2086  # test names have no spaces
    meson test -C "$build" --no-rebuild --print-errorlogs --timeout-multiplier 3 $1 || status=$?
}
[ -n "$other_tests" ] && run "$other_tests"
if [ -n "$mpi_tests" ]; then
    ASAN_OPTIONS=$asan_options:fast_unwind_on_malloc=0 \
    LSAN_OPTIONS=suppressions=$source_root/tests/integration/lsan_openmpi.supp run "$mpi_tests"
fi
finished=$(date +%s)
echo "run_sanitizers.sh: build $((built - started)) s, tests $((finished - built)) s, exit $status"
exit $status
