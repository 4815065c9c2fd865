// The attention-cpu plugin, loaded with dlopen from LLMQ_PLUGIN_DIR and driven only through
// the ABI by a tiny test host: its descriptor, its results against the kernels' scalar
// reference on a mixed prefill + decode batch (GQA, shuffled blocks, f16 and f32 caches,
// rank-2 and rank-3 q/out), and its refusal of bad arguments and bad index tables.
#include <cmath>
#include <numeric>

#include "llmq/kernels/cpu.hpp"
#include "plugin_test_host.hpp"

namespace k = llmq::kernels;
using namespace llmq::plugin_testing;

namespace {

// A batch: prefill of 6 rows from 0, a decode at position 40, a chunk of 4 rows continuing
// a sequence to 19 positions; 8 query heads over 2 KV heads, blocks of 16 in shuffled order.
struct attention_problem {
    int32_t heads = 8, kv_heads = 2, head_dim = 32, block_size = 16, max_blocks = 3;
    k::dtype kv;
    std::vector<int32_t> query_start{0, 6, 7, 11}, context_len{6, 41, 19};
    std::vector<int32_t> tables;
    int32_t num_blocks = 12;
    std::vector<float> q, out, expected, k_f32, v_f32;
    std::vector<uint16_t> k_f16, v_f16;
    llmq_attention_args args{};

    explicit attention_problem(k::dtype kv_, bool rank3 = false) : kv(kv_) {
        const int32_t seqs = 3, tokens = query_start.back();
        // Blocks: sequence s, logical block b -> a shuffled physical block (deterministic).
        const int32_t order[] = {7, 2, 11, 0, 9, 4, 5, 10, 1, 3, 8, 6};
        tables.assign(std::size_t(seqs * max_blocks), -1);
        int next = 0;
        for (int32_t s = 0; s < seqs; ++s)
            for (int32_t b = 0; b * block_size < context_len[s]; ++b) tables[s * max_blocks + b] = order[next++];
        const std::size_t cache = std::size_t(num_blocks) * block_size * kv_heads * head_dim;
        uint32_t state = 99;
        auto value = [&state] {
            state = state * 1664525u + 1013904223u;
            return float(int32_t(state >> 8) - (1 << 23)) / float(1 << 23);
        };
        k_f32.resize(cache);
        v_f32.resize(cache);
        for (auto& x : k_f32) x = value();
        for (auto& x : v_f32) x = value();
        k_f16.resize(cache);
        v_f16.resize(cache);
        k::row_from_f32(k::isa::scalar, k::dtype::f16, k_f32.data(), k_f16.data(), int64_t(cache));
        k::row_from_f32(k::isa::scalar, k::dtype::f16, v_f32.data(), v_f16.data(), int64_t(cache));
        q.resize(std::size_t(tokens) * heads * head_dim);
        for (auto& x : q) x = value();
        out.assign(q.size(), 555.0f);
        expected.assign(q.size(), 0.0f);

        args.struct_size = sizeof args;
        llmq_tensor t{};
        t.dtype = LLMQ_DTYPE_F32;
        t.device_type = LLMQ_BACKEND_CPU;
        if (rank3) {
            t.rank = 3;
            t.shape[0] = tokens;
            t.shape[1] = heads;
            t.shape[2] = head_dim;
            t.shape[3] = 1;
            t.strides[0] = int64_t(heads) * head_dim * 4;
            t.strides[1] = int64_t(head_dim) * 4;
            t.strides[2] = 4;
        } else {
            t.rank = 2;
            t.shape[0] = tokens;
            t.shape[1] = int64_t(heads) * head_dim;
            t.shape[2] = t.shape[3] = 1;
            t.strides[0] = int64_t(heads) * head_dim * 4;
            t.strides[1] = 4;
        }
        args.q = t;
        args.q.data = q.data();
        args.out = t;
        args.out.data = out.data();
        args.k_cache = kv == k::dtype::f16 ? static_cast<const void*>(k_f16.data()) : k_f32.data();
        args.v_cache = kv == k::dtype::f16 ? static_cast<const void*>(v_f16.data()) : v_f32.data();
        args.query_start = query_start.data();
        args.context_len = context_len.data();
        args.block_tables = tables.data();
        args.kv_dtype = static_cast<int32_t>(kv);
        args.num_seqs = seqs;
        args.num_tokens = tokens;
        args.num_heads = heads;
        args.num_kv_heads = kv_heads;
        args.head_dim = head_dim;
        args.block_size = block_size;
        args.max_blocks_per_seq = max_blocks;
        args.num_blocks = num_blocks;
        args.scale = 1.0f / std::sqrt(float(head_dim));

        k::paged_attention_params p{};
        p.q = q.data();
        p.out = expected.data();
        p.k_cache = args.k_cache;
        p.v_cache = args.v_cache;
        p.kv_dtype = kv;
        p.query_start = query_start.data();
        p.context_len = context_len.data();
        p.block_tables = tables.data();
        p.num_seqs = seqs;
        p.num_heads = heads;
        p.num_kv_heads = kv_heads;
        p.head_dim = head_dim;
        p.block_size = block_size;
        p.max_blocks_per_seq = max_blocks;
        p.scale = args.scale;
        k::paged_attention(k::isa::scalar, p, 0, int64_t(seqs) * heads);
    }

