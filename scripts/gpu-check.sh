#!/usr/bin/env bash
# The GPU check: one command on a lent GPU machine, from binaries built on a CPU machine.
#
#   scripts/gpu-check.sh pack [BUILD] [DEST]
#       here (the CPU machine): copy the cuda suite's GPU tests, the CUDA plugins, the GPU
#       benchmark and every non-system shared library they load (except the CUDA toolkit's
#       own, which the GPU machine has) into DEST (default .gpu-carry, which .gitignore
#       ignores), for the device tool's `carry`. BUILD defaults to build; build it
#       with -Dmpi=disabled.
#   scripts/gpu-check.sh [DEST]
#       there: run every GPU test, compute-sanitizer memcheck on the plugin tests when the
#       tool is present, and the benchmark; write $OUT/gpu-check.log and
#       $OUT/gpu-figures.json. Stays under 6 minutes (each step has its own time limit and
#       later steps are skipped once 5 minutes are gone). Exit 0 only if every step passed.
set -u

gpu_tests=(gemm_cuda_plugin_matches_float64_reference attention_cuda_plugin_matches_float64_reference
           cuda_elementwise_kernels_match_float64_reference)

pack() {
    local build=${1:-build} dest=${2:-.gpu-carry}
    rm -rf "$dest"
    mkdir -p "$dest/bin" "$dest/plugins" "$dest/lib"
    local files=()
    for t in "${gpu_tests[@]}"; do files+=("$build/tests/cuda/$t"); done
    files+=("$build/tests/cuda/llmq-cuda-bench" "$build/plugins/llmq-gemm-cuda.so" "$build/plugins/llmq-attention-cuda.so")
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
        if [ "$(elapsed)" -gt 300 ]; then echo "== $name: NOT RUN (5 minutes gone)"; failures=$((failures + 1)); return; fi
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
    echo "== ldd"
    for f in "$dest"/bin/* "$dest"/plugins/*; do
        ldd "$f" | grep -E 'not found|cublas' | sed "s|^|$(basename "$f"): |"
    done
    export LLMQ_PLUGIN_DIR="$PWD/$dest/plugins"

    for t in "${gpu_tests[@]}"; do step "$t" 60 "$dest/bin/$t"; done
    local sanitizer
    sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
    if [ -n "$sanitizer" ]; then
        for t in gemm_cuda_plugin_matches_float64_reference attention_cuda_plugin_matches_float64_reference; do
            LLMQ_CUDA_QUICK=1 step "memcheck $t" 60 "$sanitizer" --tool memcheck --error-exitcode 9 "$dest/bin/$t"
        done
    else
        echo "== memcheck: compute-sanitizer not found, not run"
    fi
    step "llmq-cuda-bench" 100 "$dest/bin/llmq-cuda-bench" --json "$out/gpu-figures.json"
    echo "== done in $(elapsed)s, $failures step(s) not passed"
    [ "$failures" -eq 0 ]
}

if [ "${1:-}" = pack ]; then
    shift
    pack "$@"
else
    run "$@"
fi
