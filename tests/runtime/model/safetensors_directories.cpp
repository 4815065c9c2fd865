// Hugging Face model directories: what a good one opens as (views of the shard mappings,
// widened norms, rope_freqs from rope_scaling, the NeoX rotation for Llama's half-split rows),
// and one handcrafted defect per case, each refused with a message naming the file and the
// tensor or key. None may crash.
#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <sstream>

#include "handcrafted_safetensors.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/model_file.hpp"
#include "llmq/runtime/safetensors.hpp"
#include "llmq/runtime/tokenizer.hpp"

using namespace llmq;
using llmq::test::contains;
using llmq::test::ScratchDir;
using llmq::test::TinyHfModel;

namespace {

Status open_dir_status(const ScratchDir& dir, GgufFile::Options options = {}) {
    auto f = open_model_file(dir.file(""), options);
    if (!f) return f.status();
    auto layout = load_llama_layout(**f);
    return layout.status();
}

void expect_refused(const TinyHfModel& m, status_code code, std::vector<std::string> needles,
                    const std::vector<uint8_t>* shard = nullptr) {
    ScratchDir dir;
    m.write(dir, shard);
    Status s = open_dir_status(dir);
    REQUIRE_FALSE(s.ok());
    INFO(s.to_string());
    CHECK(s.code() == code);
    for (const std::string& n : needles) CHECK(contains(s.message(), n));
}

// `header` padded with spaces so that the data starts 8-byte aligned, unless `pad` is false.
void expect_header_refused(std::string header, const std::vector<uint8_t>& data,
                           std::vector<std::string> needles, bool pad = true) {
    TinyHfModel m;
    while (pad && (8 + header.size()) % 8 != 0) header += ' ';
    const auto bytes = test::safetensors_bytes(header, data);
    expect_refused(m, status_code::corrupt, needles, &bytes);
}

// The file whose mapping, in /proc/self/maps, holds address p ("" when none does).
std::string mapped_file_of(const void* p) {
    std::ifstream maps("/proc/self/maps");
    std::string line;
    const auto a = reinterpret_cast<uintptr_t>(p);
    while (std::getline(maps, line)) {
        std::istringstream in(line);
        std::string range, perms, offset, dev, inode, path;
        in >> range >> perms >> offset >> dev >> inode >> path;
        const size_t dash = range.find('-');
        const uintptr_t lo = std::stoull(range.substr(0, dash), nullptr, 16);
        const uintptr_t hi = std::stoull(range.substr(dash + 1), nullptr, 16);
        if (a >= lo && a < hi) return path;
    }
    return "";
}

}  // namespace

TEST_CASE("safetensors_directory_opens_as_the_gguf_it_converts_to") {
    ScratchDir dir;
    TinyHfModel m;
    m.write(dir);
    auto f = open_model_file(dir.file(""));
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    const GgufFile& g = **f;
    CHECK(g.format() == "safetensors");
    CHECK(contains(g.describe(), "safetensors directory"));
    auto L = load_llama_layout(g);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    CHECK(L->hp.arch == "llama");
    CHECK(L->hp.n_embd == 16);
    CHECK(L->hp.n_head_kv == 1);
    CHECK(L->hp.n_vocab == 256);
    CHECK_FALSE(L->hp.tied_output);
    // Llama's q/k rows are in Hugging Face's half-split order: the layout must rotate them so.
    CHECK(L->hp.rope_neox);
    CHECK(L->rope_freqs == nullptr);

    // Matmul weights are views of the shard's mapping (no copy), in PyTorch's [out, in] = GGUF's [in, out].
    const GgufTensor* k = L->layers[0].wk;
    CHECK(k->dtype == kernels::dtype::bf16);
    CHECK(k->shape == std::vector<int64_t>{16, 8});
    CHECK(contains(k->origin, "model.layers.0.self_attn.k_proj.weight in model.safetensors"));
    CHECK(mapped_file_of(k->data) == dir.file("model.safetensors"));
    CHECK(std::memcmp(k->data, m.find("model.layers.0.self_attn.k_proj.weight")->bytes.data(), k->size_bytes) == 0);
    // Norms are widened from BF16 to F32 (exactly: bf16 is the top half of an f32).
    const GgufTensor* norm = L->layers[0].attn_norm;
    REQUIRE(norm->dtype == kernels::dtype::f32);
    const auto& raw = m.find("model.layers.0.input_layernorm.weight")->bytes;
    for (int i = 0; i < 16; ++i) {
        const uint32_t bits = uint32_t{raw[2 * i]} << 16 | uint32_t{raw[2 * i + 1]} << 24;
        float want, got;
        std::memcpy(&want, &bits, 4);
        std::memcpy(&got, norm->data + 4 * i, 4);
        CHECK(got == want);
    }
    CHECK(mapped_file_of(norm->data) != dir.file("model.safetensors"));
}

