// Deterministic random tensor rows for the model maker's files: each row's values are a
// function of (seed, tensor name, row) only, so the same spec always gives the same bytes
// whatever order or chunking the writer uses.
#pragma once

#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmq/kernels/cpu.hpp"

namespace llmq {

inline uint64_t splitmix64(uint64_t& state) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

inline uint64_t hash_name(std::string_view s) {  // FNV-1a
    uint64_t h = 0xCBF29CE484222325ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001B3ull;
    return h;
}

// How the values of one tensor are drawn: mean + stddev * z, z ~ approx. N(0, 1).
struct Distribution {
    float mean;
    float stddev;
};

// Fills rows of one tensor. Each row has its own stream seeded from (seed, name, row), so
// the values do not depend on how the writer chunks rows.
class RowGenerator {
public:
    RowGenerator(uint64_t seed, const std::string& name, Distribution d, int64_t row_length,
                 kernels::dtype dtype)
        : base_(seed ^ hash_name(name)), dist_(d), row_length_(static_cast<size_t>(row_length)),
          dtype_(dtype) {}

    // Safe to call from several threads at once (GgufWriter::Options::fill_threads).
    void operator()(int64_t row, uint8_t* dst) const {
        thread_local std::vector<float> values;
        values.resize(row_length_);
        uint64_t state = base_ ^ (static_cast<uint64_t>(row) * 0xD1B54A32D192ED03ull);
        // Irwin-Hall with four 16-bit uniforms per draw: sum - 2 has variance 1/3, so
        // sqrt(3) (sum - 2) is close to a standard normal and costs one 64-bit draw.
        const float unit = 1.0f / 65536.0f;
        const float scale = dist_.stddev * std::sqrt(3.0f);
        for (float& v : values) {
            uint64_t r = splitmix64(state);
            float sum = static_cast<float>(r & 0xFFFF) + static_cast<float>((r >> 16) & 0xFFFF) +
                        static_cast<float>((r >> 32) & 0xFFFF) + static_cast<float>(r >> 48);
            v = dist_.mean + scale * (sum * unit - 2.0f);
        }
        kernels::row_from_f32(dtype_, values.data(), dst, static_cast<int64_t>(values.size()));
    }

private:
    uint64_t base_;
    Distribution dist_;
    size_t row_length_;
    kernels::dtype dtype_;
};

}  // namespace llmq
