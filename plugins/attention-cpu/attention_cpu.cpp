// attention-cpu: the CPU paged-attention plugin. Wraps llmq::kernels::paged_attention behind
// the plugin ABI.
//
// init picks the instruction set once (the best this CPU runs, or `isa = "..."` from the
// plugin's TOML table) and logs it. attention checks every argument, including every entry
// of the index tables it will follow (query_start, context_len, the block ids each sequence
// uses), so a bad table is an error and never a read outside the cache. The work is split
// over (sequence, query head) items through the host's parallel_for.
//
// Plugin TOML table ([plugins.attention-cpu]):
//   isa = "scalar" | "avx2" | "avx512" | "avx512_bf16"   force an ISA (refused if the CPU
//                                                        lacks it)
#include <cinttypes>
#include <cstdint>
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <vector>
#include <exception>
#include <new>
#include <string>
#include <toml++/toml.h>

#include "llmq/kernels/cpu.hpp"
#include "llmq_abi_dtypes.hpp"
#include "llmq_plugin.h"
#include "llmq_plugin_checks.hpp"
#include "llmq_plugin_isa_config.hpp"

namespace {

namespace k = llmq::kernels;

constexpr const char* plugin_name = "attention-cpu";
constexpr const char* plugin_version = "1.0.0";

struct instance {
    const llmq_host* host = nullptr;
    k::isa isa = k::isa::scalar;
};

using llmq::plugin_checks::fail;

// ---- configuration

llmq_status read_config(const char* text, instance& self, llmq_error* error) {
    return llmq::plugin_checks::read_isa_only_config(text, plugin_name, &self.isa, error);
}

// ---- lifecycle

llmq_status init(const llmq_host* host, void** out, llmq_error* error) {
    if (out == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: instance pointer is NULL", plugin_name);
    *out = nullptr;
    if (host == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host table is NULL", plugin_name);
    if (host->struct_size < sizeof(llmq_host))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host.struct_size is %u, this plugin needs %zu",
                    plugin_name, host->struct_size, sizeof(llmq_host));
    if (LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version) != LLMQ_PLUGIN_ABI_MAJOR)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: host ABI major %u, plugin ABI major %u", plugin_name,
                    LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version), LLMQ_PLUGIN_ABI_MAJOR);
    if (host->log == nullptr || host->parallel_for == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host.log and host.parallel_for must be set",
                    plugin_name);
    if (host->device_type != LLMQ_BACKEND_CPU)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: device_type %d is not a CPU device", plugin_name,
                    host->device_type);
    try {
        auto* self = new instance;
        self->host = host;
        self->isa = k::best_isa();
        if (llmq_status status = read_config(host->config_toml, *self, error); status != LLMQ_OK) {
            delete self;
            return status;
        }
        char line[128];
        std::snprintf(line, sizeof line, "%s %s: ISA %s (best on this CPU: %s)", plugin_name, plugin_version,
                      k::isa_name(self->isa), k::isa_name(k::best_isa()));
        host->log(host->host_context, LLMQ_LOG_INFO, line);
        *out = self;
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "%s init: out of memory", plugin_name);
    } catch (const std::exception& e) {
        return fail(error, LLMQ_STATUS_INTERNAL, "%s init: %s", plugin_name, e.what());
    }
}

void shutdown(void* self) { delete static_cast<instance*>(self); }

// ---- argument checks

// q or out: F32 on the CPU, [num_tokens][num_heads][head_dim] contiguous, as rank 2
// ([tokens, heads * head_dim]) or rank 3 ([tokens, heads, head_dim]).
struct row_shape {
    int32_t num_tokens, num_heads, head_dim;
};

