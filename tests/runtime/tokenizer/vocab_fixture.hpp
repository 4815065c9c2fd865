// Test helpers: the shared vocabularies (skipped with a message when absent), the reference
// ids of expected_ids.json, and tiny hand-made vocabularies.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq::test {

// The tokenizer of $LLMQ_SHARED_VOCAB_DIR/<name>, or nullptr (with a MESSAGE saying why the
// test is skipped) when the file is absent. A file that is present but fails to load fails
// the test.
inline std::unique_ptr<Tokenizer> load_shared_tokenizer(const std::string& name) {
    const char* dir = std::getenv("LLMQ_SHARED_VOCAB_DIR");
    const std::string path = std::string(dir ? dir : "../shared/vocab") + "/" + name;
    if (!std::filesystem::exists(path)) {
        MESSAGE("skipped: shared vocabulary " << path
                                              << " is absent (set LLMQ_SHARED_VOCAB_DIR)");
        return nullptr;
    }
    auto file = GgufFile::open(path);
    REQUIRE_MESSAGE(file.ok(), file.status().to_string());
    auto vocab = vocab_from_gguf(**file);
    REQUIRE_MESSAGE(vocab.ok(), vocab.status().to_string());
    auto tokenizer = Tokenizer::create(std::move(*vocab));
    REQUIRE_MESSAGE(tokenizer.ok(), tokenizer.status().to_string());
    return std::move(*tokenizer);
}

// tests/runtime/tokenizer/expected_ids.json (see make_expected_ids.py for how it was made).
inline nlohmann::json load_expected_ids() {
    const char* root = std::getenv("LLMQ_SOURCE_ROOT");
    REQUIRE_MESSAGE(root != nullptr, "LLMQ_SOURCE_ROOT is not set; run the test through meson");
    std::ifstream in(std::string(root) + "/tests/runtime/tokenizer/expected_ids.json");
    REQUIRE_MESSAGE(in.good(), "cannot open expected_ids.json under " << root);
    return nlohmann::json::parse(in);
}

// The texts the round-trip and streaming tests use: the reference corpus plus byte-level
// corner cases.
inline std::vector<std::string> round_trip_corpus() {
    std::vector<std::string> texts;
    const auto expected = load_expected_ids();
    for (const auto& c : expected["cases"]) texts.push_back(c["text"].get<std::string>());
    texts.push_back("");
    texts.push_back("\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99\xF0\x9F\xA6\x99");
    texts.push_back("  \n\n\t\t  ");
    texts.push_back("\xE4\xB8\xAD\xE6\x96\x87 mixed with ASCII and \xC3\xA9");
    return texts;
}

inline std::string ids_to_string(const std::vector<int32_t>& ids) {
    std::string s = "[";
    for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
    return s + "]";
}

// <0x00>..<0xFF> as SentencePiece spells its byte tokens.
inline std::string byte_token_text(int b) {
    static const char* hex = "0123456789ABCDEF";
    return std::string("<0x") + hex[b >> 4] + hex[b & 15] + ">";
}

}  // namespace llmq::test
