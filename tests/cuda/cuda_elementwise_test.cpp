// The built-in CUDA element-wise kernels against float64 references (the same formulas as
// the CPU kernels), in f32 and bf16 (and f16 where it differs), outputs poisoned first.
// Needs a GPU (exits 77 without one).
#include <cmath>
#include <random>
#include <vector>

#include "cuda_test_support.hpp"
#include "llmq/kernels/cuda.hpp"

namespace {

using namespace llmq::cuda_testing;
namespace kc = llmq::kernels::cuda;

struct on_device {
    k::dtype t;
    stored_rows host;
    device_buffer buffer;
    on_device(k::dtype type, const std::vector<float>& values)
        : t(type), host(store_rows(type, values, 1, int64_t(values.size()), int64_t(values.size() * element_bytes(type)))),
          buffer(host.bytes.size()) {
        buffer.upload(host.bytes.data());
    }
    std::vector<double> read() const {
        std::vector<uint8_t> bytes(buffer.bytes);
        buffer.download(bytes.data());
        const int64_t n = int64_t(buffer.bytes / element_bytes(t));
        return widen(t, bytes.data(), 1, n, int64_t(buffer.bytes));
    }
};

// Worst |got - want| / (rounding of t * |want| + absolute), NaN counting as a failure.
double worst_error(const std::vector<double>& got, const std::vector<double>& want, k::dtype t, double absolute) {
    REQUIRE(got.size() == want.size());
    double worst = 0.0;
    for (size_t i = 0; i < got.size(); ++i) {
        const double tol = rounding_of(t) * std::fabs(want[i]) + absolute;
        worst = std::max(worst, std::isfinite(got[i]) ? std::fabs(got[i] - want[i]) / tol : 1e30);
    }
    return worst;
}

std::vector<float> values_of(const std::vector<double>& v) { return std::vector<float>(v.begin(), v.end()); }

}  // namespace

TEST_CASE("cuda_norms_match_float64") {
    std::mt19937 rng(5);
    cudaStream_t stream = nullptr;
    LLMQ_CUDA_CHECK(cudaStreamCreate(&stream));
    for (k::dtype t : {k::dtype::f32, k::dtype::bf16, k::dtype::f16})
        for (int64_t n : {1, 31, 4096, 5000}) {
            const int64_t rows = 3;
            on_device x(t, random_values(rng, size_t(rows * n), 2.0f)), delta(t, random_values(rng, size_t(rows * n)));
            const std::vector<float> weight = random_values(rng, size_t(n));
            device_buffer w(size_t(n) * 4), y(x.buffer.bytes);
            w.upload(weight.data());
            const float eps = 1e-5f;
            auto norm_ref = [&](const std::vector<double>& in) {
                std::vector<double> out(in.size());
                for (int64_t r = 0; r < rows; ++r) {
                    double ss = 0.0;
                    for (int64_t i = 0; i < n; ++i) ss += in[size_t(r * n + i)] * in[size_t(r * n + i)];
                    const double inv = 1.0 / std::sqrt(ss / double(n) + eps);
                    for (int64_t i = 0; i < n; ++i) out[size_t(r * n + i)] = in[size_t(r * n + i)] * inv * weight[size_t(i)];
                }
                return out;
            };
            y.poison();
            REQUIRE(kc::rms_norm(t, x.buffer.data, w.as<float>(), y.data, rows, n, eps, stream) == cudaSuccess);
            LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
            std::vector<uint8_t> bytes(y.bytes);
            y.download(bytes.data());
            INFO("rms_norm ", k::dtype_name(t), " n=", n);
            CHECK(worst_error(widen(t, bytes.data(), 1, rows * n, int64_t(y.bytes)), norm_ref(x.host.values), t, 1e-5) <= 1.0);

            // residual += delta, normed = rms_norm(rounded residual)
            std::vector<double> sum(x.host.values.size());
            for (size_t i = 0; i < sum.size(); ++i) sum[i] = x.host.values[i] + delta.host.values[i];
            const stored_rows rounded = store_rows(t, values_of(sum), 1, int64_t(sum.size()), int64_t(x.buffer.bytes));
            y.poison();
            REQUIRE(kc::add_rms_norm(t, x.buffer.data, delta.buffer.data, w.as<float>(), y.data, rows, n, eps, stream) ==
                    cudaSuccess);
            LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
            y.download(bytes.data());
            INFO("add_rms_norm ", k::dtype_name(t), " n=", n);
            CHECK(worst_error(x.read(), sum, t, 1e-6) <= 1.0);
            CHECK(worst_error(widen(t, bytes.data(), 1, rows * n, int64_t(y.bytes)), norm_ref(rounded.values), t, 1e-5) <= 1.0);
        }
    cudaStreamDestroy(stream);
}

