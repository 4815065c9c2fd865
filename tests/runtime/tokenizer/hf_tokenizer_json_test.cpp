// The Llama 3 vocabulary loaded from a Hugging Face tokenizer.json (built here from the shared
// GGUF vocabulary in the form the tokenizers library writes, with merges in both the "a b"
// and the ["a", "b"] form) must be the GGUF's vocabulary and give the shared reference ids.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "llmq/runtime/model_file.hpp"
#include "vocab_fixture.hpp"

using namespace llmq;
using llmq::test::ids_to_string;

namespace {

const char* llama3_split =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";

std::string shared_path(const std::string& name) {
    const char* dir = std::getenv("LLMQ_SHARED_VOCAB_DIR");
    return std::string(dir ? dir : "../shared/vocab") + "/" + name;
}

void write_json(const std::filesystem::path& p, const nlohmann::json& j) {
    std::ofstream out(p);
    out << j.dump();
    REQUIRE(out.good());
}

class HfDir {
public:
    HfDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "llmq-hf-tokenizer-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~HfDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::filesystem::path path;
};

// config.json, tokenizer.json and tokenizer_config.json of Llama 3.1 8B Instruct, from `g`.
void write_llama3_directory(const GgufFile& g, const std::filesystem::path& dir, bool array_merges) {
    const auto tokens = *g.get_string_array("tokenizer.ggml.tokens");
    const auto types = *g.get_i32_array("tokenizer.ggml.token_type");
    const auto merges = *g.get_string_array("tokenizer.ggml.merges");
    nlohmann::json vocab = nlohmann::json::object();
    nlohmann::json added = nlohmann::json::array();
    for (size_t i = 0; i < tokens.size(); ++i) {
        if (types[i] == 3 || types[i] == 4)
            added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                             {"rstrip", false}, {"normalized", types[i] == 4}, {"special", types[i] == 3}});
        else
            vocab[tokens[i]] = i;
    }
    nlohmann::json merge_list = nlohmann::json::array();
    for (const std::string& m : merges) {
        if (!array_merges) {
            merge_list.push_back(m);
            continue;
        }
        const size_t space = m.find(' ');
        merge_list.push_back({m.substr(0, space), m.substr(space + 1)});
    }
    const nlohmann::json bos_template = {{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}};
    nlohmann::json tok = {
        {"version", "1.0"}, {"truncation", nullptr}, {"padding", nullptr}, {"added_tokens", added},
        {"normalizer", nullptr},
        {"pre_tokenizer",
         {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", llama3_split}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}}},
        {"post_processor",
         {{"type", "Sequence"},
          {"processors",
           {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}, {"use_regex", true}},
            {{"type", "TemplateProcessing"},
             {"single", {bos_template, {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
             {"pair", nlohmann::json::array()},
             {"special_tokens", nlohmann::json::object()}}}}}},
        {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
        {"model",
         {{"type", "BPE"}, {"dropout", nullptr}, {"unk_token", nullptr}, {"continuing_subword_prefix", nullptr},
          {"end_of_word_suffix", nullptr}, {"fuse_unk", false}, {"byte_fallback", false}, {"ignore_merges", true},
          {"vocab", vocab}, {"merges", merge_list}}}};
    write_json(dir / "tokenizer.json", tok);
    write_json(dir / "tokenizer_config.json",
               {{"bos_token", "<|begin_of_text|>"}, {"eos_token", "<|eot_id|>"}, {"model_max_length", 131072},
                {"chat_template", "{{ bos_token }}{% for m in messages %}{{ m['content'] }}{% endfor %}"},
                {"tokenizer_class", "PreTrainedTokenizerFast"}});
    write_json(dir / "config.json",
               {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", 4096},
                {"intermediate_size", 14336}, {"num_hidden_layers", 32}, {"num_attention_heads", 32},
                {"num_key_value_heads", 8}, {"max_position_embeddings", 131072}, {"rms_norm_eps", 1e-5},
                {"rope_theta", 500000.0}, {"vocab_size", 128256}, {"bos_token_id", 128000},
                {"eos_token_id", {128001, 128008, 128009}}, {"hidden_act", "silu"}});
}

}  // namespace

TEST_CASE("tokenizer_json_of_the_llama3_vocabulary_matches_the_gguf_and_the_reference_vectors") {
    const std::string gguf_path = shared_path("llama3-bpe.gguf");
    if (!std::filesystem::exists(gguf_path)) {
        MESSAGE("skipped: " << gguf_path << " is absent (set LLMQ_SHARED_VOCAB_DIR)");
        return;
    }
    auto g = GgufFile::open(gguf_path, GgufFile::Options{.require_data = false});
    REQUIRE_MESSAGE(g.ok(), g.status().to_string());
    auto gguf_vocab = vocab_from_gguf(**g);
    REQUIRE(gguf_vocab.ok());
    std::ifstream vin(shared_path("llama3-bpe.vectors.json"));
    REQUIRE(vin.good());
    const auto vectors = nlohmann::json::parse(vin);

    for (bool array_merges : {false, true}) {
        CAPTURE(array_merges);
        HfDir dir;
        write_llama3_directory(**g, dir.path, array_merges);
        auto f = open_model_file(dir.path.string(), GgufFile::Options{.require_data = false});
        REQUIRE_MESSAGE(f.ok(), f.status().to_string());
        auto v = vocab_from_gguf(**f);
        REQUIRE_MESSAGE(v.ok(), v.status().to_string());
        CHECK(v->model == "gpt2");
        CHECK(v->pre == "llama-bpe");
        CHECK(v->tokens == gguf_vocab->tokens);
        CHECK(v->token_types == gguf_vocab->token_types);
        CHECK(v->merges == gguf_vocab->merges);
        CHECK(v->bos == 128000);
        CHECK(v->eos == 128009);
        CHECK(v->add_bos);
        CHECK(v->eos_ids == std::vector<int32_t>{128009, 128001, 128008});
        CHECK(v->chat_template.find("bos_token") != std::string::npos);
        auto tok = Tokenizer::create(std::move(*v));
        REQUIRE_MESSAGE(tok.ok(), tok.status().to_string());
        int checked = 0;
        for (const auto& c : vectors["cases"]) {
            const std::string text = c["text"];
            const auto want = c["ids"].get<std::vector<int32_t>>();
            const auto got = (*tok)->encode(text, false, false);
            CHECK_MESSAGE(got == want, "text " << c["text"].dump() << ": got " << ids_to_string(got)
                                               << ", reference gives " << ids_to_string(want));
            ++checked;
        }
        CHECK(checked == 49);
        CHECK((*tok)->encode("Hi", true).front() == 128000);
        for (const char* end : {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"})
            CHECK((*tok)->is_end_of_generation((*tok)->find_token(end)));
    }
}
