#include "llmq/runtime/model_shard.hpp"
#include "llmq/runtime/decode_graph_batch.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "llmq_abi_dtypes.hpp"

namespace llmq {

namespace {

uint64_t view_bytes(const WeightView& w) {
    return static_cast<uint64_t>(w.rows) * kernels::row_bytes(w.dtype, w.cols);
}

llmq_tensor tensor_2d(const void* data, kernels::dtype t, int64_t rows, int64_t cols,
                      int64_t stride_bytes, const Device& d) {
    llmq_tensor x{};
    x.data = const_cast<void*>(data);
    x.rank = 2;
    x.dtype = abi::dtype_id(t);
    x.shape[0] = rows;
    x.shape[1] = cols;
    x.shape[2] = x.shape[3] = 1;
    x.strides[0] = stride_bytes;
    x.strides[1] = kernels::dtype_info_of(t).element_bytes();
    x.device_type = d.backend();
    x.device_index = d.info().index;
    return x;
}

}  // namespace

Expected<std::unique_ptr<ModelShard>> ModelShard::create(const LlamaLayout& layout,
                                                         const ShardSpec& spec, Backend& backend,
                                                         const KvCacheShape& kv_template,
                                                         int32_t max_tokens,
                                                         int32_t max_logit_rows) {
    if (!layout.token_embd || !layout.token_embd->data)
        return invalid_argument("the model file has no tensor data (a header-only file can be "
                                "planned with `llmq plan`, not served)");
    LLMQ_TRY(check_tensor_split(layout, spec.ranks));
    std::unique_ptr<ModelShard> s(new ModelShard());
    s->spec_ = spec;
    s->hp_ = layout.hp;
    s->backend_ = &backend;
    s->slice_ = tensor_slice(layout.hp, spec.ranks, spec.rank);
    const auto& hp = layout.hp;
    const auto& sl = s->slice_;
    const int64_t hd = hp.head_dim;
    s->heads_ = sl.head_end - sl.head_begin;
    s->kv_heads_ = sl.kv_end - sl.kv_begin;
    s->ff_ = sl.ff_end - sl.ff_begin;
    s->max_tokens_ = max_tokens;
    s->max_logit_rows_ = max_logit_rows;
    LLMQ_TRY(s->place_weights(layout));

    KvCacheShape kv = kv_template;
    // Cross-attention layers keep no KV in the cache (their keys and values are the images').
    int32_t self_layers = 0;
    for (int32_t l = spec.layer_begin; l < spec.layer_end; ++l)
        if (!layout.layers[l].cross) ++self_layers;
    kv.layers = std::max(self_layers, 1);
    kv.kv_heads = s->kv_heads_;
    kv.head_dim = static_cast<int32_t>(hd);
    auto storage = KvCacheStorage::create(backend, kv);
    if (!storage) return storage.status();
    s->kv_ = std::move(*storage);

    // Workspace for the largest step.
    const size_t T = static_cast<size_t>(max_tokens), E = hp.n_embd;
    const size_t sizes[] = {T * E, T * E, T * s->heads_ * hd, T * s->kv_heads_ * hd,
                            T * s->kv_heads_ * hd, T * s->heads_ * hd, T * E,
                            T * s->ff_, T * s->ff_,
                            static_cast<size_t>(max_logit_rows) * sl.vocab_padded,
                            static_cast<size_t>(max_logit_rows) * sl.vocab_padded * spec.ranks};
    float** slots[] = {&s->x_, &s->h_, &s->q_, &s->k_, &s->v_, &s->att_, &s->o_,
                       &s->gate_, &s->up_, &s->lg_, &s->lg_all_};
    for (size_t i = 0; i < std::size(sizes); ++i) {
        auto buffer = backend.allocate(std::max<size_t>(sizes[i], 1) * sizeof(float), 64, "workspace");
        if (!buffer) return buffer.status();
        *slots[i] = buffer->floats();
        s->workspace_.push_back(std::move(*buffer));
        s->workspace_bytes_ += sizes[i] * sizeof(float);
    }
    return s;
}

// This shard's slices: column-parallel weights (Q, K, V, gate, up) split their rows,
// row-parallel ones (output, down) their columns; the vocabulary splits the embedding and LM
// head rows.
Status ModelShard::place_weights(const LlamaLayout& layout) {
    const auto& hp = layout.hp;
    const auto& sl = slice_;
    const int64_t hd = hp.head_dim;
    auto rows = [&](const GgufTensor* t, int64_t r0, int64_t r1, WeightView* out) -> Status {
        auto w = backend_->place_weight({t, r0, r1, 0, t->row_length()});
        if (!w) return w.status();
        *out = *w;
        return {};
    };
    auto columns = [&](const GgufTensor* t, int64_t c0, int64_t c1, WeightView* out) -> Status {
        auto w = backend_->place_weight({t, 0, t->rows(), c0, c1});
        if (!w) return w.status();
        *out = *w;
        return {};
    };
    auto vector = [&](const GgufTensor* t, int64_t begin, int64_t count, const float** out) -> Status {
        auto v = backend_->place_f32(t, begin, count);
        if (!v) return v.status();
        *out = *v;
        return {};
    };
    if (layout.rope_freqs) LLMQ_TRY(vector(layout.rope_freqs, 0, hd / 2, &rope_freqs_));
    for (int32_t l = spec_.layer_begin; l < spec_.layer_end; ++l) {
        const auto& t = layout.layers[l];
        Layer L;
        LLMQ_TRY(vector(t.attn_norm, 0, hp.n_embd, &L.attn_norm));
        if (t.cross) {
            L.cross = true;
            ++cross_layers_;
            LLMQ_TRY(vector(t.q_norm, 0, hd, &L.q_norm));
            LLMQ_TRY(vector(t.k_norm, 0, hd, &L.k_norm));
            // The gates are scalars the host reads from the file (applied as a scale).
            float g[2];
            std::memcpy(&g[0], t.attn_gate->data, sizeof(float));
            std::memcpy(&g[1], t.mlp_gate->data, sizeof(float));
            L.attn_gate = std::tanh(g[0]);
            L.mlp_gate = std::tanh(g[1]);
            weight_bytes_ += 2 * hd * sizeof(float) + 2 * sizeof(float);
        }
        LLMQ_TRY(vector(t.ffn_norm, 0, hp.n_embd, &L.ffn_norm));
        LLMQ_TRY(rows(t.wq, sl.head_begin * hd, sl.head_end * hd, &L.wq));
        LLMQ_TRY(rows(t.wk, sl.kv_begin * hd, sl.kv_end * hd, &L.wk));
        LLMQ_TRY(rows(t.wv, sl.kv_begin * hd, sl.kv_end * hd, &L.wv));
        LLMQ_TRY(columns(t.wo, sl.head_begin * hd, sl.head_end * hd, &L.wo));
        LLMQ_TRY(rows(t.ffn_gate, sl.ff_begin, sl.ff_end, &L.gate));
        LLMQ_TRY(rows(t.ffn_up, sl.ff_begin, sl.ff_end, &L.up));
        LLMQ_TRY(columns(t.ffn_down, sl.ff_begin, sl.ff_end, &L.down));
        if (t.bq) LLMQ_TRY(vector(t.bq, sl.head_begin * hd, heads_ * hd, &L.bq));
        if (t.bk) LLMQ_TRY(vector(t.bk, sl.kv_begin * hd, kv_heads_ * hd, &L.bk));
        if (t.bv) LLMQ_TRY(vector(t.bv, sl.kv_begin * hd, kv_heads_ * hd, &L.bv));
        for (const WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down})
            weight_bytes_ += view_bytes(*w);
        weight_bytes_ += 2 * hp.n_embd * sizeof(float);
        layers_.push_back(L);
    }
    if (spec_.stage == 0) {
        // The last rank also holds the rows past the LM head's vocabulary (mllama's <|image|>).
        const int64_t embd_end = spec_.rank == spec_.ranks - 1 ? int64_t{hp.n_embd_rows} : sl.vocab_end;
        LLMQ_TRY(rows(layout.token_embd, sl.vocab_begin, std::max<int64_t>(embd_end, sl.vocab_end), &embedding_));
        weight_bytes_ += view_bytes(embedding_);
    }
    if (spec_.stage == spec_.stages - 1) {
        LLMQ_TRY(rows(layout.output, sl.vocab_begin, sl.vocab_end, &lm_head_));
        LLMQ_TRY(vector(layout.output_norm, 0, hp.n_embd, &output_norm_));
        if (layout.output != layout.token_embd || spec_.stage != 0)
            weight_bytes_ += view_bytes(lm_head_);
        weight_bytes_ += hp.n_embd * sizeof(float);  // the output norm
    }
    return {};
}

