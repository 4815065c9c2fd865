// open_safetensors_directory: config.json → the <arch>.* keys, tokenizer files → tokenizer.*
// keys (hf_tokenizer.hpp), shards → tensors named as llama.cpp's converter names them, all
// handed to GgufFile::assemble. Matmul weights stay in the shards' mappings; 1-D tensors are
// widened to F32 (the layout wants norms and biases in F32; they are a few KiB per layer).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <string_view>

#include "../tokenizer/hf_tokenizer.hpp"
#include "bounded_json.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/model_file_fault.hpp"
#include "llmq/runtime/safetensors.hpp"

namespace llmq {
namespace {

using json = nlohmann::json;

constexpr size_t max_config_bytes = size_t{16} << 20;
constexpr int max_config_depth = 32;
constexpr uint32_t max_head_dim = 1u << 16;  // far above any model's (Llama: 128, Gemma: 256)

// The shards' mappings and the widened 1-D tensors: what an assembled file's data lives in.
struct Backing {
    struct Shard {
        void* map = nullptr;
        size_t size = 0;
    };
    std::vector<Shard> shards;
    std::vector<std::vector<float>> widened;

    Backing() = default;
    Backing(const Backing&) = delete;
    Backing& operator=(const Backing&) = delete;
    ~Backing() {
        for (const Shard& s : shards) {
            unregister_model_mapping(s.map);
            ::munmap(s.map, s.size);
        }
    }
};

struct Arch {
    std::string_view model_type;
    const char* gguf_arch;
    bool half_split_rows;  // q/k rows in Hugging Face's rotate_half order, unlike the GGUF's
};
constexpr std::array<Arch, 3> archs{{
    {"llama", "llama", true},
    {"mistral", "mistral", true},
    {"qwen2", "qwen2", false},  // NeoX rotation in both formats: the converter permutes nothing
}};

// Hugging Face names of one layer's tensors and their GGUF names.
struct LayerTensorName {
    std::string_view hf;
    std::string_view gguf;
    bool required;
};
constexpr std::array<LayerTensorName, 12> layer_tensor_names{{
    {"input_layernorm.weight", "attn_norm.weight", true},
    {"self_attn.q_proj.weight", "attn_q.weight", true},
    {"self_attn.k_proj.weight", "attn_k.weight", true},
    {"self_attn.v_proj.weight", "attn_v.weight", true},
    {"self_attn.o_proj.weight", "attn_output.weight", true},
    {"post_attention_layernorm.weight", "ffn_norm.weight", true},
    {"mlp.gate_proj.weight", "ffn_gate.weight", true},
    {"mlp.up_proj.weight", "ffn_up.weight", true},
    {"mlp.down_proj.weight", "ffn_down.weight", true},
    {"self_attn.q_proj.bias", "attn_q.bias", false},
    {"self_attn.k_proj.bias", "attn_k.bias", false},
    {"self_attn.v_proj.bias", "attn_v.bias", false},
}};

std::string quote(std::string_view s) { return "'" + std::string(s.substr(0, 200)) + "'"; }

// The GGUF name of a Hugging Face tensor name; "" for a buffer to skip; nullopt when unknown.
std::optional<std::string> gguf_name(std::string_view hf, uint32_t n_layer, std::string* problem) {
    if (hf == "model.embed_tokens.weight") return std::string("token_embd.weight");
    if (hf == "model.norm.weight") return std::string("output_norm.weight");
    if (hf == "lm_head.weight") return std::string("output.weight");
    constexpr std::string_view prefix = "model.layers.";
    if (!hf.starts_with(prefix)) return std::nullopt;
    std::string_view rest = hf.substr(prefix.size());
    const size_t dot = rest.find('.');
    if (dot == 0 || dot == std::string_view::npos || dot > 9) return std::nullopt;
    uint64_t layer = 0;
    for (char c : rest.substr(0, dot)) {
        if (c < '0' || c > '9') return std::nullopt;
        layer = layer * 10 + static_cast<uint64_t>(c - '0');
    }
    if (rest.size() > 1 && rest[0] == '0' && dot > 1) return std::nullopt;
    const std::string_view field = rest.substr(dot + 1);
    if (field == "self_attn.rotary_emb.inv_freq") return std::string();  // a derived buffer
    for (const LayerTensorName& n : layer_tensor_names) {
        if (field != n.hf) continue;
        if (layer >= n_layer) {
            *problem = "names layer " + std::to_string(layer) + " but config.json has num_hidden_layers = " +
                       std::to_string(n_layer);
            return std::nullopt;
        }
        return "blk." + std::to_string(layer) + "." + std::string(n.gguf);
    }
    return std::nullopt;
}

// Typed reads of config.json with errors naming the file and the key.
class ConfigReader {
public:
    ConfigReader(const json& c, std::string file) : c_(c), file_(std::move(file)) {}

