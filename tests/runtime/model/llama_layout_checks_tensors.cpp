// load_llama_layout on handcrafted header-only files: hyperparameters and their defaults, and
// one refusal per wrong key or tensor, each naming what was wrong.
#include <doctest/doctest.h>

#include <map>

#include "handcrafted_gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "llmq/runtime/llama_layout.hpp"

using namespace llmq;
using llmq::test::contains;
using llmq::test::ScratchDir;

namespace {

constexpr uint32_t F32 = static_cast<uint32_t>(GgmlType::f32);
constexpr uint32_t F16 = static_cast<uint32_t>(GgmlType::f16);

struct TensorDecl {
    uint32_t type;
    std::vector<int64_t> shape;
};

// A small Llama declared key by key and tensor by tensor, so a case can change one thing.
struct LlamaFile {
    std::string arch = "llama";
    std::vector<std::pair<std::string, GgufValue>> kv;
    std::vector<std::pair<std::string, TensorDecl>> tensors;

    explicit LlamaFile(int64_t dim = 64, int64_t layers = 2, uint32_t heads = 4,
                       uint32_t kv_heads = 2, int64_t ffn = 96, int64_t vocab = 300,
                       std::string arch_name = "llama", bool bias = false)
        : arch(std::move(arch_name)) {
        const std::string a = arch + ".";
        set("general.architecture", GgufValue::string(arch));
        set(a + "embedding_length", GgufValue::u32(static_cast<uint32_t>(dim)));
        set(a + "block_count", GgufValue::u32(static_cast<uint32_t>(layers)));
        set(a + "feed_forward_length", GgufValue::u32(static_cast<uint32_t>(ffn)));
        set(a + "attention.head_count", GgufValue::u32(heads));
        set(a + "attention.head_count_kv", GgufValue::u32(kv_heads));
        set(a + "attention.layer_norm_rms_epsilon", GgufValue::f32(1e-6f));
        set(a + "context_length", GgufValue::u32(4096));
        set(a + "vocab_size", GgufValue::u32(static_cast<uint32_t>(vocab)));
        const int64_t kv_dim = dim / heads * kv_heads;
        tensor("token_embd.weight", F16, {dim, vocab});
        tensor("output_norm.weight", F32, {dim});
        tensor("output.weight", F16, {dim, vocab});
        for (int64_t i = 0; i < layers; ++i) {
            const std::string b = "blk." + std::to_string(i) + ".";
            tensor(b + "attn_norm.weight", F32, {dim});
            tensor(b + "attn_q.weight", F16, {dim, dim});
            tensor(b + "attn_k.weight", F16, {dim, kv_dim});
            tensor(b + "attn_v.weight", F16, {dim, kv_dim});
            if (bias) {
                tensor(b + "attn_q.bias", F32, {dim});
                tensor(b + "attn_k.bias", F32, {kv_dim});
                tensor(b + "attn_v.bias", F32, {kv_dim});
            }
            tensor(b + "attn_output.weight", F16, {dim, dim});
            tensor(b + "ffn_norm.weight", F32, {dim});
            tensor(b + "ffn_gate.weight", F16, {dim, ffn});
            tensor(b + "ffn_up.weight", F16, {dim, ffn});
            tensor(b + "ffn_down.weight", F16, {ffn, dim});
        }
    }
    void set(const std::string& key, GgufValue v) {
        for (auto& [k, old] : kv) {
            if (k == key) {
                old = std::move(v);
                return;
            }
        }
        kv.emplace_back(key, std::move(v));
    }
    void unset(const std::string& key) {
        std::erase_if(kv, [&](const auto& e) { return e.first == key; });
    }
    void tensor(const std::string& name, uint32_t type, std::vector<int64_t> shape) {
        for (auto& [n, d] : tensors) {
            if (n == name) {
                d = TensorDecl{type, std::move(shape)};
                return;
            }
        }
        tensors.emplace_back(name, TensorDecl{type, std::move(shape)});
    }
    void remove(const std::string& name) {
        std::erase_if(tensors, [&](const auto& e) { return e.first == name; });
    }