ModelShard::~ModelShard() = default;

Status ModelShard::matmul(const PluginSet::PerDevice& p, const float* x, int64_t m,
                          const WeightView& w, float* y) {
    const Device& d = backend_->device();
    const Backend::GemmInput in = backend_->gemm_input(x, m, w.cols, w.dtype);
    if (replay_) return {};  // a graph replay: the recording holds the plugin's work
    llmq_matmul_args a{};
    a.struct_size = sizeof a;
    a.x = tensor_2d(in.data, in.dtype, m, w.cols, w.cols * kernels::dtype_info_of(in.dtype).element_bytes(), d);
    a.w = tensor_2d(w.data, w.dtype, w.rows, w.cols, w.stride, d);
    a.y = tensor_2d(y, kernels::dtype::f32, m, w.rows, w.rows * 4, d);
    return p.gemm->matmul(a);
}

Status ModelShard::forward(const MicroBatch& b, const PluginSet::PerDevice& plugins,
                           Communicator* tensor_comm, Communicator* pipe, float* logits) {
    const int64_t T = b.num_tokens;
    if (T <= 0) return {};
    if (T > max_tokens_)
        return internal_error("micro-batch of " + std::to_string(T) + " tokens exceeds the " +
                              std::to_string(max_tokens_) + "-token workspace");
    if (graphs_ && cross_layers_ == 0 && backend_->graphs_supported() &&
        is_graph_decode_batch(b, std::min(max_tokens_, max_logit_rows_)))
        return forward_graph(b, plugins, logits);
    LLMQ_TRY(run_layers(b, plugins, tensor_comm, pipe));
    if (spec_.stage != spec_.stages - 1) {
        LLMQ_TRY(pipe->send(x_, T * hp_.n_embd * sizeof(float), spec_.stage + 1));
        return backend_->synchronize();
    }
    LLMQ_TRY(logits_out(plugins, b, tensor_comm, logits));
    return backend_->synchronize();
}

