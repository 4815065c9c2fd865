// The cache of cuBLASLt plans, one per GEMM shape: a shape's descriptors and the algorithm
// the heuristic chose are made on its first call and reused for every later one (the
// heuristic query costs tens of microseconds, more than a decode GEMM). Least recently used
// plans are dropped past `capacity`. Generic over the plan type (a value that owns its
// cuBLASLt objects), so tests/cuda checks hits, misses and eviction without a GPU.
// Not thread-safe: one instance per plugin instance, used from the device's worker.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <unordered_map>
#include <utility>

namespace llmq::gemm_cuda {

// Everything a cuBLASLt plan depends on. Leading dimensions in elements (w: bytes for q8_0);
// alignments are the largest power of two (at most 256) dividing every row start.
struct gemm_shape {
    int64_t M = 0, N = 0, K = 0;
    int64_t ldx = 0, ldw = 0, ldy = 0;
    int32_t x_type = 0, w_type = 0, y_type = 0;
    uint32_t x_alignment = 0, w_alignment = 0, y_alignment = 0;
    bool operator==(const gemm_shape&) const = default;
};

struct gemm_shape_hash {
    std::size_t operator()(const gemm_shape& s) const {
        uint64_t h = 1469598103934665603ull;
        auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
        for (int64_t v : {s.M, s.N, s.K, s.ldx, s.ldw, s.ldy}) mix(uint64_t(v));
        mix(uint64_t(s.x_type) | uint64_t(s.w_type) << 8 | uint64_t(s.y_type) << 16);
        mix(uint64_t(s.x_alignment) | uint64_t(s.w_alignment) << 16 | uint64_t(s.y_alignment) << 32);
        return std::size_t(h);
    }
};

template <typename Plan>
class plan_cache {
public:
    explicit plan_cache(std::size_t capacity) : capacity_(capacity < 1 ? 1 : capacity) {}

    // The plan for `shape`, or NULL; a hit makes it the most recently used.
    Plan* find(const gemm_shape& shape) {
        auto it = index_.find(shape);
        if (it == index_.end()) {
            ++misses_;
            return nullptr;
        }
        ++hits_;
        entries_.splice(entries_.begin(), entries_, it->second);
        return &it->second->second;
    }
    // Stores `plan` for `shape` (not present) as the most recently used; drops the least
    // recently used past capacity. Returns the stored plan.
    Plan& insert(const gemm_shape& shape, Plan plan) {
        entries_.emplace_front(shape, std::move(plan));
        index_[shape] = entries_.begin();
        if (entries_.size() > capacity_) {
            index_.erase(entries_.back().first);
            entries_.pop_back();
            ++evictions_;
        }
        return entries_.front().second;
    }
    std::size_t size() const { return entries_.size(); }
    uint64_t hits() const { return hits_; }
    uint64_t misses() const { return misses_; }
    uint64_t evictions() const { return evictions_; }

private:
    std::size_t capacity_;
    std::list<std::pair<gemm_shape, Plan>> entries_;
    std::unordered_map<gemm_shape, typename std::list<std::pair<gemm_shape, Plan>>::iterator, gemm_shape_hash> index_;
    uint64_t hits_ = 0, misses_ = 0, evictions_ = 0;
};

}  // namespace llmq::gemm_cuda
