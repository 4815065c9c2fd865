// The Llama 3 vocabulary (128256 tokens, tokenizer.ggml.pre = "llama-bpe") against the
// shared reference vectors (llama3-bpe.vectors.json: no BOS, control-token text not parsed).
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <doctest/doctest.h>

#include "vocab_fixture.hpp"

using llmq::test::ids_to_string;
using llmq::test::load_shared_tokenizer;

namespace {

nlohmann::json load_vectors() {
    const char* dir = std::getenv("LLMQ_SHARED_VOCAB_DIR");
    const std::string path = std::string(dir ? dir : "../shared/vocab") + "/llama3-bpe.vectors.json";
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), "cannot open " << path);
    return nlohmann::json::parse(in);
}

}  // namespace

TEST_CASE("every reference text encodes to the Llama 3 ids and decodes back") {
    auto tok = load_shared_tokenizer("llama3-bpe.gguf");
    if (!tok) return;
    CHECK(tok->vocab_size() == 128256);
    CHECK(tok->vocab().pre == "llama-bpe");
    const auto vectors = load_vectors();
    REQUIRE(vectors["bos_added"] == false);
    REQUIRE(vectors["parse_special"] == false);
    int checked = 0;
    for (const auto& c : vectors["cases"]) {
        const std::string text = c["text"];
        const auto want = c["ids"].get<std::vector<int32_t>>();
        const auto got = tok->encode(text, false, false);
        CHECK_MESSAGE(got == want, "text " << c["text"].dump() << ": got " << ids_to_string(got)
                                           << ", reference gives " << ids_to_string(want));
        CHECK_MESSAGE(tok->decode(got) == text, "round trip of " << c["text"].dump());
        ++checked;
    }
    CHECK(checked == 49);
}

TEST_CASE("Llama 3 adds <|begin_of_text|> and every end-of-turn token ends generation") {
    auto tok = load_shared_tokenizer("llama3-bpe.gguf");
    if (!tok) return;
    CHECK(tok->bos() == 128000);
    CHECK(tok->encode("Hi", true).front() == 128000);
    for (const char* end : {"<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"}) {
        const int32_t id = tok->find_token(end);
        REQUIRE(id >= 0);
        CHECK_MESSAGE(tok->is_end_of_generation(id), end << " must end generation");
    }
    CHECK(tok->find_token("<|eot_id|>") == 128009);
    CHECK(tok->find_token("<|eom_id|>") == 128008);
    CHECK(tok->find_token("<|end_of_text|>") == 128001);
    CHECK_FALSE(tok->is_end_of_generation(tok->find_token("<|start_header_id|>")));
}

TEST_CASE("typed <|eot_id|> is text unless specials are parsed") {
    auto tok = load_shared_tokenizer("llama3-bpe.gguf");
    if (!tok) return;
    const auto plain = tok->encode("a<|eot_id|>", false, false);
    for (int32_t id : plain) CHECK(id < 128000);
    CHECK(tok->encode("a<|eot_id|>", false, true) == std::vector<int32_t>{64, 128009});
}
