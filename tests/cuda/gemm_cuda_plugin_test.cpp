// gemm-cuda against a float64 reference on random inputs of many shapes and type mixes:
// bf16, f16 and f32 weights through cuBLASLt, q8_0 weights through the GEMV kernel (M <= 16)
// and the dequantized tiles (larger M), q4_0, q4_k, q5_k and q6_k weights through theirs;
// strided x and y; y poisoned before every run.
// Needs a GPU (exits 77 without one, see cuda_test_main.cpp).
#include <cmath>
#include <cstdio>
#include <random>
#include <utility>
#include <vector>

#include "../plugins/plugin_test_host.hpp"
#include "cuda_test_support.hpp"

namespace {

using namespace llmq::cuda_testing;
using llmq::plugin_testing::loaded_plugin;

llmq_tensor device_matrix(void* data, k::dtype t, int64_t rows, int64_t cols, int64_t row_bytes) {
    llmq_tensor v{};
    v.data = data;
    v.rank = 2;
    v.dtype = int32_t(t);
    v.shape[0] = rows;
    v.shape[1] = cols;
    v.strides[0] = row_bytes;
    v.strides[1] = k::dtype_info_of(t).block_values > 1 ? 0 : int64_t(element_bytes(t));
    v.device_type = LLMQ_BACKEND_CUDA;
    v.device_index = 0;
    return v;
}

struct gemm_case {
    int64_t M, N, K;
    k::dtype x_t, w_t, y_t;
    int64_t x_pad = 0, y_pad = 0;  // extra elements per row
};

// Runs one case and returns the worst error in units of its tolerance (<= 1 passes).
double run_case(const llmq_plugin_descriptor* d, void* state, cuda_host& host, const gemm_case& c, std::mt19937& rng) {
    const int64_t ldx = c.K + c.x_pad, ldy = c.N + c.y_pad;
    const size_t xe = element_bytes(c.x_t), ye = element_bytes(c.y_t);
    const int64_t w_row = int64_t(k::row_bytes(c.w_t, c.K));
    const stored_rows x = store_rows(c.x_t, random_values(rng, size_t(c.M * c.K)), c.M, c.K, c.K * int64_t(xe));
    const stored_rows w = store_rows(c.w_t, random_values(rng, size_t(c.N * c.K), 0.5f), c.N, c.K, w_row);

    // x with its row padding (padding bytes random garbage).
    std::vector<uint8_t> x_padded(size_t(c.M * ldx) * xe, 0x5a);
    for (int64_t m = 0; m < c.M; ++m)
        std::memcpy(&x_padded[size_t(m * ldx) * xe], &x.bytes[size_t(m * c.K) * xe], size_t(c.K) * xe);
    device_buffer dx(x_padded.size()), dw(w.bytes.size()), dy(size_t(c.M * ldy) * ye);
    dx.upload(x_padded.data());
    dw.upload(w.bytes.data());
    dy.poison();

    llmq_matmul_args a{};
    a.struct_size = sizeof a;
    a.x = device_matrix(dx.data, c.x_t, c.M, c.K, ldx * int64_t(xe));
    a.w = device_matrix(dw.data, c.w_t, c.N, c.K, w_row);
    a.y = device_matrix(dy.data, c.y_t, c.M, c.N, ldy * int64_t(ye));
    llmq_error error{};
    const llmq_status s = d->gemm->matmul(state, &a, &error);
    REQUIRE_MESSAGE(s == LLMQ_OK, error.message);
    host.sync();
    std::vector<uint8_t> y_bytes(dy.bytes);
    dy.download(y_bytes.data());
    const std::vector<double> y = widen(c.y_t, y_bytes.data(), c.M, c.N, ldy * int64_t(ye));

    // Tolerance: the output's rounding of |ref|, f32 accumulation, and for the dequantized
    // tiles of block-quantized weights (M > 16) their rounding to x's type. (1e-5 of sum
    // |x w|: f32 sums in tensor-core tiles, whose accumulation is not round-to-nearest at
    // every step.) The reference multiplies the weights' values as the CPU dequantizes them,
    // which tests/reference checks bit for bit against the formats' definitions.
    double in_rounding = 0.0;
    if (k::dtype_info_of(c.w_t).block_values > 1 && c.M > 16) in_rounding = rounding_of(c.x_t);
    double worst = 0.0;
    for (int64_t m = 0; m < c.M; ++m)
        for (int64_t n = 0; n < c.N; ++n) {
            double ref = 0.0, magnitude = 0.0;
            for (int64_t kk = 0; kk < c.K; ++kk) {
                const double p = x.values[size_t(m * c.K + kk)] * w.values[size_t(n * c.K + kk)];
                ref += p;
                magnitude += std::fabs(p);
            }
            const double got = y[size_t(m * c.N + n)];
            const double tol = rounding_of(c.y_t) * std::fabs(ref) + (in_rounding + 1e-5) * magnitude + 1e-30;
            const double err = std::isfinite(got) ? std::fabs(got - ref) / tol : 1e30;
            if (err > worst) worst = err;
        }
    return worst;
}

}  // namespace

