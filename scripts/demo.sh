#!/usr/bin/env bash
# The main job: install, build, start llmqd on a model (a generated one unless you name a GGUF
# file) and stream a generation from it through shared memory with `llmq generate`.
#
#   scripts/demo.sh [MODEL.gguf] [PROMPT]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${LLMQ_BUILD_DIR:-build}
scripts/install-deps.sh
if [ ! -f "$build/build.ninja" ]; then meson setup "$build" --buildtype=release; fi
ninja -C "$build" -j"$(nproc)"

model=${1:-}
prompt=${2:-"The quick brown fox"}
if [ -z "$model" ]; then
  # The default model: a small random Llama with the real Llama 2 vocabulary when the shared
  # vocabulary is beside the checkout, else a synthetic one. Its weights are random, so its
  # text is too; name a real GGUF file to read sense.
  model="$build/default-model.gguf"
  if [ ! -f "$model" ]; then
    vocab=()
    [ -f ../shared/vocab/llama-spm.gguf ] && vocab=(--vocab-from ../shared/vocab/llama-spm.gguf)
    "$build/tools/make-model/llmq-make-model" --out "$model" --dim 512 --layers 8 --heads 8 \
      --kv-heads 4 --ffn 1376 --dtype f16 "${vocab[@]}"
  fi
fi

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
"$build/tools/llmq/llmq" generate --prompt "$prompt" --max-tokens 48 --temperature 0.7 --seed 42
echo "== llmq status"
"$build/tools/llmq/llmq" status
