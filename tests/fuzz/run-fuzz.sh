#!/bin/sh
# Builds the ipc, chat-template, block-decoder, safetensors-header and image-decode libFuzzer targets with clang (ASan + UBSan, errors fatal) from the ipc sources
# and runs each for SECONDS (default 30). Works beside a g++ build; needs clang-14 and
# libfuzzer-14 (Debian: clang-14, libclang-rt-14-dev).
#
#   tests/fuzz/run-fuzz.sh [SECONDS] [WORK_DIR]
#
# WORK_DIR (default $TMPDIR/llmq-fuzz) keeps the objects (obj/), the binaries, each target's corpus and any crash
# files (crash-*), so a second run continues where the first stopped.
set -eu

seconds=${1:-30}
root=$(cd "$(dirname "$0")/../.." && pwd)
work=${2:-${TMPDIR:-/tmp}/llmq-fuzz}
cxx=${LLMQ_FUZZ_CXX:-clang++-14}
flags="-std=c++20 -O1 -g -D_GNU_SOURCE -I$root/ipc/include
       -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all"

mkdir -p "$work/obj"
# Each source is compiled on its own (through ccache where it is installed, so that CI's
# cache keeps these objects between runs as it keeps meson's), then each target is linked.
launcher=""
command -v ccache >/dev/null 2>&1 && launcher=ccache
# build TARGET EXTRA_FLAGS SOURCE...: $work/TARGET from the sources, EXTRA_FLAGS (include
# folders, one word) added to each compile.
build() {
    target=$1 extra=$2
    shift 2
    objects=""
    for src in "$@"; do
        case $src in
            *.o) objects="$objects $src"; continue ;;  # an object built beforehand
        esac
        rel=${src#"$root"/}
        obj="$work/obj/$(printf '%s' "$rel" | tr '/' '_').o"
        # shellcheck disable=SC2086  # flags are words
        $launcher $cxx $flags $extra -c -o "$obj" "$src"
        objects="$objects $obj"
    done
    # shellcheck disable=SC2086
    $cxx $flags -o "$work/$target" $objects
}
ipc="$root/ipc/src"
echo "building fuzz_request_decoder"
build fuzz_request_decoder "" "$root/tests/fuzz/fuzz_request_decoder.cpp" \
    "$ipc/request_decoder.cpp" "$ipc/request_payload.cpp" "$ipc/result.cpp" "$ipc/region_layout.cpp"
echo "building fuzz_control_line"
build fuzz_control_line "" "$root/tests/fuzz/fuzz_control_line.cpp" \
    "$ipc/control_line.cpp" "$ipc/handshake.cpp" "$ipc/result.cpp" "$ipc/region_layout.cpp"

echo "building fuzz_chat_template"
tok="$root/runtime/src/tokenizer"
build fuzz_chat_template "-I$root/runtime/include" "$root/tests/fuzz/fuzz_chat_template.cpp" \
    "$tok/jinja_lexer.cpp" "$tok/jinja_parser.cpp" "$tok/jinja_evaluator.cpp" "$tok/jinja_value.cpp" \
    "$tok/utf8.cpp" "$root/runtime/src/status.cpp"
mkdir -p "$work/corpus-fuzz_chat_template"
for seed in "$root"/tests/runtime/tokenizer/chat_templates/*.jinja; do
    cp "$seed" "$work/corpus-fuzz_chat_template/seed-$(basename "$seed")"
done

echo "building fuzz_block_decoders"
build fuzz_block_decoders "-I$root/kernels/include" "$root/tests/fuzz/fuzz_block_decoders.cpp" \
    "$root/kernels/cpu/quant_decode.cpp" "$root/kernels/cpu/quant_encode.cpp"

echo "building fuzz_safetensors_header"
build fuzz_safetensors_header "-I$root/runtime/include -I$root/kernels/include" \
    "$root/tests/fuzz/fuzz_safetensors_header.cpp" "$root/runtime/src/model/safetensors_header.cpp" \
    "$root/runtime/src/model/bounded_json.cpp" "$root/runtime/src/status.cpp"
mkdir -p "$work/corpus-fuzz_safetensors_header"
# seed: a one-tensor file (header of 56 bytes, then 8 bytes of data)
printf '\070\0\0\0\0\0\0\0{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}  \0\0\0\0\0\0\0\0' \
    > "$work/corpus-fuzz_safetensors_header/seed-one-tensor"

echo "building fuzz_image_decode"
vision="$root/runtime/src/vision"
# stb_image's own file without the shift checks, as meson builds it (stb_image_impl.cpp says why)
# shellcheck disable=SC2086
$launcher $cxx $flags -fno-sanitize=shift -c -o "$work/obj/stb_image_impl.o" "$vision/stb_image_impl.cpp"
build fuzz_image_decode "-I$root/runtime/include" "$root/tests/fuzz/fuzz_image_decode.cpp" \
    "$vision/image_header.cpp" "$vision/image_decode.cpp" "$root/runtime/src/status.cpp" "$work/obj/stb_image_impl.o"
mkdir -p "$work/corpus-fuzz_image_decode"
# Seeds: small PNGs and JPEGs (baseline, progressive), so the fuzzer starts inside both formats.
for seed in "$root"/tests/fuzz/seeds/*; do
    cp "$seed" "$work/corpus-fuzz_image_decode/seed-$(basename "$seed")"
done

status=0
for target in ${LLMQ_FUZZ_TARGETS:-fuzz_request_decoder fuzz_control_line fuzz_chat_template fuzz_block_decoders fuzz_safetensors_header fuzz_image_decode}; do
    mkdir -p "$work/corpus-$target"
    echo "running $target for $seconds s"
    (cd "$work" && ./"$target" -max_total_time="$seconds" -max_len=8192 -timeout=10 \
        -print_final_stats=1 "corpus-$target") || status=1
done
exit $status