TEST_CASE("safetensors_llama3_rope_scaling_becomes_rope_freqs") {
    ScratchDir dir;
    TinyHfModel m;
    m.config["rope_theta"] = 500000.0;
    m.config["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                                {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192}};
    m.write(dir);
    auto f = open_model_file(dir.file(""));
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    auto L = load_llama_layout(**f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    REQUIRE(L->rope_freqs != nullptr);
    const auto want = llama3_rope_factors(8, 500000.0, Llama3RopeScaling{});
    REQUIRE(L->rope_freqs->shape == std::vector<int64_t>{4});
    std::vector<float> got(4);
    std::memcpy(got.data(), L->rope_freqs->data, 16);
    CHECK(got == want);
    CHECK(want.back() > 1.0f);  // the lowest frequency is scaled at this theta
}

TEST_CASE("safetensors_tied_embeddings_and_qwen2_biases") {
    ScratchDir dir;
    TinyHfModel m;
    m.config["model_type"] = "qwen2";
    m.config["tie_word_embeddings"] = true;
    for (auto [name, n] : {std::pair{"q", 16}, {"k", 8}, {"v", 8}})
        m.tensors.push_back({"model.layers.0.self_attn." + std::string(name) + "_proj.bias", "BF16", {n},
                             test::tensor_bytes("BF16", n, 99)});
    m.write(dir);  // lm_head.weight is still in the file: tie_word_embeddings ignores it, as transformers does
    auto f = open_model_file(dir.file(""));
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    auto L = load_llama_layout(**f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    CHECK(L->hp.tied_output);
    CHECK(L->output == L->token_embd);
    CHECK(L->hp.qkv_bias);
    CHECK(L->hp.rope_neox);
    CHECK(L->layers[0].bk->dtype == kernels::dtype::f32);
}

TEST_CASE("safetensors_sharded_directory_with_index") {
    ScratchDir dir;
    TinyHfModel m;
    m.write(dir);
    std::filesystem::remove(dir.file("model.safetensors"));
    std::vector<test::StTensor> a(m.tensors.begin(), m.tensors.begin() + 5), b(m.tensors.begin() + 5, m.tensors.end());
    dir.write("model-00001-of-00002.safetensors", test::safetensors_file(a));
    dir.write("model-00002-of-00002.safetensors", test::safetensors_file(b));
    nlohmann::json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", nlohmann::json::object()}};
    for (const auto& t : a) index["weight_map"][t.name] = "model-00001-of-00002.safetensors";
    for (const auto& t : b) index["weight_map"][t.name] = "model-00002-of-00002.safetensors";
    const std::string text = index.dump();
    dir.write("model.safetensors.index.json", std::vector<uint8_t>(text.begin(), text.end()));
    auto f = open_model_file(dir.file(""));
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    auto L = load_llama_layout(**f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    CHECK(mapped_file_of(L->layers[0].ffn_down->data) == dir.file("model-00002-of-00002.safetensors"));

    SUBCASE("a shard the index names is missing") {
        std::filesystem::remove(dir.file("model-00002-of-00002.safetensors"));
        Status s = open_dir_status(dir);
        CHECK(s.code() == status_code::not_found);
        CHECK(contains(s.message(), "model-00002-of-00002.safetensors"));
    }
    SUBCASE("the index lists a tensor its shard does not hold") {
        index["weight_map"]["model.layers.0.mlp.extra.weight"] = "model-00001-of-00002.safetensors";
        const std::string t2 = index.dump();
        dir.write("model.safetensors.index.json", std::vector<uint8_t>(t2.begin(), t2.end()));
        Status s = open_dir_status(dir);
        CHECK(s.code() == status_code::corrupt);
        CHECK(contains(s.message(), "model.layers.0.mlp.extra.weight"));
    }
    SUBCASE("the index names a file outside the directory") {
        index["weight_map"]["model.norm.weight"] = "../model.safetensors";
        const std::string t2 = index.dump();
        dir.write("model.safetensors.index.json", std::vector<uint8_t>(t2.begin(), t2.end()));
        Status s = open_dir_status(dir);
        CHECK(s.code() == status_code::corrupt);
        CHECK(contains(s.message(), "not a file name in the directory"));
    }
}

TEST_CASE("safetensors_header_defects_are_refused_naming_file_and_tensor") {
    const std::vector<uint8_t> data(64, 0);
    SUBCASE("header length past the end of the file") {
        TinyHfModel m;
        std::vector<uint8_t> bytes = test::safetensors_file(m.tensors);
        const uint64_t n = bytes.size();
        std::memcpy(bytes.data(), &n, 8);
        expect_refused(m, status_code::corrupt, {"model.safetensors", "runs past the end of the file"}, &bytes);
    }
    SUBCASE("file shorter than the length field") {
        TinyHfModel m;
        const std::vector<uint8_t> bytes{1, 2, 3};
        expect_refused(m, status_code::corrupt, {"model.safetensors", "too few"}, &bytes);
    }
    SUBCASE("not JSON") {
        expect_header_refused("{\"a\": [1, 2", data, {"model.safetensors", "not valid JSON"});
    }
    SUBCASE("JSON nested too deep") {
        expect_header_refused(std::string(64, '[') + std::string(64, ']'), data, {"model.safetensors", "nested deeper"});
    }
    SUBCASE("header is not an object") {
        expect_header_refused("[1, 2]", data, {"not a JSON object"});
    }
    SUBCASE("offsets past the data") {
        expect_header_refused(R"({"model.norm.weight": {"dtype": "F32", "shape": [16], "data_offsets": [32, 96]}})", data,
                              {"model.norm.weight", "past the end of the data"});
    }
    SUBCASE("offsets reversed") {
        expect_header_refused(R"({"model.norm.weight": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}})", data,
                              {"model.norm.weight", "end is before its start"});
    }
    SUBCASE("size does not match dtype and shape") {
        expect_header_refused(R"({"model.norm.weight": {"dtype": "BF16", "shape": [16], "data_offsets": [0, 64]}})", data,
                              {"model.norm.weight", "needs 32 bytes", "span 64"});
    }
    SUBCASE("overlapping tensors") {
        expect_header_refused(R"({"a.weight": {"dtype": "F32", "shape": [8], "data_offsets": [0, 32]},
                                  "b.weight": {"dtype": "F32", "shape": [8], "data_offsets": [16, 48]}})",
                              data, {"'a.weight'", "overlaps tensor 'b.weight'"});
    }
    SUBCASE("a tensor listed twice") {
        expect_header_refused(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
                                  "t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})",
                              data, {"model.safetensors", "key \"t\" appears twice"});
    }
    SUBCASE("unknown dtype") {
        expect_header_refused(R"({"model.norm.weight": {"dtype": "Q4", "shape": [16], "data_offsets": [0, 8]}})", data,
                              {"model.norm.weight", "unknown dtype 'Q4'"});
    }
    SUBCASE("shape entry not an integer") {
        expect_header_refused(R"({"model.norm.weight": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", data,
                              {"model.norm.weight", "not a non-negative integer"});
    }
    SUBCASE("element count overflows") {
        expect_header_refused(
            R"({"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 16], "data_offsets": [0, 4]}})", data,
            {"'t'", "overflows 64 bits"});
    }
    SUBCASE("misaligned tensor data") {
        // header of 9 bytes + 8: data starts at offset 17, not a multiple of 4
        TinyHfModel m;
        std::string h = R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})";
        while ((8 + h.size()) % 4 != 1) h += ' ';
        expect_header_refused(h, data, {"'t'", "misaligned"}, false);
    }
    SUBCASE("metadata value not a string") {
        expect_header_refused(R"({"__metadata__": {"format": 1}})", data, {"__metadata__", "'format'"});
    }
    SUBCASE("unknown field of a tensor") {
        expect_header_refused(R"({"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "x": 1}})", data,
                              {"'t'", "unknown field 'x'"});
    }
}