    // Same tolerance as the kernels' harness (outputs are convex combinations of values in
    // [-1, 1]; 2e-5 covers f32 rounding and vexp, a dropped key moves an output by ~1e-3).
    bool matches() const {
        for (std::size_t i = 0; i < out.size(); ++i)
            if (!(std::fabs(out[i] - expected[i]) <= 2e-5f)) {
                MESSAGE("out[", i, "] = ", out[i], ", reference ", expected[i]);
                return false;
            }
        return true;
    }
};

}  // namespace

TEST_SUITE("plugins") {
    TEST_CASE("attention_cpu_plugin_describes_itself") {
        loaded_plugin plugin("attention-cpu");
        const llmq_plugin_descriptor& d = *plugin.descriptor;
        CHECK(d.struct_size == sizeof(llmq_plugin_descriptor));
        CHECK(d.abi_version == LLMQ_PLUGIN_ABI_VERSION);
        CHECK(d.kind == LLMQ_PLUGIN_KIND_ATTENTION);
        CHECK(d.backend == LLMQ_BACKEND_CPU);
        CHECK(std::string(d.name) == "attention-cpu");
        CHECK(std::string(d.version) == "1.0.0");
        REQUIRE(d.attention != nullptr);
        CHECK(d.attention->struct_size == sizeof(llmq_attention_ops));
        CHECK((d.attention->attention != nullptr));
        CHECK((d.attention->cross_attention != nullptr));  // ABI 1.2, for mllama
        CHECK(d.gemm == nullptr);
        CHECK(d.vision == nullptr);
    }

    TEST_CASE("attention_cpu_plugin_matches_the_kernel_reference_on_a_mixed_batch") {
        loaded_plugin plugin("attention-cpu");
        for (k::isa which : {k::isa::scalar, k::isa::avx2, k::isa::avx512, k::isa::avx512_bf16}) {
            if (!k::isa_supported(which)) continue;
            test_host host(std::string("isa = \"") + k::isa_name(which) + "\"\n");
            auto instance = plugin.init(&host.table);
            REQUIRE_MESSAGE(instance->status == LLMQ_OK, message_of(instance->error));
            CHECK(host.logged(std::string("ISA ") + k::isa_name(which)));
            for (k::dtype kv : {k::dtype::f32, k::dtype::f16}) {
                for (bool rank3 : {false, true}) {
                    attention_problem problem(kv, rank3);
                    llmq_error error{};
                    REQUIRE_MESSAGE(plugin.descriptor->attention->attention(instance->state, &problem.args, &error) ==
                                        LLMQ_OK,
                                    message_of(error));
                    CHECK_MESSAGE(problem.matches(), std::string(k::isa_name(which)), " ", std::string(k::dtype_name(kv)),
                                  rank3 ? " rank 3" : " rank 2");
                }
            }
        }
    }

    TEST_CASE("attention_cpu_plugin_refuses_bad_arguments_and_tables_with_a_message") {
        loaded_plugin plugin("attention-cpu");
        test_host host;
        auto instance = plugin.init(&host.table);
        REQUIRE(instance->status == LLMQ_OK);
        struct mutation {
            const char* what;
            llmq_status expected;
            void (*apply)(attention_problem&);
        };
        const mutation mutations[] = {
            {"struct_size", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.struct_size = 4; }},
            {"kv_dtype", LLMQ_STATUS_UNSUPPORTED, [](attention_problem& p) { p.args.kv_dtype = LLMQ_DTYPE_BF16; }},
            {"kv_dtype", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.kv_dtype = -3; }},
            {"num_kv_heads", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.num_kv_heads = 3; }},
            {"head_dim", LLMQ_STATUS_UNSUPPORTED, [](attention_problem& p) { p.args.head_dim = 1024; }},
            {"head_dim", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.head_dim = 0; }},
            {"block_size", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.block_size = 0; }},
            {"scale", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.scale = NAN; }},
            {"q must be", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.q.shape[1] += 1; }},
            {"out must be", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.out.strides[0] += 4; }},
            {"q.dtype", LLMQ_STATUS_UNSUPPORTED, [](attention_problem& p) { p.args.q.dtype = LLMQ_DTYPE_F16; }},
            {"out.device_type", LLMQ_STATUS_UNSUPPORTED,
             [](attention_problem& p) { p.args.out.device_type = LLMQ_BACKEND_CUDA; }},
            {"q.data", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.q.data = nullptr; }},
            {"out.data is not aligned", LLMQ_STATUS_INVALID_ARGUMENT,
             [](attention_problem& p) { p.args.out.data = reinterpret_cast<char*>(p.out.data()) + 1; }},
            {"must be aligned", LLMQ_STATUS_INVALID_ARGUMENT,
             [](attention_problem& p) { p.args.k_cache = reinterpret_cast<const char*>(p.k_f16.data()) + 1; }},
            {"must all be set", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.block_tables = nullptr; }},
            {"must all be set", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.v_cache = nullptr; }},
            {"query_start[0]", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.query_start[0] = 1; }},
            {"not ascending", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.query_start[2] = 3; }},
            {"query_start[num_seqs]", LLMQ_STATUS_INVALID_ARGUMENT,
             [](attention_problem& p) {
                 p.query_start[3] = 10;
             }},
            {"context_len[1]", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.context_len[1] = 0; }},
            {"context_len[2]", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.context_len[2] = 49; }},
            {"block_tables[1][2]", LLMQ_STATUS_INVALID_ARGUMENT,
             [](attention_problem& p) { p.tables[1 * 3 + 2] = 12; }},
            {"block_tables[0][0]", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.tables[0] = -1; }},
            {"num_tokens", LLMQ_STATUS_INVALID_ARGUMENT, [](attention_problem& p) { p.args.num_tokens = -2; }},
        };
        for (const mutation& m : mutations) {
            attention_problem problem(k::dtype::f16);
            m.apply(problem);
            const std::vector<float> before = problem.out;
            llmq_error error{};
            const llmq_status status = plugin.descriptor->attention->attention(instance->state, &problem.args, &error);
            CHECK_MESSAGE(status == m.expected, std::string(m.what), ": status ", status, " (", message_of(error), ")");
            CHECK_MESSAGE(message_of(error).find(m.what) != std::string::npos, std::string(m.what), " not named in '",
                          message_of(error), "'");
            CHECK_MESSAGE(problem.out == before, std::string(m.what), ": out was written");
        }
        llmq_error error{};
        CHECK(plugin.descriptor->attention->attention(instance->state, nullptr, &error) == LLMQ_STATUS_INVALID_ARGUMENT);
    }

    TEST_CASE("attention_cpu_plugin_ignores_the_blocks_of_sequences_without_rows") {
        // A sequence with no query rows reads no cache block, so its table may hold anything.
        loaded_plugin plugin("attention-cpu");
        test_host host;
        auto instance = plugin.init(&host.table);
        REQUIRE(instance->status == LLMQ_OK);
        attention_problem problem(k::dtype::f32);
        problem.query_start = {0, 6, 6, 10};  // sequence 1 idle
        problem.args.query_start = problem.query_start.data();
        problem.context_len[2] = 19;
        problem.args.num_tokens = 10;
        problem.args.q.shape[0] = problem.args.out.shape[0] = 10;
        problem.tables[1 * 3 + 0] = -7;
        llmq_error error{};
        CHECK_MESSAGE(plugin.descriptor->attention->attention(instance->state, &problem.args, &error) == LLMQ_OK,
                      message_of(error));
    }
}