Status ModelShard::forward_graph(const MicroBatch& b, const PluginSet::PerDevice& plugins, float* logits) {
    Backend& be = *backend_;
    const DecodeGraphShape shape = decode_graph_shape(b, std::min(max_tokens_, max_logit_rows_));
    pad_decode_batch(b, shape, graph_batch_);
    const Backend::GraphStep mode = be.begin_graph_step(shape.key());
    replay_ = mode == Backend::GraphStep::replay;
    Status s = graph_body(plugins);
    replay_ = false;
    Expected<bool> ran = be.end_graph_step(s.ok());  // always, to end a capture begun
    if (!s.ok()) {
        (void)be.synchronize();
        return s;
    }
    if (!ran) {
        (void)be.synchronize();
        return ran.status();
    }
    if (!*ran) LLMQ_TRY(graph_body(plugins));  // nothing ran: the same calls, as usual
    float* out = logits + static_cast<int64_t>(b.logits_offset) * hp_.n_vocab;
    return be.finish_host_output(out, lg_all_, static_cast<size_t>(b.num_seqs) * hp_.n_vocab);
}

// The padded batch through the LM head, into lg_all_ (device memory): no host output and
// no synchronize, so that it can be recorded.
Status ModelShard::graph_body(const PluginSet::PerDevice& plugins) {
    const MicroBatch& g = graph_batch_;
    LLMQ_TRY(run_layers(g, plugins, nullptr, nullptr));
    backend_->rms_norm_gather(x_, g.logit_rows, output_norm_, h_, hp_.n_embd, hp_.rms_eps);
    return matmul(plugins, h_, static_cast<int64_t>(g.logit_rows.size()), lm_head_, lg_all_);
}

