// The paged KV cache.
//
// Logical blocks (block_size positions each) are handed out by one KvBlockAllocator for
// the whole device group, so a sequence's block table is the same on every shard. Each
// shard keeps the storage for its own layers and KV heads: per layer a K pool and a V pool
// of num_blocks blocks, block = [block_size][kv_heads][head_dim] of f16 or f32, the layout
// llmq_attention_args describes. The pools are device memory of the shard's backend, written
// only through the backend's kv_write (backend.hpp).
#pragma once

#include <cstdint>
#include <mutex>
#include <span>
#include <vector>

#include "llmq/kernels/dtype.hpp"
#include "llmq/runtime/backend.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

// Hands out block ids 0..num_blocks-1. Thread-safe.
class KvBlockAllocator {
public:
    explicit KvBlockAllocator(int32_t num_blocks);

    int32_t total() const { return total_; }
    int32_t free_count() const;
    int32_t used_count() const { return total_ - free_count(); }

    // Append n blocks to `table`, all or none. false: not enough free blocks.
    [[nodiscard]] bool allocate(int32_t n, std::vector<int32_t>& table);
    // Return blocks; each must have come from allocate and not been freed since.
    void release(std::span<const int32_t> blocks);

private:
    int32_t total_;
    mutable std::mutex mutex_;
    std::vector<int32_t> free_;  // a stack: recently freed blocks are reused first (warm)
};

struct KvCacheShape {
    int32_t layers = 0;      // layers this shard holds
    int32_t kv_heads = 0;    // KV heads this shard holds
    int32_t head_dim = 0;
    int32_t block_size = 16;
    int32_t num_blocks = 0;
    kernels::dtype dtype = kernels::dtype::f16;

    uint64_t bytes_per_block_per_layer() const;  // one of K or V
    uint64_t total_bytes() const;                // K and V, all layers
};

// One shard's storage, allocated from its backend's device memory at load (loading thread).
class KvCacheStorage {
public:
    static Expected<std::unique_ptr<KvCacheStorage>> create(Backend& backend,
                                                            const KvCacheShape& shape);

    const KvCacheShape& shape() const { return shape_; }
    // Layer `layer`'s pools (device memory), as the attention plugin reads them.
    void* k_pool(int32_t layer) const;
    void* v_pool(int32_t layer) const;

    // Layer `layer`'s pools as the backend's KV write takes them (Backend::kv_write,
    // Backend::rope_kv_write).
    KvPools pools(int32_t layer) const;

private:
    KvCacheStorage() = default;
    KvCacheShape shape_;
    DeviceBuffer pools_;
};

}  // namespace llmq
