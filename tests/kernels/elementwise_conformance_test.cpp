// Element-wise kernels on every ISA against double-precision references, on lengths around
// every vector width (1, 7, 8, 15, 16, 17, 33, ...) and a few model-sized rows.
#include "conformance.hpp"

using namespace llmq::kernels;
using namespace llmq::kernels::testing;

namespace {

const int64_t lengths[] = {1, 2, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 2048, 5632};

std::string named(const char* op, isa which, int64_t n) {
    std::ostringstream s;
    s << op << " " << isa_name(which) << " n=" << n;
    return s.str();
}

}  // namespace

TEST_SUITE("kernels") {
    TEST_CASE("rms_norm_matches_reference_on_every_isa") {
        // Bound: 1e-6 relative. The mean of squares is summed in f32 lanes (random-walk error
        // ~sqrt(n/W) u, < 1e-6 up to n = 5632 with W >= 1 and the reference's double sum);
        // the scaling is two f32 multiplies (2 u).
        random_source rng(1);
        for (int64_t n : lengths) {
            const int64_t rows = 3;
            std::vector<float> x = rng.floats(std::size_t(rows * n), -3.0, 3.0), w = rng.floats(std::size_t(n), 0.5, 1.5);
            const float eps = 1e-5f;
            std::vector<double> expected(x.size()), bound(x.size());
            for (int64_t r = 0; r < rows; ++r) {
                double ss = 0.0;
                for (int64_t i = 0; i < n; ++i) ss += double(x[r * n + i]) * x[r * n + i];
                const double inv = 1.0 / std::sqrt(ss / double(n) + double(eps));
                for (int64_t i = 0; i < n; ++i) {
                    expected[r * n + i] = x[r * n + i] * inv * w[i];
                    bound[r * n + i] = 1e-6 * std::fabs(expected[r * n + i]) + 1e-30;
                }
            }
            for (isa which : supported_isas()) {
                std::vector<float> y(x.size());
                rms_norm_rows(which, x.data(), w.data(), y.data(), rows, n, eps);
                check_within(y.data(), expected.data(), bound.data(), y.size(), named("rms_norm", which, n));
                std::vector<float> in_place = x;  // y may alias x
                rms_norm_rows(which, in_place.data(), w.data(), in_place.data(), rows, n, eps);
                check_within(in_place.data(), expected.data(), bound.data(), y.size(), named("rms_norm in place", which, n));
            }
        }
    }

    TEST_CASE("swiglu_matches_reference_on_every_isa") {
        // Bound: 4e-7 relative + 1e-37 absolute: e^x to ~2 ulp, then a divide and a multiply
        // (u each); at g < -87 silu underflows and both sides are ~0.
        random_source rng(2);
        for (int64_t n : lengths) {
            std::vector<float> g = rng.floats(std::size_t(n), -20.0, 20.0), u = rng.floats(std::size_t(n), -2.0, 2.0);
            if (n >= 4) {
                g[0] = 0.0f;
                g[1] = -100.0f;
                g[2] = 100.0f;
                g[3] = -88.0f;
            }
            std::vector<double> expected(static_cast<std::size_t>(n)), bound(static_cast<std::size_t>(n));
            for (int64_t i = 0; i < n; ++i) {
                expected[i] = double(g[i]) / (1.0 + std::exp(-double(g[i]))) * u[i];
                bound[i] = 4e-7 * std::fabs(expected[i]) + 1e-37;
            }
            for (isa which : supported_isas()) {
                std::vector<float> out(static_cast<std::size_t>(n));
                swiglu(which, g.data(), u.data(), out.data(), n);
                check_within(out.data(), expected.data(), bound.data(), out.size(), named("swiglu", which, n));
            }
        }
    }

    TEST_CASE("softmax_matches_reference_on_every_isa") {
        // Bound: 1e-6 relative: each e^(x - max) to ~2 ulp, the sum in f32 lanes, one divide.
        // Rows include a large offset (1e4, cancelled by the max) and -inf (masked) entries.
        random_source rng(3);
        for (int64_t n : {1, 3, 7, 16, 17, 33, 1000, 32000}) {
            std::vector<float> x = rng.floats(std::size_t(n), -10.0, 10.0);
            if (n >= 3) {
                x[0] += 1e4f;
                x[n - 1] = -INFINITY;
            }
            std::vector<double> expected(static_cast<std::size_t>(n)), bound(static_cast<std::size_t>(n));
            double top = -INFINITY, total = 0.0;
            for (float v : x) top = std::max(top, double(v));
            for (int64_t i = 0; i < n; ++i) total += std::exp(double(x[i]) - top);
            for (int64_t i = 0; i < n; ++i) {
                expected[i] = std::exp(double(x[i]) - top) / total;
                bound[i] = 1e-6 * expected[i] + 1e-38;
            }
            for (isa which : supported_isas()) {
                std::vector<float> y = x;
                softmax(which, y.data(), n);
                check_within(y.data(), expected.data(), bound.data(), y.size(), named("softmax", which, n));
            }
        }
    }

    TEST_CASE("add_inplace_is_exact_on_every_isa") {
        random_source rng(4);
        for (int64_t n : lengths) {
            const std::vector<float> a = rng.floats(std::size_t(n), -5.0, 5.0), b = rng.floats(std::size_t(n), -5.0, 5.0);
            std::vector<double> expected(static_cast<std::size_t>(n)), zero(static_cast<std::size_t>(n), 0.0);
            for (int64_t i = 0; i < n; ++i) expected[i] = double(a[i] + b[i]);  // one f32 rounding
            for (isa which : supported_isas()) {
                std::vector<float> y = a;
                add_inplace(which, y.data(), b.data(), n);
                check_within(y.data(), expected.data(), zero.data(), y.size(), named("add_inplace", which, n));
            }
        }
    }

    TEST_CASE("rope_rotates_pairs_in_both_conventions") {
        // Against the formula in double: x'_a = x_a cos t - x_b sin t, x'_b = x_a sin t + x_b cos t,
        // t = freq_scale * pos * theta^(-2i/d); pairs (i, i + d/2) for NeoX, (2i, 2i+1) for GGUF.
        random_source rng(5);
        for (bool neox : {false, true}) {
            for (int32_t pos : {0, 1, 17, 4095, 100000}) {
                const int32_t heads = 3, d = 64;
                const float theta = 10000.0f, freq_scale = 0.5f;
                std::vector<float> x = rng.floats(std::size_t(heads * d), -1.0, 1.0), y = x;
                rope(y.data(), heads, d, pos, theta, freq_scale, neox);
                std::vector<double> expected(x.size()), bound(x.size(), 2e-7 * 2);
                for (int32_t h = 0; h < heads; ++h)
                    for (int32_t i = 0; i < d / 2; ++i) {
                        const double t = double(freq_scale) * pos * std::pow(double(theta), -2.0 * i / d);
                        const int a = h * d + (neox ? i : 2 * i), b = h * d + (neox ? i + d / 2 : 2 * i + 1);
                        expected[a] = x[a] * std::cos(t) - x[b] * std::sin(t);
                        expected[b] = x[a] * std::sin(t) + x[b] * std::cos(t);
                    }
                check_within(y.data(), expected.data(), bound.data(), y.size(),
                             std::string("rope neox=") + (neox ? "1" : "0") + " pos=" + std::to_string(pos));
            }
        }
    }

    TEST_CASE("rope_divides_each_pair_frequency_by_its_factor") {
        // GGUF rope_freqs (Llama 3.1): pair i turns at freq_scale * pos * theta^(-2i/d) / f_i.
        random_source rng(6);
        const int32_t heads = 2, d = 16, pos = 3000;
        const float theta = 500000.0f;
        std::vector<float> factors(d / 2);
        for (int32_t i = 0; i < d / 2; ++i) factors[i] = 1.0f + 3.5f * float(i) / float(d / 2);
        for (bool neox : {false, true}) {
            std::vector<float> x = rng.floats(std::size_t(heads * d), -1.0, 1.0), y = x;
            rope(y.data(), heads, d, pos, theta, 1.0f, neox, factors.data());
            std::vector<double> expected(x.size()), bound(x.size(), 2e-7 * 2);
            for (int32_t h = 0; h < heads; ++h)
                for (int32_t i = 0; i < d / 2; ++i) {
                    const double t = pos * std::pow(double(theta), -2.0 * i / d) / double(factors[i]);
                    const int a = h * d + (neox ? i : 2 * i), b = h * d + (neox ? i + d / 2 : 2 * i + 1);
                    expected[a] = x[a] * std::cos(t) - x[b] * std::sin(t);
                    expected[b] = x[a] * std::sin(t) + x[b] * std::cos(t);
                }
            check_within(y.data(), expected.data(), bound.data(), y.size(),
                         std::string("rope with factors neox=") + (neox ? "1" : "0"));
        }
    }

    TEST_CASE("embedding_row_reads_the_named_row_of_every_dtype") {
        random_source rng(6);
        const int64_t n = 64, rows = 5;
        for (dtype t : {dtype::f32, dtype::f16, dtype::bf16, dtype::q8_0}) {
            const int64_t ld = int64_t(row_bytes(t, n)) + (t == dtype::q8_0 ? 6 : 4);  // padded, element-aligned
            std::vector<uint8_t> table(static_cast<std::size_t>(rows * ld));
            std::vector<std::vector<float>> expected;
            for (int64_t r = 0; r < rows; ++r) {
                const std::vector<float> v = rng.floats(std::size_t(n), -1.0, 1.0);
                row_from_f32(isa::scalar, t, v.data(), &table[std::size_t(r * ld)], n);
                std::vector<float> back(static_cast<std::size_t>(n));
                row_to_f32(isa::scalar, t, &table[std::size_t(r * ld)], back.data(), n);
                expected.push_back(back);
            }
            for (int64_t token : {int64_t(0), int64_t(3), rows - 1}) {
                std::vector<float> out(static_cast<std::size_t>(n));
                embedding_row(t, table.data(), ld, token, out.data(), n);
                CHECK_MESSAGE(out == expected[std::size_t(token)], std::string(dtype_name(t)), " row ", token);
            }
        }
    }
}