Status ModelShard::run_layers(const MicroBatch& b, const PluginSet::PerDevice& plugins, Communicator* tensor_comm,
                              Communicator* pipe) {
    const int64_t T = b.num_tokens;
    const int64_t E = hp_.n_embd, hd = hp_.head_dim;
    const int64_t qw = heads_ * hd, kvw = kv_heads_ * hd;
    const bool tp = spec_.ranks > 1;
    Backend& be = *backend_;

    // ---- input: embedding (stage 0) or the previous stage's activations
    if (spec_.stage == 0) {
        be.embedding_gather(embedding_, slice_.vocab_begin, b.tokens, x_, E);
        if (tp) LLMQ_TRY(tensor_comm->all_reduce_sum(x_, T * E));
        if (!b.embed_rows.empty()) be.copy_rows_from_host(x_, E, b.embed_rows, b.embed_src.data());
    } else {
        LLMQ_TRY(pipe->recv(x_, T * E * sizeof(float), spec_.stage - 1));
    }

    const RopeParams rope{hp_.rope_theta, hp_.rope_freq_scale, hp_.rope_neox, rope_freqs_};
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    const int32_t* query_start = be.stage_indices(b.query_start);
    const int32_t* context_len = be.stage_indices(b.context_len);
    const int32_t* block_tables = be.stage_indices(b.block_tables);
    // Each residual add is fused with the norm that follows it (the next block's input norm):
    // h_ holds attn_norm(x_) of the layer about to run when `normed`. A cross-attention layer
    // norms its own input (cross_attention_layer), so the add before one stands alone, as does
    // the last add (the final norm runs on the logit rows only).
    int32_t kv_layer = 0, cross_index = 0;
    bool normed = false;
    for (size_t li = 0; li < layers_.size(); ++li) {
        const Layer& L = layers_[li];
        if (L.cross) {
            // Hugging Face skips the cross-attention layers when no image was given; in a
            // batch with images, the rows that see none are left as they are.
            if (!b.cross.empty()) LLMQ_TRY(cross_attention_layer(plugins, b, L, cross_index, tensor_comm));
            ++cross_index;
            normed = false;
            continue;
        }
        const int32_t kvl = kv_layer++;
        // ---- attention block (h_ = attn_norm(x_))
        if (!normed) be.rms_norm_rows(x_, L.attn_norm, h_, T, E, hp_.rms_eps);
        LLMQ_TRY(matmul(plugins, h_, T, L.wq, q_));
        LLMQ_TRY(matmul(plugins, h_, T, L.wk, k_));
        LLMQ_TRY(matmul(plugins, h_, T, L.wv, v_));
        if (L.bq) be.add_bias_rows(q_, L.bq, T, qw);
        if (L.bk) be.add_bias_rows(k_, L.bk, T, kvw);
        if (L.bv) be.add_bias_rows(v_, L.bv, T, kvw);
        Backend::RopeKvWrite rk;
        rk.q = q_;
        rk.q_heads = heads_;
        rk.k = k_;
        rk.v = v_;
        rk.kv_heads = kv_heads_;
        rk.head_dim = static_cast<int32_t>(hd);
        rk.rows = T;
        rk.positions = b.positions;
        rk.rope = rope;
        rk.pools = kv_->pools(kvl);
        rk.block_tables = b.block_tables;
        rk.max_blocks = b.max_blocks;
        rk.token_seq = b.token_seq;
        be.rope_kv_write(rk);

        llmq_attention_args a{};
        a.struct_size = sizeof a;
        a.q = tensor_2d(q_, kernels::dtype::f32, T, qw, qw * 4, be.device());
        a.out = tensor_2d(att_, kernels::dtype::f32, T, qw, qw * 4, be.device());
        a.k_cache = kv_->k_pool(kvl);
        a.v_cache = kv_->v_pool(kvl);
        a.query_start = query_start;
        a.context_len = context_len;
        a.block_tables = block_tables;
        a.kv_dtype = abi::dtype_id(kv_->shape().dtype);
        a.num_seqs = b.num_seqs;
        a.num_tokens = static_cast<int32_t>(T);
        a.num_heads = heads_;
        a.num_kv_heads = kv_heads_;
        a.head_dim = static_cast<int32_t>(hd);
        a.block_size = kv_->shape().block_size;
        a.max_blocks_per_seq = b.max_blocks;
        a.num_blocks = kv_->shape().num_blocks;
        a.scale = scale;
        a.sliding_window = hp_.sliding_window;
        if (!replay_) LLMQ_TRY(plugins.attention->attention(a));
        LLMQ_TRY(matmul(plugins, att_, T, L.wo, o_));
        if (tp) LLMQ_TRY(tensor_comm->all_reduce_sum(o_, T * E));

        // ---- feed-forward block (SwiGLU)
        be.add_rms_norm(x_, o_, L.ffn_norm, h_, T, E, hp_.rms_eps);
        LLMQ_TRY(matmul(plugins, h_, T, L.gate, gate_));
        LLMQ_TRY(matmul(plugins, h_, T, L.up, up_));
        be.swiglu(gate_, up_, gate_, T * ff_);
        LLMQ_TRY(matmul(plugins, gate_, T, L.down, o_));
        if (tp) LLMQ_TRY(tensor_comm->all_reduce_sum(o_, T * E));
        if (li + 1 < layers_.size() && !layers_[li + 1].cross) {
            be.add_rms_norm(x_, o_, layers_[li + 1].attn_norm, h_, T, E, hp_.rms_eps);
            normed = true;
        } else {
            be.add(x_, o_, T * E);
            normed = false;
        }
    }
    return {};
}