llmq_status check_rows(const llmq_tensor& t, const char* name, const row_shape& a, llmq_error* error) {
    if (t.device_type != LLMQ_BACKEND_CPU)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "attention: %s.device_type is %d, %s takes CPU tensors only", name,
                    t.device_type, plugin_name);
    if (t.dtype != LLMQ_DTYPE_F32)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "attention: %s.dtype is %d, expected f32", name, t.dtype);
    const int64_t width = int64_t(a.num_heads) * a.head_dim;
    bool shaped = false;
    if (t.rank == 2)
        shaped = t.shape[0] == a.num_tokens && t.shape[1] == width && t.strides[1] == 4 &&
                 (t.shape[0] <= 1 || t.strides[0] == width * 4);
    else if (t.rank == 3)
        shaped = t.shape[0] == a.num_tokens && t.shape[1] == a.num_heads && t.shape[2] == a.head_dim &&
                 t.strides[2] == 4 && t.strides[1] == int64_t(a.head_dim) * 4 &&
                 (t.shape[0] <= 1 || t.strides[0] == width * 4);
    if (!shaped)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: %s must be contiguous f32 [num_tokens=%d][num_heads=%d][head_dim=%d] (rank 2 or 3); "
                    "got rank %d shape [%" PRId64 ", %" PRId64 ", %" PRId64 "] strides [%" PRId64 ", %" PRId64 ", %" PRId64 "]",
                    name, a.num_tokens, a.num_heads, a.head_dim, t.rank, t.shape[0], t.shape[1], t.shape[2],
                    t.strides[0], t.strides[1], t.strides[2]);
    if (t.data == nullptr && a.num_tokens > 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: %s.data is NULL", name);
    if (reinterpret_cast<uintptr_t>(t.data) % 4 != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: %s.data is not aligned to its 4-byte elements", name);
    return LLMQ_OK;
}

llmq_status check_attention(const llmq_attention_args* a, llmq_error* error) {
    if (a == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: args is NULL");
    if (a->struct_size < sizeof(llmq_attention_args))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: args.struct_size is %u, expected at least %zu",
                    a->struct_size, sizeof(llmq_attention_args));
    if (a->kv_dtype != LLMQ_DTYPE_F32 && a->kv_dtype != LLMQ_DTYPE_F16)
        return fail(error, llmq::abi::dtype_of(a->kv_dtype) != nullptr ? LLMQ_STATUS_UNSUPPORTED : LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: kv_dtype %d; %s reads f32 or f16 caches", a->kv_dtype, plugin_name);
    if (a->num_seqs < 0 || a->num_tokens < 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: num_seqs %d and num_tokens %d must be >= 0",
                    a->num_seqs, a->num_tokens);
    if (a->num_heads <= 0 || a->num_kv_heads <= 0 || a->num_heads % a->num_kv_heads != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: num_heads %d must be a positive multiple of num_kv_heads %d", a->num_heads,
                    a->num_kv_heads);
    if (a->head_dim <= 0 || a->head_dim > k::paged_attention_max_head_dim)
        return fail(error, a->head_dim > 0 ? LLMQ_STATUS_UNSUPPORTED : LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: head_dim %d outside [1, %d]", a->head_dim, k::paged_attention_max_head_dim);
    if (a->block_size <= 0 || a->max_blocks_per_seq <= 0 || a->num_blocks <= 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: block_size %d, max_blocks_per_seq %d and num_blocks %d must be > 0", a->block_size,
                    a->max_blocks_per_seq, a->num_blocks);
    if (!std::isfinite(a->scale))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: scale is not finite");
    llmq_status s;
    const row_shape rows{a->num_tokens, a->num_heads, a->head_dim};
    if ((s = check_rows(a->q, "q", rows, error)) != LLMQ_OK) return s;
    if ((s = check_rows(a->out, "out", rows, error)) != LLMQ_OK) return s;
    if (a->num_seqs == 0) return LLMQ_OK;
    if (a->k_cache == nullptr || a->v_cache == nullptr || a->query_start == nullptr || a->context_len == nullptr ||
        a->block_tables == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: k_cache, v_cache, query_start, context_len and block_tables must all be set");
    const auto kv_element = static_cast<uintptr_t>(llmq::abi::dtype_of(a->kv_dtype)->element_bytes());
    if (reinterpret_cast<uintptr_t>(a->k_cache) % kv_element != 0 || reinterpret_cast<uintptr_t>(a->v_cache) % kv_element != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: k_cache and v_cache must be aligned to their %u-byte elements",
                    unsigned(kv_element));

    // The index tables, entry by entry (widened to 64 bits before any arithmetic).
    if (a->query_start[0] != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: query_start[0] is %d, expected 0", a->query_start[0]);
    const int64_t capacity = int64_t(a->max_blocks_per_seq) * a->block_size;
    for (int32_t s_index = 0; s_index < a->num_seqs; ++s_index) {
        const int64_t begin = a->query_start[s_index], end = a->query_start[s_index + 1];
        if (end < begin || end > a->num_tokens)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                        "attention: query_start[%d..%d] = %" PRId64 "..%" PRId64 " is not ascending within num_tokens %d",
                        s_index, s_index + 1, begin, end, a->num_tokens);
        const int64_t context = a->context_len[s_index];
        if (context < end - begin || context > capacity)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                        "attention: context_len[%d] is %" PRId64 "; it must cover its %" PRId64
                        " query rows and fit max_blocks_per_seq * block_size = %" PRId64,
                        s_index, context, end - begin, capacity);
        if (end == begin) continue;  // no query rows: no block is read
        const int32_t* table = a->block_tables + int64_t(s_index) * a->max_blocks_per_seq;
        for (int64_t b = 0; b * a->block_size < context; ++b)
            if (table[b] < 0 || table[b] >= a->num_blocks)
                return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                            "attention: block_tables[%d][%" PRId64 "] is %d, outside [0, num_blocks = %d)", s_index, b,
                            table[b], a->num_blocks);
    }
    if (a->query_start[a->num_seqs] != a->num_tokens)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: query_start[num_seqs] is %d, num_tokens is %d",
                    a->query_start[a->num_seqs], a->num_tokens);
    return LLMQ_OK;
}

// ---- the call

struct attention_job {
    k::isa isa;
    k::paged_attention_params params;
};

void run_items(void* arg, int64_t begin, int64_t end) {
    const auto& job = *static_cast<const attention_job*>(arg);
    k::paged_attention(job.isa, job.params, begin, end);
}

llmq_status attention(void* raw, const llmq_attention_args* a, llmq_error* error) {
    auto* self = static_cast<instance*>(raw);
    if (self == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: instance is NULL");
    if (llmq_status s = check_attention(a, error); s != LLMQ_OK) return s;
    if (a->num_seqs == 0 || a->num_tokens == 0) return LLMQ_OK;
    attention_job job{};
    job.isa = self->isa;
    k::paged_attention_params& p = job.params;
    p.q = static_cast<const float*>(a->q.data);
    p.out = static_cast<float*>(a->out.data);
    p.k_cache = a->k_cache;
    p.v_cache = a->v_cache;
    p.kv_dtype = static_cast<k::dtype>(a->kv_dtype);
    p.query_start = a->query_start;
    p.context_len = a->context_len;
    p.block_tables = a->block_tables;
    p.num_seqs = a->num_seqs;
    p.num_heads = a->num_heads;
    p.num_kv_heads = a->num_kv_heads;
    p.head_dim = a->head_dim;
    p.block_size = a->block_size;
    p.max_blocks_per_seq = a->max_blocks_per_seq;
    p.scale = a->scale;
    // A window beyond int32 covers every position a cache can hold: the same as none.
    p.sliding_window = a->sliding_window > 0x7fffffffu ? 0 : static_cast<int32_t>(a->sliding_window);
    self->host->parallel_for(self->host->host_context, int64_t(a->num_seqs) * a->num_heads, run_items, &job);
    return LLMQ_OK;
}

// ---- cross-attention (ABI 1.2)

llmq_status check_cross_attention(const llmq_cross_attention_args* a, llmq_error* error) {
    if (a == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: args is NULL");
    if (a->struct_size < sizeof(llmq_cross_attention_args))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: args.struct_size is %u, expected at least %zu",
                    a->struct_size, sizeof(llmq_cross_attention_args));
    if (a->kv_dtype != LLMQ_DTYPE_F32 && a->kv_dtype != LLMQ_DTYPE_F16 && a->kv_dtype != LLMQ_DTYPE_BF16)
        return fail(error, llmq::abi::dtype_of(a->kv_dtype) != nullptr ? LLMQ_STATUS_UNSUPPORTED : LLMQ_STATUS_INVALID_ARGUMENT,
                    "cross_attention: kv_dtype %d; %s reads f32, f16 or bf16 image rows", a->kv_dtype, plugin_name);
    if (a->num_seqs < 0 || a->num_tokens < 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: num_seqs %d and num_tokens %d must be >= 0",
                    a->num_seqs, a->num_tokens);
    if (a->num_heads <= 0 || a->num_kv_heads <= 0 || a->num_heads % a->num_kv_heads != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "cross_attention: num_heads %d must be a positive multiple of num_kv_heads %d", a->num_heads,
                    a->num_kv_heads);
    if (a->head_dim <= 0 || a->head_dim > k::paged_attention_max_head_dim)
        return fail(error, a->head_dim > 0 ? LLMQ_STATUS_UNSUPPORTED : LLMQ_STATUS_INVALID_ARGUMENT,
                    "cross_attention: head_dim %d outside [1, %d]", a->head_dim, k::paged_attention_max_head_dim);
    if (!std::isfinite(a->scale)) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: scale is not finite");
    llmq_status s;
    const row_shape rows{a->num_tokens, a->num_heads, a->head_dim};
    if ((s = check_rows(a->q, "q", rows, error)) != LLMQ_OK) return s;
    if ((s = check_rows(a->out, "out", rows, error)) != LLMQ_OK) return s;
    if (a->num_seqs == 0) return LLMQ_OK;
    if (a->query_start == nullptr || a->kv_start == nullptr || a->row_begin == nullptr || a->row_end == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "cross_attention: query_start, kv_start, row_begin and row_end must all be set");
    if (a->query_start[0] != 0 || a->kv_start[0] != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: query_start[0] is %d and kv_start[0] is %" PRId64
                    ", both must be 0", a->query_start[0], a->kv_start[0]);
    bool any_rows = false;
    for (int32_t q = 0; q < a->num_seqs; ++q) {
        const int64_t begin = a->query_start[q], end = a->query_start[q + 1];
        if (end < begin || end > a->num_tokens)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                        "cross_attention: query_start[%d..%d] = %" PRId64 "..%" PRId64 " is not ascending within num_tokens %d",
                        q, q + 1, begin, end, a->num_tokens);
        const int64_t rows_here = a->kv_start[q + 1] - a->kv_start[q];
        if (a->kv_start[q + 1] < a->kv_start[q])
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: kv_start[%d..%d] = %" PRId64 "..%" PRId64
                        " is not ascending", q, q + 1, a->kv_start[q], a->kv_start[q + 1]);
        for (int64_t t = begin; t < end; ++t) {
            const int64_t rb = a->row_begin[t], re = a->row_end[t];
            if (rb < 0 || re < rb || re > rows_here)
                return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                            "cross_attention: token %" PRId64 " sees rows [%" PRId64 ", %" PRId64
                            ") of sequence %d, which has %" PRId64 " image rows",
                            t, rb, re, q, rows_here);
            any_rows = any_rows || re > rb;
        }
    }
    if (a->query_start[a->num_seqs] != a->num_tokens)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: query_start[num_seqs] is %d, num_tokens is %d",
                    a->query_start[a->num_seqs], a->num_tokens);
    if (any_rows && (a->k_image == nullptr || a->v_image == nullptr))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: k_image and v_image must be set");
    const auto element = static_cast<uintptr_t>(llmq::abi::dtype_of(a->kv_dtype)->element_bytes());
    if (reinterpret_cast<uintptr_t>(a->k_image) % element != 0 || reinterpret_cast<uintptr_t>(a->v_image) % element != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: k_image and v_image must be aligned to their %u-byte elements",
                    unsigned(element));
    return LLMQ_OK;
}