    Status wrong(std::string_view key, const json& v, const std::string& expected) const {
        std::string shown = v.dump();
        if (shown.size() > 80) shown = shown.substr(0, 80) + "...";
        return corrupt("config " + file_ + ": '" + std::string(key) + "' is " + json_kind(v) + " (" + shown +
                       "), expected " + expected);
    }
    const json* find(std::string_view key) const {
        auto it = c_.find(key);
        return it == c_.end() || it->is_null() ? nullptr : &*it;
    }
    Expected<uint32_t> positive(std::string_view key, std::optional<uint32_t> fallback) const {
        const json* v = find(key);
        if (!v) {
            if (fallback) return *fallback;
            return corrupt("config " + file_ + ": '" + std::string(key) + "' is missing (a positive integer)");
        }
        if (!v->is_number_unsigned() || v->get<uint64_t>() == 0 || v->get<uint64_t>() > UINT32_MAX)
            return wrong(key, *v, "a positive integer below 2^32");
        return static_cast<uint32_t>(v->get<uint64_t>());
    }
    Expected<double> number(std::string_view key, std::optional<double> fallback, bool positive = true) const {
        const json* v = find(key);
        if (!v) {
            if (fallback) return *fallback;
            return corrupt("config " + file_ + ": '" + std::string(key) + "' is missing (a number)");
        }
        if (!v->is_number()) return wrong(key, *v, "a number");
        const double d = v->get<double>();
        if (positive && !(d > 0)) return wrong(key, *v, "a positive number");
        return d;
    }
    Expected<bool> boolean(std::string_view key, bool fallback) const {
        const json* v = find(key);
        if (!v) return fallback;
        if (!v->is_boolean()) return wrong(key, *v, "true or false");
        return v->get<bool>();
    }
    Expected<std::string> string(std::string_view key, std::optional<std::string> fallback) const {
        const json* v = find(key);
        if (!v) {
            if (fallback) return *fallback;
            return corrupt("config " + file_ + ": '" + std::string(key) + "' is missing (a string)");
        }
        if (!v->is_string()) return wrong(key, *v, "a string");
        return v->get<std::string>();
    }
    const std::string& file() const { return file_; }

private:
    const json& c_;
    std::string file_;
};

class DirectoryReader {
public:
    DirectoryReader(std::string dir, GgufFile::Options options) : dir_(std::move(dir)), options_(options) {}

    Expected<std::shared_ptr<const GgufFile>> read() {
        const std::string config_path = dir_ + "/config.json";
        auto config = read_bounded_json_file(config_path, "config", max_config_bytes, max_config_depth);
        if (!config) {
            if (config.status().code() == status_code::not_found)
                return not_found("safetensors directory " + dir_ + " has no config.json (a Hugging Face model directory has one)");
            return config.status();
        }
        if (!config->is_object()) return corrupt("config " + config_path + " is " + json_kind(*config) + ", not an object");
        ConfigReader c(*config, config_path);
        LLMQ_TRY(read_config(c));
        LLMQ_TRY(append_hf_tokenizer_metadata(dir_, *config, n_vocab_, kv_));
        LLMQ_TRY(read_shards());
        LLMQ_TRY(check_complete());
        if (!rope_factors_.empty()) {
            GgufTensor t;
            t.name = "rope_freqs.weight";
            t.origin = "rope_scaling of config.json";
            t.shape = {static_cast<int64_t>(rope_factors_.size())};
            t.size_bytes = rope_factors_.size() * sizeof(float);
            backing_->widened.push_back(std::move(rope_factors_));
            t.data = reinterpret_cast<const uint8_t*>(backing_->widened.back().data());
            tensors_.push_back(std::move(t));
        }
        const bool has_data = !tensors_.empty();
        return GgufFile::assemble(dir_, "safetensors", std::move(kv_), std::move(tensors_), has_data,
                                  std::shared_ptr<const void>(std::move(backing_)));
    }

private:
    void set(const std::string& key, GgufValue v) { kv_.emplace_back(key, std::move(v)); }

