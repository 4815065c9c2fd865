// Every GEMM variant the CPU supports, for every weight dtype, against a double-precision
// reference and against the scalar reference, over shapes that hit every edge of the
// blocking: M = 1 (decode tile), M below / at / above the row tile, N not a multiple of any
// column tile, K tails shorter than a vector, K crossing the K block, M crossing the packed
// x block, a K longer than the x block buffer, large N, strided rows and partial column
// ranges.
#include <cstring>

#include "conformance.hpp"
#include "llmq/kernels/gemm_units.hpp"
#include "llmq/kernels/q8_0_int8.hpp"
#include "llmq/kernels/quant_blocks.hpp"

using namespace llmq::kernels;
using namespace llmq::kernels::testing;

namespace {

struct shape {
    int64_t M, N, K;
};

// Shapes for f32 / f16 / bf16 weights (any K).
const shape float_shapes[] = {
    {1, 1, 1},    {1, 7, 5},     {1, 33, 31},   {2, 5, 17},    {3, 9, 16},   {4, 17, 15},
    {5, 13, 64},  {7, 31, 100},  {1, 4099, 96}, {13, 70, 1030}, {64, 96, 288}, {1, 64, 2048},
    {520, 12, 40}, {6, 24, 1536}, {300, 20, 1030} /* more rows than one packed x block */,
    {4, 3, 100003} /* K so long that one row tile outgrows the x block buffer */,
    // Batched decode (4 <= M <= 16): every last-tile height, K blocks with a partial last step.
    {16, 21, 777}, {8, 9, 513}, {11, 40, 1029},
    // Prefill rows (M > 16, the packed driver): row counts around its tiles, K crossing its K
    // block by odd amounts, N of no column tile (and, through the inner range, ranges that
    // start off the column grid).
    {17, 70, 257}, {65, 130, 300}, {64, 65, 1030}, {18, 64, 128}, {23, 129, 513},
};
// Q8_0: K a multiple of 32.
const shape q8_shapes[] = {
    {1, 1, 32},   {1, 7, 32},    {2, 9, 64},    {3, 33, 96},   {4, 5, 544},  {9, 17, 1056},
    {1, 5000, 64}, {64, 40, 256}, {520, 12, 64}, {1, 64, 2048}, {300, 12, 1056},
    // The row counts of batched decode around every row tile, with K of an odd number of
    // blocks (no multiple of any K step) and N of no column tile.
    {1, 13, 1184}, {3, 9, 160}, {4, 13, 96}, {16, 9, 288}, {17, 21, 352}, {64, 19, 1056}, {65, 7, 224},
    // The int8 prefill panels of avx512_bf16 (M > 16): 3-row tiles and their tails, K of 1, 17
    // and 33 blocks (crossing the 512-value K block; one block leaves half of the last 16-step
    // transpose empty), N past one 64-column panel and ending inside a 16-column group.
    {65, 130, 544}, {17, 97, 1056}, {64, 33, 32}, {100, 75, 1568},
};

struct weights {
    std::vector<uint8_t> bytes;  // N rows of ldw bytes
    std::vector<double> values;  // N x K, the exact values the bytes hold
    int64_t ldw;
};

weights make_weights(dtype t, int64_t N, int64_t K, random_source& rng) {
    weights w;
    // Pad rows by a few bytes so the kernels must honour ldw (and meet unaligned rows).
    w.ldw = int64_t(row_bytes(t, K)) + (t == dtype::q8_0 ? 6 : 4 * 3);
    w.bytes.assign(std::size_t(N * w.ldw), 0xa5);
    w.values.resize(std::size_t(N * K));
    std::vector<float> row(static_cast<std::size_t>(K)), back(static_cast<std::size_t>(K));
    for (int64_t n = 0; n < N; ++n) {
        for (auto& v : row) v = float(rng.uniform(-1.0, 1.0));
        row_from_f32(isa::scalar, t, row.data(), &w.bytes[n * w.ldw], K);
        row_to_f32(isa::scalar, t, &w.bytes[n * w.ldw], back.data(), K);
        for (int64_t k = 0; k < K; ++k) w.values[n * K + k] = back[k];
    }
    return w;
}

// Runs every ISA on [n_begin, n_end) and checks it against the double reference with
//   |y - y_ref| <= 8 * sqrt(K) * u * sum_k |x_k w_k|.
// Reason: the kernels sum K f32 products in some order; each rounding is at most u of the
// partial sum, and for inputs of random sign the roundings add like a random walk, so the
// error stays below a few sqrt(K) u sum|x w| (the rigorous worst case is K u sum|x w|, which
// would let a dropped product slip through). A missing or doubled product of typical size
// is ~100x over this bound.
// x rows (row stride ldx) as the Q8_0 GEMM quantises them, per 32-value block in f32:
// d = max|x| / 127, q = round-to-nearest-even(x * (1 / d)); returns q * d (exact in double).
std::vector<double> quantise_q8_0_rows(const std::vector<float>& x, int64_t M, int64_t K, int64_t ldx) {
    std::vector<double> out(x.size(), 0.0);
    for (int64_t m = 0; m < M; ++m)
        for (int64_t b = 0; b < K / 32; ++b) {
            const float* v = x.data() + m * ldx + b * 32;
            float amax = 0.0f;
            for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(v[i]));
            const float d = amax / 127.0f;
            const float id = d != 0.0f ? 1.0f / d : 0.0f;
            for (int i = 0; i < 32; ++i)
                out[std::size_t(m * ldx + b * 32 + i)] = double(std::nearbyint(v[i] * id)) * double(d);
        }
    return out;
}

