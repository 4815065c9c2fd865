// The SentencePiece ("llama") tokenizer on the real Llama 2 vocabulary, against ids that
// Google's sentencepiece produced (expected_ids.json, see make_expected_ids.py).
#include <algorithm>
#include <random>

#include <doctest/doctest.h>

#include "vocab_fixture.hpp"

using llmq::DecodeOptions;
using llmq::TokenType;
using llmq::test::ids_to_string;
using llmq::test::load_expected_ids;
using llmq::test::load_shared_tokenizer;

TEST_CASE("Llama 2 encodes \"Hello world\" with BOS as [1, 15043, 3186]") {
    auto tok = load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    CHECK(tok->vocab_size() == 32000);
    CHECK(tok->bos() == 1);
    CHECK(tok->eos() == 2);
    CHECK(tok->encode("Hello world", true) == std::vector<int32_t>{1, 15043, 3186});
    CHECK(tok->encode("Hello world", false) == std::vector<int32_t>{15043, 3186});
    CHECK(tok->encode("", true) == std::vector<int32_t>{1});
    CHECK(tok->encode("", false).empty());
}

TEST_CASE("the corpus encodes to sentencepiece's ids and decodes back to the text") {
    auto tok = load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    const auto expected = load_expected_ids();
    for (const auto& c : expected["cases"]) {
        const std::string text = c["text"];
        const auto want = c["llama_spm"].get<std::vector<int32_t>>();
        const auto got = tok->encode(text, false);
        CHECK_MESSAGE(got == want, "text " << c["text"].dump() << ": got " << ids_to_string(got)
                                           << ", sentencepiece gives " << ids_to_string(want));
        CHECK_MESSAGE(tok->decode(got) == c["llama_spm_decoded"].get<std::string>(),
                      "decode of " << c["text"].dump());
        CHECK_MESSAGE(tok->decode(got) == text, "round trip of " << c["text"].dump());
        // With BOS in front the text is the same: control tokens decode to nothing.
        auto with_bos = tok->encode(text, true);
        CHECK(with_bos.front() == 1);
        CHECK(tok->decode(with_bos) == text);
    }
}

TEST_CASE("random edge-case texts encode to sentencepiece's ids") {
    auto tok = load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    int compared = 0;
    const auto expected = load_expected_ids();
    for (const auto& c : expected["random_cases"]) {
        if (!c.contains("llama_spm")) continue;
        const std::string text = c["text"];
        const auto want = c["llama_spm"].get<std::vector<int32_t>>();
        const auto got = tok->encode(text, false);
        CHECK_MESSAGE(got == want, "text " << c["text"].dump() << ": got " << ids_to_string(got)
                                           << ", sentencepiece gives " << ids_to_string(want));
        CHECK_MESSAGE(tok->decode(got) == text, "round trip of " << c["text"].dump());
        ++compared;
    }
    CHECK(compared > 200);
}

TEST_CASE("spaces: the leading-space rule, runs of spaces, leading and trailing spaces") {
    auto tok = load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    // "▁" is 29871, "▁▁" is 259, "▁Hello" is 15043: the text gets one ▁ in front of it.
    CHECK(tok->encode(" Hello", false) == std::vector<int32_t>{29871, 15043});
    CHECK(tok->encode("  Hello", false) == std::vector<int32_t>{259, 15043});
    CHECK(tok->encode(" ", false) == std::vector<int32_t>{259});
    // Decoding drops the one space the prefix stands for, and no more.
    CHECK(tok->decode(std::vector<int32_t>{15043}) == "Hello");
    CHECK(tok->decode(std::vector<int32_t>{29871, 15043}) == " Hello");
    CHECK(tok->decode(std::vector<int32_t>{259, 15043}) == "  Hello");
    // A continuation keeps its first space.
    CHECK(tok->decode(std::vector<int32_t>{15043}, DecodeOptions{.skip_leading_space = false}) ==
          " Hello");
    CHECK(tok->token_bytes(15043) == " Hello");
    CHECK(tok->token_text(15043) == "\xE2\x96\x81Hello");
}

TEST_CASE("characters outside the vocabulary fall back to <0xXX> byte tokens") {
    auto tok = load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    // U+1F999 (llama emoji) is F0 9F A6 99; <0x00> is id 3, so byte b is id 3 + b.
    const auto ids = tok->encode("\xF0\x9F\xA6\x99", false);
    CHECK(ids == std::vector<int32_t>{29871, 3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99});
    CHECK(tok->token_type(3 + 0xF0) == TokenType::byte);
    CHECK(tok->token_bytes(3 + 0xF0) == "\xF0");
    // Newlines and tabs are not pieces of this vocabulary: <0x0A>, <0x09>.
    CHECK(tok->encode("\n", false) == std::vector<int32_t>{29871, 13});
    CHECK(tok->encode("\t", false) == std::vector<int32_t>{29871, 12});
    // A byte token alone is not UTF-8: decoding shows U+FFFD.
    CHECK(tok->decode(std::vector<int32_t>{3 + 0xF0}) == "\xEF\xBF\xBD");
    CHECK(tok->decode(std::vector<int32_t>{3 + 0xF0, 3 + 0x9F, 3 + 0xA6, 3 + 0x99}) ==
          "\xF0\x9F\xA6\x99");
}

TEST_CASE("control tokens are parsed from text only when asked, and decode to nothing") {
    auto tok = load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    CHECK(tok->is_control(1));
    CHECK(tok->is_control(2));
    CHECK_FALSE(tok->is_control(15043));
    CHECK(tok->is_end_of_generation(2));
    CHECK_FALSE(tok->is_end_of_generation(1));
    CHECK(tok->token_bytes(1).empty());
    CHECK(tok->token_text(1) == "<s>");
    // Text after a special token gets the leading ▁ again (as llama.cpp and Hugging Face do).
    CHECK(tok->encode("<s>Hello</s>", false, true) == std::vector<int32_t>{1, 15043, 2});
    const auto plain = tok->encode("<s>Hello</s>", false, false);
    CHECK(std::find(plain.begin(), plain.end(), 1) == plain.end());
    CHECK(std::find(plain.begin(), plain.end(), 2) == plain.end());
    CHECK(tok->decode(plain) == "<s>Hello</s>");
    CHECK(tok->decode(std::vector<int32_t>{1, 15043, 2}) == "Hello");
    CHECK(tok->decode(std::vector<int32_t>{1, 15043, 2}, DecodeOptions{.render_special = true}) ==
          "<s>Hello</s>");
    // Ids out of range decode to nothing instead of failing.
    CHECK(tok->decode(std::vector<int32_t>{-5, 15043, 32000, 1 << 30}) == "Hello");
    CHECK(tok->token_text(32000).empty());
    CHECK(tok->find_token("\xE2\x96\x81world") == 3186);
    CHECK(tok->find_token("no such token") == -1);
}

TEST_CASE("any byte string survives byte fallback: the token bytes spell ' ' + the input") {
    auto tok = load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    std::mt19937 rng(5);
    for (int round = 0; round < 200; ++round) {
        std::string bytes(std::uniform_int_distribution<int>(1, 40)(rng), '\0');
        for (char& b : bytes) b = static_cast<char>(rng());
        // U+2581 itself would come back as a space: SentencePiece cannot tell them apart.
        if (bytes.find("\xE2\x96\x81") != std::string::npos) continue;
        std::string joined;
        for (int32_t id : tok->encode(bytes, false)) joined += tok->token_bytes(id);
        CHECK(joined == " " + bytes);
    }
}