    Status read_config(const ConfigReader& c) {
        auto model_type = c.string("model_type", std::nullopt);
        if (!model_type) return model_type.status();
        const Arch* arch = nullptr;
        for (const Arch& a : archs)
            if (*model_type == a.model_type) arch = &a;
        if (!arch)
            return unsupported("config " + c.file() + ": model_type '" + model_type->substr(0, 80) +
                               "' is not supported; llmq loads llama, mistral and qwen2 directories");
        half_split_ = arch->half_split_rows;
        const std::string p = std::string(arch->gguf_arch) + ".";
        set("general.architecture", GgufValue::string(arch->gguf_arch));
        set("general.name", GgufValue::string(std::filesystem::path(dir_).filename().string()));

        auto act = c.string("hidden_act", "silu");
        if (!act) return act.status();
        if (*act != "silu")
            return unsupported("config " + c.file() + ": hidden_act '" + act->substr(0, 40) +
                               "' is not supported (llmq's feed-forward is SwiGLU, silu)");
        auto u32 = [&](std::string_view key, std::optional<uint32_t> fallback, const char* gguf_key,
                       uint32_t* out = nullptr) -> Status {
            auto v = c.positive(key, fallback);
            if (!v) return v.status();
            if (gguf_key) set(p + gguf_key, GgufValue::u32(*v));
            if (out) *out = *v;
            return Status();
        };
        uint32_t heads = 0;
        LLMQ_TRY(u32("hidden_size", std::nullopt, "embedding_length", &n_embd_));
        LLMQ_TRY(u32("num_hidden_layers", std::nullopt, "block_count", &n_layer_));
        LLMQ_TRY(u32("intermediate_size", std::nullopt, "feed_forward_length"));
        LLMQ_TRY(u32("num_attention_heads", std::nullopt, "attention.head_count", &heads));
        LLMQ_TRY(u32("num_key_value_heads", heads, "attention.head_count_kv"));
        LLMQ_TRY(u32("max_position_embeddings", std::nullopt, "context_length"));
        LLMQ_TRY(u32("vocab_size", std::nullopt, "vocab_size", &n_vocab_));
        head_dim_ = n_embd_ % heads == 0 ? n_embd_ / heads : 0;
        if (c.find("head_dim")) {
            LLMQ_TRY(u32("head_dim", std::nullopt, "attention.key_length", &head_dim_));
            set(p + "attention.value_length", GgufValue::u32(head_dim_));
        }
        auto eps = c.number("rms_norm_eps", std::nullopt);
        if (!eps) return eps.status();
        set(p + "attention.layer_norm_rms_epsilon", GgufValue::f32(static_cast<float>(*eps)));
        auto theta = c.number("rope_theta", 10000.0);
        if (!theta) return theta.status();
        set(p + "rope.freq_base", GgufValue::f32(static_cast<float>(*theta)));
        auto tied = c.boolean("tie_word_embeddings", false);
        if (!tied) return tied.status();
        tied_ = *tied;
        if (half_split_) set("llmq.rope.neox", GgufValue::boolean(true));

        if (*model_type == "mistral") {
            if (c.find("sliding_window")) LLMQ_TRY(u32("sliding_window", std::nullopt, "attention.sliding_window"));
        } else if (*model_type == "qwen2") {
            auto sliding = c.boolean("use_sliding_window", false);
            if (!sliding) return sliding.status();
            if (*sliding)
                return unsupported("config " + c.file() +
                                   ": use_sliding_window = true (Qwen2's window on the upper layers only) is not supported");
        }
        return read_rope_scaling(c, p, *theta);
    }

    Status read_rope_scaling(const ConfigReader& c, const std::string& p, double theta) {
        const json* rs = c.find("rope_scaling");
        if (!rs) return Status();
        if (!rs->is_object()) return c.wrong("rope_scaling", *rs, "an object or null");
        ConfigReader r(*rs, c.file() + " rope_scaling");
        std::string type;
        if (r.find("rope_type")) {
            auto t = r.string("rope_type", std::nullopt);
            if (!t) return t.status();
            type = *t;
        } else {
            auto t = r.string("type", std::nullopt);
            if (!t) return t.status();
            type = *t;
        }
        if (type == "default") return Status();
        if (type == "linear") {
            auto factor = r.number("factor", std::nullopt);
            if (!factor) return factor.status();
            set(p + "rope.scaling.type", GgufValue::string("linear"));
            set(p + "rope.scaling.factor", GgufValue::f32(static_cast<float>(*factor)));
            return Status();
        }
        if (type == "llama3") {
            Llama3RopeScaling s;
            auto factor = r.number("factor", std::nullopt);
            if (!factor) return factor.status();
            auto low = r.number("low_freq_factor", std::nullopt);
            if (!low) return low.status();
            auto high = r.number("high_freq_factor", std::nullopt);
            if (!high) return high.status();
            auto original = r.number("original_max_position_embeddings", std::nullopt);
            if (!original) return original.status();
            if (!(*high > *low))
                return corrupt("config " + r.file() + ": high_freq_factor must be above low_freq_factor");
            if (head_dim_ == 0 || head_dim_ % 2 != 0 || head_dim_ > max_head_dim)
                return corrupt("config " + c.file() + ": the head dimension " + std::to_string(head_dim_) +
                               " is not an even number between 2 and " + std::to_string(max_head_dim));
            s.factor = *factor;
            s.low_freq_factor = *low;
            s.high_freq_factor = *high;
            s.original_context = *original;
            rope_factors_ = llama3_rope_factors(head_dim_, theta, s);
            return Status();
        }
        return unsupported("config " + c.file() + ": rope_scaling type '" + type.substr(0, 40) +
                           "' is not supported (llmq does default, linear and llama3)");
    }

