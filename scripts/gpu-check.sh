#!/usr/bin/env bash
# The GPU check: one command on a lent GPU machine, from binaries built on a CPU machine.
#
#   scripts/gpu-check.sh pack [BUILD] [DEST]
#       here (the CPU machine): copy the cuda suite's GPU tests (kernels, plugins, and the
#       CUDA backend's whole-model and logical-device tests), the CUDA and CPU plugins, the
#       plugin probe, the GPU benchmark and every non-system shared library they load (except
#       the CUDA toolkit's own and NCCL, which the GPU machine has) into DEST (default
#       .gpu-carry, which .gitignore ignores), for the device tool's `carry`. BUILD defaults
#       to build; build it with -Dmpi=disabled.
#   scripts/gpu-check.sh [DEST]
#       there: run every GPU test, compute-sanitizer memcheck on the plugin tests when the
#       tool is present, and the benchmarks; write $OUT/gpu-check.log, $OUT/gpu-figures.json
#       and $OUT/gpu-allreduce.json. Stays under 6 minutes (each step has its own time limit, and a
#       step that could end past 5 min 40 s is not started). Exit 0 only if every step passed.
set -u

gpu_tests=(gemm_cuda_plugin_matches_float64_reference attention_cuda_plugin_matches_float64_reference
           cuda_elementwise_kernels_match_float64_reference cuda_backend_fused_ops_match_separate_ops)
# The CUDA backend's tests load models through the runtime (plugins, probe): longer limits.
model_tests=(cuda_model_matches_cpu_backend cuda_logical_devices_tp_pp_match_one_device)

pack() {
    local build=${1:-build} dest=${2:-.gpu-carry}
    rm -rf "$dest"
    mkdir -p "$dest/bin" "$dest/plugins" "$dest/lib"
    local files=()
    for t in "${gpu_tests[@]}" "${model_tests[@]}"; do files+=("$build/tests/cuda/$t"); done
    files+=("$build/tests/cuda/llmq-cuda-bench" "$build/tests/cuda/llmq-cuda-allreduce-bench"
            "$build/tools/plugin-probe/llmq-plugin-probe"
            "$build/tools/llmq/llmq" "$build/tools/make-model/llmq-make-model")
    for p in gemm-cuda attention-cuda gemm-cpu attention-cpu; do files+=("$build/plugins/llmq-$p.so"); done
    for f in "${files[@]}"; do
        [ -f "$f" ] || { echo "gpu-check pack: $f is missing; build $build first" >&2; return 1; }
        case "$f" in *.so) cp "$f" "$dest/plugins/" ;; *) cp "$f" "$dest/bin/" ;; esac
        # Libraries outside the base system and the CUDA toolkit travel along.
        ldd "$f" | awk '/=> \// {print $3}' | while read -r lib; do
            case "$lib" in
                */libc.so*|*/libm.so*|*/libstdc++.so*|*/libgcc_s.so*|*/libdl.so*|*/libpthread.so*|*/librt.so*|*/ld-linux*) ;;
                */libcublas*|*/libcudart*|*/libcuda.so*|*/libnccl*) ;;
                *) cp -L -n "$lib" "$dest/lib/" ;;
            esac
        done
    done
    du -sh "$dest"
}

# As a user would: `llmq run` of a random BF16 model on the GPU ([devices] backend = "cuda"),
# on the GPU with decode steps as CUDA graphs ([cuda] graphs = true) and on the CPU, greedy;
# the last position's logits of each GPU run must agree with the CPU's within 5e-2 of their
# scale (the GPU rounds GEMM inputs to bf16), and the graphs run must have recorded a decode
# graph and generated the same tokens as the run without.
user_run() {
    local dest=$1 tmp
    tmp=$(mktemp -d)
    "$dest/bin/llmq-make-model" --out "$tmp/m.gguf" --dim 1024 --layers 8 --heads 16 --kv-heads 4 \
        --ffn 2816 --vocab 32000 --dtype bf16 >/dev/null || return 1
    local backend
    for backend in cuda cuda-graphs cpu; do
        printf '[devices]\nbackend = "%s"\n' "${backend%-graphs}" > "$tmp/$backend.toml"
        [ "$backend" = cuda-graphs ] && printf '[cuda]\ngraphs = true\n' >> "$tmp/$backend.toml"
        "$dest/bin/llmq" run -c "$tmp/$backend.toml" --model "$tmp/m.gguf" --prompt-tokens 1 5 9 13 77 \
            --max-tokens 32 -t 0 --json --log-level info --logits-out "$tmp/$backend.f32" > "$tmp/$backend.json" 2> "$tmp/$backend.err"
        local rc=$?
        cat "$tmp/$backend.err"
        [ $rc -eq 0 ] || return 1
        echo "$backend: $(tail -n 1 "$tmp/$backend.json")"
    done
    # One sequence decodes alone, unpadded: with graphs its tokens must be the same ones.
    grep -q 'decode graph recorded' "$tmp/cuda-graphs.err" || { echo "cuda-graphs: no decode graph was recorded"; return 1; }
    python3 - "$tmp/cuda.json" "$tmp/cuda-graphs.json" <<'PY' || return 1
import json, sys
rows = [[json.loads(l) for l in open(p) if l.startswith("{")] for p in sys.argv[1:]]
tokens = [[j["token"] for j in r if "token" in j] for r in rows]
print("generated tokens: cuda %d, cuda-graphs %d, equal: %s" % (len(tokens[0]), len(tokens[1]), tokens[0] == tokens[1]))
sys.exit(0 if tokens[0] == tokens[1] and tokens[0] else 1)
PY
    python3 - "$tmp/cpu.f32" "$tmp/cuda.f32" "$tmp/cuda-graphs.f32" <<'PY'
import array, sys
def read(path):
    a = array.array("f")
    a.frombytes(open(path, "rb").read())
    return a
b = read(sys.argv[1])
ok = True
for path in sys.argv[2:]:
    a = read(path)
    assert len(a) == len(b) and len(a) > 0, (path, len(a), len(b))
    scale = max(1.0, max(abs(x) for x in b))
    diff = max(abs(x - y) for x, y in zip(a, b))
    print("%s last-position logits: max |gpu - cpu| = %.4g, scale %.4g, ratio %.4g (bound 5e-2)" % (path.split("/")[-1], diff, scale, diff / scale))
    ok = ok and diff <= 5e-2 * scale
sys.exit(0 if ok else 1)
PY
    local rc=$?
    rm -rf "$tmp"
    return $rc
}

