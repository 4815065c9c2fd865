#!/usr/bin/env bash
# The main job: install, build, start llmqd on a model (the committed demo model unless you
# name another) and stream a generation from it through shared memory with `llmq generate`.
#
#   scripts/demo.sh [MODEL.gguf] [PROMPT]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LLMQ_BUILD_DIR:-build}
scripts/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then meson setup "$build" --buildtype=release; fi
ninja -C "$build" -j"$(nproc)"

# The default model: models/kjv-demo.gguf, a 2M-parameter Llama trained on the King James
# Bible by tools/train-demo/train_demo.py (models/kjv-demo.json says how); name a GGUF file or
# a safetensors directory to use another.
model=${1:-models/kjv-demo.gguf}
prompt=${2:-"And God said"}

# A private socket folder, removed at the end with everything in it (the daemon removes its
# socket and lock on SIGTERM; the folder is ours).
made_ipc_dir=
if [ -z "${LLMQ_IPC_DIR:-}" ]; then
  made_ipc_dir=$(mktemp -d "${TMPDIR:-/tmp}/llmq-demo.XXXXXX")
  export LLMQ_IPC_DIR=$made_ipc_dir
fi
daemon=
cleanup() {
  if [ -n "$daemon" ]; then kill -TERM "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  if [ -n "$made_ipc_dir" ]; then rm -rf "$made_ipc_dir"; fi
}
trap cleanup EXIT
"$build/runtime/src/daemon/llmqd" --model "$model" --log-level info &
daemon=$!
for _ in $(seq 1 100); do
  "$build/tools/llmq/llmq" status >/dev/null 2>&1 && break
  sleep 0.1
done
echo "== llmq generate (streamed through shared memory)"
"$build/tools/llmq/llmq" generate --prompt "$prompt" --max-tokens 64 --temperature 0.7 --seed 42
echo "== llmq status"
"$build/tools/llmq/llmq" status
