// Which dtype each weight of a model gets when it is written or converted: one type for all
// matmul weights ("q4_k"), or a mix as llama.cpp's Q4_K_M / Q5_K_M files have it (most weights
// in the base type; the LM head, and attn_v and ffn_down of some layers, in Q6_K). Norms and
// every 1-D tensor stay F32 whatever the mix. Used by llmq-make-model and `llmq quantize`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "llmq/kernels/cpu.hpp"

namespace llmq {

struct WeightMix {
    const char* name;          // "q4_k_m", "q8_0", ... (as --dtype / TYPE take it)
    kernels::dtype base;       // every matmul weight not named below
    kernels::dtype output;     // output.weight (token_embd.weight too when the head is tied)
    kernels::dtype more_bits;  // attn_v and ffn_down of the layers use_more_bits() picks
    uint32_t file_type;        // general.file_type as llama.cpp numbers it
};

// The mix called `name`, or nullptr.
const WeightMix* find_weight_mix(std::string_view name);
// "f32, f16, ..., q4_k_m, q5_k_m": every name find_weight_mix knows, for help and errors.
std::string weight_mix_names();

// True for the layers that get more bits in a _M mix: the first and last eighth of the layers
// and every third one in between (llama.cpp's rule for attn_v and ffn_down).
bool use_more_bits(int64_t layer, int64_t layers);

// The dtype of a 2-D weight tensor called `tensor_name` ("blk.3.ffn_down.weight", ...) in a
// model of `layers` layers; `tied`: the model has no output.weight.
kernels::dtype weight_mix_dtype(const WeightMix& mix, std::string_view tensor_name, int64_t layers, bool tied);

}  // namespace llmq