TEST_CASE("safetensors_header_length_above_the_format_cap") {
    std::vector<uint8_t> bytes(16, ' ');
    const uint64_t n = safetensors_max_header_bytes + 1;
    std::memcpy(bytes.data(), &n, 8);
    auto h = parse_safetensors_header(bytes, n + 100, "big.safetensors");
    REQUIRE_FALSE(h.ok());
    CHECK(contains(h.status().message(), "big.safetensors"));
    CHECK(contains(h.status().message(), "above the format's limit"));
}

TEST_CASE("safetensors_model_defects_are_refused_naming_the_tensor") {
    SUBCASE("missing tensor") {
        TinyHfModel m;
        m.tensors.erase(m.tensors.begin() + 10);  // mlp.up_proj
        expect_refused(m, status_code::corrupt, {"model.layers.0.mlp.up_proj.weight", "missing"});
    }
    SUBCASE("wrong shape") {
        TinyHfModel m;
        test::StTensor* q = m.find("model.layers.0.self_attn.q_proj.weight");
        q->shape = {8, 32};
        expect_refused(m, status_code::corrupt, {"blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight", "shape"});
    }
    SUBCASE("dtype llmq does not compute with") {
        TinyHfModel m;
        test::StTensor* up = m.find("model.layers.0.mlp.up_proj.weight");
        up->dtype = "I16";
        expect_refused(m, status_code::unsupported, {"model.layers.0.mlp.up_proj.weight", "dtype I16"});
    }
    SUBCASE("unknown tensor") {
        TinyHfModel m;
        m.tensors.push_back({"model.layers.0.self_attn.o_proj.bias", "BF16", {16}, test::tensor_bytes("BF16", 16, 5)});
        expect_refused(m, status_code::unsupported, {"model.layers.0.self_attn.o_proj.bias", "unknown tensor"});
    }
    SUBCASE("tensor of a layer past num_hidden_layers") {
        TinyHfModel m;
        m.tensors.push_back({"model.layers.7.input_layernorm.weight", "BF16", {16}, test::tensor_bytes("BF16", 16, 5)});
        expect_refused(m, status_code::unsupported, {"model.layers.7.input_layernorm.weight", "num_hidden_layers = 1"});
    }
    SUBCASE("no shard at all") {
        TinyHfModel m;
        ScratchDir dir;
        m.write(dir);
        std::filesystem::remove(dir.file("model.safetensors"));
        Status s = open_dir_status(dir);
        CHECK(s.code() == status_code::not_found);
        CHECK(contains(s.message(), "neither model.safetensors nor model.safetensors.index.json"));
        // ... but its tokenizer can still be read
        auto f = open_model_file(dir.file(""), GgufFile::Options{.require_data = false});
        REQUIRE_MESSAGE(f.ok(), f.status().to_string());
        CHECK((*f)->tensors().empty());
        auto vocab = vocab_from_gguf(**f);
        REQUIRE(vocab.ok());
        CHECK(vocab->tokens.size() == 256);
    }
}