void check_case(dtype wt, const shape& s, uint64_t seed, bool int8 = false) {
    random_source rng(seed);
    const int64_t ldx = s.K + 3, ldy = s.N + 5;
    const std::vector<float> x = rng.floats(std::size_t(s.M * ldx), -1.0, 1.0);
    const weights w = make_weights(wt, s.N, s.K, rng);

    // gemm_q8_0_int8, and gemm where gemm_quantizes_x says so (Q8_0 weights with at most
    // gemm_integer_max_rows rows, and Q8_0 prefill on avx512_bf16): Q8_0 weights meet x
    // quantised to Q8_0 (int8 dot products); the exact result is that of the quantised x,
    // x^ = q * d per 32-value block, by the kernels' rule. Both references are made, and each
    // ISA is held to the one of its numerics.
    const bool any_quantised = int8 || (wt == dtype::q8_0 && s.K % 32 == 0);
    const std::vector<double> xq = any_quantised ? quantise_q8_0_rows(x, s.M, s.K, ldx) : std::vector<double>();
    std::vector<double> expected(static_cast<std::size_t>(s.M * s.N)), bound(expected.size());
    std::vector<double> expected_q(expected.size()), bound_q(expected.size());
    std::vector<double> unquantised(expected.size()), quantisation(expected.size());
    for (int64_t m = 0; m < s.M; ++m)
        for (int64_t n = 0; n < s.N; ++n) {
            double sum = 0.0, magnitude = 0.0, sum_q = 0.0, magnitude_q = 0.0, moved = 0.0;
            for (int64_t k = 0; k < s.K; ++k) {
                const double xv = double(x[m * ldx + k]), wv = w.values[n * s.K + k];
                sum += xv * wv;
                magnitude += std::fabs(xv * wv);
                if (!xq.empty()) {
                    const double xqv = xq[m * ldx + k];
                    sum_q += xqv * wv;
                    magnitude_q += std::fabs(xqv * wv);
                    moved += std::fabs((xqv - xv) * wv);
                }
            }
            expected[m * s.N + n] = sum;
            bound[m * s.N + n] = 8.0 * std::sqrt(double(s.K)) * f32_unit * magnitude + 1e-30;
            expected_q[m * s.N + n] = sum_q;
            bound_q[m * s.N + n] = 8.0 * std::sqrt(double(s.K)) * f32_unit * magnitude_q + 1e-30;
            unquantised[m * s.N + n] = sum;
            quantisation[m * s.N + n] = moved + bound_q[m * s.N + n];
        }

    // Full range, then an inner range to check that columns outside it stay untouched.
    const int64_t ranges[2][2] = {{0, s.N}, {s.N / 3, s.N - s.N / 4}};
    std::vector<float> scalar_y;
    bool scalar_quantised = false;
    for (isa which : supported_isas()) {
        const bool quantised_x = int8 || gemm_quantizes_x(which, wt, s.M, s.K);
        REQUIRE_MESSAGE(!(quantised_x && xq.empty()), "gemm_quantizes_x is true for ", dtype_name(wt), " K=", s.K);
        if (which == isa::scalar) scalar_quantised = quantised_x;
        for (const auto& range : ranges) {
            if (range[0] >= range[1]) continue;
            const float sentinel = 12345.0f;
            std::vector<float> y(std::size_t(s.M * ldy), sentinel);
            if (int8)
                gemm_q8_0_int8(which, x.data(), s.M, s.K, ldx, w.bytes.data(), w.ldw, y.data(), ldy, range[0],
                               range[1]);
            else
                gemm(which, x.data(), s.M, s.K, ldx, w.bytes.data(), wt, w.ldw, y.data(), ldy, range[0], range[1]);
            std::ostringstream context;
            context << (int8 ? "gemm_q8_0_int8 " : "gemm ") << isa_name(which) << " " << dtype_name(wt) << " M=" << s.M
                    << " N=" << s.N << " K=" << s.K << " n=[" << range[0] << "," << range[1] << ")";
            std::vector<float> got, outside;
            std::vector<double> want, tolerance;
            for (int64_t m = 0; m < s.M; ++m)
                for (int64_t n = 0; n < ldy; ++n) {
                    const float v = y[m * ldy + n];
                    if (n >= range[0] && n < range[1]) {
                        got.push_back(v);
                        want.push_back(quantised_x ? expected_q[m * s.N + n] : expected[m * s.N + n]);
                        tolerance.push_back(quantised_x ? bound_q[m * s.N + n] : bound[m * s.N + n]);
                    } else if (v != sentinel) {
                        outside.push_back(v);
                    }
                }
            check_within(got.data(), want.data(), tolerance.data(), got.size(), context.str());
            if (quantised_x && range[0] == 0 && range[1] == s.N) {
                // And against the product of the unquantised x: off by at most what rounding x
                // moved, sum |x^ - x| |w| (each value by at most d / 2), plus the f32 rounding.
                std::vector<double> plain, moved;
                for (int64_t m = 0; m < s.M; ++m)
                    for (int64_t n = 0; n < s.N; ++n) {
                        plain.push_back(unquantised[m * s.N + n]);
                        moved.push_back(quantisation[m * s.N + n]);
                    }
                check_within(got.data(), plain.data(), moved.data(), got.size(), context.str() + " vs f32 x");
            }
            CHECK_MESSAGE(outside.empty(), context.str(), ": wrote outside its column range");
            // Against the scalar reference where both have the same numerics.
            if (range[0] == 0 && range[1] == s.N && quantised_x == scalar_quantised) {
                if (which == isa::scalar) {
                    scalar_y = got;
                } else {
                    // Against the scalar reference: both are within the bound of the exact
                    // result, so they are within twice the bound of each other.
                    std::vector<double> scalar_d(scalar_y.begin(), scalar_y.end()), twice(tolerance);
                    for (double& t : twice) t *= 2.0;
                    check_within(got.data(), scalar_d.data(), twice.data(), got.size(),
                                 context.str() + " vs scalar");
                }
            }
        }
    }
}

}  // namespace

