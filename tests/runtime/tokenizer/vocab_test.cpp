// Tokenizer::create and vocab_from_gguf on small hand-made vocabularies: the merge order of
// both models, unknown handling, and one refusal per kind of malformed vocabulary.
#include <filesystem>
#include <unistd.h>

#include <doctest/doctest.h>

#include "llmq/runtime/gguf_writer.hpp"
#include "vocab_fixture.hpp"

using llmq::GgufValue;
using llmq::status_code;
using llmq::Tokenizer;
using llmq::TokenizerVocab;

namespace {

const std::string U = "\xE2\x96\x81";  // ▁

// <unk> <s> </s>, then the given pieces (type normal) with their scores.
TokenizerVocab spm_vocab(const std::vector<std::pair<std::string, float>>& pieces,
                         bool byte_tokens) {
    TokenizerVocab v;
    v.model = "llama";
    v.tokens = {"<unk>", "<s>", "</s>"};
    v.scores = {0, 0, 0};
    v.token_types = {2, 3, 3};
    v.unk = 0;
    v.bos = 1;
    v.eos = 2;
    if (byte_tokens) {
        for (int b = 0; b < 256; ++b) {
            v.tokens.push_back(llmq::test::byte_token_text(b));
            v.scores.push_back(0);
            v.token_types.push_back(6);
        }
    }
    for (const auto& [text, score] : pieces) {
        v.tokens.push_back(text);
        v.scores.push_back(score);
        v.token_types.push_back(1);
    }
    return v;
}

// The 256 characters of the byte-level alphabet (in byte order, so byte b is id b), the
// extra tokens, and the merges in rank order.
TokenizerVocab bpe_vocab(const std::vector<std::string>& extra, const std::vector<std::string>& merges) {
    TokenizerVocab v;
    v.model = "gpt2";
    v.add_bos = false;
    v.add_space_prefix = false;
    unsigned shifted = 0;
    for (unsigned b = 0; b < 256; ++b) {
        std::string s;
        const bool itself = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
        const char32_t cp = itself ? b : 0x100 + shifted++;
        if (cp < 0x80) {
            s += static_cast<char>(cp);
        } else {
            s += static_cast<char>(0xC0 | (cp >> 6));
            s += static_cast<char>(0x80 | (cp & 0x3F));
        }
        v.tokens.push_back(s);
    }
    for (const auto& t : extra) v.tokens.push_back(t);
    v.merges = merges;
    return v;
}

std::unique_ptr<Tokenizer> make(TokenizerVocab v) {
    auto t = Tokenizer::create(std::move(v));
    REQUIRE_MESSAGE(t.ok(), t.status().to_string());
    return std::move(*t);
}

std::vector<std::string> texts(const Tokenizer& tok, const std::vector<int32_t>& ids) {
    std::vector<std::string> out;
    for (int32_t id : ids) out.push_back(tok.token_text(id));
    return out;
}

void check_refused(TokenizerVocab v, status_code code, const std::string& needle) {
    auto t = Tokenizer::create(std::move(v));
    REQUIRE_FALSE(t.ok());
    CHECK(t.status().code() == code);
    CHECK_MESSAGE(t.status().message().find(needle) != std::string::npos,
                  "message \"" << t.status().message() << "\" should name " << needle);
}

}  // namespace

TEST_CASE("SentencePiece merges the highest-scoring pair first, not the leftmost") {
    // "▁abc": ▁a (-5), ab (-3) and bc (-2) are pieces. Highest first: bc, then ▁a; merging
    // left to right would give ab and end at [▁, ab, c].
    auto tok = make(spm_vocab({{U, -1}, {"a", -1}, {"b", -1}, {"c", -1}, {"ab", -3}, {"bc", -2},
                               {U + "a", -5}},
                              false));
    CHECK(texts(*tok, tok->encode("abc", false)) == std::vector<std::string>{U + "a", "bc"});
    // Equal scores: the leftmost pair wins ("aaa" → [▁, aa, a] not [▁, a, aa]).
    auto ties = make(spm_vocab({{U, -1}, {"a", -1}, {"aa", -2}}, false));
    CHECK(texts(*ties, ties->encode("aaa", false)) == std::vector<std::string>{U, "aa", "a"});
}

