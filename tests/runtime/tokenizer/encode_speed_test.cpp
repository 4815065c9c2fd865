// A 10 kB prompt tokenizes in milliseconds (the merges use a priority queue, not rescans).
// The bound is loose on purpose (shared CI machines): it catches quadratic behaviour, which
// takes seconds at this size, not small slowdowns.
#include <chrono>

#include <doctest/doctest.h>

#include "vocab_fixture.hpp"

namespace {

void check_speed(const llmq::Tokenizer& tok, const std::string& label, const std::string& text) {
    const auto start = std::chrono::steady_clock::now();
    const auto ids = tok.encode(text, true);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    MESSAGE(label << ": " << text.size() << " bytes → " << ids.size() << " tokens in " << ms << " ms");
    CHECK(ms < 500.0);
    CHECK(tok.decode(ids) == text);
}

std::string prose() {
    std::string text;
    const auto cases = llmq::test::load_expected_ids()["cases"];
    while (text.size() < 10000) {
        for (const auto& c : cases) text += c["text"].get<std::string>() + "\n";
    }
    return text;
}

}  // namespace

TEST_CASE("10 kB of prose, and 10 kB without a single space, encode in milliseconds") {
    const std::string text = prose();
    // One chunk of 10 000 letters: the worst case for merge loops without a queue.
    const std::string word(10000, 'a');
    std::string cjk;
    while (cjk.size() < 10000) cjk += "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E";
    if (auto tok = llmq::test::load_shared_tokenizer("llama-spm.gguf")) {
        check_speed(*tok, "llama-spm prose", text);
        check_speed(*tok, "llama-spm one word", word);
        check_speed(*tok, "llama-spm CJK", cjk);
    }
    if (auto tok = llmq::test::load_shared_tokenizer("gpt2-bpe.gguf")) {
        check_speed(*tok, "gpt2-bpe prose", text);
        check_speed(*tok, "gpt2-bpe one word", word);
        check_speed(*tok, "gpt2-bpe CJK", cjk);
    }
}