    // Shard file names: the index's weight_map values, or model.safetensors alone.
    Status read_shards() {
        const std::string index_path = dir_ + "/model.safetensors.index.json";
        std::map<std::string, std::string> weight_map;  // tensor → shard
        std::vector<std::string> shards;
        auto index = read_bounded_json_file(index_path, "safetensors index", max_config_bytes * 8, max_config_depth);
        if (index) {
            auto wm = index->is_object() ? index->find("weight_map") : index->end();
            if (!index->is_object() || wm == index->end() || !wm->is_object())
                return corrupt("safetensors index " + index_path + " has no weight_map object");
            std::set<std::string> seen;
            for (const auto& [tensor, shard] : wm->items()) {
                if (!shard.is_string())
                    return corrupt("safetensors index " + index_path + ": weight_map[" + quote(tensor) + "] is " +
                                   json_kind(shard) + ", not a file name");
                const std::string& s = shard.get_ref<const std::string&>();
                if (s.empty() || s.find('/') != std::string::npos || s == "." || s == ".." || s.find('\0') != std::string::npos)
                    return corrupt("safetensors index " + index_path + ": weight_map[" + quote(tensor) + "] = " +
                                   quote(s) + " is not a file name in the directory");
                weight_map.emplace(tensor, s);
                if (seen.insert(s).second) shards.push_back(s);
            }
        } else if (index.status().code() != status_code::not_found) {
            return index.status();
        } else {
            struct stat st {};
            if (::stat((dir_ + "/model.safetensors").c_str(), &st) == 0) {
                shards.push_back("model.safetensors");
            } else if (options_.require_data) {
                return not_found("safetensors directory " + dir_ +
                                 " has neither model.safetensors nor model.safetensors.index.json");
            }
        }
        std::set<std::string> found;
        for (const std::string& shard : shards) LLMQ_TRY(read_shard(shard, weight_map, found));
        for (const auto& [tensor, shard] : weight_map)
            if (!found.count(tensor))
                return corrupt("safetensors directory " + dir_ + ": tensor " + quote(tensor) +
                               " is listed in model.safetensors.index.json under " + quote(shard) +
                               " but that file does not hold it");
        return Status();
    }

    Status read_shard(const std::string& shard, const std::map<std::string, std::string>& weight_map,
                      std::set<std::string>& found) {
        const std::string path = dir_ + "/" + shard;
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            std::string msg = "opening safetensors file " + path + ": " + std::strerror(err);
            return err == ENOENT ? not_found(msg) : io_error(msg);
        }
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
            ::close(fd);
            return io_error("opening safetensors file " + path + ": not a regular file");
        }
        const uint64_t size = static_cast<uint64_t>(st.st_size);
        if (size < 8) {
            ::close(fd);
            return corrupt("safetensors file " + path + ": the file has " + std::to_string(size) +
                           " bytes, too few for the 8-byte header length");
        }
        void* map = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
        const int map_err = errno;
        ::close(fd);
        if (map == MAP_FAILED) return io_error("mapping safetensors file " + path + ": " + std::strerror(map_err));
        backing_->shards.push_back({map, size});
        register_model_mapping(map, size, path);
        const auto* base = static_cast<const uint8_t*>(map);