TEST_CASE("gemm_cuda_matches_a_float64_reference_on_many_shapes_and_types") {
    loaded_plugin plugin("gemm-cuda");
    cuda_host host("dequant_tile_mib = 1\n");  // small tiles: several tiles per q8_0 weight
    auto inst = plugin.init(&host.table);
    REQUIRE_MESSAGE(inst->status == LLMQ_OK, inst->error.message);
    CHECK(plugin.descriptor->backend == LLMQ_BACKEND_CUDA);
    CHECK(plugin.descriptor->abi_version == LLMQ_PLUGIN_ABI_VERSION);

    using t = k::dtype;
    const int64_t shapes[][3] = {{1, 1, 32},    {1, 7, 64},     {2, 33, 96},   {3, 100, 160},  {16, 128, 256},
                                 {17, 64, 128}, {64, 256, 512}, {5, 257, 1024}, {200, 96, 160}, {1, 1536, 4096},
                                 {33, 3000, 64}, {20, 300, 4096}};  // last: 3 dequantized tiles of 128 rows
    const gemm_case mixes[] = {
        {0, 0, 0, t::bf16, t::bf16, t::bf16}, {0, 0, 0, t::bf16, t::bf16, t::f32}, {0, 0, 0, t::f16, t::f16, t::f16},
        {0, 0, 0, t::f16, t::f16, t::f32},    {0, 0, 0, t::f32, t::f32, t::f32},   {0, 0, 0, t::bf16, t::q8_0, t::bf16},
        {0, 0, 0, t::f32, t::q8_0, t::f32},   {0, 0, 0, t::f16, t::q8_0, t::f32},
    };
    std::mt19937 rng(1234);
    const size_t quick_mixes[] = {0, 4, 5};  // bf16, f32 and q8_0 weights
    const size_t mix_count = quick_run() ? std::size(quick_mixes) : std::size(mixes);
    const size_t shape_count = quick_run() ? 7 : std::size(shapes);
    for (size_t mi = 0; mi < mix_count; ++mi)
        for (size_t si = 0; si < shape_count; ++si) {
            const gemm_case& mix = mixes[quick_run() ? quick_mixes[mi] : mi];
            const auto& shape = shapes[si];
            gemm_case c = mix;
            c.M = shape[0];
            c.N = shape[1];
            c.K = shape[2];
            const double worst = run_case(plugin.descriptor, inst->state, host, c, rng);
            INFO("M=", c.M, " N=", c.N, " K=", c.K, " x ", k::dtype_name(c.x_t), " w ", k::dtype_name(c.w_t), " y ",
                 k::dtype_name(c.y_t), ": worst error ", worst, " tolerances");
            CHECK(worst <= 1.0);
        }
    // q4_0 and the K-quants: the GEMV (M <= 16) and the dequantized tiles (M > 16, several
    // tiles of 128 rows for N = 300 with 1 MiB tiles of K = 4096), K a multiple of 256.
    const int64_t block_shapes[][3] = {{1, 7, 256},    {2, 33, 512},  {16, 128, 256}, {17, 64, 512},
                                       {5, 257, 1024}, {1, 1536, 4096}, {64, 256, 512}, {20, 300, 4096}};
    for (const t w_t : {t::q4_0, t::q4_k, t::q5_k, t::q6_k})
        for (const auto& [x_t, y_t] : {std::pair{t::bf16, t::bf16}, std::pair{t::f32, t::f32}, std::pair{t::f16, t::f32}})
            for (size_t si = 0; si < (quick_run() ? 4 : std::size(block_shapes)); ++si) {
                if (quick_run() && x_t != t::bf16) continue;
                gemm_case c{block_shapes[si][0], block_shapes[si][1], block_shapes[si][2], x_t, w_t, y_t};
                const double worst = run_case(plugin.descriptor, inst->state, host, c, rng);
                INFO("M=", c.M, " N=", c.N, " K=", c.K, " x ", k::dtype_name(c.x_t), " w ", k::dtype_name(c.w_t), " y ",
                     k::dtype_name(c.y_t), ": worst error ", worst, " tolerances");
                CHECK(worst <= 1.0);
            }
    // Strided rows of x and y, for both paths.
    for (const auto& mix : {mixes[0], mixes[5]})
        for (int64_t M : {1, 9, 40}) {
            gemm_case c = mix;
            c.M = M;
            c.N = 72;
            c.K = 192;
            c.x_pad = 8;
            c.y_pad = 24;
            const double worst = run_case(plugin.descriptor, inst->state, host, c, rng);
            INFO("strided M=", M, " w ", k::dtype_name(c.w_t), ": worst error ", worst);
            CHECK(worst <= 1.0);
        }
}

TEST_CASE("gemm_cuda_refuses_host_tensors_and_mixed_types_before_enqueueing") {
    loaded_plugin plugin("gemm-cuda");
    cuda_host host;
    auto inst = plugin.init(&host.table);
    REQUIRE_MESSAGE(inst->status == LLMQ_OK, inst->error.message);
    device_buffer dx(64 * 2), dw(64 * 64 * 2), dy(64 * 4);
    llmq_matmul_args a{};
    a.struct_size = sizeof a;
    a.x = device_matrix(dx.data, k::dtype::bf16, 1, 64, 128);
    a.w = device_matrix(dw.data, k::dtype::f16, 64, 64, 128);
    a.y = device_matrix(dy.data, k::dtype::f32, 1, 64, 256);
    llmq_error error{};
    CHECK(plugin.descriptor->gemm->matmul(inst->state, &a, &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("x is bf16 but w is f16") != std::string::npos);
    a.w.dtype = LLMQ_DTYPE_BF16;
    a.x.device_type = LLMQ_BACKEND_CPU;
    CHECK(plugin.descriptor->gemm->matmul(inst->state, &a, &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("x.device_type") != std::string::npos);
}