TEST_CASE("cuda_rope_kv_write_rotates_q_and_writes_rotated_k_and_v_into_their_slots") {
    std::mt19937 rng(6);
    cudaStream_t stream = nullptr;
    LLMQ_CUDA_CHECK(cudaStreamCreate(&stream));
    for (bool neox : {false, true})
        for (k::dtype t : {k::dtype::f32, k::dtype::bf16}) {
            const int32_t tokens = 5, H = 8, G = 2, D = 128;
            const int64_t num_slots = 64;
            on_device q(t, random_values(rng, size_t(tokens * H * D))), kk(t, random_values(rng, size_t(tokens * G * D))),
                v(t, random_values(rng, size_t(tokens * G * D)));
            const std::vector<int32_t> positions = {0, 1, 17, 1000, 32767};
            const std::vector<int64_t> slots = {3, -1, 40, 63, 64};  // -1 and 64 are skipped
            device_buffer dpos(positions.size() * 4), dslots(slots.size() * 8);
            dpos.upload(positions.data());
            dslots.upload(slots.data());
            on_device kcache(t, std::vector<float>(size_t(num_slots * G * D), 0.25f)),
                vcache(t, std::vector<float>(size_t(num_slots * G * D), 0.25f));
            kc::rope_kv_write_args a{};
            a.act = t;
            a.q = q.buffer.data;
            a.k = kk.buffer.data;
            a.v = v.buffer.data;
            a.kv_t = t;
            a.k_cache = kcache.buffer.data;
            a.v_cache = vcache.buffer.data;
            a.positions = dpos.as<int32_t>();
            a.slots = dslots.as<int64_t>();
            a.num_slots = num_slots;
            a.tokens = tokens;
            a.num_heads = H;
            a.num_kv_heads = G;
            a.head_dim = D;
            a.theta = 500000.0f;
            a.freq_scale = 1.0f;
            a.neox = neox;
            REQUIRE(kc::rope_kv_write(a, stream) == cudaSuccess);
            LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
            auto rotate = [&](const std::vector<double>& in, int32_t heads, int32_t token) {
                std::vector<double> out(size_t(heads * D));
                for (int32_t h = 0; h < heads; ++h)
                    for (int32_t i = 0; i < D / 2; ++i) {
                        const double angle = double(positions[size_t(token)]) * std::pow(500000.0, -2.0 * i / D);
                        const int32_t f = neox ? i : 2 * i, s = neox ? i + D / 2 : 2 * i + 1;
                        const double x0 = in[size_t((token * heads + h) * D + f)], x1 = in[size_t((token * heads + h) * D + s)];
                        out[size_t(h * D + f)] = x0 * std::cos(angle) - x1 * std::sin(angle);
                        out[size_t(h * D + s)] = x0 * std::sin(angle) + x1 * std::cos(angle);
                    }
                return out;
            };
            const std::vector<double> q_got = q.read(), k_got = kcache.read(), v_got = vcache.read();
            for (int32_t token = 0; token < tokens; ++token) {
                const std::vector<double> q_want = rotate(q.host.values, H, token);
                const std::vector<double> q_row(q_got.begin() + token * H * D, q_got.begin() + (token + 1) * H * D);
                INFO("rope q ", k::dtype_name(t), " neox ", neox, " token ", token);
                CHECK(worst_error(q_row, q_want, t, 1e-6) <= 1.0);
                const int64_t slot = slots[size_t(token)];
                if (slot < 0 || slot >= num_slots) continue;
                const std::vector<double> k_want = rotate(kk.host.values, G, token);
                const std::vector<double> k_row(k_got.begin() + slot * G * D, k_got.begin() + (slot + 1) * G * D);
                const std::vector<double> v_want(v.host.values.begin() + token * G * D, v.host.values.begin() + (token + 1) * G * D);
                const std::vector<double> v_row(v_got.begin() + slot * G * D, v_got.begin() + (slot + 1) * G * D);
                CHECK(worst_error(k_row, k_want, t, 1e-6) <= 1.0);
                CHECK(worst_error(v_row, v_want, t, 0.0) <= 1.0);
            }
            // RoPE alone rotates q the same way; kv_write alone copies k unrotated.
            on_device q2(t, std::vector<float>(q.host.values.begin(), q.host.values.end()));
            REQUIRE(kc::rope(t, q2.buffer.data, tokens, H, D, dpos.as<int32_t>(), 500000.0f, 1.0f, neox, stream) ==
                    cudaSuccess);
            on_device kcache2(t, std::vector<float>(size_t(num_slots * G * D), 0.25f)),
                vcache2(t, std::vector<float>(size_t(num_slots * G * D), 0.25f));
            REQUIRE(kc::kv_write(t, kk.buffer.data, v.buffer.data, t, kcache2.buffer.data, vcache2.buffer.data,
                                 dslots.as<int64_t>(), num_slots, tokens, G * D, stream) == cudaSuccess);
            LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
            CHECK(worst_error(q2.read(), q_got, t, 1e-30) <= 1.0);
            const std::vector<double> k2 = kcache2.read();
            for (int32_t token = 0; token < tokens; ++token) {
                const int64_t slot = slots[size_t(token)];
                if (slot < 0 || slot >= num_slots) continue;
                for (int64_t i = 0; i < G * D; ++i)
                    CHECK(k2[size_t(slot * G * D + i)] == kk.host.values[size_t(token * G * D + i)]);
            }
            CHECK(k2[size_t(5 * G * D)] == 0.25);
            // Slots nobody wrote keep their 0.25.
            CHECK(k_got[size_t(5 * G * D)] == 0.25);
            CHECK(v_got[size_t(62 * G * D + 7)] == 0.25);
        }
    cudaStreamDestroy(stream);
}