TEST_CASE("safetensors_config_defects_are_refused_naming_the_key") {
    auto refused = [](void (*edit)(nlohmann::json&), status_code code, std::vector<std::string> needles) {
        TinyHfModel m;
        edit(m.config);
        needles.push_back("config.json");
        expect_refused(m, code, needles);
    };
    refused([](nlohmann::json& c) { c["hidden_size"] = "16"; }, status_code::corrupt, {"'hidden_size' is a string"});
    refused([](nlohmann::json& c) { c["num_hidden_layers"] = 1.5; }, status_code::corrupt, {"'num_hidden_layers'", "positive integer"});
    refused([](nlohmann::json& c) { c["num_attention_heads"] = 0; }, status_code::corrupt, {"'num_attention_heads'"});
    refused([](nlohmann::json& c) { c["rms_norm_eps"] = true; }, status_code::corrupt, {"'rms_norm_eps' is a boolean"});
    refused([](nlohmann::json& c) { c["tie_word_embeddings"] = 1; }, status_code::corrupt, {"'tie_word_embeddings'", "true or false"});
    refused([](nlohmann::json& c) { c.erase("model_type"); }, status_code::corrupt, {"'model_type' is missing"});
    refused([](nlohmann::json& c) { c["model_type"] = "gpt_neox"; }, status_code::unsupported, {"model_type 'gpt_neox'"});
    refused([](nlohmann::json& c) { c["hidden_act"] = "gelu"; }, status_code::unsupported, {"hidden_act 'gelu'"});
    refused([](nlohmann::json& c) { c["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}}; },
            status_code::unsupported, {"rope_scaling type 'yarn'"});
    refused([](nlohmann::json& c) { c["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}}; },
            status_code::corrupt, {"'low_freq_factor' is missing"});
    refused([](nlohmann::json& c) { c["vocab_size"] = 100; }, status_code::corrupt, {"tokenizer.json", "vocab_size"});
    refused([](nlohmann::json& c) { c["eos_token_id"] = "x"; }, status_code::corrupt, {"'eos_token_id'"});
    refused([](nlohmann::json& c) { c = nlohmann::json::array(); }, status_code::corrupt, {"not an object"});
}

TEST_CASE("safetensors_tokenizer_pre_tokenizers_map_to_the_gguf_names") {
    auto split = [](const char* regex) {
        return nlohmann::json{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
    };
    const nlohmann::json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}};
    const char* tekken =
        R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
    const char* deepseek3_main =
        R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
    const std::pair<nlohmann::json, const char*> cases[] = {
        {{{"type", "Sequence"}, {"pretokenizers", {split(tekken), byte_level}}}, "tekken"},
        {{{"type", "Sequence"},
          {"pretokenizers", {split(R"re(\p{N}{1,3})re"), split("[一-龥぀-ゟ゠-ヿ]+"), split(deepseek3_main), byte_level}}},
         "deepseek-v3"},
        {{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "gpt2"},
    };
    for (const auto& [pre_tokenizer, name] : cases) {
        CAPTURE(name);
        TinyHfModel m;
        m.tokenizer["pre_tokenizer"] = pre_tokenizer;
        ScratchDir dir;
        m.write(dir);
        auto f = open_model_file(dir.file(""));
        REQUIRE_MESSAGE(f.ok(), f.status().to_string());
        auto vocab = vocab_from_gguf(**f);
        REQUIRE(vocab.ok());
        CHECK(vocab->pre == name);
        CHECK(Tokenizer::create(std::move(*vocab)).ok());
    }
}

TEST_CASE("safetensors_tokenizer_added_tokens_padding_and_special_ids") {
    TinyHfModel m;
    m.config["vocab_size"] = 260;
    m.config["eos_token_id"] = nlohmann::json::array({257, 1});
    for (auto& t : m.tensors) {
        if (t.name == "model.embed_tokens.weight" || t.name == "lm_head.weight") {
            t.shape = {260, 16};
            t.bytes = test::tensor_bytes("BF16", 260 * 16, 7);
        }
    }
    m.tokenizer["added_tokens"] = {
        {{"id", 256}, {"content", "<|begin|>"}, {"special", true}},
        {{"id", 257}, {"content", "<|end|>"}, {"special", true}},
        {{"id", 258}, {"content", "<tool>"}, {"special", false}},
    };
    m.tokenizer["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single", {{{"SpecialToken", {{"id", "<|begin|>"}, {"type_id", 0}}}}, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
    ScratchDir dir;
    m.write(dir);
    const nlohmann::json tc = {{"eos_token", {{"content", "<|end|>"}, {"special", true}}}, {"pad_token", nullptr},
                               {"chat_template", {{{"name", "tool_use"}, {"template", "T"}}, {{"name", "default"}, {"template", "D"}}}}};
    const std::string text = tc.dump();
    dir.write("tokenizer_config.json", std::vector<uint8_t>(text.begin(), text.end()));
    auto f = open_model_file(dir.file(""));
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    auto v = vocab_from_gguf(**f);
    REQUIRE(v.ok());
    REQUIRE(v->tokens.size() == 260);
    CHECK(v->tokens[256] == "<|begin|>");
    CHECK(v->token_types[256] == static_cast<int32_t>(TokenType::control));
    CHECK(v->token_types[258] == static_cast<int32_t>(TokenType::user_defined));
    CHECK(v->tokens[259] == "[PAD259]");
    CHECK(v->token_types[259] == static_cast<int32_t>(TokenType::unused));
    CHECK(v->bos == 256);  // from the post-processor's template
    CHECK(v->add_bos);
    CHECK(v->eos == 257);
    CHECK(v->eos_ids == std::vector<int32_t>{257, 1});
    CHECK(v->chat_template == "D");
    auto L = load_llama_layout(**f);
    CHECK_MESSAGE(L.ok(), L.status().to_string());
}

TEST_CASE("safetensors_tokenizer_defects_are_refused_naming_the_field") {
    auto refused = [](void (*edit)(nlohmann::json&), status_code code, std::vector<std::string> needles) {
        TinyHfModel m;
        edit(m.tokenizer);
        needles.push_back("tokenizer.json");
        expect_refused(m, code, needles);
    };
    refused([](nlohmann::json& t) { t["model"]["type"] = "Unigram"; }, status_code::unsupported, {"model type 'Unigram'"});
    refused([](nlohmann::json& t) { t["model"]["byte_fallback"] = true; }, status_code::unsupported, {"byte_fallback"});
    refused([](nlohmann::json& t) { t["pre_tokenizer"] = {{"type", "Metaspace"}}; }, status_code::unsupported,
            {"pre_tokenizer Metaspace"});
    refused([](nlohmann::json& t) {
        t["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers",
            {{{"type", "Split"}, {"pattern", {{"Regex", "\\d+|\\w+"}}}, {"behavior", "Isolated"}},
             {{"type", "ByteLevel"}, {"use_regex", false}}}}};
    }, status_code::unsupported, {"Split regex", "\\\\d+|\\\\w+"});
    refused([](nlohmann::json& t) { t["normalizer"] = {{"type", "Lowercase"}}; }, status_code::unsupported,
            {"normalizer 'Lowercase'"});
    refused([](nlohmann::json& t) { t["model"]["merges"] = {"a b c"}; }, status_code::corrupt, {"merges entry 0"});
    refused([](nlohmann::json& t) { t["model"]["merges"] = {{1, 2}}; }, status_code::corrupt, {"merges entry 0"});
    refused([](nlohmann::json& t) { t["model"]["vocab"]["zz"] = 3; }, status_code::corrupt, {"gives id 3 to both"});
    refused([](nlohmann::json& t) { t["added_tokens"] = {{{"id", 300}, {"content", "<x>"}, {"special", true}}}; },
            status_code::corrupt, {"ids up to 300", "vocab_size"});
    refused([](nlohmann::json& t) { t["model"].erase("vocab"); }, status_code::corrupt, {"model.vocab"});
    TinyHfModel m;
    ScratchDir dir;
    m.write(dir);
    std::filesystem::remove(dir.file("tokenizer.json"));
    Status s = open_dir_status(dir);
    CHECK(s.code() == status_code::not_found);
    CHECK(contains(s.message(), "tokenizer.json"));
}