// o_ = down(silu(gate(h)) * up(h)) for h = ffn_norm(x_), summed over the tensor ranks.
Status ModelShard::feed_forward(const PluginSet::PerDevice& p, const Layer& L, int64_t T, Communicator* tensor_comm) {
    Backend& be = *backend_;
    const int64_t E = hp_.n_embd;
    be.rms_norm_rows(x_, L.ffn_norm, h_, T, E, hp_.rms_eps);
    LLMQ_TRY(matmul(p, h_, T, L.gate, gate_));
    LLMQ_TRY(matmul(p, h_, T, L.up, up_));
    be.swiglu(gate_, up_, gate_, T * ff_);
    LLMQ_TRY(matmul(p, gate_, T, L.down, o_));
    if (spec_.ranks > 1) LLMQ_TRY(tensor_comm->all_reduce_sum(o_, T * E));
    return {};
}

// The image keys and values of `states` in this shard's cross-attention layers, computed
// on first use (HF MllamaTextCrossAttention: k_norm(k_proj(states)) per head, v_proj(states)),
// then kept until release_image_kv: prefill chunks, decode steps and a preempted request's
// recomputation all reuse them.
Expected<const ModelShard::ImageKv*> ModelShard::image_kv(const PluginSet::PerDevice& p,
                                                          const CrossAttentionStates& states) {
    if (auto it = image_kv_.find(states.id); it != image_kv_.end()) return &it->second;
    const int64_t R = states.row_count(), E = hp_.n_embd, hd = hp_.head_dim;
    if (states.dim != E)
        return invalid_argument("cross-attention states have " + std::to_string(states.dim) +
                                " values a row; the model's embedding length is " + std::to_string(E));
    if (R <= 0 || static_cast<int64_t>(states.rows.size()) != R * E)
        return invalid_argument("cross-attention states: " + std::to_string(states.rows.size()) +
                                " values for " + std::to_string(R) + " rows");
    Backend& be = *backend_;
    auto input = be.allocate(static_cast<uint64_t>(R * E) * sizeof(float), 64, "image rows");
    if (!input) return input.status();
    std::vector<int32_t> row_ids(static_cast<size_t>(R));
    std::vector<const float*> sources(static_cast<size_t>(R));
    for (int64_t r = 0; r < R; ++r) {
        row_ids[static_cast<size_t>(r)] = static_cast<int32_t>(r);
        sources[static_cast<size_t>(r)] = states.rows.data() + r * E;
    }
    be.copy_rows_from_host(input->floats(), E, row_ids, sources.data());
    ImageKv kv;
    kv.rows = R;
    const uint64_t bytes = static_cast<uint64_t>(R) * kv_heads_ * hd * sizeof(float);
    for (const Layer& L : layers_) {
        if (!L.cross) continue;
        auto k = be.allocate(bytes, 64, "image keys");
        if (!k) return k.status();
        auto v = be.allocate(bytes, 64, "image values");
        if (!v) return v.status();
        LLMQ_TRY(matmul(p, input->floats(), R, L.wk, k->floats()));
        be.rms_norm_rows(k->floats(), L.k_norm, k->floats(), R * kv_heads_, hd, hp_.rms_eps);
        LLMQ_TRY(matmul(p, input->floats(), R, L.wv, v->floats()));
        kv.k.push_back(std::move(*k));
        kv.v.push_back(std::move(*v));
    }
    LLMQ_TRY(be.synchronize());
    image_kv_bytes_ += 2 * bytes * static_cast<uint64_t>(kv.k.size());
    return &image_kv_.emplace(states.id, std::move(kv)).first->second;
}

