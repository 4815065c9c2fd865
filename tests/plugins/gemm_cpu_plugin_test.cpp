// The gemm-cpu plugin, loaded with dlopen from LLMQ_PLUGIN_DIR and driven only through the
// ABI by a tiny test host: its descriptor, its results against the kernels' scalar
// reference, and its refusal of every kind of bad argument; and both CPU plugins' refusal of
// bad host tables and configurations.
#include <cmath>
#include <cstring>

#include "llmq/kernels/cpu.hpp"
#include "llmq/kernels/gemm_units.hpp"
#include "plugin_test_host.hpp"

namespace k = llmq::kernels;
using namespace llmq::plugin_testing;

namespace {

uint32_t lcg_state = 12345;
float next_value() {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return float(int32_t(lcg_state >> 8) - (1 << 23)) / float(1 << 23);
}

llmq_tensor matrix(void* data, k::dtype t, int64_t rows, int64_t cols, int64_t row_stride) {
    llmq_tensor x{};
    x.data = data;
    x.rank = 2;
    x.dtype = static_cast<int32_t>(t);
    x.shape[0] = rows;
    x.shape[1] = cols;
    x.shape[2] = x.shape[3] = 1;
    x.strides[0] = row_stride;
    x.strides[1] = t == k::dtype::q8_0 ? 0 : (t == k::dtype::f32 ? 4 : 2);
    x.device_type = LLMQ_BACKEND_CPU;
    return x;
}

// One GEMM problem with its inputs, its ABI arguments and the reference answer.
struct gemm_problem {
    int64_t M, N, K;
    k::dtype wt;
    std::vector<float> x, y;
    std::vector<uint8_t> w;
    std::vector<double> bound;  // per output: 8 sqrt(K) u sum|x w| (see the kernels harness)
    std::vector<float> expected;
    llmq_matmul_args args{};

    gemm_problem(int64_t M_, int64_t N_, int64_t K_, k::dtype wt_) : M(M_), N(N_), K(K_), wt(wt_) {
        const int64_t ldx = K + 2, ldy = N + 3, ldw = int64_t(k::row_bytes(wt, K)) + 8;
        x.resize(std::size_t(M * ldx));
        for (float& v : x) v = next_value();
        w.resize(std::size_t(N * ldw));
        std::vector<float> row(static_cast<std::size_t>(K)), wide(static_cast<std::size_t>(N * K));
        for (int64_t n = 0; n < N; ++n) {
            for (float& v : row) v = next_value();
            k::row_from_f32(k::isa::scalar, wt, row.data(), &w[std::size_t(n * ldw)], K);
            k::row_to_f32(k::isa::scalar, wt, &w[std::size_t(n * ldw)], &wide[std::size_t(n * K)], K);
        }
        y.assign(std::size_t(M * ldy), -1.0f);
        expected.assign(y.size(), 0.0f);
        // The scalar kernels, unless the plugin's ISA (the best) quantizes x where the scalar
        // one does not (Q8_0 prefill on avx512_bf16): then that ISA's own kernels, whose
        // numerics kernels_gemm_matches_reference_on_every_isa checks against float64.
        const k::isa reference_isa = k::gemm_quantizes_x(k::best_isa(), wt, M, K) != k::gemm_quantizes_x(k::isa::scalar, wt, M, K)
                                         ? k::best_isa()
                                         : k::isa::scalar;
        k::gemm(reference_isa, x.data(), M, K, ldx, w.data(), wt, ldw, expected.data(), ldy, 0, N);
        bound.assign(y.size(), 0.0);
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
                double magnitude = 0.0;
                for (int64_t kk = 0; kk < K; ++kk) magnitude += std::fabs(double(x[m * ldx + kk]) * wide[n * K + kk]);
                bound[m * ldy + n] = 8.0 * std::sqrt(double(K)) * 5.96e-8 * magnitude + 1e-30;
            }
        args.struct_size = sizeof args;
        args.x = matrix(x.data(), k::dtype::f32, M, K, ldx * 4);
        args.w = matrix(w.data(), wt, N, K, ldw);
        args.y = matrix(y.data(), k::dtype::f32, M, N, ldy * 4);
    }

    // Both the plugin and the reference are within `bound * scale` of the exact result.
    bool matches(double scale) const {
        const int64_t ldy = N + 3;
        for (int64_t m = 0; m < M; ++m)
            for (int64_t n = 0; n < N; ++n) {
                const std::size_t i = std::size_t(m * ldy + n);
                if (!(std::fabs(double(y[i]) - expected[i]) <= 2.0 * scale * bound[i])) {
                    MESSAGE("y[", m, "][", n, "] = ", y[i], ", reference ", expected[i]);
                    return false;
                }
            }
        return true;
    }
};

}  // namespace

