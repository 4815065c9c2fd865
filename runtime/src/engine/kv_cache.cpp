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
    return static_cast<uint64_t>(block_size) * kv_heads * head_dim *
           (dtype == kernels::dtype::f16 ? 2 : 4);
}

uint64_t KvCacheShape::total_bytes() const {
    return 2ull * layers * num_blocks * bytes_per_block_per_layer();
}

Expected<std::unique_ptr<KvCacheStorage>> KvCacheStorage::create(Device& device,
                                                                 const KvCacheShape& shape) {
    if (shape.dtype != kernels::dtype::f16 && shape.dtype != kernels::dtype::f32)
        return invalid_argument("[kv_cache] dtype must be f16 or f32");
    std::unique_ptr<KvCacheStorage> s(new KvCacheStorage());
    s->device_ = &device;
    s->shape_ = shape;
    const uint64_t bytes = shape.total_bytes();
    if (bytes == 0) return s;
    std::string why;
    s->base_ = static_cast<uint8_t*>(device.allocate(bytes, 4096, &why));
    if (!s->base_)
        return out_of_memory("KV cache of " + std::to_string(bytes) + " bytes on " +
                             device.info().name + ": " + why);
    return s;
}

KvCacheStorage::~KvCacheStorage() {
    if (base_) device_->deallocate(base_);
}

void* KvCacheStorage::k_pool(int32_t layer) const {
    const uint64_t pool = static_cast<uint64_t>(shape_.num_blocks) * shape_.bytes_per_block_per_layer();
    return base_ + (2ull * layer) * pool;
}

void* KvCacheStorage::v_pool(int32_t layer) const {
    const uint64_t pool = static_cast<uint64_t>(shape_.num_blocks) * shape_.bytes_per_block_per_layer();
    return base_ + (2ull * layer + 1) * pool;
}

void KvCacheStorage::store(int32_t layer, std::span<const int32_t> table, int32_t pos,
                           const float* k, const float* v) {
    const int64_t row = static_cast<int64_t>(shape_.kv_heads) * shape_.head_dim;
    const uint64_t esize = shape_.dtype == kernels::dtype::f16 ? 2 : 4;
    const int32_t block = table[pos / shape_.block_size];
    const int32_t slot = pos % shape_.block_size;
    const uint64_t at =
        (static_cast<uint64_t>(block) * shape_.block_size + slot) * static_cast<uint64_t>(row) * esize;
    kernels::row_from_f32(shape_.dtype, k, static_cast<uint8_t*>(k_pool(layer)) + at, row);
    kernels::row_from_f32(shape_.dtype, v, static_cast<uint8_t*>(v_pool(layer)) + at, row);
}

}  // namespace llmq