void ModelShard::release_image_kv(uint64_t states_id) {
    auto it = image_kv_.find(states_id);
    if (it == image_kv_.end()) return;
    for (const auto& k : it->second.k) image_kv_bytes_ -= 2 * k.bytes();
    image_kv_.erase(it);
}

// One cross-attention decoder layer (HF MllamaCrossAttentionDecoderLayer) over the batch:
//   x += tanh(attn_gate) * o_proj(attention(q_norm(q_proj(norm(x))), image K/V))
//   x += tanh(mlp_gate) * mlp(norm(x))
// each only on the rows that see an image. A row that sees none gets neither: its attention
// output is zero (the ABI's rule, Meta's reference CrossAttention multiplies it by
// full_text_row_masked_out_mask) and its MLP output is masked (HF and Meta).
Status ModelShard::cross_attention_layer(const PluginSet::PerDevice& p, const MicroBatch& b, const Layer& L,
                                         int32_t cross_index, Communicator* tensor_comm) {
    Backend& be = *backend_;
    const int64_t T = b.num_tokens, E = hp_.n_embd, hd = hp_.head_dim;
    const int64_t qw = heads_ * hd;
    const bool tp = spec_.ranks > 1;
    be.rms_norm_rows(x_, L.attn_norm, h_, T, E, hp_.rms_eps);
    LLMQ_TRY(matmul(p, h_, T, L.wq, q_));
    be.rms_norm_rows(q_, L.q_norm, q_, T * heads_, hd, hp_.rms_eps);
    for (int32_t s = 0; s < b.num_seqs; ++s) {
        const CrossAttentionStates* states = b.cross[static_cast<size_t>(s)].get();
        if (!states) continue;
        auto kv = image_kv(p, *states);
        if (!kv) return kv.status();
        const int32_t q0 = b.query_start[static_cast<size_t>(s)], q1 = b.query_start[static_cast<size_t>(s) + 1];
        const int32_t query_start[2] = {0, q1 - q0};
        const int64_t kv_start[2] = {0, (*kv)->rows};
        llmq_cross_attention_args a{};
        a.struct_size = sizeof a;
        a.q = tensor_2d(q_ + q0 * qw, kernels::dtype::f32, q1 - q0, qw, qw * 4, be.device());
        a.out = tensor_2d(att_ + q0 * qw, kernels::dtype::f32, q1 - q0, qw, qw * 4, be.device());
        a.k_image = (*kv)->k[static_cast<size_t>(cross_index)].floats();
        a.v_image = (*kv)->v[static_cast<size_t>(cross_index)].floats();
        a.query_start = query_start;
        a.kv_start = kv_start;
        a.row_begin = b.cross_row_begin.data() + q0;
        a.row_end = b.cross_row_end.data() + q0;
        a.kv_dtype = LLMQ_DTYPE_F32;
        a.num_seqs = 1;
        a.num_tokens = q1 - q0;
        a.num_heads = heads_;
        a.num_kv_heads = kv_heads_;
        a.head_dim = static_cast<int32_t>(hd);
        a.scale = 1.0f / std::sqrt(static_cast<float>(hd));
        LLMQ_TRY(p.attention->cross_attention(a));
    }
    // Rows of text-only sequences hold stale values from here on; only the runs of rows that
    // see an image are added to the residual stream.
    std::vector<std::pair<int64_t, int64_t>> runs;
    for (int64_t t = 0; t < T; ++t) {
        if (b.cross_row_begin[static_cast<size_t>(t)] >= b.cross_row_end[static_cast<size_t>(t)]) continue;
        if (!runs.empty() && runs.back().second == t) ++runs.back().second;
        else runs.emplace_back(t, t + 1);
    }
    LLMQ_TRY(matmul(p, att_, T, L.wo, o_));
    if (tp) LLMQ_TRY(tensor_comm->all_reduce_sum(o_, T * E));
    for (const auto& [r0, r1] : runs) be.scaled_add(x_ + r0 * E, o_ + r0 * E, L.attn_gate, (r1 - r0) * E);

    LLMQ_TRY(feed_forward(p, L, T, tensor_comm));
    for (const auto& [r0, r1] : runs) be.scaled_add(x_ + r0 * E, o_ + r0 * E, L.mlp_gate, (r1 - r0) * E);
    return {};
}

