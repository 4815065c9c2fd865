// The vision kernels (llmq/kernels/vision.hpp) on every ISA against double-precision
// references written from their definitions (torch's Conv2d, LayerNorm, GELU, softmax
// attention), on shapes with edges: one token, odd sizes, patches that leave pixels over.
#include "conformance.hpp"
#include "llmq/kernels/vision.hpp"

using namespace llmq::kernels;
using namespace llmq::kernels::testing;

namespace {

std::string named(const char* op, isa which, const std::string& shape) {
    return std::string(op) + " " + isa_name(which) + " " + shape;
}

}  // namespace

TEST_SUITE("kernels") {
    TEST_CASE("patch_embedding_matches_a_double_conv2d_on_every_isa") {
        random_source rng(11);
        struct Shape {
            int32_t channels, height, width, patch;
            int64_t dim;
        };
        // 30 x 23 with patch 7: a 4 x 3 grid and pixels left over on both sides.
        for (Shape s : {Shape{3, 14, 14, 14, 5}, Shape{3, 30, 23, 7, 17}, Shape{3, 16, 16, 4, 33}, Shape{1, 5, 5, 1, 3}}) {
            const int64_t gh = s.height / s.patch, gw = s.width / s.patch, rows = gh * gw;
            const int64_t K = int64_t(s.channels) * s.patch * s.patch;
            std::vector<float> pixels = rng.floats(size_t(s.channels) * s.height * s.width, -2.0, 2.0);
            std::vector<float> w = rng.floats(size_t(s.dim * K), -0.5, 0.5);
            std::vector<uint16_t> w16(w.size());
            for (size_t i = 0; i < w.size(); ++i) w16[i] = fp32_to_fp16(w[i]);
            for (dtype wt : {dtype::f32, dtype::f16}) {
                std::vector<double> expected(size_t(rows * s.dim)), bound(expected.size());
                for (int64_t py = 0; py < gh; ++py)
                    for (int64_t px = 0; px < gw; ++px)
                        for (int64_t o = 0; o < s.dim; ++o) {
                            double sum = 0, mag = 0;
                            for (int32_t c = 0; c < s.channels; ++c)
                                for (int32_t y = 0; y < s.patch; ++y)
                                    for (int32_t x = 0; x < s.patch; ++x) {
                                        const size_t wi = size_t(o * K + (c * s.patch + y) * s.patch + x);
                                        const double wv = wt == dtype::f16 ? fp16_to_fp32(w16[wi]) : w[wi];
                                        const double xv = pixels[(size_t(c) * s.height + py * s.patch + y) * s.width + px * s.patch + x];
                                        sum += wv * xv;
                                        mag += std::fabs(wv * xv);
                                    }
                            expected[size_t((py * gw + px) * s.dim + o)] = sum;
                            // f32 summation over K terms: a few sqrt(K) ulp of sum |x w|.
                            bound[size_t((py * gw + px) * s.dim + o)] = 8.0 * std::sqrt(double(K)) * f32_unit * mag + 1e-30;
                        }
                const void* wp = wt == dtype::f16 ? static_cast<const void*>(w16.data()) : w.data();
                const int64_t ldw = K * (wt == dtype::f16 ? 2 : 4);
                for (isa which : supported_isas()) {
                    std::vector<float> out(expected.size(), -1e30f);
                    std::vector<float> cols(size_t(patch_embedding_scratch_floats(s.channels, s.patch, rows)));
                    // Two ranges, as two threads would run them.
                    const int64_t half = rows / 2;
                    patch_embedding(which, pixels.data(), s.channels, s.height, s.width, s.patch, wp, wt, ldw, s.dim,
                                    out.data(), cols.data(), 0, half);
                    patch_embedding(which, pixels.data(), s.channels, s.height, s.width, s.patch, wp, wt, ldw, s.dim,
                                    out.data(), cols.data() + half * K, half, rows);
                    check_within(out.data(), expected.data(), bound.data(), out.size(),
                                 named("patch_embedding", which, std::to_string(s.height) + "x" + std::to_string(s.width) +
                                                                     "/" + std::to_string(s.patch) + " " + dtype_name(wt)));
                }
            }
        }
    }

    TEST_CASE("layer_norm_with_and_without_bias_matches_reference") {
        // Bound: 4 u relative plus 4 u of |bias|: mean and variance are summed in double, the
        // rest is three f32 operations and the add.
        random_source rng(12);
        for (int64_t n : {int64_t(1), int64_t(2), int64_t(7), int64_t(33), int64_t(768), int64_t(1025)}) {
            const int64_t rows = 3;
            std::vector<float> x = rng.floats(size_t(rows * n), -3.0, 5.0), w = rng.floats(size_t(n), 0.5, 1.5),
                               b = rng.floats(size_t(n), -1.0, 1.0);
            for (bool with_bias : {true, false}) {
                std::vector<double> expected(x.size()), bound(x.size());
                for (int64_t r = 0; r < rows; ++r) {
                    double mean = 0, var = 0;
                    for (int64_t i = 0; i < n; ++i) mean += x[size_t(r * n + i)];
                    mean /= double(n);
                    for (int64_t i = 0; i < n; ++i) var += (x[size_t(r * n + i)] - mean) * (x[size_t(r * n + i)] - mean);
                    var /= double(n);
                    for (int64_t i = 0; i < n; ++i) {
                        const double core = (x[size_t(r * n + i)] - mean) / std::sqrt(var + 1e-5) * w[size_t(i)];
                        expected[size_t(r * n + i)] = core + (with_bias ? b[size_t(i)] : 0.0);
                        bound[size_t(r * n + i)] = 8 * f32_unit * (std::fabs(core) + (with_bias ? std::fabs(b[size_t(i)]) : 0)) +
                                                   // (x - mean) in f32 when n = 1 or the row is flat
                                                   8 * f32_unit * std::fabs(mean) * w[size_t(i)] / std::sqrt(var + 1e-5);
                    }
                }
                std::vector<float> y(x.size());
                layer_norm_rows(x.data(), w.data(), with_bias ? b.data() : nullptr, y.data(), rows, n, 1e-5f);
                check_within(y.data(), expected.data(), bound.data(), y.size(),
                             "layer_norm n=" + std::to_string(n) + (with_bias ? " bias" : " no bias"));
                std::vector<float> in_place = x;
                layer_norm_rows(in_place.data(), w.data(), with_bias ? b.data() : nullptr, in_place.data(), rows, n, 1e-5f);
                CHECK(in_place == y);
            }
        }
    }

    TEST_CASE("gelu_erf_quick_gelu_and_gated_add_match_reference") {
        random_source rng(13);
        std::vector<float> x = rng.floats(4099, -12.0, 12.0);
        x[0] = -100.0f;  // exp overflow in quick-GELU
        x[1] = 0.0f;
        std::vector<double> e_erf(x.size()), e_quick(x.size()), bound(x.size());
        for (size_t i = 0; i < x.size(); ++i) {
            const double v = x[i];
            e_erf[i] = 0.5 * v * (1.0 + std::erf(v / std::sqrt(2.0)));
            e_quick[i] = v / (1.0 + std::exp(-1.702 * v));
            // f32 erf/exp are within a few ulp; the product adds 2 u. The absolute floor covers
            // the far negative tail, where the result underflows to -0.
            bound[i] = 16 * f32_unit * std::fabs(v) + 1e-37;
        }
        std::vector<float> b = x;
        gelu_quick(b.data(), int64_t(b.size()));
        check_within(b.data(), e_quick.data(), bound.data(), b.size(), "gelu_quick");
        // gelu_erf on every ISA, over lengths that leave a partial vector (4099 = 256 x 16 + 3),
        // and the infinities: erf(+-inf) = +-1, so +inf stays, -inf * 0 is NaN as in torch.
        for (isa which : supported_isas()) {
            std::vector<float> a = x;
            gelu_erf(which, a.data(), int64_t(a.size()));
            check_within(a.data(), e_erf.data(), bound.data(), a.size(), named("gelu_erf", which, "4099").c_str());
            float inf[3] = {__builtin_inff(), -__builtin_inff(), 1.0f};
            gelu_erf(which, inf, 2);  // the third value is past n: left alone
            CHECK_MESSAGE(inf[0] == __builtin_inff(), isa_name(which), ": gelu_erf(+inf) = ", inf[0]);
            CHECK_MESSAGE(std::isnan(inf[1]), isa_name(which), ": gelu_erf(-inf) = ", inf[1]);
            CHECK_MESSAGE(inf[2] == 1.0f, isa_name(which), ": gelu_erf wrote past n");
        }

        std::vector<float> y = rng.floats(37, -1.0, 1.0), d = rng.floats(37, -2.0, 2.0);
        for (float gate : {0.0f, 0.3f, -2.5f, 40.0f}) {
            std::vector<double> expected(y.size()), gb(y.size());
            for (size_t i = 0; i < y.size(); ++i) {
                expected[i] = y[i] + std::tanh(double(gate)) * d[i];
                gb[i] = 4 * f32_unit * (std::fabs(y[i]) + std::fabs(d[i]));
            }
            std::vector<float> out = y;
            gated_add(out.data(), d.data(), gate, int64_t(out.size()));
            check_within(out.data(), expected.data(), gb.data(), out.size(), "gated_add gate=" + std::to_string(gate));
        }
    }

    TEST_CASE("bidirectional_attention_matches_full_softmax_on_every_isa") {
        random_source rng(14);
        struct Shape {
            int32_t tokens, heads, head_dim;
            bool masked;
        };
        for (Shape s : {Shape{1, 1, 8, false}, Shape{5, 3, 8, false}, Shape{17, 2, 64, false}, Shape{50, 4, 32, false},
                        Shape{17, 2, 64, true}, Shape{50, 3, 40, true}}) {
            const size_t n = size_t(s.tokens) * s.heads * s.head_dim;
            std::vector<float> q = rng.floats(n, -1.0, 1.0), k = rng.floats(n, -1.0, 1.0), v = rng.floats(n, -1.0, 1.0);
            std::vector<int32_t> key_len(size_t(s.tokens));
            for (int32_t t = 0; t < s.tokens; ++t) key_len[size_t(t)] = 1 + int32_t(rng.bits() % uint32_t(s.tokens));
            const float scale = 1.0f / std::sqrt(float(s.head_dim));
            std::vector<double> expected(n), bound(n);
            for (int32_t t = 0; t < s.tokens; ++t)
                for (int32_t h = 0; h < s.heads; ++h) {
                    const int32_t keys = s.masked ? key_len[size_t(t)] : s.tokens;
                    std::vector<double> score(static_cast<size_t>(keys));
                    double mx = -1e300, sum = 0;
                    for (int32_t j = 0; j < keys; ++j) {
                        double dot = 0;
                        for (int32_t d = 0; d < s.head_dim; ++d)
                            dot += double(q[(size_t(t) * s.heads + h) * s.head_dim + d]) * k[(size_t(j) * s.heads + h) * s.head_dim + d];
                        score[size_t(j)] = dot * scale;
                        mx = std::max(mx, score[size_t(j)]);
                    }
                    for (double& e : score) sum += (e = std::exp(e - mx));
                    for (int32_t d = 0; d < s.head_dim; ++d) {
                        double o = 0;
                        for (int32_t j = 0; j < keys; ++j) o += score[size_t(j)] / sum * v[(size_t(j) * s.heads + h) * s.head_dim + d];
                        const size_t i = (size_t(t) * s.heads + h) * s.head_dim + d;
                        expected[i] = o;
                        // Values are in [-1, 1]: the online softmax in f32 errs by a few ulp of
                        // each score times head_dim terms (as the paged-attention test bounds it).
                        bound[i] = 64 * f32_unit * std::sqrt(double(s.head_dim) * keys) + 1e-6;
                    }
                }
            std::vector<int32_t> indices(size_t(bidirectional_attention_index_ints(s.tokens)));
            bidirectional_attention_indices(s.tokens, s.masked ? key_len.data() : nullptr, indices.data());
            for (isa which : supported_isas()) {
                std::vector<float> out(n, 1e30f);
                const int64_t items = int64_t(s.tokens) * s.heads, mid = items / 3;
                bidirectional_attention(which, q.data(), k.data(), v.data(), out.data(), s.tokens, s.heads, s.head_dim,
                                        scale, indices.data(), 0, mid);
                bidirectional_attention(which, q.data(), k.data(), v.data(), out.data(), s.tokens, s.heads, s.head_dim,
                                        scale, indices.data(), mid, items);
                check_within(out.data(), expected.data(), bound.data(), n,
                             named("bidirectional_attention", which,
                                   std::to_string(s.tokens) + "x" + std::to_string(s.heads) + "x" + std::to_string(s.head_dim) +
                                       (s.masked ? " masked" : "")));
            }
        }
    }
}
