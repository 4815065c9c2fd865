// The byte-level BPE ("gpt2") tokenizer on the real GPT-2 vocabulary, against ids from the
// GPT-2 encoder algorithm run with Python's regex module (expected_ids.json).
#include <algorithm>
#include <random>

#include <doctest/doctest.h>

#include "vocab_fixture.hpp"

using llmq::DecodeOptions;
using llmq::test::ids_to_string;
using llmq::test::load_expected_ids;
using llmq::test::load_shared_tokenizer;

TEST_CASE("GPT-2 encodes \"Hello world\" as [15496, 995] and adds no BOS") {
    auto tok = load_shared_tokenizer("gpt2-bpe.gguf");
    if (!tok) return;
    CHECK(tok->vocab_size() == 50257);
    CHECK(tok->encode("Hello world", false) == std::vector<int32_t>{15496, 995});
    CHECK(tok->encode("Hello world", true) == std::vector<int32_t>{15496, 995});
    CHECK(tok->decode(std::vector<int32_t>{15496, 995}) == "Hello world");
    CHECK(tok->token_text(995) == "\xC4\xA0world");  // "Ġworld"
    CHECK(tok->token_bytes(995) == " world");
}

TEST_CASE("the corpus and random edge cases encode to the reference ids and round-trip") {
    auto tok = load_shared_tokenizer("gpt2-bpe.gguf");
    if (!tok) return;
    const auto expected = load_expected_ids();
    for (const char* set : {"cases", "random_cases"}) {
        for (const auto& c : expected[set]) {
            const std::string text = c["text"];
            const auto want = c["gpt2_bpe"].get<std::vector<int32_t>>();
            const auto got = tok->encode(text, false);
            CHECK_MESSAGE(got == want, "text " << c["text"].dump() << ": got "
                                               << ids_to_string(got) << ", reference gives "
                                               << ids_to_string(want));
            CHECK_MESSAGE(tok->decode(got) == text, "round trip of " << c["text"].dump());
        }
    }
}

TEST_CASE("any byte string, valid UTF-8 or not, survives as the concatenated token bytes") {
    auto tok = load_shared_tokenizer("gpt2-bpe.gguf");
    if (!tok) return;
    std::mt19937 rng(7);
    for (int round = 0; round < 200; ++round) {
        std::string bytes(std::uniform_int_distribution<int>(1, 40)(rng), '\0');
        for (char& b : bytes) b = static_cast<char>(rng());
        std::string joined;
        for (int32_t id : tok->encode(bytes, false)) joined += tok->token_bytes(id);
        CHECK(joined == bytes);
    }
}

TEST_CASE("<|endoftext|> is parsed only when asked and ends generation") {
    auto tok = load_shared_tokenizer("gpt2-bpe.gguf");
    if (!tok) return;
    CHECK(tok->encode("a<|endoftext|>b", false, true) == std::vector<int32_t>{64, 50256, 65});
    const auto plain = tok->encode("a<|endoftext|>b", false, false);
    CHECK(plain.size() > 3);
    CHECK(std::find(plain.begin(), plain.end(), 50256) == plain.end());
    CHECK(tok->is_end_of_generation(50256));
    CHECK(tok->decode(std::vector<int32_t>{64, 50256, 65}) == "ab");
    CHECK(tok->decode(std::vector<int32_t>{64, 50256, 65}, DecodeOptions{.render_special = true}) ==
          "a<|endoftext|>b");
}