TEST_CASE("cuda_swiglu_bias_add_and_gathers_match_float64") {
    std::mt19937 rng(8);
    cudaStream_t stream = nullptr;
    LLMQ_CUDA_CHECK(cudaStreamCreate(&stream));
    for (k::dtype t : {k::dtype::f32, k::dtype::bf16}) {
        const int64_t rows = 4, n = 1000;
        // gate|up fused rows of 2n
        on_device gate_up(t, random_values(rng, size_t(rows * 2 * n), 4.0f));
        device_buffer out(size_t(rows * n) * element_bytes(t));
        out.poison();
        const auto* base = static_cast<const uint8_t*>(gate_up.buffer.data);
        REQUIRE(kc::swiglu(t, base, base + n * int64_t(element_bytes(t)), 2 * n, out.data, n, rows, n, stream) == cudaSuccess);
        LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<double> want(size_t(rows * n));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < n; ++i) {
                const double g = gate_up.host.values[size_t(r * 2 * n + i)], u = gate_up.host.values[size_t(r * 2 * n + n + i)];
                want[size_t(r * n + i)] = g / (1.0 + std::exp(-g)) * u;
            }
        std::vector<uint8_t> bytes(out.bytes);
        out.download(bytes.data());
        INFO("swiglu ", k::dtype_name(t));
        CHECK(worst_error(widen(t, bytes.data(), 1, rows * n, int64_t(out.bytes)), want, t, 1e-6) <= 1.0);

        on_device y(t, random_values(rng, size_t(rows * n)));
        const std::vector<float> bias = random_values(rng, size_t(n));
        device_buffer dbias(size_t(n) * 4);
        dbias.upload(bias.data());
        REQUIRE(kc::bias_add(t, y.buffer.data, n, dbias.as<float>(), rows, n, stream) == cudaSuccess);
        LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t i = 0; i < n; ++i) want[size_t(r * n + i)] = y.host.values[size_t(r * n + i)] + bias[size_t(i)];
        INFO("bias_add ", k::dtype_name(t));
        CHECK(worst_error(y.read(), want, t, 1e-6) <= 1.0);

        // Logit rows: rows 3, 0 and an invalid one, to f32.
        const std::vector<int32_t> picks = {3, 0, 4};
        device_buffer dpicks(picks.size() * 4), gathered(picks.size() * size_t(n) * 4);
        dpicks.upload(picks.data());
        gathered.poison();
        REQUIRE(kc::gather_rows(t, y.buffer.data, n, rows, dpicks.as<int32_t>(), 3, n, k::dtype::f32, gathered.data, stream) ==
                cudaSuccess);
        LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<float> g(picks.size() * size_t(n));
        gathered.download(g.data());
        const std::vector<double> y_now = y.read();
        CHECK(g[0] == float(y_now[size_t(3 * n)]));
        CHECK(g[size_t(n + 5)] == float(y_now[5]));
        CHECK(std::isnan(g[size_t(2 * n + 1)]));

        // Embedding rows from a q8_0 table and a bf16 one holding tokens [100, 150) (a tensor
        // rank's part of the vocabulary): others' tokens give zeros.
        for (k::dtype table_t : {k::dtype::q8_0, k::dtype::bf16}) {
            const int64_t vocab = 50, dim = 96, ld = int64_t(k::row_bytes(table_t, dim));
            const stored_rows table = store_rows(table_t, random_values(rng, size_t(vocab * dim)), vocab, dim, ld);
            device_buffer dtable(table.bytes.size()), embedded(size_t(4 * dim) * element_bytes(t));
            dtable.upload(table.bytes.data());
            const std::vector<int32_t> tokens = {149, 100, 150, 99};
            device_buffer dtokens(tokens.size() * 4);
            dtokens.upload(tokens.data());
            embedded.poison();
            REQUIRE(kc::embedding_gather(table_t, dtable.data, ld, 100, vocab, dtokens.as<int32_t>(), 4, dim, t,
                                         embedded.data, stream) == cudaSuccess);
            LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
            std::vector<uint8_t> eb(embedded.bytes);
            embedded.download(eb.data());
            const std::vector<double> e = widen(t, eb.data(), 1, 4 * dim, int64_t(embedded.bytes));
            std::vector<double> want_e(size_t(4 * dim), 0.0);
            for (int64_t i = 0; i < dim; ++i) {
                want_e[size_t(i)] = table.values[size_t(49 * dim + i)];
                want_e[size_t(dim + i)] = table.values[size_t(i)];
            }
            INFO("embedding ", k::dtype_name(table_t), " -> ", k::dtype_name(t));
            CHECK(worst_error(e, want_e, t, 1e-30) <= 1.0);
        }

        // y += x
        on_device sum(t, random_values(rng, size_t(rows * n))), addend(t, random_values(rng, size_t(rows * n)));
        REQUIRE(kc::add(t, sum.buffer.data, addend.buffer.data, rows * n, stream) == cudaSuccess);
        LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
        for (size_t i = 0; i < want.size(); ++i) want[i] = sum.host.values[i] + addend.host.values[i];
        INFO("add ", k::dtype_name(t));
        CHECK(worst_error(sum.read(), want, t, 1e-6) <= 1.0);
    }
    cudaStreamDestroy(stream);
}