TEST_SUITE("plugins") {
    TEST_CASE("gemm_cpu_plugin_describes_itself") {
        loaded_plugin plugin("gemm-cpu");
        const llmq_plugin_descriptor& d = *plugin.descriptor;
        CHECK(d.struct_size == sizeof(llmq_plugin_descriptor));
        CHECK(d.abi_version == LLMQ_PLUGIN_ABI_VERSION);
        CHECK(d.kind == LLMQ_PLUGIN_KIND_GEMM);
        CHECK(d.backend == LLMQ_BACKEND_CPU);
        CHECK(std::string(d.name) == "gemm-cpu");
        CHECK(std::string(d.version) == "1.0.0");
        REQUIRE(d.gemm != nullptr);
        CHECK(d.gemm->struct_size == sizeof(llmq_gemm_ops));
        CHECK((d.gemm->matmul != nullptr));
        CHECK(d.attention == nullptr);
        CHECK(d.vision == nullptr);
        CHECK((d.init != nullptr));
        CHECK((d.shutdown != nullptr));
    }

    TEST_CASE("gemm_cpu_plugin_matches_the_kernel_reference_for_every_weight_dtype") {
        loaded_plugin plugin("gemm-cpu");
        test_host host;
        auto instance = plugin.init(&host.table);
        REQUIRE_MESSAGE(instance->status == LLMQ_OK, message_of(instance->error));
        CHECK(host.logged("ISA " + std::string(k::isa_name(k::best_isa()))));
        for (k::dtype wt : {k::dtype::f32, k::dtype::f16, k::dtype::bf16, k::dtype::q8_0}) {
            const int64_t shapes[][3] = {{1, 1000, 96}, {7, 130, 64}, {70, 300, 1056}, {1, 5, 32}};
            for (const auto& s : shapes) {
                gemm_problem problem(s[0], s[1], s[2], wt);
                llmq_error error{};
                REQUIRE(plugin.descriptor->gemm->matmul(instance->state, &problem.args, &error) == LLMQ_OK);
                CHECK_MESSAGE(problem.matches(1.0), std::string(k::dtype_name(wt)), " M=", s[0], " N=", s[1], " K=", s[2]);
            }
        }
    }

    TEST_CASE("gemm_cpu_plugin_runs_the_isa_its_config_names") {
        loaded_plugin plugin("gemm-cpu");
        for (k::isa which : {k::isa::scalar, k::isa::avx2, k::isa::avx512, k::isa::avx512_bf16}) {
            if (!k::isa_supported(which)) continue;
            test_host host(std::string("isa = \"") + k::isa_name(which) + "\"\n");
            auto instance = plugin.init(&host.table);
            REQUIRE_MESSAGE(instance->status == LLMQ_OK, message_of(instance->error));
            CHECK(host.logged(std::string("ISA ") + k::isa_name(which)));
            gemm_problem problem(5, 77, 160, k::dtype::q8_0);
            llmq_error error{};
            REQUIRE(plugin.descriptor->gemm->matmul(instance->state, &problem.args, &error) == LLMQ_OK);
            CHECK(problem.matches(1.0));
        }
    }

    TEST_CASE("gemm_cpu_plugin_bf16_dot_products_stay_within_bf16_rounding") {
        // With bf16_dot_products, x is rounded to bf16 (relative error <= 2^-9 per element),
        // so each output moves by at most 2^-9 sum|x w| plus the f32 summation error.
        loaded_plugin plugin("gemm-cpu");
        test_host host("bf16_dot_products = true\n");
        auto instance = plugin.init(&host.table);
        REQUIRE_MESSAGE(instance->status == LLMQ_OK, message_of(instance->error));
        CHECK(host.logged("bf16 dot products on"));
        gemm_problem problem(9, 200, 300, k::dtype::bf16);
        llmq_error error{};
        REQUIRE(plugin.descriptor->gemm->matmul(instance->state, &problem.args, &error) == LLMQ_OK);
        const double bf16_scale = (1.0 / 512.0) / (8.0 * std::sqrt(300.0) * 5.96e-8);
        CHECK(problem.matches(bf16_scale + 1.0));
    }

    TEST_CASE("gemm_cpu_plugin_refuses_bad_arguments_with_a_message") {
        loaded_plugin plugin("gemm-cpu");
        test_host host;
        auto instance = plugin.init(&host.table);
        REQUIRE(instance->status == LLMQ_OK);
        struct mutation {
            const char* what;
            llmq_status expected;
            void (*apply)(llmq_matmul_args&);
        };
        const mutation mutations[] = {
            {"struct_size", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.struct_size = 8; }},
            {"x.dtype", LLMQ_STATUS_UNSUPPORTED, [](llmq_matmul_args& a) { a.x.dtype = LLMQ_DTYPE_F16; }},
            {"y.dtype", LLMQ_STATUS_UNSUPPORTED, [](llmq_matmul_args& a) { a.y.dtype = LLMQ_DTYPE_BF16; }},
            {"w.dtype", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.w.dtype = 77; }},
            {"not a weight type", LLMQ_STATUS_UNSUPPORTED, [](llmq_matmul_args& a) { a.w.dtype = LLMQ_DTYPE_I32; }},
            {"inner sizes", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.w.shape[1] = 64; }},
            {"y is", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.y.shape[1] -= 1; }},
            {"x.rank", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.x.rank = 3; }},
            {"w.device_type", LLMQ_STATUS_UNSUPPORTED, [](llmq_matmul_args& a) { a.w.device_type = LLMQ_BACKEND_CUDA; }},
            {"x.data", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.x.data = nullptr; }},
            {"not aligned", LLMQ_STATUS_INVALID_ARGUMENT,
             [](llmq_matmul_args& a) { a.y.data = static_cast<char*>(a.y.data) + 2; }},
            {"w.data", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.w.data = nullptr; }},
            {"x.strides[1]", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.x.strides[1] = 8; }},
            {"w.strides[0]", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.w.strides[0] = 10; }},
            {"y.strides[0]", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.y.strides[0] = 6; }},
            {"x.shape[0]", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.x.shape[0] = -1; }},
            {"w.shape[0]", LLMQ_STATUS_INVALID_ARGUMENT, [](llmq_matmul_args& a) { a.w.shape[0] = int64_t(1) << 50; }},
            {"not a multiple of 32", LLMQ_STATUS_INVALID_ARGUMENT,
             [](llmq_matmul_args& a) {
                 a.w.dtype = LLMQ_DTYPE_Q8_0;
                 a.w.strides[1] = 0;
             }},
        };
        for (const mutation& m : mutations) {
            gemm_problem problem(3, 40, 96 + 16, k::dtype::f32);  // K = 112: not a multiple of 32
            const std::vector<float> before = problem.y;
            m.apply(problem.args);
            llmq_error error{};
            const llmq_status status = plugin.descriptor->gemm->matmul(instance->state, &problem.args, &error);
            CHECK_MESSAGE(status == m.expected, std::string(m.what), ": status ", status, " (", message_of(error), ")");
            CHECK_MESSAGE(message_of(error).find(m.what) != std::string::npos, std::string(m.what), " not named in '",
                          message_of(error), "'");
            CHECK_MESSAGE(problem.y == before, std::string(m.what), ": y was written");
        }
        llmq_error error{};
        CHECK(plugin.descriptor->gemm->matmul(instance->state, nullptr, &error) == LLMQ_STATUS_INVALID_ARGUMENT);
        CHECK(message_of(error).find("args is NULL") != std::string::npos);
    }

    TEST_CASE("gemm_cpu_plugin_treats_empty_shapes_as_nothing_to_do") {
        loaded_plugin plugin("gemm-cpu");
        test_host host;
        auto instance = plugin.init(&host.table);
        REQUIRE(instance->status == LLMQ_OK);
        gemm_problem problem(2, 3, 4, k::dtype::f32);
        problem.args.x.shape[0] = problem.args.y.shape[0] = 0;
        llmq_error error{};
        CHECK(plugin.descriptor->gemm->matmul(instance->state, &problem.args, &error) == LLMQ_OK);
    }

    TEST_CASE("cpu_plugins_refuse_bad_hosts_and_configs_at_init") {
        for (const char* name : {"gemm-cpu", "attention-cpu"}) {
            loaded_plugin plugin(name);
            CHECK(plugin.init(nullptr)->status == LLMQ_STATUS_INVALID_ARGUMENT);
            {
                test_host host;
                host.table.struct_size = 16;
                auto i = plugin.init(&host.table);
                CHECK(i->status == LLMQ_STATUS_INVALID_ARGUMENT);
                CHECK(message_of(i->error).find("struct_size") != std::string::npos);
            }
            {
                test_host host;
                host.table.abi_version = 2u << 16;
                CHECK(plugin.init(&host.table)->status == LLMQ_STATUS_UNSUPPORTED);
            }
            {
                test_host host;
                host.table.device_type = LLMQ_BACKEND_CUDA;
                CHECK(plugin.init(&host.table)->status == LLMQ_STATUS_UNSUPPORTED);
            }
            {
                test_host host;
                host.table.parallel_for = nullptr;
                CHECK(plugin.init(&host.table)->status == LLMQ_STATUS_INVALID_ARGUMENT);
            }
            const char* bad_configs[][2] = {
                {"isa = \"avx9000\"\n", "isa must be one of"},
                {"isa = 3\n", "isa must be one of"},
                {"colour = \"blue\"\n", "unknown key 'colour'"},
                {"isa = \n", "line 1"},
            };
            for (const auto& bad : bad_configs) {
                test_host host(bad[0]);
                auto i = plugin.init(&host.table);
                CHECK_MESSAGE(i->status == LLMQ_STATUS_INVALID_ARGUMENT, std::string(name), " config ", std::string(bad[0]));
                CHECK_MESSAGE(message_of(i->error).find(bad[1]) != std::string::npos, message_of(i->error));
                CHECK(i->state == nullptr);
            }
            for (k::isa which : {k::isa::avx2, k::isa::avx512, k::isa::avx512_bf16}) {
                if (k::isa_supported(which)) continue;
                test_host host(std::string("isa = \"") + k::isa_name(which) + "\"\n");
                CHECK(plugin.init(&host.table)->status == LLMQ_STATUS_UNSUPPORTED);
            }
        }
        loaded_plugin gemm("gemm-cpu");
        test_host host("bf16_dot_products = \"yes\"\n");
        CHECK(gemm.init(&host.table)->status == LLMQ_STATUS_INVALID_ARGUMENT);
    }
}