    std::shared_ptr<const GgufFile> open(const ScratchDir& dir) const {
        GgufWriter w(GgufWriter::Options{.header_only = true});
        for (const auto& [k, v] : kv) w.add(k, v);
        for (const auto& [n, d] : tensors) REQUIRE(w.add_tensor(n, d.type, d.shape, GgufWriter::RowFill{}).ok());
        std::string path = dir.file("llama.gguf");
        REQUIRE(w.write(path).ok());
        auto f = GgufFile::open(path, GgufFile::Options{.require_data = false,
                                                        .allow_unsupported_types = true});
        REQUIRE_MESSAGE(f.ok(), f.status().to_string());
        return *f;
    }
};

Status layout_status(const LlamaFile& lf) {
    ScratchDir dir;
    auto f = lf.open(dir);
    return load_llama_layout(*f).status();
}

void expect_refused(const LlamaFile& lf, status_code code, std::vector<std::string> needles) {
    Status s = layout_status(lf);
    REQUIRE_FALSE(s.ok());
    INFO(s.to_string());
    CHECK(s.code() == code);
    CHECK(contains(s.message(), "llama.gguf"));
    for (const std::string& n : needles) CHECK(contains(s.message(), n));
}

}  // namespace

TEST_CASE("llama_layout_loads_a_complete_model") {
    LlamaFile lf;
    ScratchDir dir;
    auto f = lf.open(dir);
    auto L = load_llama_layout(*f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    const LlamaHParams& hp = L->hp;
    CHECK(hp.arch == "llama");
    CHECK(hp.n_vocab == 300);
    CHECK(hp.n_embd == 64);
    CHECK(hp.n_layer == 2);
    CHECK(hp.n_head == 4);
    CHECK(hp.n_head_kv == 2);
    CHECK(hp.n_ff == 96);
    CHECK(hp.n_ctx_train == 4096);
    CHECK(hp.head_dim == 16);
    CHECK(hp.n_rot == 16);
    CHECK(hp.rms_eps == 1e-6f);
    CHECK(hp.rope_theta == 10000.0f);
    CHECK(hp.rope_freq_scale == 1.0f);
    CHECK_FALSE(hp.rope_neox);
    CHECK_FALSE(hp.tied_output);
    CHECK_FALSE(hp.qkv_bias);
    REQUIRE(L->layers.size() == 2);
    CHECK(L->output != L->token_embd);
    CHECK(L->layers[1].wk->name == "blk.1.attn_k.weight");
    CHECK(L->layers[1].wk->shape == std::vector<int64_t>{64, 32});
    CHECK(L->layers[0].bq == nullptr);
    CHECK(L->rope_freqs == nullptr);
    uint64_t expected_params = 2ull * 64 * 300 + 64 + 2 * (2 * 64 + 2 * 64 * 64 + 2 * 64 * 32 + 3 * 64 * 96);
    CHECK(L->parameter_count() == expected_params);
    CHECK(L->weight_bytes() == (expected_params - 64 - 2 * 2 * 64) * 2 + (64 + 2 * 2 * 64) * 4);
}

TEST_CASE("llama_layout_ties_output_to_token_embd_when_absent") {
    LlamaFile lf;
    lf.remove("output.weight");
    ScratchDir dir;
    auto f = lf.open(dir);
    auto L = load_llama_layout(*f);
    REQUIRE(L.ok());
    CHECK(L->hp.tied_output);
    CHECK(L->output == L->token_embd);
}

TEST_CASE("llama_layout_applies_metadata_defaults_and_rope_scaling") {
    LlamaFile lf;
    lf.unset("llama.attention.head_count_kv");
    lf.unset("llama.vocab_size");  // falls back to token_embd's shape
    for (auto& [n, d] : lf.tensors) {
        if (n.find("attn_k.weight") != std::string::npos || n.find("attn_v.weight") != std::string::npos) {
            d.shape = {64, 64};
        }
    }
    lf.set("llama.rope.freq_base", GgufValue::f32(500000.0f));
    lf.set("llama.rope.scaling.type", GgufValue::string("linear"));
    lf.set("llama.rope.scaling.factor", GgufValue::f32(4.0f));
    ScratchDir dir;
    auto f = lf.open(dir);
    auto hp = read_llama_hparams(*f);
    REQUIRE_MESSAGE(hp.ok(), hp.status().to_string());
    CHECK(hp->n_head_kv == 4);
    CHECK(hp->n_vocab == 300);
    CHECK(hp->rope_theta == 500000.0f);
    CHECK(hp->rope_freq_scale == 0.25f);
    CHECK(load_llama_layout(*f).ok());
}

TEST_CASE("llama_layout_takes_vocab_size_from_the_token_list") {
    LlamaFile lf;
    std::vector<std::string> tokens(300, "x");
    for (size_t i = 0; i < tokens.size(); ++i) tokens[i] += std::to_string(i);
    lf.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
    lf.unset("llama.vocab_size");
    CHECK(layout_status(lf).ok());
    tokens.pop_back();
    lf.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
    expect_refused(lf, status_code::corrupt, {"token_embd.weight", "[64, 300]", "expected [64, 299]"});
}

TEST_CASE("llama_layout_refuses_unsupported_rope_scaling") {
    LlamaFile lf;
    lf.set("llama.rope.scaling.type", GgufValue::string("yarn"));
    expect_refused(lf, status_code::unsupported, {"yarn"});
}

TEST_CASE("llama_layout_refuses_missing_tensor") {
    LlamaFile lf;
    lf.remove("blk.1.ffn_down.weight");
    expect_refused(lf, status_code::corrupt, {"blk.1.ffn_down.weight", "missing", "[96, 64]"});
    LlamaFile no_norm;
    no_norm.remove("output_norm.weight");
    expect_refused(no_norm, status_code::corrupt, {"output_norm.weight", "missing"});
}

TEST_CASE("llama_layout_refuses_mis_shaped_tensor") {
    LlamaFile lf;
    lf.tensor("blk.0.attn_k.weight", F16, {64, 64});
    expect_refused(lf, status_code::corrupt,
                   {"blk.0.attn_k.weight", "has shape [64, 64]", "expected [64, 32]", "n_head_kv=2"});
    LlamaFile transposed;
    transposed.tensor("blk.1.ffn_down.weight", F16, {64, 96});
    expect_refused(transposed, status_code::corrupt, {"blk.1.ffn_down.weight", "expected [96, 64]"});
    LlamaFile three_d;
    three_d.tensor("token_embd.weight", F16, {64, 300, 1});
    expect_refused(three_d, status_code::corrupt, {"token_embd.weight", "[64, 300, 1]"});
}

TEST_CASE("llama_layout_refuses_wrong_tensor_types") {
    LlamaFile half_norm;
    half_norm.tensor("blk.0.ffn_norm.weight", F16, {64});
    expect_refused(half_norm, status_code::unsupported, {"blk.0.ffn_norm.weight", "F16", "must be F32"});
    LlamaFile q4k_ok_shape(256, 1, 4, 2, 256, 300);
    q4k_ok_shape.tensor("blk.0.ffn_up.weight", static_cast<uint32_t>(GgmlType::iq2_xxs), {256, 256});
    expect_refused(q4k_ok_shape, status_code::unsupported, {"blk.0.ffn_up.weight", "IQ2_XXS", "q8_0", "q4_k"});
}

TEST_CASE("llama_layout_refuses_bad_head_counts") {
    LlamaFile heads;
    heads.set("llama.attention.head_count", GgufValue::u32(5));
    heads.set("llama.attention.head_count_kv", GgufValue::u32(5));
    expect_refused(heads, status_code::corrupt, {"embedding_length 64", "head_count 5"});
    LlamaFile kv;
    kv.set("llama.attention.head_count_kv", GgufValue::u32(3));
    expect_refused(kv, status_code::corrupt, {"head_count 4", "head_count_kv 3"});
    LlamaFile zero;
    zero.set("llama.attention.head_count", GgufValue::u32(0));
    expect_refused(zero, status_code::corrupt, {"llama.attention.head_count", "0"});
}

TEST_CASE("llama_layout_refuses_missing_or_mistyped_key") {
    LlamaFile lf;
    lf.unset("llama.block_count");
    expect_refused(lf, status_code::not_found, {"llama.block_count", "missing"});
    LlamaFile typed;
    typed.set("llama.feed_forward_length", GgufValue::string("96"));
    expect_refused(typed, status_code::corrupt, {"llama.feed_forward_length", "string"});
    LlamaFile no_arch;
    no_arch.unset("general.architecture");
    expect_refused(no_arch, status_code::not_found, {"general.architecture"});
}

TEST_CASE("llama_layout_refuses_unknown_architecture") {
    LlamaFile lf;
    lf.set("general.architecture", GgufValue::string("gemma"));
    expect_refused(lf, status_code::unsupported, {"gemma", "llama"});
}

TEST_CASE("llama_layout_refuses_block_count_beyond_the_tensors") {
    LlamaFile lf;
    lf.set("llama.block_count", GgufValue::u32(4000000000u));
    expect_refused(lf, status_code::corrupt, {"blk.2.attn_norm.weight", "missing"});
}

TEST_CASE("llama_layout_reads_qwen2_biases") {
    LlamaFile lf(64, 2, 4, 2, 96, 300, "qwen2", true);
    ScratchDir dir;
    auto f = lf.open(dir);
    auto L = load_llama_layout(*f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    CHECK(L->hp.qkv_bias);
    CHECK(L->hp.rope_neox);
    REQUIRE(L->layers[1].bk != nullptr);
    CHECK(L->layers[1].bk->shape == std::vector<int64_t>{32});

    LlamaFile partial(64, 2, 4, 2, 96, 300, "qwen2", true);
    partial.remove("blk.1.attn_v.bias");
    expect_refused(partial, status_code::corrupt, {"blk.1.attn_v.bias", "missing"});
    LlamaFile stray;
    stray.tensor("blk.1.attn_q.bias", F32, {64});
    expect_refused(stray, status_code::corrupt, {"blk.1.attn_q.bias", "every layer or in none"});
}

namespace {

// A small mllama as Ollama's converter writes it: layer 1 a cross-attention layer, the
// embedding 8 rows past the LM head's 300, "<|image|>" the tokenizer's last token.
LlamaFile mllama_file() {
    LlamaFile lf(64, 3, 4, 2, 96, 300, "mllama");
    const int64_t dim = 64, kv_dim = 32, hd = 16;
    lf.set("mllama.attention.cross_attention_layers", GgufValue::array_i32(std::vector<int32_t>{1}));
    lf.tensor("token_embd.weight", F16, {dim, 308});
    for (const char* n : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"}) lf.remove(std::string("blk.1.") + n);
    lf.tensor("blk.1.cross_attn_q_proj.weight", F16, {dim, dim});
    lf.tensor("blk.1.cross_attn_k_proj.weight", F16, {dim, kv_dim});
    lf.tensor("blk.1.cross_attn_v_proj.weight", F16, {dim, kv_dim});
    lf.tensor("blk.1.cross_attn_o_proj.weight", F16, {dim, dim});
    lf.tensor("blk.1.cross_attn_q_norm.weight", F32, {hd});
    lf.tensor("blk.1.cross_attn_k_norm.weight", F32, {hd});
    lf.tensor("blk.1.cross_attn_attn_gate", F32, {1});
    lf.tensor("blk.1.cross_attn_mlp_gate", F32, {1});
    std::vector<std::string> tokens;
    for (int i = 0; i < 300; ++i) tokens.push_back("t" + std::to_string(i));
    tokens.push_back("<|image|>");
    lf.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
    return lf;
}

}  // namespace

TEST_CASE("llama_layout_reads_mllama_cross_attention_layers") {
    ScratchDir dir;
    auto f = mllama_file().open(dir);
    auto L = load_llama_layout(*f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    CHECK(L->hp.cross_layers == std::vector<uint32_t>{1});
    CHECK(L->hp.n_vocab == 300);       // the LM head's rows, not the tokenizer's 301
    CHECK(L->hp.n_embd_rows == 308);   // HF: vocab_size + 8
    CHECK(L->hp.image_token == 300);
    CHECK_FALSE(L->layers[0].cross);
    CHECK(L->layers[1].cross);
    CHECK(L->layers[1].wq->name == "blk.1.cross_attn_q_proj.weight");
    CHECK(L->layers[1].attn_gate != nullptr);
    CHECK(L->layers[1].k_norm->shape == std::vector<int64_t>{16});
}

TEST_CASE("llama_layout_refuses_bad_mllama_cross_attention_layers") {
    LlamaFile lf = mllama_file();
    lf.unset("mllama.attention.cross_attention_layers");
    expect_refused(lf, status_code::corrupt, {"cross_attention_layers", "missing"});
    lf = mllama_file();
    lf.set("mllama.attention.cross_attention_layers", GgufValue::array_i32(std::vector<int32_t>{1, 3}));
    expect_refused(lf, status_code::corrupt, {"cross_attention_layers'[1]", "block_count 3"});
    lf = mllama_file();
    lf.set("mllama.attention.cross_attention_layers", GgufValue::array_i32(std::vector<int32_t>{1, 1}));
    expect_refused(lf, status_code::corrupt, {"twice"});
    lf = mllama_file();
    lf.remove("blk.1.cross_attn_mlp_gate");
    expect_refused(lf, status_code::corrupt, {"blk.1.cross_attn_mlp_gate", "missing"});
    lf = mllama_file();
    lf.tensor("blk.1.cross_attn_q_norm.weight", F32, {64});
    expect_refused(lf, status_code::corrupt, {"blk.1.cross_attn_q_norm.weight", "head_dim=16"});
}
