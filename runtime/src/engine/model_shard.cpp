#include "llmq/runtime/model_shard.hpp"

#include <cmath>
#include <cstring>

namespace llmq {

namespace {

// Byte offset of column `col` inside a row of `t` (quantized types: whole blocks).
int64_t column_offset(kernels::dtype t, int64_t col) {
    return static_cast<int64_t>(kernels::row_bytes(t, col));
}

// Rows [r0, r1) of a [cols, rows] GGUF tensor, all columns.
WeightView row_slice(const GgufTensor* t, int64_t r0, int64_t r1) {
    WeightView w;
    w.dtype = t->dtype;
    w.cols = t->row_length();
    w.stride = static_cast<int64_t>(t->row_bytes());
    w.rows = r1 - r0;
    w.data = t->data + r0 * w.stride;
    return w;
}

// Columns [c0, c1) of every row of a [cols, rows] GGUF tensor.
WeightView column_slice(const GgufTensor* t, int64_t c0, int64_t c1) {
    WeightView w;
    w.dtype = t->dtype;
    w.stride = static_cast<int64_t>(t->row_bytes());
    w.rows = t->rows();
    w.cols = c1 - c0;
    w.data = t->data + column_offset(t->dtype, c0);
    return w;
}

uint64_t view_bytes(const WeightView& w) {
    return static_cast<uint64_t>(w.rows) * kernels::row_bytes(w.dtype, w.cols);
}

llmq_tensor tensor_2d(const void* data, kernels::dtype t, int64_t rows, int64_t cols,
                      int64_t stride_bytes, const Device& d) {
    llmq_tensor x{};
    x.data = const_cast<void*>(data);
    x.rank = 2;
    x.dtype = static_cast<int32_t>(t);
    x.shape[0] = rows;
    x.shape[1] = cols;
    x.shape[2] = x.shape[3] = 1;
    x.strides[0] = stride_bytes;
    x.strides[1] = kernels::dtype_info_of(t).element_bytes();  // 0 for block-quantized rows
    x.device_type = d.backend();
    x.device_index = d.info().index;
    return x;
}

}  // namespace

float* ModelShard::buffer(size_t floats) {
    return static_cast<float*>(device_->allocate(std::max<size_t>(floats, 1) * sizeof(float), 64, nullptr));
}

Expected<std::unique_ptr<ModelShard>> ModelShard::create(const LlamaLayout& layout,
                                                         const ShardSpec& spec, Device& device,
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
    s->device_ = &device;
    s->slice_ = tensor_slice(layout.hp, spec.ranks, spec.rank);
    const auto& hp = layout.hp;
    const auto& sl = s->slice_;
    const int64_t hd = hp.head_dim;
    s->heads_ = sl.head_end - sl.head_begin;
    s->kv_heads_ = sl.kv_end - sl.kv_begin;
    s->ff_ = sl.ff_end - sl.ff_begin;
    s->max_tokens_ = max_tokens;
    s->max_logit_rows_ = max_logit_rows;

    for (int32_t l = spec.layer_begin; l < spec.layer_end; ++l) {
        const auto& t = layout.layers[l];
        Layer L;
        L.attn_norm = reinterpret_cast<const float*>(t.attn_norm->data);
        L.ffn_norm = reinterpret_cast<const float*>(t.ffn_norm->data);
        L.wq = row_slice(t.wq, sl.head_begin * hd, sl.head_end * hd);
        L.wk = row_slice(t.wk, sl.kv_begin * hd, sl.kv_end * hd);
        L.wv = row_slice(t.wv, sl.kv_begin * hd, sl.kv_end * hd);
        L.wo = column_slice(t.wo, sl.head_begin * hd, sl.head_end * hd);
        L.gate = row_slice(t.ffn_gate, sl.ff_begin, sl.ff_end);
        L.up = row_slice(t.ffn_up, sl.ff_begin, sl.ff_end);
        L.down = column_slice(t.ffn_down, sl.ff_begin, sl.ff_end);
        if (t.bq) L.bq = reinterpret_cast<const float*>(t.bq->data) + sl.head_begin * hd;
        if (t.bk) L.bk = reinterpret_cast<const float*>(t.bk->data) + sl.kv_begin * hd;
        if (t.bv) L.bv = reinterpret_cast<const float*>(t.bv->data) + sl.kv_begin * hd;
        for (const WeightView* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.gate, &L.up, &L.down})
            s->weight_bytes_ += view_bytes(*w);
        s->weight_bytes_ += 2 * hp.n_embd * sizeof(float);
        s->layers_.push_back(L);
    }
    if (spec.stage == 0) {
        s->embedding_ = row_slice(layout.token_embd, sl.vocab_begin, sl.vocab_end);
        s->weight_bytes_ += view_bytes(s->embedding_);
    }
    if (spec.stage == spec.stages - 1) {
        s->lm_head_ = row_slice(layout.output, sl.vocab_begin, sl.vocab_end);
        s->output_norm_ = reinterpret_cast<const float*>(layout.output_norm->data);
        if (layout.output != layout.token_embd || spec.stage != 0)
            s->weight_bytes_ += view_bytes(s->lm_head_);
    }

