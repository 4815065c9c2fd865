// append_hf_tokenizer_metadata: tokenizer.json's vocabulary, merges and added tokens, its
// pre-tokenizer matched against the regexes llmq implements, and the special tokens of
// tokenizer_config.json / config.json / generation_config.json, as GGUF tokenizer keys.
#include "hf_tokenizer.hpp"

#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "../model/bounded_json.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq {
namespace {

using json = nlohmann::json;

constexpr size_t max_tokenizer_json_bytes = size_t{1} << 30;
constexpr size_t max_small_json_bytes = size_t{64} << 20;
constexpr int max_json_depth = 32;
// More ids than this is no vocabulary (Llama 3 has 128256, Gemma 256000).
constexpr uint64_t max_vocab = uint64_t{1} << 24;

// The Split patterns llmq implements (pretokenizer.hpp): a Sequence of Splits with these
// regexes, in order, then a ByteLevel without its own regex, is the tokenizer.ggml.pre that
// llama.cpp names.
struct KnownSplits {
    std::array<std::string_view, 3> regexes;  // unused entries empty
    const char* pre;
};
constexpr std::string_view llama3_regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view qwen2_regex =
    R"re((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::string_view gpt2_regex = R"re('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)re";
constexpr std::string_view tekken_regex =
    R"re([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)re";
constexpr std::array<KnownSplits, 5> known_splits{{
    {{llama3_regex, {}, {}}, "llama-bpe"},
    {{qwen2_regex, {}, {}}, "qwen2"},
    {{gpt2_regex, {}, {}}, "gpt2"},
    {{tekken_regex, {}, {}}, "tekken"},
    {{R"re(\p{N}{1,3})re", R"re([一-龥぀-ゟ゠-ヿ]+)re",
      R"re([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)re"},
     "deepseek-v3"},
}};

// j[key] when j is an object holding a string there, else "" (never throws on hostile input).
std::string str(const json& j, const char* key) {
    if (!j.is_object()) return {};
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

std::string shorten(const std::string& s) {
    return s.size() > 160 ? s.substr(0, 160) + "..." : s;
}

class Reader {
public:
    Reader(std::string dir, std::vector<std::pair<std::string, GgufValue>>& kv) : dir_(std::move(dir)), kv_(kv) {}

    Status read(const json& config, uint32_t vocab_size) {
        const std::string tok_path = dir_ + "/tokenizer.json";
        auto tok = read_bounded_json_file(tok_path, "tokenizer", max_tokenizer_json_bytes, max_json_depth);
        if (!tok) return tok.status();
        file_ = tok_path;
        if (!tok->is_object()) return fail("is " + json_kind(*tok) + ", not an object");
        LLMQ_TRY(read_model(*tok, vocab_size));
        LLMQ_TRY(read_normalizer(*tok));
        LLMQ_TRY(read_pre_tokenizer(*tok));
        const bool template_bos = read_post_processor(*tok);

        json tc = json::object();
        const std::string tc_path = dir_ + "/tokenizer_config.json";
        auto tc_or = read_bounded_json_file(tc_path, "tokenizer config", max_small_json_bytes, max_json_depth);
        if (tc_or) {
            tc = std::move(*tc_or);
            if (!tc.is_object()) return corrupt("tokenizer config " + tc_path + " is " + json_kind(tc) + ", not an object");
        } else if (tc_or.status().code() != status_code::not_found) {
            return tc_or.status();
        }
        json gen = json::object();
        auto gen_or = read_bounded_json_file(dir_ + "/generation_config.json", "generation config",
                                             max_small_json_bytes, max_json_depth);
        if (gen_or && gen_or->is_object()) gen = std::move(*gen_or);
        else if (!gen_or && gen_or.status().code() != status_code::not_found) return gen_or.status();

        file_ = tc_path;
        auto bos = special_token(tc, "bos_token");
        if (!bos) return bos.status();
        auto eos = special_token(tc, "eos_token");
        if (!eos) return eos.status();
        auto pad = special_token(tc, "pad_token");
        if (!pad) return pad.status();
        file_ = dir_ + "/config.json";
        auto config_bos = token_ids(config, "bos_token_id");
        if (!config_bos) return config_bos.status();
        auto config_eos = token_ids(config, "eos_token_id");
        if (!config_eos) return config_eos.status();
        file_ = dir_ + "/generation_config.json";
        auto gen_eos = token_ids(gen, "eos_token_id");
        if (!gen_eos) return gen_eos.status();

        int32_t bos_id = *bos >= 0 ? *bos : (config_bos->empty() ? -1 : (*config_bos)[0]);
        if (*bos < 0 && template_bos_id_ >= 0) bos_id = template_bos_id_;
        const int32_t eos_id = *eos >= 0 ? *eos : (config_eos->empty() ? -1 : (*config_eos)[0]);
        std::vector<int32_t> eos_ids;
        for (const auto* list : {&*config_eos, &*gen_eos})
            for (int32_t id : *list)
                if (id != eos_id && std::find(eos_ids.begin(), eos_ids.end(), id) == eos_ids.end()) eos_ids.push_back(id);

        file_ = tc_path;
        bool add_bos = template_bos && bos_id >= 0;
        if (auto it = tc.find("add_bos_token"); it != tc.end() && !it->is_null()) {
            if (!it->is_boolean()) return fail("key 'add_bos_token' is " + json_kind(*it) + ", expected true or false");
            add_bos = it->get<bool>();
        }
        bool add_eos = false;
        if (auto it = tc.find("add_eos_token"); it != tc.end() && !it->is_null()) {
            if (!it->is_boolean()) return fail("key 'add_eos_token' is " + json_kind(*it) + ", expected true or false");
            add_eos = it->get<bool>();
        }
        if (add_bos && bos_id < 0) return fail("asks for a BOS token (add_bos_token) but names none");

        const int32_t n = static_cast<int32_t>(tokens_.size());
        for (int32_t id : {bos_id, eos_id, *pad})
            if (id >= n) return fail("names special token id " + std::to_string(id) + ", past the vocabulary of " + std::to_string(n));
        for (int32_t id : eos_ids)
            if (id >= n) return fail("names end-of-generation id " + std::to_string(id) + ", past the vocabulary of " + std::to_string(n));

        set("tokenizer.ggml.model", GgufValue::string("gpt2"));
        set("tokenizer.ggml.pre", GgufValue::string(pre_));
        set("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens_)));
        set("tokenizer.ggml.token_type", GgufValue::array_i32(types_));
        set("tokenizer.ggml.merges", GgufValue::string_array(std::move(merges_)));
        if (bos_id >= 0) set("tokenizer.ggml.bos_token_id", GgufValue::u32(static_cast<uint32_t>(bos_id)));
        if (eos_id >= 0) set("tokenizer.ggml.eos_token_id", GgufValue::u32(static_cast<uint32_t>(eos_id)));
        if (*pad >= 0) set("tokenizer.ggml.padding_token_id", GgufValue::u32(static_cast<uint32_t>(*pad)));
        if (!eos_ids.empty()) {
            if (eos_id >= 0) eos_ids.insert(eos_ids.begin(), eos_id);
            set("tokenizer.ggml.eos_token_ids", GgufValue::array_i32(eos_ids));
        }
        set("tokenizer.ggml.add_bos_token", GgufValue::boolean(add_bos));
        set("tokenizer.ggml.add_eos_token", GgufValue::boolean(add_eos));
        return read_chat_template(tc);
    }

private:
    Status fail(const std::string& problem) const { return corrupt(file_ + ": " + problem); }
    Status refuse(const std::string& problem) const { return unsupported(file_ + ": " + problem); }
    void set(std::string key, GgufValue v) { kv_.emplace_back(std::move(key), std::move(v)); }

    Status read_model(const json& tok, uint32_t vocab_size) {
        auto model = tok.find("model");
        if (model == tok.end() || !model->is_object()) return fail("has no \"model\" object");
        const std::string t = str(*model, "type");
        if (t != "BPE")
            return refuse("model type '" + shorten(t) + "' is not supported; llmq reads byte-level BPE tokenizers (\"BPE\")");
        for (const char* key : {"byte_fallback"}) {
            auto it = model->find(key);
            if (it != model->end() && !it->is_null() && (!it->is_boolean() || it->get<bool>()))
                return refuse("model." + std::string(key) +
                              " is set: a SentencePiece-style BPE, which llmq reads from GGUF files only");
        }
        for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
            auto it = model->find(key);
            if (it != model->end() && !it->is_null() && (!it->is_string() || !it->get_ref<const std::string&>().empty()))
                return refuse("model." + std::string(key) + " is set; byte-level BPE has none");
        }

        auto vocab = model->find("vocab");
        if (vocab == model->end() || !vocab->is_object()) return fail("model.vocab is missing or not an object");
        auto added = tok.find("added_tokens");
        if (added != tok.end() && !added->is_null() && !added->is_array()) return fail("added_tokens is not an array");

        if (vocab_size >= max_vocab)
            return corrupt(dir_ + "/config.json: vocab_size " + std::to_string(vocab_size) + " is above llmq's limit of " +
                           std::to_string(max_vocab - 1) + " tokens");
        uint64_t n = vocab_size;
        auto id_of = [&](const json& v, const std::string& what) -> Expected<uint64_t> {
            if (!v.is_number_unsigned() || v.get<uint64_t>() >= max_vocab)
                return fail(what + " has id " + shorten(v.dump()) + ", not an integer in 0.." + std::to_string(max_vocab - 1));
            return v.get<uint64_t>();
        };
        for (const auto& [text, id] : vocab->items()) {
            auto i = id_of(id, "model.vocab entry " + shorten(json(text).dump()));
            if (!i) return i.status();
            n = std::max(n, *i + 1);
        }
        if (added != tok.end() && added->is_array()) {
            for (const json& a : *added) {
                if (!a.is_object() || !a.contains("id") || !a.contains("content") || !a["content"].is_string())
                    return fail("an added_tokens entry is not an object with an id and a content string");
                auto i = id_of(a["id"], "added token " + shorten(a["content"].dump()));
                if (!i) return i.status();
                n = std::max(n, *i + 1);
            }
        }
        if (vocab_size != 0 && n > vocab_size)
            return fail("has token ids up to " + std::to_string(n - 1) + " but the model's vocabulary (config.json vocab_size) has " +
                        std::to_string(vocab_size) + " rows");
        tokens_.assign(n, std::string());
        types_.assign(n, static_cast<int32_t>(TokenType::unused));
        std::vector<bool> filled(n, false);
        for (const auto& [text, id] : vocab->items()) {
            const uint64_t i = id.get<uint64_t>();
            if (filled[i])
                return fail("model.vocab gives id " + std::to_string(i) + " to both " + shorten(json(tokens_[i]).dump()) +
                            " and " + shorten(json(text).dump()));
            filled[i] = true;
            tokens_[i] = text;
            types_[i] = static_cast<int32_t>(TokenType::normal);
        }
        if (added != tok.end() && added->is_array()) {
            for (const json& a : *added) {
                const uint64_t i = a["id"].get<uint64_t>();
                bool special = false;
                if (auto s = a.find("special"); s != a.end()) {
                    if (!s->is_boolean()) return fail("added token " + shorten(a["content"].dump()) + " has a non-boolean 'special'");
                    special = s->get<bool>();
                }
                filled[i] = true;
                tokens_[i] = a["content"].get<std::string>();
                types_[i] = static_cast<int32_t>(special ? TokenType::control : TokenType::user_defined);
            }
        }
        for (uint64_t i = 0; i < n; ++i)
            if (!filled[i]) tokens_[i] = "[PAD" + std::to_string(i) + "]";

        auto merges = model->find("merges");
        if (merges == model->end() || !merges->is_array()) return fail("model.merges is missing or not an array");
        merges_.reserve(merges->size());
        for (size_t k = 0; k < merges->size(); ++k) {
            const json& m = (*merges)[k];
            if (m.is_string()) {
                const std::string& s = m.get_ref<const std::string&>();
                const size_t space = s.find(' ');
                if (space == std::string::npos || space == 0 || space + 1 == s.size() || s.find(' ', space + 1) != std::string::npos)
                    return fail("model.merges entry " + std::to_string(k) + " " + shorten(m.dump()) + " is not \"left right\"");
                merges_.push_back(s);
            } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
                merges_.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
            } else {
                return fail("model.merges entry " + std::to_string(k) + " is " + json_kind(m) +
                            ", neither \"left right\" nor [\"left\", \"right\"]");
            }
        }
        return Status();
    }

    Status read_normalizer(const json& tok) {
        auto it = tok.find("normalizer");
        if (it == tok.end() || it->is_null()) return Status();
        const std::string type = str(*it, "type").empty() ? json_kind(*it) : str(*it, "type");
        // Qwen2's NFC: byte-level BPE over NFC text; llama.cpp's conversion drops it too, and
        // text that is already NFC (nearly all) tokenizes the same.
        if (type == "NFC") return Status();
        return refuse("normalizer '" + shorten(type) + "' is not supported (llmq applies none, or ignores NFC)");
    }

    Status read_pre_tokenizer(const json& tok) {
        auto it = tok.find("pre_tokenizer");
        if (it == tok.end() || it->is_null()) return refuse("has no pre_tokenizer; llmq's byte-level BPE needs one it knows");
        const json& p = *it;
        auto type_of = [](const json& j) {
            const std::string t = str(j, "type");
            return t.empty() ? std::string("?") : t;
        };
        auto byte_level_ok = [&](const json& j, bool want_regex) -> Status {
            const bool prefix = j.contains("add_prefix_space") && j["add_prefix_space"].is_boolean() && j["add_prefix_space"].get<bool>();
            if (prefix) return refuse("pre_tokenizer ByteLevel has add_prefix_space = true, which llmq does not do");
            const bool regex = !j.contains("use_regex") || !j["use_regex"].is_boolean() || j["use_regex"].get<bool>();
            if (regex != want_regex)
                return refuse(std::string("pre_tokenizer ByteLevel has use_regex = ") + (regex ? "true" : "false") +
                              (want_regex ? " without a Split before it" : " after a Split"));
            return Status();
        };
        if (type_of(p) == "ByteLevel") {
            LLMQ_TRY(byte_level_ok(p, true));
            pre_ = "gpt2";
            return Status();
        }
        if (type_of(p) == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array() &&
            p["pretokenizers"].size() >= 2 && p["pretokenizers"].size() <= 4 &&
            type_of(p["pretokenizers"].back()) == "ByteLevel") {
            const json& list = p["pretokenizers"];
            std::vector<std::string> regexes;
            for (size_t i = 0; i + 1 < list.size(); ++i) {
                const json& split = list[i];
                if (type_of(split) != "Split") break;
                if (!split.contains("pattern") || !split["pattern"].is_object() ||
                    str(split["pattern"], "Regex").empty())
                    return refuse("pre_tokenizer Split " + std::to_string(i) + " has no Regex pattern");
                const bool isolated = split.contains("behavior") && split["behavior"] == "Isolated";
                const bool inverted = split.contains("invert") && split["invert"] == true;
                if (!isolated || inverted)
                    return refuse("pre_tokenizer Split has behavior " + shorten(split.value("behavior", json()).dump()) +
                                  (inverted ? ", inverted" : "") + "; llmq does Isolated splits");
                regexes.push_back(str(split["pattern"], "Regex"));
            }
            if (regexes.size() + 1 == list.size()) {
                for (const KnownSplits& k : known_splits) {
                    size_t n = 0;
                    while (n < k.regexes.size() && !k.regexes[n].empty()) ++n;
                    if (n != regexes.size() || !std::equal(regexes.begin(), regexes.end(), k.regexes.begin()))
                        continue;
                    LLMQ_TRY(byte_level_ok(list.back(), false));
                    pre_ = k.pre;
                    return Status();
                }
                std::string shown;
                for (const std::string& r : regexes) shown += (shown.empty() ? "" : ", ") + json(r).dump();
                return refuse("pre_tokenizer Split regex " + shorten(shown) +
                              " is not one llmq implements (it knows those of GPT-2, Llama 3, Qwen2, Tekken and "
                              "DeepSeek V3)");
            }
        }
        std::string shape = type_of(p);
        if (shape == "Sequence" && p.contains("pretokenizers") && p["pretokenizers"].is_array()) {
            shape += " [";
            for (size_t i = 0; i < p["pretokenizers"].size(); ++i) shape += (i ? ", " : "") + type_of(p["pretokenizers"][i]);
            shape += "]";
        }
        return refuse("pre_tokenizer " + shorten(shape) +
                      " is not supported; llmq knows ByteLevel and Sequence [Split, ByteLevel] with a known regex");
    }

    // True when the post-processor puts a special token before the text (BOS); remembers it.
    bool read_post_processor(const json& tok) {
        auto it = tok.find("post_processor");
        if (it == tok.end() || !it->is_object()) return false;
        std::vector<const json*> todo{&*it};
        if (str(*it, "type") == "Sequence" && it->contains("processors") && (*it)["processors"].is_array()) {
            todo.clear();
            for (const json& p : (*it)["processors"]) todo.push_back(&p);
        }
        for (const json* p : todo) {
            if (str(*p, "type") != "TemplateProcessing") continue;
            auto single = p->find("single");
            if (single == p->end() || !single->is_array() || single->empty()) continue;
            const json& first = (*single)[0];
            if (!first.is_object() || !first.contains("SpecialToken")) continue;
            const std::string id = str(first["SpecialToken"], "id");
            if (id.empty()) continue;
            template_bos_id_ = id_of_text(id);
            return template_bos_id_ >= 0;
        }
        return false;
    }

    int32_t id_of_text(const std::string& text) {
        if (by_text_.empty())
            for (size_t i = 0; i < tokens_.size(); ++i) by_text_.emplace(tokens_[i], static_cast<int32_t>(i));
        auto it = by_text_.find(text);
        return it == by_text_.end() ? -1 : it->second;
    }

    // tokenizer_config.json's "bos_token" etc.: a string, {"content": string, ...} or null.
    Expected<int32_t> special_token(const json& tc, const char* key) {
        auto it = tc.find(key);
        if (it == tc.end() || it->is_null()) return -1;
        const json* text = &*it;
        if (it->is_object() && it->contains("content")) text = &(*it)["content"];
        if (!text->is_string()) return fail("key '" + std::string(key) + "' is " + json_kind(*it) + ", expected a token's text");
        const int32_t id = id_of_text(text->get<std::string>());
        if (id < 0) return fail("key '" + std::string(key) + "' = " + shorten(text->dump()) + " is not a token of tokenizer.json");
        return id;
    }

    // config.json's "eos_token_id" etc.: an id, a list of ids, or null/absent.
    Expected<std::vector<int32_t>> token_ids(const json& j, const char* key) {
        std::vector<int32_t> out;
        auto it = j.find(key);
        if (it == j.end() || it->is_null()) return out;
        auto one = [&](const json& v) -> Status {
            if (!v.is_number_unsigned() || v.get<uint64_t>() >= tokens_.size())
                return fail("key '" + std::string(key) + "' holds " + shorten(v.dump()) + ", not a token id below " +
                            std::to_string(tokens_.size()));
            out.push_back(static_cast<int32_t>(v.get<uint64_t>()));
            return Status();
        };
        if (it->is_array()) {
            for (const json& v : *it) LLMQ_TRY(one(v));
        } else {
            LLMQ_TRY(one(*it));
        }
        return out;
    }

    Status read_chat_template(const json& tc) {
        std::string source;
        std::ifstream jinja(dir_ + "/chat_template.jinja", std::ios::binary);
        if (jinja) {
            std::ostringstream s;
            s << jinja.rdbuf();
            source = s.str();
        } else if (auto it = tc.find("chat_template"); it != tc.end() && !it->is_null()) {
            if (it->is_string()) {
                source = it->get<std::string>();
            } else if (it->is_array()) {
                // [{"name": "default", "template": ...}, {"name": "tool_use", ...}]
                for (const json& t : *it) {
                    if (!t.is_object() || !t.contains("template") || !t["template"].is_string())
                        return fail("a chat_template entry is not an object with a template string");
                    if (source.empty() || str(t, "name") == "default") source = t["template"].get<std::string>();
                }
            } else {
                return fail("key 'chat_template' is " + json_kind(*it) + ", expected a string or a list of named templates");
            }
        }
        if (!source.empty()) set("tokenizer.chat_template", GgufValue::string(std::move(source)));
        return Status();
    }

    std::string dir_;
    std::vector<std::pair<std::string, GgufValue>>& kv_;
    std::string file_;
    std::string pre_;
    std::vector<std::string> tokens_;
    std::vector<int32_t> types_;
    std::vector<std::string> merges_;
    std::unordered_map<std::string, int32_t> by_text_;
    int32_t template_bos_id_ = -1;
};

}  // namespace

Status append_hf_tokenizer_metadata(const std::string& dir, const json& config, uint32_t vocab_size,
                                    std::vector<std::pair<std::string, GgufValue>>& kv) {
    return Reader(dir, kv).read(config, vocab_size);
}

}  // namespace llmq