run() {
    local dest=${1:-.gpu-carry}
    local out=${OUT:-/tmp/gpu-check}
    mkdir -p "$out"
    exec > >(tee "$out/gpu-check.log") 2>&1
    local start failures=0
    start=$(date +%s)
    elapsed() { echo $(( $(date +%s) - start )); }
    step() {  # step NAME LIMIT COMMAND...: run with a time limit, report PASS/SKIP/FAIL
        local name=$1 limit=$2
        shift 2
        if [ $(( $(elapsed) + limit )) -gt 340 ]; then
            echo "== $name: NOT RUN (it could end past 5 min 40 s)"; failures=$((failures + 1)); return
        fi
        echo "== $name (limit ${limit}s, at $(elapsed)s)"
        timeout "$limit" "$@"
        local rc=$?
        case $rc in
            0) echo "== $name: PASS" ;;
            77) echo "== $name: SKIP" ; failures=$((failures + 1)) ;;
            124) echo "== $name: TIMED OUT after ${limit}s" ; failures=$((failures + 1)) ;;
            *) echo "== $name: FAIL (exit $rc)" ; failures=$((failures + 1)) ;;
        esac
    }
    echo "gpu-check $(date -u +%FT%TZ) on $(hostname)"
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true

    # cuBLASLt comes from the machine: the toolkit's folder or the nvidia-cublas Python package.
    export LD_LIBRARY_PATH="$PWD/$dest/lib:/usr/local/cuda/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    if ldd "$dest/plugins/llmq-gemm-cuda.so" | grep -q 'libcublasLt.*not found'; then
        local pydir
        pydir=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null)
        [ -n "$pydir" ] && export LD_LIBRARY_PATH="$pydir:$LD_LIBRARY_PATH"
    fi
    # NCCL (the model tests link it): the toolkit's, the system's or the nvidia-nccl package's.
    if ldd "$dest/bin/cuda_model_matches_cpu_backend" | grep -q 'libnccl.*not found'; then
        local nccldir
        nccldir=$(python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null)
        [ -n "$nccldir" ] && export LD_LIBRARY_PATH="$nccldir:$LD_LIBRARY_PATH"
    fi
    echo "== ldd"
    for f in "$dest"/bin/* "$dest"/plugins/*; do
        ldd "$f" | grep -E 'not found|cublas' | sed "s|^|$(basename "$f"): |"
    done
    export LLMQ_PLUGIN_DIR="$PWD/$dest/plugins"
    export LLMQ_PLUGIN_PROBE="$PWD/$dest/bin/llmq-plugin-probe"

    for t in "${gpu_tests[@]}"; do step "$t" 45 "$dest/bin/$t"; done
    for t in "${model_tests[@]}"; do step "$t" 100 "$dest/bin/$t"; done
    step "llmq run on the GPU and the CPU" 60 bash -c "$(declare -f user_run); user_run \"\$1\"" user_run "$dest"
    step "llmq-cuda-allreduce-bench" 20 "$dest/bin/llmq-cuda-allreduce-bench" --json "$out/gpu-allreduce.json"
    local sanitizer
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
    if [ -n "$sanitizer" ]; then
        for t in gemm_cuda_plugin_matches_float64_reference attention_cuda_plugin_matches_float64_reference; do
            LLMQ_CUDA_QUICK=1 step "memcheck $t" 40 "$sanitizer" --tool memcheck --error-exitcode 9 "$dest/bin/$t"
        done
    else
        echo "== memcheck: compute-sanitizer not found, not run"
    fi
    step "llmq-cuda-bench" 80 "$dest/bin/llmq-cuda-bench" --json "$out/gpu-figures.json"
    echo "== done in $(elapsed)s, $failures step(s) not passed"
    [ "$failures" -eq 0 ]
}

if [ "${1:-}" = pack ]; then
    shift
    pack "$@"
else
    run "$@"
fi
