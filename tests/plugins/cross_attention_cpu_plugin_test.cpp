// attention-cpu's cross_attention (ABI 1.2, mllama's text-to-image attention), loaded with
// dlopen and driven through the ABI: against a double-precision reference written here from
// the ABI's definition, on two sequences with grouped-query heads, per-row image ranges
// (including rows that see no image, which must come out as zeros) and f32, f16 and bf16
// image rows; and its refusal of bad arguments, each naming what was wrong.
#include <cmath>
#include <cstring>

#include "llmq/kernels/cpu.hpp"
#include "plugin_test_host.hpp"

namespace k = llmq::kernels;
using namespace llmq::plugin_testing;

namespace {

uint16_t to_bf16(float f) {  // round to nearest even
    uint32_t bits;
    std::memcpy(&bits, &f, sizeof bits);
    return uint16_t((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}
float from_bf16(uint16_t b) {
    const uint32_t bits = uint32_t(b) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// Sequence 0: 5 query rows over 30 image rows (two images of 18 and 12 rows); rows 0-1 see no
// image, rows 2-3 the first, row 4 both. Sequence 1: 3 rows over 7 image rows, all of them.
struct cross_problem {
    int32_t heads = 8, kv_heads = 2, head_dim = 24;
    int32_t dtype;
    std::vector<int32_t> query_start{0, 5, 8};
    std::vector<int64_t> kv_start{0, 30, 37};
    std::vector<int32_t> row_begin{0, 0, 0, 0, 0, 0, 0, 0}, row_end{0, 0, 18, 18, 30, 7, 7, 7};
    std::vector<float> q, out, k_f32, v_f32;
    std::vector<uint16_t> k_half, v_half;
    llmq_cross_attention_args args{};

    explicit cross_problem(int32_t dtype_) : dtype(dtype_) {
        uint32_t state = 7;
        auto value = [&state] {
            state = state * 1664525u + 1013904223u;
            return float(int32_t(state >> 8) - (1 << 23)) / float(1 << 23);
        };
        const int32_t tokens = query_start.back();
        const std::size_t kv_values = std::size_t(kv_start.back()) * kv_heads * head_dim;
        k_f32.resize(kv_values);
        v_f32.resize(kv_values);
        for (auto& x : k_f32) x = 2.0f * value();
        for (auto& x : v_f32) x = value();
        k_half.resize(kv_values);
        v_half.resize(kv_values);
        for (std::size_t i = 0; i < kv_values; ++i) {
            if (dtype == LLMQ_DTYPE_BF16) {
                k_half[i] = to_bf16(k_f32[i]);
                v_half[i] = to_bf16(v_f32[i]);
            } else {
                k_half[i] = k::fp32_to_fp16(k_f32[i]);
                v_half[i] = k::fp32_to_fp16(v_f32[i]);
            }
        }
        q.resize(std::size_t(tokens) * heads * head_dim);
        for (auto& x : q) x = value();
        out.assign(q.size(), 555.0f);
        llmq_tensor t{};
        t.dtype = LLMQ_DTYPE_F32;
        t.device_type = LLMQ_BACKEND_CPU;
        t.rank = 2;
        t.shape[0] = tokens;
        t.shape[1] = int64_t(heads) * head_dim;
        t.shape[2] = t.shape[3] = 1;
        t.strides[0] = int64_t(heads) * head_dim * 4;
        t.strides[1] = 4;
        args.struct_size = sizeof args;
        args.q = t;
        args.q.data = q.data();
        args.out = t;
        args.out.data = out.data();
        const bool wide = dtype == LLMQ_DTYPE_F32;
        args.k_image = wide ? static_cast<const void*>(k_f32.data()) : k_half.data();
        args.v_image = wide ? static_cast<const void*>(v_f32.data()) : v_half.data();
        args.query_start = query_start.data();
        args.kv_start = kv_start.data();
        args.row_begin = row_begin.data();
        args.row_end = row_end.data();
        args.kv_dtype = dtype;
        args.num_seqs = 2;
        args.num_tokens = tokens;
        args.num_heads = heads;
        args.num_kv_heads = kv_heads;
        args.head_dim = head_dim;
        args.scale = 1.0f / std::sqrt(float(head_dim));
    }

    double kv_value(const std::vector<float>& f32, const std::vector<uint16_t>& half, std::size_t i) const {
        if (dtype == LLMQ_DTYPE_F32) return f32[i];
        return dtype == LLMQ_DTYPE_BF16 ? from_bf16(half[i]) : k::fp16_to_fp32(half[i]);
    }

    // The ABI's definition in double: softmax(scale q.k) over the row's image rows, times V;
    // zeros for a row that sees none.
    double max_error() const {
        double worst = 0.0;
        const int32_t group = heads / kv_heads;
        for (int32_t s = 0; s < 2; ++s) {
            for (int32_t t = query_start[s]; t < query_start[s + 1]; ++t) {
                for (int32_t h = 0; h < heads; ++h) {
                    const float* qh = q.data() + (std::size_t(t) * heads + h) * head_dim;
                    const int64_t r0 = kv_start[s] + row_begin[t], r1 = kv_start[s] + row_end[t];
                    std::vector<double> scores;
                    double m = -INFINITY;
                    for (int64_t r = r0; r < r1; ++r) {
                        double dot = 0.0;
                        for (int32_t d = 0; d < head_dim; ++d)
                            dot += double(qh[d]) * kv_value(k_f32, k_half, std::size_t((r * kv_heads + h / group) * head_dim + d));
                        scores.push_back(dot * args.scale);
                        m = std::max(m, scores.back());
                    }
                    double total = 0.0;
                    for (double& x : scores) total += (x = std::exp(x - m));
                    for (int32_t d = 0; d < head_dim; ++d) {
                        double want = 0.0;
                        for (int64_t r = r0; r < r1; ++r)
                            want += scores[std::size_t(r - r0)] / total *
                                    kv_value(v_f32, v_half, std::size_t((r * kv_heads + h / group) * head_dim + d));
                        const double got = out[(std::size_t(t) * heads + h) * head_dim + d];
                        worst = std::max(worst, std::abs(got - want));
                    }
                }
            }
        }
        return worst;
    }
};

}  // namespace

TEST_CASE("cross_attention_cpu_matches_a_double_reference_with_masked_rows_as_zeros") {
    loaded_plugin plugin("attention-cpu");
    REQUIRE(plugin.descriptor->attention->struct_size >= sizeof(llmq_attention_ops));
    REQUIRE((plugin.descriptor->attention->cross_attention != nullptr));
    test_host host;
    auto instance = plugin.init(&host.table);
    REQUIRE(instance->status == LLMQ_OK);
    for (int32_t dtype : {LLMQ_DTYPE_F32, LLMQ_DTYPE_F16, LLMQ_DTYPE_BF16}) {
        cross_problem p(dtype);
        llmq_error error{};
        REQUIRE_MESSAGE(plugin.descriptor->attention->cross_attention(instance->state, &p.args, &error) == LLMQ_OK,
                        message_of(error));
        // f32 sums of at most 30 terms of magnitude <= 2.5 against double: ~1e-6; 1e-5 leaves
        // room for another summation order, and catches any masking or head-mapping mistake.
        CHECK_MESSAGE(p.max_error() < 1e-5, "dtype ", dtype, ": max error ", p.max_error());
        for (int32_t t : {0, 1})
            for (int32_t i = 0; i < p.heads * p.head_dim; ++i) CHECK(p.out[std::size_t(t) * p.heads * p.head_dim + i] == 0.0f);
    }
}

TEST_CASE("cross_attention_cpu_refuses_bad_arguments_with_a_message") {
    loaded_plugin plugin("attention-cpu");
    test_host host;
    auto instance = plugin.init(&host.table);
    REQUIRE(instance->status == LLMQ_OK);
    struct mutation {
        const char* what;
        llmq_status expected;
        void (*apply)(cross_problem&);
    };
    const mutation mutations[] = {
        {"struct_size", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.args.struct_size = 8; }},
        {"kv_dtype", LLMQ_STATUS_UNSUPPORTED, [](cross_problem& p) { p.args.kv_dtype = LLMQ_DTYPE_Q8_0; }},
        {"num_kv_heads", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.args.num_kv_heads = 3; }},
        {"head_dim", LLMQ_STATUS_UNSUPPORTED, [](cross_problem& p) { p.args.head_dim = 100000; }},
        {"scale", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.args.scale = NAN; }},
        {"token 4 sees rows", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.row_end[4] = 31; }},
        {"token 2 sees rows", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.row_begin[2] = 19; }},
        {"kv_start[1..2]", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.kv_start[2] = 20; }},
        {"query_start[0..1]", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.query_start[1] = 9; }},
        {"query_start[num_seqs]", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.query_start[2] = 7; }},
        {"k_image and v_image", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.args.k_image = nullptr; }},
        {"q must be contiguous", LLMQ_STATUS_INVALID_ARGUMENT, [](cross_problem& p) { p.args.q.shape[1] = 7; }},
    };
    for (const mutation& m : mutations) {
        cross_problem p(LLMQ_DTYPE_F32);
        m.apply(p);
        const std::vector<float> before = p.out;
        llmq_error error{};
        const llmq_status status = plugin.descriptor->attention->cross_attention(instance->state, &p.args, &error);
        CHECK_MESSAGE(status == m.expected, std::string(m.what), ": status ", status, " (", message_of(error), ")");
        CHECK_MESSAGE(message_of(error).find(m.what) != std::string::npos, std::string(m.what), " not named in '",
                      message_of(error), "'");
        CHECK_MESSAGE(p.out == before, std::string(m.what), ": out was written");
    }
    llmq_error error{};
    CHECK(plugin.descriptor->attention->cross_attention(instance->state, nullptr, &error) == LLMQ_STATUS_INVALID_ARGUMENT);
}