TEST_CASE("SentencePiece without byte tokens maps unknown runs to one <unk>") {
    auto tok = make(spm_vocab({{U, -1}, {"a", -1}}, false));
    CHECK(tok->encode("a xyz a", false) ==
          std::vector<int32_t>{tok->find_token(U), tok->find_token("a"), tok->find_token(U), 0,
                               tok->find_token(U), tok->find_token("a")});
    // ...and with byte tokens each byte of an unknown character becomes <0xXX>.
    auto bytes = make(spm_vocab({{U, -1}, {"a", -1}}, true));
    CHECK(texts(*bytes, bytes->encode("\xC3\xA9", false)) ==
          std::vector<std::string>{U, "<0xC3>", "<0xA9>"});
    CHECK(bytes->decode(bytes->encode("a \xC3\xA9", true)) == "a \xC3\xA9");
}

TEST_CASE("SentencePiece add_space_prefix false: no ▁ in front, no space stripped") {
    auto v = spm_vocab({{U, -1}, {"a", -1}, {U + "a", -2}}, false);
    v.add_space_prefix = false;
    auto tok = make(std::move(v));
    CHECK(texts(*tok, tok->encode("a a", false)) == std::vector<std::string>{"a", U + "a"});
    CHECK(tok->decode(tok->encode(" a", false)) == " a");
}

TEST_CASE("byte-level BPE applies merges by rank, leftmost first among equals") {
    auto first_bc = make(bpe_vocab({"ab", "bc"}, {"b c", "a b"}));
    CHECK(texts(*first_bc, first_bc->encode("abc", false)) == std::vector<std::string>{"a", "bc"});
    auto first_ab = make(bpe_vocab({"ab", "bc"}, {"a b", "b c"}));
    CHECK(texts(*first_ab, first_ab->encode("abc", false)) == std::vector<std::string>{"ab", "c"});
    auto ties = make(bpe_vocab({"aa"}, {"a a"}));
    CHECK(texts(*ties, ties->encode("aaaaa", false)) ==
          std::vector<std::string>{"aa", "aa", "a"});
    // Merges never cross pre-tokenizer chunks: "a b" is two chunks, "a" and " b" (Ġb).
    auto chunks = make(bpe_vocab({"a\xC4\xA0"}, {"a \xC4\xA0"}));
    CHECK(texts(*chunks, chunks->encode("a b", false)) ==
          std::vector<std::string>{"a", "\xC4\xA0", "b"});
}

TEST_CASE("malformed vocabularies are refused with the key and the entry") {
    auto good = spm_vocab({{U, -1}}, false);
    {
        auto v = good;
        v.model = "bert";
        check_refused(v, status_code::unsupported, "\"bert\"");
    }
    {
        auto v = good;
        v.tokens.clear();
        v.scores.clear();
        v.token_types.clear();
        check_refused(v, status_code::invalid_argument, "tokenizer.ggml.tokens is empty");
    }
    {
        auto v = good;
        v.scores.pop_back();
        check_refused(v, status_code::invalid_argument, "tokenizer.ggml.scores has 3 entries");
    }
    {
        auto v = good;
        v.token_types.push_back(1);
        check_refused(v, status_code::invalid_argument, "tokenizer.ggml.token_type has 5 entries");
    }
    {
        auto v = good;
        v.token_types[3] = 9;
        check_refused(v, status_code::invalid_argument, "tokenizer.ggml.token_type[3] = 9");
    }
    {
        auto v = good;
        v.eos = 4;
        check_refused(v, status_code::invalid_argument, "eos_token_id = 4");
    }
    {
        auto v = good;
        v.tokens.push_back("<0xZZ>");
        v.scores.push_back(0);
        v.token_types.push_back(6);
        check_refused(v, status_code::corrupt, "<0xZZ>");
    }
    {
        auto v = bpe_vocab({}, {"ab"});
        check_refused(v, status_code::corrupt, "tokenizer.ggml.merges[0] = \"ab\"");
    }
    {
        auto v = bpe_vocab({}, {});
        v.pre = "falcon";
        check_refused(v, status_code::unsupported, "\"falcon\"");
    }
}

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() /
            ("llmq-tokenizer-test-" + std::to_string(getpid()) + "-" + name))
        .string();
}

llmq::Expected<TokenizerVocab> read_back(const llmq::GgufWriter& writer, const std::string& name) {
    const std::string path = temp_path(name);
    REQUIRE(writer.write(path).ok());
    auto file = llmq::GgufFile::open(path);
    std::filesystem::remove(path);
    if (!file) return file.status();  // a key of the wrong type is refused when the file opens
    return llmq::vocab_from_gguf(**file);
}

}  // namespace