        auto header = parse_safetensors_header({base, size}, size, path);
        if (!header) return header.status();
        for (const SafetensorsTensor& st_tensor : header->tensors) {
            const std::string where = st_tensor.name + " in " + shard;
            if (!weight_map.empty()) {
                auto it = weight_map.find(st_tensor.name);
                if (it == weight_map.end())
                    return corrupt("safetensors file " + path + ": tensor " + quote(st_tensor.name) +
                                   " is not listed in model.safetensors.index.json");
                if (it->second != shard) continue;  // the index places it elsewhere; that copy is used
            }
            if (!found.insert(st_tensor.name).second)
                return corrupt("safetensors file " + path + ": tensor " + quote(st_tensor.name) + " is in two shards");
            std::string problem;
            auto name = gguf_name(st_tensor.name, n_layer_, &problem);
            if (!name)
                return unsupported("safetensors file " + path + ": tensor " + quote(st_tensor.name) + " " +
                                   (problem.empty() ? std::string("is not part of a llama, mistral or qwen2 model "
                                                                  "as llmq runs it (unknown tensor name)")
                                                    : problem));
            if (name->empty()) continue;
            if (*name == "output.weight" && tied_) continue;  // tie_word_embeddings: the embedding serves
            GgufTensor t;
            t.name = *name;
            t.origin = where;
            if (st_tensor.dtype == "F32") t.ggml_type = static_cast<uint32_t>(GgmlType::f32);
            else if (st_tensor.dtype == "F16") t.ggml_type = static_cast<uint32_t>(GgmlType::f16);
            else if (st_tensor.dtype == "BF16") t.ggml_type = static_cast<uint32_t>(GgmlType::bf16);
            else
                return unsupported("safetensors file " + path + ": tensor " + quote(st_tensor.name) + " has dtype " +
                                   st_tensor.dtype + "; llmq loads BF16, F16 and F32 safetensors");
            t.dtype = *ggml_type_to_dtype(t.ggml_type);
            if (st_tensor.shape.empty() || st_tensor.shape.size() > 2 ||
                std::find(st_tensor.shape.begin(), st_tensor.shape.end(), 0) != st_tensor.shape.end())
                return corrupt("safetensors file " + path + ": tensor " + quote(st_tensor.name) + " has shape " +
                               shape_text(st_tensor.shape) + "; a weight is 1-D or 2-D with positive sizes");
            t.shape.assign(st_tensor.shape.rbegin(), st_tensor.shape.rend());  // GGUF: innermost first
            t.offset = st_tensor.begin;
            t.size_bytes = st_tensor.end - st_tensor.begin;
            t.data = base + header->data_offset + st_tensor.begin;
            if (t.shape.size() == 1 && t.dtype != kernels::dtype::f32) {
                std::vector<float> wide(static_cast<size_t>(t.shape[0]));
                kernels::row_to_f32(t.dtype, t.data, wide.data(), t.shape[0]);
                t.ggml_type = static_cast<uint32_t>(GgmlType::f32);
                t.dtype = kernels::dtype::f32;
                t.size_bytes = wide.size() * sizeof(float);
                backing_->widened.push_back(std::move(wide));
                t.data = reinterpret_cast<const uint8_t*>(backing_->widened.back().data());
            }
            tensors_.push_back(std::move(t));
        }
        return Status();
    }

    static std::string shape_text(const std::vector<int64_t>& shape) {
        std::string out = "[";
        for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
        return out + "]";
    }

    // Every tensor a Llama layer needs, named as the directory names it when it is missing
    // (the layout then checks shapes and types with both names).
    Status check_complete() const {
        if (tensors_.empty() && !options_.require_data) return Status();
        std::set<std::string> have;
        for (const GgufTensor& t : tensors_) have.insert(t.name);
        auto need = [&](const std::string& gguf, const std::string& hf) -> Status {
            if (have.count(gguf)) return Status();
            return corrupt("safetensors directory " + dir_ + ": tensor " + quote(hf) +
                           " is missing from its shards; the directory is not a complete model");
        };
        LLMQ_TRY(need("token_embd.weight", "model.embed_tokens.weight"));
        LLMQ_TRY(need("output_norm.weight", "model.norm.weight"));
        for (uint32_t i = 0; i < n_layer_; ++i)
            for (const LayerTensorName& n : layer_tensor_names)
                if (n.required)
                    LLMQ_TRY(need("blk." + std::to_string(i) + "." + std::string(n.gguf),
                                  "model.layers." + std::to_string(i) + "." + std::string(n.hf)));
        return Status();
    }

    std::string dir_;
    GgufFile::Options options_;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::vector<GgufTensor> tensors_;
    std::unique_ptr<Backing> backing_ = std::make_unique<Backing>();
    std::vector<float> rope_factors_;
    uint32_t n_embd_ = 0, n_layer_ = 0, n_vocab_ = 0, head_dim_ = 0;
    bool half_split_ = false;
    bool tied_ = false;
};

}  // namespace

Expected<std::shared_ptr<const GgufFile>> open_safetensors_directory(const std::string& dir,
                                                                     GgufFile::Options options) {
    std::string d = dir;
    while (d.size() > 1 && d.back() == '/') d.pop_back();
    return DirectoryReader(std::move(d), options).read();
}

}  // namespace llmq
