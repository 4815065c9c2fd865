// libFuzzer target: the block decoders of every GGUF block type (kernels/cpu/quant_decode.cpp)
// on arbitrary bytes, and the quantizer (quant_encode.cpp) on what they decode. The first byte
// picks the type, the rest are its blocks. Promises: nothing is read or written outside the
// blocks and the output row; a finite decoded row quantizes and decodes back to finite values
// no larger than a few times its own maximum.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "llmq/kernels/quant_blocks.hpp"

using namespace llmq::kernels;

namespace {
void check(bool promise) {
    if (!promise) __builtin_trap();
}
const dtype types[] = {dtype::q4_0, dtype::q4_1, dtype::q5_0, dtype::q5_1, dtype::q2_k, dtype::q3_k,
                       dtype::q4_k, dtype::q5_k, dtype::q6_k, dtype::iq4_nl, dtype::iq4_xs};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const dtype t = types[data[0] % (sizeof types / sizeof types[0])];
    const size_t blocks = (size - 1) / size_t(block_bytes(t));
    if (blocks == 0) return 0;
    // An exact-size copy, so ASan sees any read past the last block.
    std::vector<uint8_t> in(data + 1, data + 1 + blocks * size_t(block_bytes(t)));
    const int64_t n = int64_t(blocks) * block_values(t);
    std::vector<float> out(static_cast<size_t>(n));
    dequantize_blocks(t, in.data(), out.data(), n);

    float amax = 0.0f;
    for (float& v : out) {
        if (!std::isfinite(v) || std::fabs(v) > 1e4f) v = 0.0f;  // keep the fp16 scales in range
        amax = std::fmax(amax, std::fabs(v));
    }
    std::vector<uint8_t> q(in.size());
    quantize_blocks(t, out.data(), q.data(), n);
    std::vector<float> back(static_cast<size_t>(n));
    dequantize_blocks(t, q.data(), back.data(), n);
    for (float v : back) check(std::isfinite(v) && std::fabs(v) <= 4.0f * amax + 1e-3f);
    return 0;
}
