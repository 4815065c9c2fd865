#include "llmq/runtime/kv_cache.hpp"

#include <algorithm>

namespace llmq {

KvBlockAllocator::KvBlockAllocator(int32_t num_blocks) : total_(num_blocks) {
    free_.reserve(num_blocks);
    // Lowest ids on top of the stack.
    for (int32_t b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
}

int32_t KvBlockAllocator::free_count() const {
    std::lock_guard lock(mutex_);
    return static_cast<int32_t>(free_.size());
}

bool KvBlockAllocator::allocate(int32_t n, std::vector<int32_t>& table) {
    if (n <= 0) return true;
    std::lock_guard lock(mutex_);
    if (static_cast<int32_t>(free_.size()) < n) return false;
    for (int32_t i = 0; i < n; ++i) {
        table.push_back(free_.back());
        free_.pop_back();
    }
    return true;
}

void KvBlockAllocator::release(std::span<const int32_t> blocks) {
    std::lock_guard lock(mutex_);
    for (auto it = blocks.rbegin(); it != blocks.rend(); ++it) free_.push_back(*it);
}

uint64_t KvCacheShape::bytes_per_block_per_layer() const {
    return static_cast<uint64_t>(block_size) *
           kernels::row_bytes(dtype, static_cast<int64_t>(kv_heads) * head_dim);
}

uint64_t KvCacheShape::total_bytes() const {
    return 2ull * layers * num_blocks * bytes_per_block_per_layer();
}

Expected<std::unique_ptr<KvCacheStorage>> KvCacheStorage::create(Backend& backend,
                                                                 const KvCacheShape& shape) {
    if (shape.dtype != kernels::dtype::f16 && shape.dtype != kernels::dtype::f32)
        return invalid_argument("[kv_cache] dtype must be f16 or f32");
    std::unique_ptr<KvCacheStorage> s(new KvCacheStorage());
    s->shape_ = shape;
    const uint64_t bytes = shape.total_bytes();
    if (bytes == 0) return s;
    auto pools = backend.allocate(bytes, 4096, "KV cache of " + std::to_string(bytes) + " bytes");
    if (!pools) return pools.status();
    s->pools_ = std::move(*pools);
    return s;
}

void* KvCacheStorage::k_pool(int32_t layer) const {
    const uint64_t pool = static_cast<uint64_t>(shape_.num_blocks) * shape_.bytes_per_block_per_layer();
    return static_cast<uint8_t*>(pools_.data()) + (2ull * layer) * pool;
}

void* KvCacheStorage::v_pool(int32_t layer) const {
    const uint64_t pool = static_cast<uint64_t>(shape_.num_blocks) * shape_.bytes_per_block_per_layer();
    return static_cast<uint8_t*>(pools_.data()) + (2ull * layer + 1) * pool;
}

KvPools KvCacheStorage::pools(int32_t layer) const {
    KvPools pools;
    pools.k = k_pool(layer);
    pools.v = v_pool(layer);
    pools.dtype = shape_.dtype;
    pools.block_size = shape_.block_size;
    pools.row_values = static_cast<int64_t>(shape_.kv_heads) * shape_.head_dim;
    return pools;
}

}  // namespace llmq