struct cross_job {
    const llmq_cross_attention_args* a;
    const int32_t* token_seq;  // [num_tokens]
};

float load_kv(int32_t dtype, const void* base, int64_t i) {
    if (dtype == LLMQ_DTYPE_F32) return static_cast<const float*>(base)[i];
    const uint16_t bits = static_cast<const uint16_t*>(base)[i];
    if (dtype == LLMQ_DTYPE_BF16) {
        const uint32_t wide = uint32_t(bits) << 16;
        float f;
        std::memcpy(&f, &wide, sizeof f);
        return f;
    }
    return k::fp16_to_fp32(bits);
}

// Items are (token, head) pairs: softmax(scale q·k) over the token's image rows, then the
// weighted sum of their values, both in f32 with the running-max softmax.
void run_cross_items(void* arg, int64_t begin, int64_t end) {
    const auto& job = *static_cast<const cross_job*>(arg);
    const llmq_cross_attention_args& a = *job.a;
    const int64_t hd = a.head_dim, group = a.num_heads / a.num_kv_heads, row_values = int64_t(a.num_kv_heads) * hd;
    float acc[k::paged_attention_max_head_dim], kv[k::paged_attention_max_head_dim];
    for (int64_t item = begin; item < end; ++item) {
        const int64_t t = item / a.num_heads, h = item % a.num_heads;
        const float* q = static_cast<const float*>(a.q.data) + (t * a.num_heads + h) * hd;
        float* out = static_cast<float*>(a.out.data) + (t * a.num_heads + h) * hd;
        const int64_t base = a.kv_start[job.token_seq[t]];
        const int64_t r0 = base + a.row_begin[t], r1 = base + a.row_end[t];
        std::fill(acc, acc + hd, 0.0f);
        float max_score = -INFINITY, total = 0.0f;
        for (int64_t r = r0; r < r1; ++r) {
            const int64_t at = r * row_values + (h / group) * hd;
            float score = 0.0f;
            for (int64_t d = 0; d < hd; ++d) score += q[d] * load_kv(a.kv_dtype, a.k_image, at + d);
            score *= a.scale;
            for (int64_t d = 0; d < hd; ++d) kv[d] = load_kv(a.kv_dtype, a.v_image, at + d);
            if (score > max_score) {
                const float shrink = std::exp(max_score - score);
                for (int64_t d = 0; d < hd; ++d) acc[d] *= shrink;
                total *= shrink;
                max_score = score;
            }
            const float w = std::exp(score - max_score);
            total += w;
            for (int64_t d = 0; d < hd; ++d) acc[d] += w * kv[d];
        }
        // No rows: HF's "full text row masked out", an output of zeros.
        const float inv = total > 0.0f ? 1.0f / total : 0.0f;
        for (int64_t d = 0; d < hd; ++d) out[d] = acc[d] * inv;
    }
}

