// The hand-written pre-tokenizers against the patterns they stand for, as Python's regex
// module splits the same texts (expected_ids.json). Needs no vocabulary.
#include <cstdlib>
#include <fstream>

#include <doctest/doctest.h>

#include "pretokenizer.hpp"
#include "vocab_fixture.hpp"

using llmq::PretokenizerStyle;

namespace {

std::string dump(const std::vector<std::string>& v) { return nlohmann::json(v).dump(); }

std::vector<std::string> split(PretokenizerStyle style, std::string_view text) {
    std::vector<std::string_view> views;
    llmq::pretokenize(style, text, views);
    return {views.begin(), views.end()};
}

}  // namespace

TEST_CASE("gpt2, llama3 and qwen2 splits match the regex module on every test text") {
    const auto expected = llmq::test::load_expected_ids();
    const std::pair<const char*, PretokenizerStyle> styles[] = {
        {"gpt2", PretokenizerStyle::gpt2},
        {"llama3", PretokenizerStyle::llama3},
        {"qwen2", PretokenizerStyle::qwen2},
    };
    int compared = 0;
    for (const char* set : {"cases", "random_cases"}) {
        for (const auto& c : expected[set]) {
            const std::string text = c["text"];
            for (const auto& [name, style] : styles) {
                const auto want = c["splits"][name].get<std::vector<std::string>>();
                const auto got = split(style, text);
                CHECK_MESSAGE(got == want, name << " split of " << c["text"].dump() << ": got "
                                                << dump(got) << ", regex gives " << dump(want));
                ++compared;
            }
        }
    }
    CHECK(compared == 3 * 342);
}

TEST_CASE("tekken and deepseek splits match the regex module (pretokenizer_splits.json)") {
    const char* root = std::getenv("LLMQ_SOURCE_ROOT");
    REQUIRE_MESSAGE(root != nullptr, "LLMQ_SOURCE_ROOT is not set; run the test through meson");
    std::ifstream in(std::string(root) + "/tests/runtime/tokenizer/pretokenizer_splits.json");
    REQUIRE(in.good());
    const auto expected = nlohmann::json::parse(in);
    const std::pair<const char*, PretokenizerStyle> styles[] = {
        {"tekken", PretokenizerStyle::tekken},
        {"deepseek-v3", PretokenizerStyle::deepseek_v3},
        {"deepseek-llm", PretokenizerStyle::deepseek_llm},
        {"deepseek-coder", PretokenizerStyle::deepseek_coder},
    };
    int compared = 0;
    for (const auto& c : expected["cases"]) {
        const std::string text = c["text"];
        for (const auto& [name, style] : styles) {
            const auto want = c[name].get<std::vector<std::string>>();
            const auto got = split(style, text);
            CHECK_MESSAGE(got == want, name << " split of " << c["text"].dump() << ": got " << dump(got)
                                            << ", regex gives " << dump(want));
            ++compared;
        }
    }
    CHECK(compared == 4 * int(expected["cases"].size()));
    CHECK(expected["cases"].size() >= 667);
    CHECK(*llmq::pretokenizer_style("tekken") == PretokenizerStyle::tekken);
    CHECK(*llmq::pretokenizer_style("deepseek-v3") == PretokenizerStyle::deepseek_v3);
    CHECK(*llmq::pretokenizer_style("deepseek-llm") == PretokenizerStyle::deepseek_llm);
    CHECK(*llmq::pretokenizer_style("deepseek-coder") == PretokenizerStyle::deepseek_coder);
}

TEST_CASE("chunks cover ill-formed UTF-8 byte for byte") {
    const std::string text = "ab\xFF\xFE cd \xE2\x82 \xC3\xA9t\xC3";
    for (auto style : {PretokenizerStyle::gpt2, PretokenizerStyle::llama3, PretokenizerStyle::tekken,
                       PretokenizerStyle::deepseek_v3, PretokenizerStyle::deepseek_llm,
                       PretokenizerStyle::deepseek_coder}) {
        std::string joined;
        for (const auto& chunk : split(style, text)) {
            CHECK_FALSE(chunk.empty());
            joined += chunk;
        }
        CHECK(joined == text);
    }
    // Ill-formed bytes are "other" characters: they group like punctuation.
    CHECK(split(PretokenizerStyle::gpt2, "ab\xFF\xFE cd") ==
          std::vector<std::string>{"ab", "\xFF\xFE", " cd"});
}

TEST_CASE("tokenizer.ggml.pre names map to styles; unknown names are refused by name") {
    CHECK(*llmq::pretokenizer_style("default") == PretokenizerStyle::gpt2);
    CHECK(*llmq::pretokenizer_style("gpt-2") == PretokenizerStyle::gpt2);
    CHECK(*llmq::pretokenizer_style("llama-bpe") == PretokenizerStyle::llama3);
    CHECK(*llmq::pretokenizer_style("qwen2") == PretokenizerStyle::qwen2);
    auto bad = llmq::pretokenizer_style("falcon");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().code() == llmq::status_code::unsupported);
    CHECK(bad.status().message().find("\"falcon\"") != std::string::npos);
}