// The kernels the CUDA backend added: RoPE with per-pair frequency divisors (Llama 3.1's
// rope_freqs), the conversion of a GEMM input to the weight's type, and the in-order sum of
// the device-memory all-reduce (bit-identical to adding the rows one after another in f32).
TEST_CASE("cuda_rope_freq_factors_convert_and_in_order_sum_match_float64") {
    std::mt19937 rng(11);
    cudaStream_t stream = nullptr;
    LLMQ_CUDA_CHECK(cudaStreamCreate(&stream));
    const int32_t tokens = 3, H = 4, D = 64;
    const std::vector<int32_t> positions = {0, 9, 5000};
    std::vector<float> factors(size_t(D / 2));
    for (int32_t i = 0; i < D / 2; ++i) factors[size_t(i)] = 1.0f + float(i % 7);
    device_buffer dpos(positions.size() * 4), dfactors(factors.size() * 4);
    dpos.upload(positions.data());
    dfactors.upload(factors.data());
    for (bool neox : {false, true}) {
        on_device q(k::dtype::f32, random_values(rng, size_t(tokens * H * D)));
        REQUIRE(kc::rope(k::dtype::f32, q.buffer.data, tokens, H, D, dpos.as<int32_t>(), 10000.0f, 1.0f, neox, stream,
                         dfactors.as<float>()) == cudaSuccess);
        LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
        std::vector<double> want(q.host.values);
        for (int32_t t = 0; t < tokens; ++t)
            for (int32_t h = 0; h < H; ++h)
                for (int32_t i = 0; i < D / 2; ++i) {
                    const double angle =
                        double(positions[size_t(t)]) * std::pow(10000.0, -2.0 * i / D) / double(factors[size_t(i)]);
                    const int32_t f = neox ? i : 2 * i, s = neox ? i + D / 2 : 2 * i + 1;
                    const size_t row = size_t((t * H + h) * D);
                    const double x0 = q.host.values[row + f], x1 = q.host.values[row + s];
                    want[row + f] = x0 * std::cos(angle) - x1 * std::sin(angle);
                    want[row + s] = x0 * std::sin(angle) + x1 * std::cos(angle);
                }
        INFO("rope with freq_factors, neox ", neox);
        CHECK(worst_error(q.read(), want, k::dtype::f32, 1e-6) <= 1.0);
    }
    for (k::dtype to : {k::dtype::bf16, k::dtype::f16, k::dtype::f32})
        for (int64_t n : {1, 33, 100000}) {
            on_device x(k::dtype::f32, random_values(rng, size_t(n), 3.0f));
            on_device y(to, std::vector<float>(size_t(n), NAN));
            REQUIRE(kc::convert(k::dtype::f32, x.buffer.data, to, y.buffer.data, n, stream) == cudaSuccess);
            LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
            INFO("convert f32 -> ", k::dtype_name(to), " n ", n);
            CHECK(worst_error(y.read(), x.host.values, to, 1e-7) <= 1.0);  // f16 subnormals near 0
        }
    for (int32_t count : {1, 2, 3, 8})
        for (int64_t n : {1, 1000, 70000}) {
            const int64_t stride = n + 5;
            std::vector<float> rows = random_values(rng, size_t(count * stride));
            device_buffer drows(rows.size() * 4), dy(size_t(n) * 4);
            drows.upload(rows.data());
            dy.poison();
            REQUIRE(kc::sum_rows_in_order(drows.as<float>(), count, stride, dy.as<float>(), n, stream) ==
                    cudaSuccess);
            LLMQ_CUDA_CHECK(cudaStreamSynchronize(stream));
            std::vector<float> got(static_cast<size_t>(n));
            dy.download(got.data());
            size_t mismatched = 0;
            for (int64_t i = 0; i < n; ++i) {
                float want = rows[size_t(i)];
                for (int32_t r = 1; r < count; ++r) want += rows[size_t(r * stride + i)];
                mismatched += std::memcmp(&want, &got[size_t(i)], 4) != 0;
            }
            INFO("sum_rows_in_order count ", count, " n ", n);
            CHECK(mismatched == 0);
        }
    cudaStreamDestroy(stream);
}