llmq_status cross_attention(void* raw, const llmq_cross_attention_args* a, llmq_error* error) {
    auto* self = static_cast<instance*>(raw);
    if (self == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "cross_attention: instance is NULL");
    if (llmq_status s = check_cross_attention(a, error); s != LLMQ_OK) return s;
    if (a->num_seqs == 0 || a->num_tokens == 0) return LLMQ_OK;
    try {
        std::vector<int32_t> token_seq(static_cast<size_t>(a->num_tokens));
        for (int32_t q = 0; q < a->num_seqs; ++q)
            for (int32_t t = a->query_start[q]; t < a->query_start[q + 1]; ++t) token_seq[static_cast<size_t>(t)] = q;
        cross_job job{a, token_seq.data()};
        self->host->parallel_for(self->host->host_context, int64_t(a->num_tokens) * a->num_heads, run_cross_items, &job);
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "cross_attention: out of memory");
    }
    return LLMQ_OK;
}

const llmq_attention_ops attention_ops = {sizeof(llmq_attention_ops), 0, attention, cross_attention};

const llmq_plugin_descriptor descriptor = {
    sizeof(llmq_plugin_descriptor),
    LLMQ_PLUGIN_ABI_VERSION,
    LLMQ_PLUGIN_KIND_ATTENTION,
    LLMQ_BACKEND_CPU,
    plugin_name,
    plugin_version,
    init,
    shutdown,
    nullptr,
    &attention_ops,
    nullptr,
};

}  // namespace

extern "C" LLMQ_PLUGIN_EXPORT const llmq_plugin_descriptor* llmq_plugin_entry(void) { return &descriptor; }
