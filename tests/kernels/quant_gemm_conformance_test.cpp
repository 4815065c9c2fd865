// GEMM with block-quantized weights on every ISA against a double-precision reference (on the
// exact dequantized weights) and against the scalar reference, for every block type, on both
// paths: the integer decode path (M <= gemm_integer_max_rows) and the dequantizing prefill
// path above it. Also the
// quantizer: its error against the signal per type, and its use through row_from_f32.
#include <cstring>

#include "conformance.hpp"
#include "llmq/kernels/quant_blocks.hpp"

using namespace llmq::kernels;
using namespace llmq::kernels::testing;

namespace {

const dtype block_types[] = {dtype::q4_0, dtype::q4_1, dtype::q5_0,  dtype::q5_1,
                             dtype::q2_k, dtype::q3_k, dtype::q4_k,  dtype::q5_k,
                             dtype::q6_k, dtype::iq4_nl, dtype::iq4_xs};

struct shape {
    int64_t M, N, K;  // K in blocks of the type's block
};
// Rows on both sides of each type's gemm_integer_max_rows (3, 16 or 32) and of the row tiles
// (3, 4), up to 65; block counts of 1, odd ones, and several 256-value chunks (with a partial
// chunk for the 32-value types: K not a multiple of 256, whose last K % 256 values their vector
// decoders take one block at a time; 28 blocks is Qwen2.5-0.5B's 896), and M = 1, 3, 4, 17,
// 24, 32, 33, 64, 65 with whole 256-value chunks for every type (8 and 16 blocks of the
// 32-value types).
const shape shapes[] = {{1, 1, 1},  {1, 9, 3},   {2, 5, 1},  {3, 17, 5}, {1, 70, 8},  {4, 7, 2},
                        {9, 13, 5}, {40, 9, 3},  {3, 3, 40}, {1, 33, 11}, {16, 6, 3}, {17, 7, 2},
                        {5, 11, 9}, {32, 4, 2},  {33, 5, 1}, {64, 5, 2}, {65, 3, 1},
                        {1, 5, 16}, {3, 4, 8},   {4, 5, 8},  {17, 3, 8}, {24, 3, 8},  {32, 2, 8},
                        {33, 2, 8}, {64, 3, 8},  {65, 2, 16}, {1, 9, 28}, {3, 6, 28}, {4, 5, 12},
                        {16, 3, 28}};

struct weights {
    std::vector<uint8_t> bytes;
    std::vector<double> values;  // exact dequantized values (the scalar decoder, checked
                                 // bit for bit against tests/reference)
    int64_t ldw;
};

// Rows alternately quantized from U(-1, 1) and random bytes (every bit pattern of the q and
// scale fields; the fp16 scales then replaced by small finite ones).
weights make_weights(dtype t, int64_t N, int64_t K, random_source& rng) {
    weights w;
    w.ldw = int64_t(row_bytes(t, K)) + 5;  // rows at odd offsets: blocks have no alignment
    w.bytes.assign(std::size_t(N * w.ldw), 0x5a);
    w.values.resize(std::size_t(N * K));
    std::vector<float> row(static_cast<std::size_t>(K));
    const int bytes = block_bytes(t);
    for (int64_t n = 0; n < N; ++n) {
        uint8_t* dst = &w.bytes[std::size_t(n * w.ldw)];
        if (n % 2 == 0) {
            for (auto& v : row) v = float(rng.uniform(-1.0, 1.0));
            quantize_blocks(t, row.data(), dst, K);
        } else {
            for (std::size_t i = 0; i < row_bytes(t, K); ++i) dst[i] = uint8_t(rng.bits());
            // Every fp16 field of every block: the known offsets of each layout.
            std::vector<int> halves;
            switch (t) {
                case dtype::q4_1: case dtype::q5_1: case dtype::q4_k: case dtype::q5_k: halves = {0, 2}; break;
                case dtype::q2_k: halves = {80, 82}; break;
                case dtype::q3_k: halves = {108}; break;
                case dtype::q6_k: halves = {208}; break;
                default: halves = {0}; break;
            }
            for (int64_t b = 0; b < K / block_values(t); ++b)
                for (int off : halves) {
                    const uint16_t h = fp32_to_fp16(float(rng.uniform(-0.02, 0.02)));
                    std::memcpy(dst + b * bytes + off, &h, 2);
                }
        }
        row_to_f32(isa::scalar, t, dst, row.data(), K);
        for (int64_t k = 0; k < K; ++k) w.values[std::size_t(n * K + k)] = row[std::size_t(k)];
    }
    return w;
}

// Bounds, per output:
//  * f32 summation (both paths): 16 sqrt(K) u sum |x w| (as gemm_conformance_test, doubled for
//    the extra rounding of the per-32 scale products and the int32 -> f32 conversions);
//  * the rounding of x to int8 (integer path only): |x - d q| <= d / 2 per value, so at most
//    sum over runs of 32 of d / 2 * sum |w| of the run (1 % slack for the f32 rounding of
//    x * (1 / d)). A dropped or doubled 32-value run of typical size is several times over it.
void check_case(dtype t, const shape& s, uint64_t seed) {
    random_source rng(seed);
    const int64_t K = s.K * block_values(t);
    const int64_t ldx = K + 3, ldy = s.N + 2;
    const std::vector<float> x = rng.floats(std::size_t(s.M * ldx), -1.0, 1.0);
    const weights w = make_weights(t, s.N, K, rng);
    // The scalar reference quantizes x up to gemm_integer_max_rows; the VNNI ISA at every M
    // for the types quant_prefill_is_integer names.
    const bool scalar_integer = s.M <= gemm_integer_max_rows(t);
    const auto integer_on = [&](isa which) {
        return scalar_integer || (usable_isa(which) >= isa::avx512_bf16 && quant_prefill_is_integer(t, K));
    };

    std::vector<double> expected(std::size_t(s.M * s.N)), bound(expected.size()), rounding_of(expected.size());
    for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.N; ++n) {
            double sum = 0.0, magnitude = 0.0, rounding = 0.0;
            for (int64_t b = 0; b < K / 32; ++b) {
                double amax = 0.0, wsum = 0.0;
                for (int64_t k = 32 * b; k < 32 * b + 32; ++k) {
                    const double xv = x[std::size_t(m * ldx + k)], wv = w.values[std::size_t(n * K + k)];
                    sum += xv * wv;
                    magnitude += std::fabs(xv * wv);
                    amax = std::fmax(amax, std::fabs(xv));
                    wsum += std::fabs(wv);
                }
                rounding += amax / 127.0 / 2.0 * wsum * 1.01;
            }
            expected[std::size_t(m * s.N + n)] = sum;
            bound[std::size_t(m * s.N + n)] = 16.0 * std::sqrt(double(K)) * f32_unit * magnitude + 1e-30;
            rounding_of[std::size_t(m * s.N + n)] = rounding;
        }

