#include "llmq/runtime/parallel_plan.hpp"

#include <algorithm>
#include <cctype>

namespace llmq {

namespace {
uint64_t bytes_of(const GgufTensor* t) { return t ? t->size_bytes : 0; }

uint64_t layer_bytes(const LlamaLayerTensors& l) {
    return bytes_of(l.attn_norm) + bytes_of(l.wq) + bytes_of(l.wk) + bytes_of(l.wv) +
           bytes_of(l.wo) + bytes_of(l.ffn_norm) + bytes_of(l.ffn_gate) + bytes_of(l.ffn_up) +
           bytes_of(l.ffn_down) + bytes_of(l.bq) + bytes_of(l.bk) + bytes_of(l.bv);
}

// Values per block of a tensor's type (1 for plain types): row-parallel splits must cut rows
// on whole blocks.
int64_t block_of(const GgufTensor* t) { return t ? kernels::dtype_info_of(t->dtype).block_values : 1; }
}  // namespace

TensorSlice tensor_slice(const LlamaHParams& hp, int32_t tensor, int32_t rank) {
    TensorSlice s{};
    const int32_t heads = static_cast<int32_t>(hp.n_head) / tensor;
    s.head_begin = rank * heads;
    s.head_end = s.head_begin + heads;
    const int32_t group = static_cast<int32_t>(hp.n_head / hp.n_head_kv);
    s.kv_begin = s.head_begin / group;
    s.kv_end = (s.head_end - 1) / group + 1;
    const int32_t ff = static_cast<int32_t>(hp.n_ff) / tensor;
    s.ff_begin = rank * ff;
    s.ff_end = s.ff_begin + ff;
    s.vocab_padded = static_cast<int32_t>((hp.n_vocab + tensor - 1) / tensor);
    s.vocab_begin = std::min<int32_t>(rank * s.vocab_padded, hp.n_vocab);
    s.vocab_end = std::min<int32_t>(s.vocab_begin + s.vocab_padded, hp.n_vocab);
    return s;
}

Status check_tensor_split(const LlamaLayout& layout, int32_t tensor) {
    const auto& hp = layout.hp;
    const std::string t = "tensor = " + std::to_string(tensor);
    if (tensor < 1) return invalid_argument("[parallel] tensor must be at least 1");
    if (hp.n_head % tensor != 0)
        return invalid_argument("[parallel] " + t + ": the model's " + std::to_string(hp.n_head) +
                                " attention heads do not divide by " + std::to_string(tensor));
    if (hp.n_head_kv % tensor != 0 && tensor % hp.n_head_kv != 0)
        return invalid_argument("[parallel] " + t + ": the model's " +
                                std::to_string(hp.n_head_kv) +
                                " KV heads neither divide by the ranks nor divide them");
    if (hp.n_ff % tensor != 0)
        return invalid_argument("[parallel] " + t + ": the FFN size " + std::to_string(hp.n_ff) +
                                " does not divide by " + std::to_string(tensor));
    // Row-parallel weights are split inside rows: quantized rows split only on whole blocks.
    auto upper = [](kernels::dtype d) {
        std::string s = kernels::dtype_name(d);
        for (char& c : s) c = char(std::toupper(static_cast<unsigned char>(c)));
        return s;
    };
    for (const auto& l : layout.layers) {
        const int64_t piece = int64_t(hp.n_head / tensor) * hp.head_dim;
        if (piece % block_of(l.wo) != 0)
            return invalid_argument("[parallel] " + t + ": " + upper(l.wo->dtype) +
                                    " attention output rows cannot be split into " + std::to_string(piece) +
                                    "-value pieces (needs multiples of " + std::to_string(block_of(l.wo)) + ")");
        if ((hp.n_ff / tensor) % block_of(l.ffn_down) != 0)
            return invalid_argument("[parallel] " + t + ": " + upper(l.ffn_down->dtype) +
                                    " FFN down rows cannot be split into " + std::to_string(hp.n_ff / tensor) +
                                    "-value pieces (needs multiples of " + std::to_string(block_of(l.ffn_down)) + ")");
    }
    return {};
}

Expected<ParallelPlan> make_parallel_plan(const LlamaLayout& layout, int32_t tensor,
                                          int32_t pipeline) {
    LLMQ_TRY(check_tensor_split(layout, tensor));
    const int32_t n_layer = static_cast<int32_t>(layout.layers.size());
    if (pipeline < 1) return invalid_argument("[parallel] pipeline must be at least 1");
    if (pipeline > n_layer)
        return invalid_argument("[parallel] pipeline = " + std::to_string(pipeline) +
                                " exceeds the model's " + std::to_string(n_layer) + " layers");
    ParallelPlan plan;
    plan.tensor = tensor;
    plan.pipeline = pipeline;
    // Greedy balance by bytes: close a stage once it reaches its share of what is left.
    std::vector<uint64_t> per_layer(n_layer);
    for (int32_t i = 0; i < n_layer; ++i) per_layer[i] = layer_bytes(layout.layers[i]);
    const uint64_t head = bytes_of(layout.token_embd);
    const uint64_t tail = (layout.output != layout.token_embd ? bytes_of(layout.output) : 0) +
                          bytes_of(layout.output_norm);
    plan.stage_layers.push_back(0);
    int32_t next = 0;
    uint64_t remaining = head + tail;
    for (auto b : per_layer) remaining += b;
    for (int32_t s = 0; s < pipeline; ++s) {
        const int32_t stages_left = pipeline - s;
        const uint64_t target = remaining / stages_left;
        uint64_t stage = (s == 0 ? head : 0);
        int32_t end = next;
        const int32_t must_leave = stages_left - 1;  // one layer at least per later stage
        if (s == pipeline - 1) {
            end = n_layer;
            for (int32_t i = next; i < n_layer; ++i) stage += per_layer[i];
        } else {
            while (end < n_layer - must_leave) {
                const uint64_t with = stage + per_layer[end];
                // Take the layer when it brings the stage closer to the target.
                if (end > next && with > target && with - target > target - stage) break;
                stage = with;
                ++end;
            }
        }
        remaining -= stage;
        plan.stage_layers.push_back(end);
        next = end;
    }
    return plan;
}

}  // namespace llmq
