#include "llmq/runtime/weight_mix.hpp"

#include <array>
#include <charconv>

namespace llmq {
namespace {

using kernels::dtype;

// file_type numbers: llama.cpp's LLAMA_FTYPE_MOSTLY_* (ALL_F32 = 0, F16 = 1, Q4_0 = 2, ...).
constexpr std::array<WeightMix, 17> mixes{{
    {"f32", dtype::f32, dtype::f32, dtype::f32, 0},
    {"f16", dtype::f16, dtype::f16, dtype::f16, 1},
    {"bf16", dtype::bf16, dtype::bf16, dtype::bf16, 32},
    {"q8_0", dtype::q8_0, dtype::q8_0, dtype::q8_0, 7},
    {"q4_0", dtype::q4_0, dtype::q4_0, dtype::q4_0, 2},
    {"q4_1", dtype::q4_1, dtype::q4_1, dtype::q4_1, 3},
    {"q5_0", dtype::q5_0, dtype::q5_0, dtype::q5_0, 8},
    {"q5_1", dtype::q5_1, dtype::q5_1, dtype::q5_1, 9},
    {"q2_k", dtype::q2_k, dtype::q2_k, dtype::q2_k, 10},
    {"q3_k", dtype::q3_k, dtype::q3_k, dtype::q3_k, 11},
    {"q4_k", dtype::q4_k, dtype::q4_k, dtype::q4_k, 14},
    {"q5_k", dtype::q5_k, dtype::q5_k, dtype::q5_k, 16},
    {"q6_k", dtype::q6_k, dtype::q6_k, dtype::q6_k, 18},
    {"iq4_nl", dtype::iq4_nl, dtype::iq4_nl, dtype::iq4_nl, 25},
    {"iq4_xs", dtype::iq4_xs, dtype::iq4_xs, dtype::iq4_xs, 30},
    {"q4_k_m", dtype::q4_k, dtype::q6_k, dtype::q6_k, 15},
    {"q5_k_m", dtype::q5_k, dtype::q6_k, dtype::q6_k, 17},
}};

// The layer number of "blk.N.<rest>", or -1.
int64_t layer_of(std::string_view name) {
    if (name.substr(0, 4) != "blk.") return -1;
    int64_t layer = -1;
    const char* begin = name.data() + 4;
    auto [end, error] = std::from_chars(begin, name.data() + name.size(), layer);
    return error == std::errc() && end != begin ? layer : -1;
}

bool ends_with(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

const WeightMix* find_weight_mix(std::string_view name) {
    for (const WeightMix& m : mixes)
        if (name == m.name) return &m;
    return nullptr;
}

std::string weight_mix_names() {
    std::string out;
    for (const WeightMix& m : mixes) out += (out.empty() ? "" : ", ") + std::string(m.name);
    return out;
}

bool use_more_bits(int64_t layer, int64_t layers) {
    return layer < layers / 8 || layer >= 7 * layers / 8 || (layer - layers / 8) % 3 == 2;
}

kernels::dtype weight_mix_dtype(const WeightMix& mix, std::string_view tensor_name, int64_t layers, bool tied) {
    if (tensor_name == "output.weight" || (tied && tensor_name == "token_embd.weight")) return mix.output;
    const int64_t layer = layer_of(tensor_name);
    if (layer >= 0 && (ends_with(tensor_name, ".attn_v.weight") || ends_with(tensor_name, ".ffn_down.weight")) &&
        use_more_bits(layer, layers))
        return mix.more_bits;
    return mix.base;
}

}  // namespace llmq
