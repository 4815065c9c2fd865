// load_llama_layout: Llama-family hyperparameters from `<arch>.*` metadata and the per-layer
// tensors, with every shape checked against those hyperparameters.
#include "llmq/runtime/llama_layout.hpp"

#include <algorithm>
#include <array>
#include <cmath>

namespace llmq {
namespace {

struct ArchInfo {
    const char* name;
    bool rope_neox;
};

// Architectures whose tensor set is Llama's (qwen2 adds q/k/v biases and rotates NeoX-style).
// mllama is Llama 3.2 Vision's text model: Llama layers with cross-attention layers among them.
constexpr std::array<ArchInfo, 4> known_archs{{
    {"llama", false},
    {"mistral", false},
    {"qwen2", true},
    {"mllama", false},
}};

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

enum class Kind { norm, matmul };

// 'blk.0.attn_q.weight', and where it came from in a file assembled from another format.
std::string named(const GgufTensor& t) {
    return "'" + t.name + "'" + (t.origin.empty() ? "" : " (" + t.origin + ")");
}

class LayoutReader {
public:
    LayoutReader(const GgufFile& file, const LlamaHParams& hp) : file_(file), hp_(hp) {}

    // The tensor `name`, which must exist with shape `expected` (GGUF order) and a type fit
    // for `kind`. `why` explains the expected shape in hyperparameter names.
    Expected<const GgufTensor*> require(const std::string& name, std::vector<int64_t> expected,
                                        Kind kind, const std::string& why) const {
        const GgufTensor* t = file_.tensor(name);
        if (!t) {
            return corrupt(file_.describe() + ": tensor '" + name +
                           "' is missing (expected shape " + shape_str(expected) + ", " + why +
                           "); the file is not a complete " + hp_.arch + " model");
        }
        return check(t, std::move(expected), kind, why);
    }

    // Like require(), but an absent tensor is nullptr.
    Expected<const GgufTensor*> optional(const std::string& name, std::vector<int64_t> expected,
                                         Kind kind, const std::string& why) const {
        const GgufTensor* t = file_.tensor(name);
        if (!t) return static_cast<const GgufTensor*>(nullptr);
        return check(t, std::move(expected), kind, why);
    }

private:
    Expected<const GgufTensor*> check(const GgufTensor* t, std::vector<int64_t> expected,
                                      Kind kind, const std::string& why) const {
        if (t->shape != expected) {
            return corrupt(file_.describe() + ": tensor " + named(*t) + " has shape " +
                           t->shape_string() + ", expected " + shape_str(expected) + " (" + why +
                           ")");
        }
        std::string type = ggml_type_name(t->ggml_type);
        if (kind == Kind::norm && t->ggml_type != static_cast<uint32_t>(GgmlType::f32)) {
            return unsupported(file_.describe() + ": tensor " + named(*t) +
                               " has type " + type + "; norm weights and biases must be F32");
        }
        if (kind == Kind::matmul && !t->supported()) {
            return unsupported(file_.describe() + ": tensor " + named(*t) +
                               " has type " + type +
                               ", which llmq cannot compute with; weights must be one of " +
                               kernels::weight_dtype_names() + " (convert the model, e.g. with llmq quantize)");
        }
        return t;
    }