    KvCacheShape kv = kv_template;
    kv.layers = spec.layer_end - spec.layer_begin;
    kv.kv_heads = s->kv_heads_;
    kv.head_dim = static_cast<int32_t>(hd);
    auto storage = KvCacheStorage::create(device, kv);
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
        std::string why;
        void* p = device.allocate(std::max<size_t>(sizes[i], 1) * sizeof(float), 64, &why);
        if (!p) return out_of_memory("workspace on " + device.info().name + ": " + why);
        s->allocations_.push_back(p);
        *slots[i] = static_cast<float*>(p);
        s->workspace_bytes_ += sizes[i] * sizeof(float);
    }
    return s;
}

ModelShard::~ModelShard() {
    for (void* p : allocations_) device_->deallocate(p);
}

Status ModelShard::matmul(const PluginSet::PerDevice& p, const float* x, int64_t m,
                          const WeightView& w, float* y) {
    llmq_matmul_args a{};
    a.struct_size = sizeof a;
    a.x = tensor_2d(x, kernels::dtype::f32, m, w.cols, w.cols * 4, *device_);
    a.w = tensor_2d(w.data, w.dtype, w.rows, w.cols, w.stride, *device_);
    a.y = tensor_2d(y, kernels::dtype::f32, m, w.rows, w.rows * 4, *device_);
    return p.gemm->matmul(a);
}

