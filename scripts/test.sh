#!/usr/bin/env bash
# Install what llmq needs, build it, and run every test: the release build's suites (they
# include the libFuzzer targets, run briefly), then the unit/integration/fault suites under
# AddressSanitizer and UndefinedBehaviorSanitizer (errors fatal). This is the README's test
# command; .ci/run calls it.
#
#   scripts/test.sh            everything (about 20 minutes on 2 cores)
#   LLMQ_TEST_QUICK=1 scripts/test.sh   release suites only
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${LLMQ_BUILD_DIR:-build}

scripts/install-deps.sh

# meson compiles through ccache when it is installed. A clone in another folder (CI's) reuses
# the objects of earlier builds: sources are named relative to the build folder, and the
# working directory is left out of the hash.
export CCACHE_BASEDIR="$root" CCACHE_NOHASHDIR=true

echo "== release build ($build)"
if [ -f "$build/build.ninja" ]; then
  meson setup --reconfigure "$build" >/dev/null
else
  meson setup "$build" --buildtype=release
fi
ninja -C "$build" -j"$(nproc)"

echo "== tests"
meson test -C "$build" --no-rebuild --print-errorlogs --num-processes 2 \
  --timeout-multiplier "${LLMQ_TIMEOUT_MULTIPLIER:-2}"

if [ "${LLMQ_TEST_QUICK:-0}" = "1" ]; then
  exit 0
fi

echo "== sanitizers (ASan + UBSan)"
tests/integration/run_sanitizers.sh "$root/build-sanitize"
echo "scripts/test.sh: all passed"
