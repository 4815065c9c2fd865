// Dequantizes block-quantized rows read from stdin, for tests/reference/quant_blocks_reference.py:
//   quant_dump isas                      the ISAs this CPU runs, one per line
//   quant_dump TYPE ISA row|gemm COUNT   COUNT values of TYPE (raw blocks on stdin) as f32 on
//                                        stdout, through row_to_f32 ("row") or the GEMM's
//                                        prefill path with x = the identity ("gemm": rows of
//                                        256 values, y = the dequantized weights)
//   quant_dump integer TYPE ISA          1 if that prefill path quantizes x instead (the int8
//                                        dot products of quant_prefill_is_integer on VNNI:
//                                        not a dequantization), else 0
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <string>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq/kernels/quant_blocks.hpp"

using namespace llmq::kernels;

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "isas") == 0) {
        for (isa i : {isa::scalar, isa::avx2, isa::avx512, isa::avx512_bf16})
            if (isa_supported(i)) std::printf("%s\n", isa_name(i));
        return 0;
    }
    if (argc == 4 && std::strcmp(argv[1], "integer") == 0) {
        isa which;
        for (int32_t id = 0; id <= int32_t(dtype::iq4_xs); ++id)
            if (std::strcmp(dtype_name(dtype(id)), argv[2]) == 0 && parse_isa(argv[3], &which)) {
                const bool vnni = usable_isa(which) >= isa::avx512_bf16;
                std::printf("%d\n", vnni && quant_prefill_is_integer(dtype(id), 256) ? 1 : 0);
                return 0;
            }
        std::fprintf(stderr, "quant_dump: unknown type or ISA\n");
        return 2;
    }
    if (argc != 5) {
        std::fprintf(stderr, "usage: quant_dump isas | TYPE ISA row|gemm COUNT\n");
        return 2;
    }
    dtype t = dtype::f32;
    bool found = false;
    for (int32_t id = 0; id <= int32_t(dtype::iq4_xs); ++id)
        if (std::strcmp(dtype_name(dtype(id)), argv[1]) == 0) {
            t = dtype(id);
            found = is_block_quantized(t);
        }
    isa which;
    if (!found || !parse_isa(argv[2], &which) || !isa_supported(which)) {
        std::fprintf(stderr, "quant_dump: unknown type or unsupported ISA\n");
        return 2;
    }
    const int64_t count = std::stoll(argv[4]);
    std::vector<char> raw((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (raw.size() != row_bytes(t, count)) {
        std::fprintf(stderr, "quant_dump: %zu bytes on stdin, %zu expected\n", raw.size(), row_bytes(t, count));
        return 2;
    }
    std::vector<float> out(static_cast<std::size_t>(count));
    if (std::strcmp(argv[3], "row") == 0) {
        row_to_f32(which, t, raw.data(), out.data(), count);
    } else {
        const int64_t K = 256, N = count / K;
        std::vector<float> x(static_cast<std::size_t>(K * K), 0.0f), y(static_cast<std::size_t>(K * N));
        for (int64_t k = 0; k < K; ++k) x[k * K + k] = 1.0f;
        gemm(which, x.data(), K, K, K, raw.data(), t, int64_t(row_bytes(t, K)), y.data(), N, 0, N);
        for (int64_t n = 0; n < N; ++n)
            for (int64_t k = 0; k < K; ++k) out[n * K + k] = y[k * N + n];
    }
    std::fwrite(out.data(), sizeof(float), out.size(), stdout);
    return 0;
}