Status ModelShard::forward(const MicroBatch& b, const PluginSet::PerDevice& plugins,
                           Communicator* tensor_comm, Communicator* pipe, float* logits) {
    const int64_t T = b.num_tokens;
    const int64_t E = hp_.n_embd, hd = hp_.head_dim;
    const int64_t qw = heads_ * hd, kvw = kv_heads_ * hd;
    if (T <= 0) return {};
    if (T > max_tokens_)
        return internal_error("micro-batch of " + std::to_string(T) + " tokens exceeds the " +
                              std::to_string(max_tokens_) + "-token workspace");
    const bool tp = spec_.ranks > 1;

    // ---- input: embedding (stage 0) or the previous stage's activations
    if (spec_.stage == 0) {
        const int32_t v0 = slice_.vocab_begin, v1 = slice_.vocab_end;
        for (int64_t t = 0; t < T; ++t) {
            const int32_t tok = b.tokens[t];
            float* row = x_ + t * E;
            if (tok >= v0 && tok < v1)
                kernels::embedding_row(embedding_.dtype, embedding_.data, embedding_.stride,
                                       tok - v0, row, E);
            else
                std::memset(row, 0, E * sizeof(float));
        }
        if (tp) LLMQ_TRY(tensor_comm->all_reduce_sum(x_, T * E));
    } else {
        LLMQ_TRY(pipe->recv(x_, T * E * sizeof(float), spec_.stage - 1));
    }

    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    for (size_t li = 0; li < layers_.size(); ++li) {
        const Layer& L = layers_[li];
        // ---- attention block
        kernels::rms_norm_rows(x_, L.attn_norm, h_, T, E, hp_.rms_eps);
        LLMQ_TRY(matmul(plugins, h_, T, L.wq, q_));
        LLMQ_TRY(matmul(plugins, h_, T, L.wk, k_));
        LLMQ_TRY(matmul(plugins, h_, T, L.wv, v_));
        for (int64_t t = 0; t < T; ++t) {
            if (L.bq) kernels::add_inplace(q_ + t * qw, L.bq, qw);
            if (L.bk) kernels::add_inplace(k_ + t * kvw, L.bk, kvw);
            if (L.bv) kernels::add_inplace(v_ + t * kvw, L.bv, kvw);
            kernels::rope(q_ + t * qw, heads_, static_cast<int32_t>(hd), b.positions[t],
                          hp_.rope_theta, hp_.rope_freq_scale, hp_.rope_neox);
            kernels::rope(k_ + t * kvw, kv_heads_, static_cast<int32_t>(hd), b.positions[t],
                          hp_.rope_theta, hp_.rope_freq_scale, hp_.rope_neox);
            const int32_t s = b.token_seq[t];
            std::span<const int32_t> table(b.block_tables.data() + s * b.max_blocks, b.max_blocks);
            kv_->store(static_cast<int32_t>(li), table, b.positions[t], k_ + t * kvw, v_ + t * kvw);
        }
        llmq_attention_args a{};
        a.struct_size = sizeof a;
        a.q = tensor_2d(q_, kernels::dtype::f32, T, qw, qw * 4, *device_);
        a.out = tensor_2d(att_, kernels::dtype::f32, T, qw, qw * 4, *device_);
        a.k_cache = kv_->k_pool(static_cast<int32_t>(li));
        a.v_cache = kv_->v_pool(static_cast<int32_t>(li));
        a.query_start = b.query_start.data();
        a.context_len = b.context_len.data();
        a.block_tables = b.block_tables.data();
        a.kv_dtype = static_cast<int32_t>(kv_->shape().dtype);
        a.num_seqs = b.num_seqs;
        a.num_tokens = static_cast<int32_t>(T);
        a.num_heads = heads_;
        a.num_kv_heads = kv_heads_;
        a.head_dim = static_cast<int32_t>(hd);
        a.block_size = kv_->shape().block_size;
        a.max_blocks_per_seq = b.max_blocks;
        a.num_blocks = kv_->shape().num_blocks;
        a.scale = scale;
        LLMQ_TRY(plugins.attention->attention(a));
        LLMQ_TRY(matmul(plugins, att_, T, L.wo, o_));
        if (tp) LLMQ_TRY(tensor_comm->all_reduce_sum(o_, T * E));
        kernels::add_inplace(x_, o_, T * E);

        // ---- feed-forward block (SwiGLU)
        kernels::rms_norm_rows(x_, L.ffn_norm, h_, T, E, hp_.rms_eps);
        LLMQ_TRY(matmul(plugins, h_, T, L.gate, gate_));
        LLMQ_TRY(matmul(plugins, h_, T, L.up, up_));
        kernels::swiglu(gate_, up_, gate_, T * ff_);
        LLMQ_TRY(matmul(plugins, gate_, T, L.down, o_));
        if (tp) LLMQ_TRY(tensor_comm->all_reduce_sum(o_, T * E));
        kernels::add_inplace(x_, o_, T * E);
    }

    if (spec_.stage != spec_.stages - 1) return pipe->send(x_, T * E * sizeof(float), spec_.stage + 1);

    // ---- last stage: final norm and LM head for the rows that want logits
    const int64_t R = static_cast<int64_t>(b.logit_rows.size());
    if (R == 0) return {};
    if (R > max_logit_rows_) return internal_error("too many logit rows for the workspace");
    for (int64_t r = 0; r < R; ++r)
        kernels::rms_norm(x_ + static_cast<int64_t>(b.logit_rows[r]) * E, output_norm_,
                          h_ + r * E, E, hp_.rms_eps);
    const int64_t V = hp_.n_vocab, Vp = slice_.vocab_padded, Vl = lm_head_.rows;
    if (!tp) {
        LLMQ_TRY(matmul(plugins, h_, R, lm_head_, logits + static_cast<int64_t>(b.logits_offset) * V));
        return {};
    }
    // Each rank computes its vocabulary rows, padded to Vp, then all ranks gather.
    // lg_all_ is scratch for the [R, Vl] product until the gather fills it.
    LLMQ_TRY(matmul(plugins, h_, R, lm_head_, lg_all_));
    for (int64_t r = 0; r < R; ++r) {
        std::memcpy(lg_ + r * Vp, lg_all_ + r * Vl, Vl * sizeof(float));
        std::fill(lg_ + r * Vp + Vl, lg_ + (r + 1) * Vp, 0.0f);
    }
    LLMQ_TRY(tensor_comm->all_gather(lg_, R * Vp, lg_all_));
    if (spec_.rank == 0) {
        float* out = logits + static_cast<int64_t>(b.logits_offset) * V;
        for (int32_t rank = 0; rank < spec_.ranks; ++rank) {
            const TensorSlice s = tensor_slice(hp_, spec_.ranks, rank);
            const int64_t n = s.vocab_end - s.vocab_begin;
            for (int64_t r = 0; r < R; ++r)
                std::memcpy(out + r * V + s.vocab_begin, lg_all_ + rank * R * Vp + r * Vp,
                            n * sizeof(float));
        }
    }
    return {};
}

}  // namespace llmq