    std::vector<float> reference_y(std::size_t(s.M * ldy), -7.0f);
    gemm(isa::scalar, x.data(), s.M, K, ldx, w.bytes.data(), t, w.ldw, reference_y.data(), ldy, 0, s.N);
    for (isa which : supported_isas()) {
        const bool integer = integer_on(which);
        std::vector<double> double_bound(bound);
        if (integer)
            for (std::size_t i = 0; i < bound.size(); ++i) double_bound[i] += rounding_of[i];
        std::vector<float> y(std::size_t(s.M * ldy), -7.0f);
        // In two column ranges, as threads call it.
        const int64_t split = s.N / 2;
        gemm(which, x.data(), s.M, K, ldx, w.bytes.data(), t, w.ldw, y.data(), ldy, 0, split);
        gemm(which, x.data(), s.M, K, ldx, w.bytes.data(), t, w.ldw, y.data(), ldy, split, s.N);
        std::vector<float> got(expected.size());
        std::vector<double> against_scalar(expected.size()), scalar_bound(expected.size());
        for (int64_t m = 0; m < s.M; ++m)
            for (int64_t n = 0; n < s.N; ++n) {
                got[std::size_t(m * s.N + n)] = y[std::size_t(m * ldy + n)];
                against_scalar[std::size_t(m * s.N + n)] = reference_y[std::size_t(m * ldy + n)];
                double magnitude = 0.0;
                for (int64_t k = 0; k < K; ++k)
                    magnitude += std::fabs(double(x[std::size_t(m * ldx + k)]) * w.values[std::size_t(n * K + k)]);
                // Same quantized x and integer sums as the scalar reference where both take
                // the integer path; one of them rounding x, the other not: x's rounding too.
                scalar_bound[std::size_t(m * s.N + n)] = 32.0 * std::sqrt(double(K)) * f32_unit * magnitude + 1e-30 +
                                                         (integer != scalar_integer ? rounding_of[std::size_t(m * s.N + n)] : 0.0);
            }
        std::ostringstream context;
        context << dtype_name(t) << " " << isa_name(which) << " M=" << s.M << " N=" << s.N << " K=" << K;
        check_within(got.data(), expected.data(), double_bound.data(), got.size(), context.str() + " vs double");
        check_within(got.data(), against_scalar.data(), scalar_bound.data(), got.size(),
                     context.str() + " vs scalar");
        for (int64_t m = 0; m < s.M; ++m)
            CHECK_MESSAGE(y[std::size_t(m * ldy + s.N)] == -7.0f, context.str(), ": wrote past n_end");
    }
}

}  // namespace