TEST_CASE("vocab_from_gguf reads tokenizer.ggml.* with the documented defaults") {
    llmq::GgufWriter w;
    w.add("tokenizer.ggml.model", GgufValue::string("llama"));
    w.add("tokenizer.ggml.tokens", GgufValue::string_array({"<unk>", "<s>", "</s>", U}));
    const float scores[] = {0, 0, 0, -1};
    w.add("tokenizer.ggml.scores", GgufValue::array_f32(scores));
    const int32_t types[] = {2, 3, 3, 1};
    w.add("tokenizer.ggml.token_type", GgufValue::array_i32(types));
    w.add("tokenizer.chat_template", GgufValue::string("[INST]"));
    auto v = read_back(w, "defaults.gguf");
    REQUIRE_MESSAGE(v.ok(), v.status().to_string());
    CHECK(v->pre == "default");
    CHECK(v->bos == 1);
    CHECK(v->eos == 2);
    CHECK(v->unk == 0);
    CHECK(v->pad == -1);
    CHECK(v->add_bos);
    CHECK_FALSE(v->add_eos);
    CHECK(v->add_space_prefix);
    CHECK(v->chat_template == "[INST]");
    CHECK(Tokenizer::create(std::move(*v)).ok());
}

TEST_CASE("vocab_from_gguf names the missing or mistyped key") {
    {
        llmq::GgufWriter w;
        w.add("tokenizer.ggml.tokens", GgufValue::string_array({"a"}));
        auto v = read_back(w, "no-model.gguf");
        REQUIRE_FALSE(v.ok());
        CHECK(v.status().code() == status_code::not_found);
        CHECK(v.status().message().find("tokenizer.ggml.model") != std::string::npos);
    }
    {
        llmq::GgufWriter w;
        w.add("tokenizer.ggml.model", GgufValue::string("gpt2"));
        w.add("tokenizer.ggml.tokens", GgufValue::u32(7));
        auto v = read_back(w, "tokens-not-array.gguf");
        REQUIRE_FALSE(v.ok());
        CHECK(v.status().code() == status_code::corrupt);
        CHECK(v.status().message().find("tokenizer.ggml.tokens") != std::string::npos);
    }
    {
        llmq::GgufWriter w;
        w.add("tokenizer.ggml.model", GgufValue::string("gpt2"));
        w.add("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b"}));
        auto v = read_back(w, "gpt2-no-merges.gguf");
        REQUIRE_FALSE(v.ok());
        CHECK(v.status().message().find("tokenizer.ggml.merges") != std::string::npos);
    }
    {
        llmq::GgufWriter w;
        w.add("tokenizer.ggml.model", GgufValue::string("llama"));
        w.add("tokenizer.ggml.tokens", GgufValue::string_array({"a", "b"}));
        w.add("tokenizer.ggml.bos_token_id", GgufValue::string("one"));
        auto v = read_back(w, "bos-string.gguf");
        REQUIRE_FALSE(v.ok());
        CHECK(v.status().code() == status_code::corrupt);
        CHECK(v.status().message().find("tokenizer.ggml.bos_token_id") != std::string::npos);
    }
}

TEST_CASE("tokenizer.ggml.eos_token_ids: generation stops on every listed id; out of range is refused") {
    llmq::GgufWriter w;
    w.add("tokenizer.ggml.model", GgufValue::string("llama"));
    w.add("tokenizer.ggml.tokens", GgufValue::string_array({"<unk>", "<s>", "</s>", U, "stop", "x"}));
    const float scores[] = {0, 0, 0, -1, -2, -3};
    w.add("tokenizer.ggml.scores", GgufValue::array_f32(scores));
    const int32_t eos_ids[] = {2, 4};
    w.add("tokenizer.ggml.eos_token_ids", GgufValue::array_i32(eos_ids));
    auto v = read_back(w, "eos-ids.gguf");
    REQUIRE_MESSAGE(v.ok(), v.status().to_string());
    CHECK(v->eos_ids == std::vector<int32_t>{2, 4});
    auto tok = Tokenizer::create(*v);
    REQUIRE(tok.ok());
    CHECK((*tok)->is_end_of_generation(4));
    CHECK((*tok)->is_end_of_generation(2));
    CHECK_FALSE((*tok)->is_end_of_generation(5));
    v->eos_ids.push_back(6);
    auto bad = Tokenizer::create(*v);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message().find("eos_token_ids[2] = 6") != std::string::npos);
}