TEST_SUITE("kernels") {
    TEST_CASE("gemm_matches_reference_for_f32_weights_on_every_isa") {
        uint64_t seed = 1;
        for (const shape& s : float_shapes) check_case(dtype::f32, s, seed++);
    }
    TEST_CASE("gemm_matches_reference_for_f16_weights_on_every_isa") {
        uint64_t seed = 100;
        for (const shape& s : float_shapes) check_case(dtype::f16, s, seed++);
    }
    TEST_CASE("gemm_matches_reference_for_bf16_weights_on_every_isa") {
        uint64_t seed = 200;
        for (const shape& s : float_shapes) check_case(dtype::bf16, s, seed++);
    }
    TEST_CASE("gemm_matches_reference_for_q8_0_weights_on_every_isa") {
        uint64_t seed = 300;
        for (const shape& s : q8_shapes) check_case(dtype::q8_0, s, seed++);
    }
    TEST_CASE("gemm_q8_0_int8_matches_the_product_of_the_quantised_x_on_every_isa") {
        uint64_t seed = 350;
        for (const shape& s : q8_shapes) check_case(dtype::q8_0, s, seed++, true);
    }

    TEST_CASE("gemm_bf16_dot_matches_the_sum_of_bf16_products_on_every_isa") {
        // x is rounded to bf16 by the caller; every bf16 x bf16 product is exact in f32, so
        // the reference is the double sum of the rounded values and the bound is the same
        // random-walk bound as for gemm (vdpbf16ps rounds each pair sum like an FMA chain).
        // From 96 rows the outer-product panels on avx512_bf16 (pairs along K: odd K pads the
        // last pair; K blocks of 256 values; 64-column panels; 6-row tiles), below that the
        // row tiles.
        const shape shapes[] = {{1, 9, 7},     {1, 33, 64},    {3, 17, 33},   {4, 40, 100},  {13, 70, 1030},
                                {64, 24, 288}, {1, 4099, 96},  {520, 12, 40}, {17, 70, 257}, {65, 130, 513},
                                {64, 65, 1030}, {96, 64, 256}, {97, 130, 513}, {101, 200, 1030}};
        uint64_t seed = 400;
        for (const shape& s : shapes) {
            random_source rng(seed++);
            const int64_t ldx = s.K + 1, ldy = s.N + 2;
            const std::vector<float> xf = rng.floats(std::size_t(s.M * ldx), -1.0, 1.0);
            std::vector<uint16_t> x(xf.size());
            row_from_f32(isa::scalar, dtype::bf16, xf.data(), x.data(), int64_t(xf.size()));
            const weights w = make_weights(dtype::bf16, s.N, s.K, rng);
            std::vector<double> expected(static_cast<std::size_t>(s.M * s.N)), bound(expected.size());
            for (int64_t m = 0; m < s.M; ++m)
                for (int64_t n = 0; n < s.N; ++n) {
                    double sum = 0.0, magnitude = 0.0;
                    for (int64_t k = 0; k < s.K; ++k) {
                        const double p = double(bf16_to_fp32(x[m * ldx + k])) * w.values[n * s.K + k];
                        sum += p;
                        magnitude += std::fabs(p);
                    }
                    expected[m * s.N + n] = sum;
                    bound[m * s.N + n] = 8.0 * std::sqrt(double(s.K)) * f32_unit * magnitude + 1e-30;
                }
            for (isa which : supported_isas()) {
                std::vector<float> y(std::size_t(s.M * ldy), 0.0f), got;
                gemm_bf16_dot(which, x.data(), s.M, s.K, ldx, w.bytes.data(), w.ldw, y.data(), ldy,
                              0, s.N);
                for (int64_t m = 0; m < s.M; ++m)
                    for (int64_t n = 0; n < s.N; ++n) got.push_back(y[m * ldy + n]);
                std::ostringstream context;
                context << "gemm_bf16_dot " << isa_name(which) << " M=" << s.M << " N=" << s.N
                        << " K=" << s.K;
                check_within(got.data(), expected.data(), bound.data(), got.size(), context.str());
            }
        }
    }

    TEST_CASE("gemm_column_grain_is_a_multiple_of_the_column_tiles") {
        for (int64_t N : {1, 16, 255, 256, 2048, 32000}) {
            const int64_t grain = gemm_column_grain(1, N, 2048);
            CHECK(grain > 0);
            CHECK(grain % 8 == 0);
        }
    }
}