TEST_CASE("gemm_with_block_quantized_weights_matches_reference_on_every_isa") {
    uint64_t seed = 100;
    for (dtype t : block_types)
        for (const shape& s : shapes) check_case(t, s, seed++);
}

TEST_CASE("quantizer_error_is_within_the_bits_of_each_type") {
    // RMS error of quantize -> dequantize of U(-1, 1) values (rms 0.577), as a fraction of the
    // signal. A uniform grid of 2^b levels over the range gives ~ 1 / (2^b sqrt(3)); the bounds
    // leave room for the scale rounding and the k-quants' shared super-block scales.
    struct limit {
        dtype t;
        double ratio;
    };
    const limit limits[] = {{dtype::q2_k, 0.30}, {dtype::q3_k, 0.16}, {dtype::q4_0, 0.09}, {dtype::q4_1, 0.08},
                            {dtype::q4_k, 0.08}, {dtype::iq4_nl, 0.10}, {dtype::iq4_xs, 0.10}, {dtype::q5_0, 0.045},
                            {dtype::q5_1, 0.04}, {dtype::q5_k, 0.04}, {dtype::q6_k, 0.02}};
    random_source rng(7);
    const int64_t n = 4096;
    const std::vector<float> x = rng.floats(std::size_t(n), -1.0, 1.0);
    for (const limit& l : limits) {
        std::vector<uint8_t> q(row_bytes(l.t, n));
        std::vector<float> back(static_cast<std::size_t>(n));
        row_from_f32(l.t, x.data(), q.data(), n);
        row_to_f32(l.t, q.data(), back.data(), n);
        double error = 0.0, signal = 0.0;
        for (int64_t i = 0; i < n; ++i) {
            error += double(x[std::size_t(i)] - back[std::size_t(i)]) * (x[std::size_t(i)] - back[std::size_t(i)]);
            signal += double(x[std::size_t(i)]) * x[std::size_t(i)];
        }
        const double ratio = std::sqrt(error / signal);
        CHECK_MESSAGE(ratio <= l.ratio, dtype_name(l.t), ": rms error ", ratio, " of the signal > ", l.ratio);
        CHECK_MESSAGE(ratio > 0.0, dtype_name(l.t), ": quantization lost nothing (not quantized?)");
        MESSAGE(dtype_name(l.t), " rms error / rms = ", ratio);
    }
}

TEST_CASE("block_types_report_their_layout") {
    CHECK(row_bytes(dtype::q4_k, 512) == 288);
    CHECK(row_bytes(dtype::q6_k, 256) == 210);
    CHECK(row_bytes(dtype::q4_0, 64) == 36);
    CHECK(row_bytes(dtype::iq4_xs, 256) == 136);
    CHECK(std::string(dtype_name(dtype::q5_k)) == "q5_k");
    CHECK(is_block_quantized(dtype::q2_k));
    CHECK_FALSE(is_block_quantized(dtype::q8_0));
    // An all-zero block dequantizes to zeros; a zero row quantizes to zeros.
    for (dtype t : block_types) {
        std::vector<float> zeros(256, 0.0f), back(256, 1.0f);
        std::vector<uint8_t> q(row_bytes(t, 256), 0xff);
        quantize_blocks(t, zeros.data(), q.data(), 256);
        dequantize_blocks(t, q.data(), back.data(), 256);
        for (float v : back) CHECK_MESSAGE(v == 0.0f, dtype_name(t));
    }
}
