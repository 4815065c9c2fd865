// TokenStreamDecoder: pieces are always valid UTF-8 and concatenate to decode(all ids).
#include <random>

#include <doctest/doctest.h>

#include "utf8.hpp"
#include "vocab_fixture.hpp"

using llmq::Tokenizer;
using llmq::TokenStreamDecoder;

namespace {

// Pushes ids one at a time; checks every piece is valid UTF-8; returns the concatenation.
std::string stream(const Tokenizer& tok, const std::vector<int32_t>& ids, bool skip_leading_space) {
    TokenStreamDecoder decoder(tok, skip_leading_space);
    std::string text;
    for (int32_t id : ids) {
        const std::string piece = decoder.push(id);
        CHECK_MESSAGE(llmq::utf8::is_valid(piece), "piece after id " << id << " is not UTF-8");
        text += piece;
    }
    const std::string rest = decoder.flush();
    CHECK(llmq::utf8::is_valid(rest));
    return text + rest;
}

void check_vocabulary(const Tokenizer& tok) {
    for (const std::string& text : llmq::test::round_trip_corpus()) {
        const auto ids = tok.encode(text, true);
        CHECK_MESSAGE(stream(tok, ids, true) == tok.decode(ids), "stream of " << text);
        CHECK(stream(tok, ids, true) == text);
        CHECK(stream(tok, ids, false) == tok.decode(ids, {.skip_leading_space = false}));
    }
    // Random ids split characters anywhere and make ill-formed sequences.
    std::mt19937 rng(11);
    std::uniform_int_distribution<int32_t> any_id(0, tok.vocab_size() - 1);
    for (int round = 0; round < 300; ++round) {
        std::vector<int32_t> ids(std::uniform_int_distribution<int>(1, 12)(rng));
        for (int32_t& id : ids) id = any_id(rng);
        CHECK(stream(tok, ids, true) == tok.decode(ids));
    }
}

}  // namespace

TEST_CASE("Llama 2: a character split over byte tokens comes out whole, once complete") {
    auto tok = llmq::test::load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    TokenStreamDecoder decoder(*tok);
    CHECK(decoder.push(1).empty());       // <s>
    CHECK(decoder.push(15043) == "Hello");  // "▁Hello": the prefix space is dropped
    CHECK(decoder.push(29871) == " ");
    CHECK(decoder.push(3 + 0xF0).empty());  // F0 9F A6 99: U+1F999
    CHECK(decoder.push(3 + 0x9F).empty());
    CHECK(decoder.push(3 + 0xA6).empty());
    CHECK(decoder.push(3 + 0x99) == "\xF0\x9F\xA6\x99");
    CHECK(decoder.push(3 + 0xF0).empty());
    CHECK(decoder.push(3186) == "\xEF\xBF\xBD world");  // the unfinished F0 is given up
    CHECK(decoder.push(3 + 0xE6).empty());
    CHECK(decoder.flush() == "\xEF\xBF\xBD");
    // After flush the decoder starts a new stream.
    CHECK(decoder.push(15043) == "Hello");
}

TEST_CASE("Llama 2: streams of encoded texts and of random ids equal decode()") {
    auto tok = llmq::test::load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    check_vocabulary(*tok);
}

TEST_CASE("GPT-2: streams of encoded texts and of random ids equal decode()") {
    auto tok = llmq::test::load_shared_tokenizer("gpt2-bpe.gguf");
    if (!tok) return;
    check_vocabulary(*tok);
    // "🦙" is split over byte-level tokens 8582, 99, 247 ("ðŁ", "¦", "Ļ" → F0 9F | A6 | 99).
    TokenStreamDecoder decoder(*tok);
    CHECK(decoder.push(8582).empty());
    CHECK(decoder.push(99).empty());
    CHECK(decoder.push(247) == "\xF0\x9F\xA6\x99");
}