    const GgufFile& file_;
    const LlamaHParams& hp_;
};

// <arch>.attention.cross_attention_layers: distinct layer indices below block_count, sorted.
Status read_cross_layers(const GgufFile& file, const std::string& p, LlamaHParams* hp) {
    const std::string key = p + "attention.cross_attention_layers";
    const GgufValue* v = file.find(key);
    if (!v) return corrupt(file.describe() + ": metadata key '" + key + "' is missing; an mllama file lists its cross-attention layers there");
    if (!v->is_array() || v->array_size() == 0)
        return corrupt(file.describe() + ": '" + key + "' must be a non-empty array of layer indices");
    for (size_t i = 0; i < v->array_size(); ++i) {
        const auto layer = v->int_at(i);
        if (!layer || *layer < 0 || *layer >= hp->n_layer)
            return corrupt(file.describe() + ": '" + key + "'[" + std::to_string(i) + "] is not a layer index below block_count " +
                           std::to_string(hp->n_layer));
        hp->cross_layers.push_back(static_cast<uint32_t>(*layer));
    }
    std::sort(hp->cross_layers.begin(), hp->cross_layers.end());
    if (std::adjacent_find(hp->cross_layers.begin(), hp->cross_layers.end()) != hp->cross_layers.end())
        return corrupt(file.describe() + ": '" + key + "' lists a layer twice");
    return {};
}

// The mllama.vision.* keys Ollama's converter writes (from HF's vision_config).
Expected<MllamaVisionSummary> mllama_vision_summary(const GgufFile& file) {
    const std::string p = "mllama.vision.";
    uint32_t v[3] = {};
    const char* keys[3] = {"image_size", "patch_size", "max_num_tiles"};
    for (int i = 0; i < 3; ++i) {
        auto x = file.get_u32(p + keys[i]);
        if (!x) return x.status();
        if (*x == 0) return corrupt(file.describe() + ": metadata key '" + p + keys[i] + "' is 0");
        v[i] = *x;
    }
    const int64_t grid = v[0] / v[1];
    MllamaVisionSummary s;
    s.rows_per_image = int64_t{v[2]} * (grid * grid + 1);  // + the class row of each tile
    return s;
}

}  // namespace

bool LlamaHParams::is_cross_layer(uint32_t layer) const {
    return std::binary_search(cross_layers.begin(), cross_layers.end(), layer);
}

Expected<LlamaHParams> read_llama_hparams(const GgufFile& file) {
    LlamaHParams hp;
    auto fail = [&](const std::string& problem) {
        return corrupt(file.describe() + ": " + problem);
    };
    auto arch = file.get_string("general.architecture");
    if (!arch) return arch.status();
    hp.arch = *arch;
    const ArchInfo* info = nullptr;
    for (const ArchInfo& a : known_archs) {
        if (hp.arch == a.name) info = &a;
    }
    if (!info) {
        return unsupported(file.describe() + ": architecture '" + hp.arch +
                           "' is not supported; llmq runs llama, mistral, qwen2 and mllama models");
    }
    hp.rope_neox = info->rope_neox;
    auto half_split = file.get_bool_or("llmq.rope.neox", false);
    if (!half_split) return half_split.status();
    if (*half_split) hp.rope_neox = true;
    const std::string p = hp.arch + ".";

    auto get = [&](const std::string& key, uint32_t* out) -> Status {
        auto v = file.get_u32(p + key);
        if (!v) return v.status();
        if (*v == 0) return fail("metadata key '" + p + key + "' is 0; it must be positive");
        *out = *v;
        return Status();
    };
    LLMQ_TRY(get("embedding_length", &hp.n_embd));
    LLMQ_TRY(get("block_count", &hp.n_layer));
    LLMQ_TRY(get("feed_forward_length", &hp.n_ff));
    LLMQ_TRY(get("attention.head_count", &hp.n_head));
    LLMQ_TRY(get("context_length", &hp.n_ctx_train));
    hp.n_head_kv = hp.n_head;
    if (file.has(p + "attention.head_count_kv")) LLMQ_TRY(get("attention.head_count_kv", &hp.n_head_kv));

    if (file.has(p + "attention.key_length")) {
        LLMQ_TRY(get("attention.key_length", &hp.head_dim));
    } else {
        if (hp.n_embd % hp.n_head != 0) {
            return fail("embedding_length " + std::to_string(hp.n_embd) +
                        " is not divisible by attention.head_count " + std::to_string(hp.n_head));
        }
        hp.head_dim = hp.n_embd / hp.n_head;
    }
    if (file.has(p + "attention.value_length")) {
        uint32_t v_len = 0;
        LLMQ_TRY(get("attention.value_length", &v_len));
        if (v_len != hp.head_dim) {
            return unsupported(file.describe() + ": attention.value_length " +
                               std::to_string(v_len) + " differs from key_length " +
                               std::to_string(hp.head_dim) + "; llmq needs them equal");
        }
    }
    if (hp.n_head % hp.n_head_kv != 0 || hp.n_head_kv > hp.n_head) {
        return fail("attention.head_count " + std::to_string(hp.n_head) +
                    " is not a multiple of attention.head_count_kv " +
                    std::to_string(hp.n_head_kv) + " (grouped-query attention needs whole groups)");
    }
    if (hp.head_dim % 2 != 0) {
        return fail("head dimension " + std::to_string(hp.head_dim) + " is odd; RoPE needs pairs");
    }
    hp.n_rot = hp.head_dim;
    if (file.has(p + "rope.dimension_count")) LLMQ_TRY(get("rope.dimension_count", &hp.n_rot));
    if (hp.n_rot != hp.head_dim) {
        return unsupported(file.describe() + ": rope.dimension_count " +
                           std::to_string(hp.n_rot) + " differs from the head dimension " +
                           std::to_string(hp.head_dim) + "; partial rotary embeddings are not supported");
    }

    auto eps = file.get_f32(p + "attention.layer_norm_rms_epsilon");
    if (!eps) return eps.status();
    if (!(*eps > 0.0f)) return fail("attention.layer_norm_rms_epsilon must be positive");
    hp.rms_eps = *eps;

    auto theta = file.get_f32_or(p + "rope.freq_base", 10000.0f);
    if (!theta) return theta.status();
    if (!(*theta > 0.0f)) return fail("rope.freq_base must be positive");
    hp.rope_theta = *theta;

    auto scaling = file.get_string_or(p + "rope.scaling.type", "linear");
    if (!scaling) return scaling.status();
    // Older files name the linear factor rope.scale_linear; 0 means no scaling.
    const std::string factor_key =
        file.has(p + "rope.scaling.factor") ? p + "rope.scaling.factor" : p + "rope.scale_linear";
    auto factor = file.get_f32_or(factor_key, 0.0f);
    if (!factor) return factor.status();
    if (*factor < 0.0f) return fail("'" + factor_key + "' is negative");
    if (*scaling == "none") {
        hp.rope_freq_scale = 1.0f;
    } else if (*scaling == "linear") {
        hp.rope_freq_scale = *factor == 0.0f ? 1.0f : 1.0f / *factor;
    } else {
        return unsupported(file.describe() + ": rope scaling '" + *scaling +
                           "' is not supported (llmq does none and linear)");
    }

    // Vocabulary size: the tokenizer's token list, else <arch>.vocab_size, else the embedding.
    // mllama: the LM head's rows; its tokenizer also lists <|image|> and its embedding table
    // has 8 rows more (Hugging Face's vocab_size + 8).
    const GgufTensor* head = file.tensor("output.weight");
    if (hp.arch == "mllama" && head && head->shape.size() == 2 && head->shape[1] > 0 && head->shape[1] <= UINT32_MAX) {
        hp.n_vocab = static_cast<uint32_t>(head->shape[1]);
    } else if (file.has("tokenizer.ggml.tokens")) {
        auto n = file.get_array_size("tokenizer.ggml.tokens");
        if (!n) return n.status();
        if (*n == 0 || *n > UINT32_MAX) return fail("tokenizer.ggml.tokens has " + std::to_string(*n) + " entries");
        hp.n_vocab = static_cast<uint32_t>(*n);
    } else if (file.has(p + "vocab_size")) {
        LLMQ_TRY(get("vocab_size", &hp.n_vocab));
    } else if (const GgufTensor* e = file.tensor("token_embd.weight");
               e && e->shape.size() == 2 && e->shape[1] <= UINT32_MAX) {
        hp.n_vocab = static_cast<uint32_t>(e->shape[1]);
    } else {
        return fail("the vocabulary size is unknown (no tokenizer.ggml.tokens, no " + p +
                    "vocab_size, no 2-D token_embd.weight)");
    }

    auto window = file.get_u32_or(p + "attention.sliding_window", 0);
    if (!window) return window.status();
    hp.sliding_window = *window;

    hp.n_embd_rows = hp.n_vocab;
    if (hp.arch == "mllama") {
        LLMQ_TRY(read_cross_layers(file, p, &hp));
        if (const GgufTensor* e = file.tensor("token_embd.weight");
            e && e->shape.size() == 2 && e->shape[1] >= hp.n_vocab && e->shape[1] <= UINT32_MAX)
            hp.n_embd_rows = static_cast<uint32_t>(e->shape[1]);
        hp.image_token = static_cast<int32_t>(hp.n_vocab);
        if (file.has("tokenizer.ggml.tokens")) {
            auto tokens = file.get_string_array("tokenizer.ggml.tokens");
            if (!tokens) return tokens.status();
            for (size_t i = 0; i < tokens->size(); ++i)
                if ((*tokens)[i] == "<|image|>") hp.image_token = static_cast<int32_t>(i);
        }
        if (hp.image_token >= static_cast<int32_t>(hp.n_embd_rows))
            return fail("the <|image|> token " + std::to_string(hp.image_token) + " has no row in token_embd (" +
                        std::to_string(hp.n_embd_rows) + " rows)");
    }
    hp.tied_output = file.tensor("output.weight") == nullptr;
    hp.qkv_bias = file.tensor("blk.0.attn_q.bias") != nullptr;
    return hp;
}

Expected<LlamaLayout> load_llama_layout(const GgufFile& file) {
    auto hp_or = read_llama_hparams(file);
    if (!hp_or) return hp_or.status();
    LlamaLayout L;
    L.hp = std::move(*hp_or);
    const LlamaHParams& hp = L.hp;
    LayoutReader r(file, hp);

    const int64_t embd = hp.n_embd, vocab = hp.n_vocab, ff = hp.n_ff;
    const int64_t q_dim = int64_t{hp.n_head} * hp.head_dim;
    const int64_t kv_dim = int64_t{hp.n_head_kv} * hp.head_dim;
    const std::string n_embd_s = "n_embd=" + std::to_string(embd);
    const std::string vocab_why = n_embd_s + ", n_vocab=" + std::to_string(vocab);
    const std::string q_why = n_embd_s + ", n_head=" + std::to_string(hp.n_head) +
                              " x head_dim=" + std::to_string(hp.head_dim);
    const std::string kv_why = n_embd_s + ", n_head_kv=" + std::to_string(hp.n_head_kv) +
                               " x head_dim=" + std::to_string(hp.head_dim);
    const std::string ff_why = n_embd_s + ", n_ff=" + std::to_string(ff);

    auto assign = [](const GgufTensor** slot, Expected<const GgufTensor*> t) -> Status {
        if (!t) return t.status();
        *slot = *t;
        return Status();
    };
    const int64_t embd_rows = hp.n_embd_rows;
    LLMQ_TRY(assign(&L.token_embd, r.require("token_embd.weight", {embd, embd_rows}, Kind::matmul,
                                             embd_rows == vocab ? vocab_why : vocab_why + " + " + std::to_string(embd_rows - vocab) + " rows")));
    LLMQ_TRY(assign(&L.output_norm, r.require("output_norm.weight", {embd}, Kind::norm, n_embd_s)));
    if (hp.tied_output) {
        L.output = L.token_embd;
    } else {
        LLMQ_TRY(assign(&L.output, r.require("output.weight", {embd, vocab}, Kind::matmul, vocab_why)));
    }
    LLMQ_TRY(assign(&L.rope_freqs, r.optional("rope_freqs.weight", {int64_t{hp.head_dim} / 2}, Kind::norm,
                                              "head_dim/2=" + std::to_string(hp.head_dim / 2))));

    // Layers are appended one by one: a block_count far beyond the file's tensors fails on the
    // first missing tensor instead of allocating for it.
    for (uint32_t i = 0; i < hp.n_layer; ++i) {
        const std::string b = "blk." + std::to_string(i) + ".";
        LlamaLayerTensors t;
        LLMQ_TRY(assign(&t.attn_norm, r.require(b + "attn_norm.weight", {embd}, Kind::norm, n_embd_s)));
        if (hp.is_cross_layer(i)) {
            // Hugging Face MllamaCrossAttentionDecoderLayer, named as Ollama's converter names it.
            const std::string c = b + "cross_attn_";
            const std::string hd_why = "head_dim=" + std::to_string(hp.head_dim);
            t.cross = true;
            LLMQ_TRY(assign(&t.wq, r.require(c + "q_proj.weight", {embd, q_dim}, Kind::matmul, q_why)));
            LLMQ_TRY(assign(&t.wk, r.require(c + "k_proj.weight", {embd, kv_dim}, Kind::matmul, kv_why)));
            LLMQ_TRY(assign(&t.wv, r.require(c + "v_proj.weight", {embd, kv_dim}, Kind::matmul, kv_why)));
            LLMQ_TRY(assign(&t.wo, r.require(c + "o_proj.weight", {q_dim, embd}, Kind::matmul, q_why)));
            LLMQ_TRY(assign(&t.q_norm, r.require(c + "q_norm.weight", {int64_t{hp.head_dim}}, Kind::norm, hd_why)));
            LLMQ_TRY(assign(&t.k_norm, r.require(c + "k_norm.weight", {int64_t{hp.head_dim}}, Kind::norm, hd_why)));
            LLMQ_TRY(assign(&t.attn_gate, r.require(c + "attn_gate", {1}, Kind::norm, "one scalar")));
            LLMQ_TRY(assign(&t.mlp_gate, r.require(c + "mlp_gate", {1}, Kind::norm, "one scalar")));
            LLMQ_TRY(assign(&t.ffn_norm, r.require(b + "ffn_norm.weight", {embd}, Kind::norm, n_embd_s)));
            LLMQ_TRY(assign(&t.ffn_gate, r.require(b + "ffn_gate.weight", {embd, ff}, Kind::matmul, ff_why)));
            LLMQ_TRY(assign(&t.ffn_up, r.require(b + "ffn_up.weight", {embd, ff}, Kind::matmul, ff_why)));
            LLMQ_TRY(assign(&t.ffn_down, r.require(b + "ffn_down.weight", {ff, embd}, Kind::matmul, ff_why)));
            L.layers.push_back(t);
            continue;
        }
        LLMQ_TRY(assign(&t.wq, r.require(b + "attn_q.weight", {embd, q_dim}, Kind::matmul, q_why)));
        LLMQ_TRY(assign(&t.wk, r.require(b + "attn_k.weight", {embd, kv_dim}, Kind::matmul, kv_why)));
        LLMQ_TRY(assign(&t.wv, r.require(b + "attn_v.weight", {embd, kv_dim}, Kind::matmul, kv_why)));
        LLMQ_TRY(assign(&t.wo, r.require(b + "attn_output.weight", {q_dim, embd}, Kind::matmul, q_why)));
        LLMQ_TRY(assign(&t.ffn_norm, r.require(b + "ffn_norm.weight", {embd}, Kind::norm, n_embd_s)));
        LLMQ_TRY(assign(&t.ffn_gate, r.require(b + "ffn_gate.weight", {embd, ff}, Kind::matmul, ff_why)));
        LLMQ_TRY(assign(&t.ffn_up, r.require(b + "ffn_up.weight", {embd, ff}, Kind::matmul, ff_why)));
        LLMQ_TRY(assign(&t.ffn_down, r.require(b + "ffn_down.weight", {ff, embd}, Kind::matmul, ff_why)));
        if (hp.qkv_bias) {
            LLMQ_TRY(assign(&t.bq, r.require(b + "attn_q.bias", {q_dim}, Kind::norm, q_why)));
            LLMQ_TRY(assign(&t.bk, r.require(b + "attn_k.bias", {kv_dim}, Kind::norm, kv_why)));
            LLMQ_TRY(assign(&t.bv, r.require(b + "attn_v.bias", {kv_dim}, Kind::norm, kv_why)));
        } else {
            for (const char* bias : {"attn_q.bias", "attn_k.bias", "attn_v.bias"}) {
                if (file.tensor(b + bias)) {
                    return corrupt(file.describe() + ": tensor '" + b + bias +
                                   "' is present but blk.0.attn_q.bias is not; q/k/v biases "
                                   "must be in every layer or in none");
                }
            }
        }
        L.layers.push_back(t);
    }
    if (hp.arch == "mllama" && file.has("mllama.vision.block_count")) {
        auto summary = mllama_vision_summary(file);
        if (!summary) return summary.status();
        L.vision = *summary;
    }
    return L;
}

std::vector<float> llama3_rope_factors(uint32_t head_dim, double theta, const Llama3RopeScaling& s) {
    const double low_freq_wavelen = s.original_context / s.low_freq_factor;
    const double high_freq_wavelen = s.original_context / s.high_freq_factor;
    std::vector<float> factors(head_dim / 2);
    for (uint32_t i = 0; i < head_dim / 2; ++i) {
        const double freq = std::pow(theta, -2.0 * i / head_dim);
        const double wavelen = 2.0 * M_PI / freq;
        if (wavelen < high_freq_wavelen) {
            factors[i] = 1.0f;
        } else if (wavelen > low_freq_wavelen) {
            factors[i] = static_cast<float>(s.factor);
        } else {
            const double smooth = (s.original_context / wavelen - s.low_freq_factor) /
                                  (s.high_freq_factor - s.low_freq_factor);
            factors[i] = static_cast<float>(1.0 / ((1.0 - smooth) / s.factor + smooth));
        }
    }
    return factors;
}

namespace {

template <typename F>
uint64_t sum_over_tensors(const LlamaLayout& L, F f) {
    uint64_t total = 0;
    auto add = [&](const GgufTensor* t) {
        if (t) total += f(*t);
    };
    add(L.token_embd);
    add(L.output_norm);
    if (L.output != L.token_embd) add(L.output);
    add(L.rope_freqs);
    for (const LlamaLayerTensors& t : L.layers) {
        for (const GgufTensor* x : {t.attn_norm, t.wq, t.wk, t.wv, t.wo, t.ffn_norm, t.ffn_gate,
                                    t.ffn_up, t.ffn_down, t.bq, t.bk, t.bv, t.q_norm, t.k_norm,
                                    t.attn_gate, t.mlp_gate}) {
            add(x);
        }
    }
    return total;
}

}  // namespace

uint64_t LlamaLayout::weight_bytes() const {
    return sum_over_tensors(*this, [](const GgufTensor& t) { return t.size_bytes; });
}

uint64_t LlamaLayout::parameter_count() const {
    return sum_over_tensors(*this, [](const GgufTensor& t) { return static_cast<uint64_t>(t.elements()); });
}

}  // namespace llmq