// Last stage: final norm and LM head for the rows that want logits, then to the host.
Status ModelShard::logits_out(const PluginSet::PerDevice& plugins, const MicroBatch& b,
                              Communicator* tensor_comm, float* logits) {
    Backend& be = *backend_;
    const int64_t E = hp_.n_embd;
    const int64_t R = static_cast<int64_t>(b.logit_rows.size());
    if (R == 0) return {};
    if (R > max_logit_rows_) return internal_error("too many logit rows for the workspace");
    be.rms_norm_gather(x_, b.logit_rows, output_norm_, h_, E, hp_.rms_eps);
    const int64_t V = hp_.n_vocab, Vp = slice_.vocab_padded, Vl = lm_head_.rows;
    float* out = logits + static_cast<int64_t>(b.logits_offset) * V;
    if (spec_.ranks == 1) {
        float* target = be.host_output_target(out, lg_all_);
        LLMQ_TRY(matmul(plugins, h_, R, lm_head_, target));
        return be.finish_host_output(out, target, static_cast<size_t>(R * V));
    }
    // Each rank computes its vocabulary rows, padded to Vp, then all ranks gather.
    // lg_all_ is scratch for the [R, Vl] product until the gather fills it.
    LLMQ_TRY(matmul(plugins, h_, R, lm_head_, lg_all_));
    be.copy_rows_padded(lg_, Vp, lg_all_, Vl, R);
    LLMQ_TRY(tensor_comm->all_gather(lg_, R * Vp, lg_all_));
    if (spec_.rank != 0) return {};
    for (int32_t rank = 0; rank < spec_.ranks; ++rank) {
        const TensorSlice s = tensor_slice(hp_, spec_.ranks, rank);
        LLMQ_TRY(be.copy_rows_to_host(out + s.vocab_begin, V, lg_all_ + rank * R * Vp, Vp, R,
                                      s.vocab_end - s.vocab_begin));
    }
    return {};
}

}  // namespace llmq
