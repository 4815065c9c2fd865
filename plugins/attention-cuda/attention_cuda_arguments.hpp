// attention-cuda's argument checks against the GPU contract (llmq_plugin.h): the scalars, q
// and out, the cache pointers. The index tables are device memory that the plugin never
// reads on the host (the runtime validated them; the kernels bound every block id).
// Header-only and free of CUDA headers, so tests/cuda runs it without a GPU.
#pragma once

#include <cmath>
#include <cstdint>

#include "../cuda-common/cuda_plugin_checks.hpp"

namespace llmq::attention_cuda {

using cuda_plugin::fail;

// q or out: an activation type on this GPU, [num_tokens][num_heads][head_dim] contiguous,
// as rank 2 ([tokens, heads * head_dim]) or rank 3.
inline llmq_status check_rows(const llmq_tensor& t, int32_t device, const char* name, const llmq_attention_args& a,
                              llmq_error* error) {
    if (llmq_status s = cuda_plugin::check_on_device(t, device, "attention", name, error); s != LLMQ_OK) return s;
    if (!cuda_plugin::is_activation(t.dtype))
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "attention: %s.dtype is %s, expected f32, f16 or bf16", name,
                    cuda_plugin::dtype_label(t.dtype));
    const int64_t e = cuda_plugin::element_bytes(t.dtype);
    const int64_t width = int64_t(a.num_heads) * a.head_dim;
    bool shaped = false;
    if (t.rank == 2)
        shaped = t.shape[0] == a.num_tokens && t.shape[1] == width && t.strides[1] == e &&
                 (t.shape[0] <= 1 || t.strides[0] == width * e);
    else if (t.rank == 3)
        shaped = t.shape[0] == a.num_tokens && t.shape[1] == a.num_heads && t.shape[2] == a.head_dim &&
                 t.strides[2] == e && t.strides[1] == int64_t(a.head_dim) * e &&
                 (t.shape[0] <= 1 || t.strides[0] == width * e);
    if (!shaped)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: %s must be contiguous %s [num_tokens=%d][num_heads=%d][head_dim=%d] (rank 2 or 3); "
                    "got rank %d shape [%" PRId64 ", %" PRId64 ", %" PRId64 "] strides [%" PRId64 ", %" PRId64 ", %" PRId64 "]",
                    name, cuda_plugin::dtype_label(t.dtype), a.num_tokens, a.num_heads, a.head_dim, t.rank, t.shape[0],
                    t.shape[1], t.shape[2], t.strides[0], t.strides[1], t.strides[2]);
    if (t.data == nullptr && a.num_tokens > 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: %s.data is NULL", name);
    if (reinterpret_cast<uintptr_t>(t.data) % uint64_t(e) != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: %s.data is not aligned to its %" PRId64 "-byte elements",
                    name, e);
    return LLMQ_OK;
}

inline llmq_status check_attention(const llmq_attention_args* a, int32_t device, llmq_error* error) {
    if (a == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: args is NULL");
    if (a->struct_size < sizeof(llmq_attention_args))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: args.struct_size is %u, expected at least %zu",
                    a->struct_size, sizeof(llmq_attention_args));
    if (a->sliding_window != 0)
        return fail(error, LLMQ_STATUS_UNSUPPORTED,
                    "attention: sliding_window %u; attention-cuda has no sliding-window mask yet", a->sliding_window);
    if (!cuda_plugin::is_activation(a->kv_dtype))
        return fail(error, a->kv_dtype >= 0 && a->kv_dtype <= 5 ? LLMQ_STATUS_UNSUPPORTED : LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: kv_dtype %s; attention-cuda reads bf16, f16 or f32 caches",
                    cuda_plugin::dtype_label(a->kv_dtype));
    if (a->num_seqs < 0 || a->num_tokens < 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: num_seqs %d and num_tokens %d must be >= 0",
                    a->num_seqs, a->num_tokens);
    if (a->num_heads <= 0 || a->num_kv_heads <= 0 || a->num_heads % a->num_kv_heads != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: num_heads %d must be a positive multiple of num_kv_heads %d", a->num_heads,
                    a->num_kv_heads);
    if (a->num_kv_heads > 65535)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "attention: num_kv_heads %d above 65535", a->num_kv_heads);
    if (a->head_dim != 64 && a->head_dim != 128)
        return fail(error, a->head_dim > 0 ? LLMQ_STATUS_UNSUPPORTED : LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: head_dim %d; attention-cuda has kernels for 64 and 128", a->head_dim);
    if (a->block_size <= 0 || a->max_blocks_per_seq <= 0 || a->num_blocks <= 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: block_size %d, max_blocks_per_seq %d and num_blocks %d must be > 0", a->block_size,
                    a->max_blocks_per_seq, a->num_blocks);
    if (int64_t(a->max_blocks_per_seq) * a->block_size > INT32_MAX)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: max_blocks_per_seq %d * block_size %d exceeds 2^31 positions", a->max_blocks_per_seq,
                    a->block_size);
    if (!std::isfinite(a->scale)) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: scale is not finite");
    llmq_status s;
    if ((s = check_rows(a->q, device, "q", *a, error)) != LLMQ_OK) return s;
    if ((s = check_rows(a->out, device, "out", *a, error)) != LLMQ_OK) return s;
    if (a->q.dtype != a->out.dtype)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "attention: q is %s but out is %s; they must match",
                    cuda_plugin::dtype_label(a->q.dtype), cuda_plugin::dtype_label(a->out.dtype));
    if (a->num_seqs == 0) return LLMQ_OK;
    if (a->k_cache == nullptr || a->v_cache == nullptr || a->query_start == nullptr || a->context_len == nullptr ||
        a->block_tables == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: k_cache, v_cache, query_start, context_len and block_tables must all be set");
    const uint64_t kv_element = uint64_t(cuda_plugin::element_bytes(a->kv_dtype));
    if (reinterpret_cast<uintptr_t>(a->k_cache) % kv_element != 0 ||
        reinterpret_cast<uintptr_t>(a->v_cache) % kv_element != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "attention: k_cache and v_cache must be aligned to their %u-byte elements", unsigned(kv_element));
    if (reinterpret_cast<uintptr_t>(a->query_start) % 4 != 0 || reinterpret_cast<uintptr_t>(a->context_len) % 4 != 0 ||
        reinterpret_cast<uintptr_t>(a->block_tables) % 4 != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "attention: the index tables must be 4-byte aligned");
    return LLMQ_OK;
}

// How many splits to cut each context into: enough (sequence, KV head, split) blocks to fill
// `multiprocessors` twice when contexts are long, at least 256 positions per split, at most 32
// splits; 1 when the batch fills the GPU by itself or contexts are under 512 positions.
// From scalars only (max_context = max_blocks_per_seq * block_size), since the tables stay
// on the device.
inline int32_t choose_splits(int32_t num_seqs, int32_t num_kv_heads, int64_t max_context, int32_t multiprocessors) {
    const int64_t base = int64_t(num_seqs) * num_kv_heads;
    if (base <= 0 || max_context < 512 || base >= 2 * int64_t(multiprocessors)) return 1;
    int64_t splits = (2 * int64_t(multiprocessors) + base - 1) / base;
    const int64_t by_length = max_context / 256;
    if (splits > by_length) splits = by_length;
    if (splits > 32) splits = 32;
    return splits < 1 ? 1 : int32_t(splits);
}

}  // namespace llmq::attention_cuda
