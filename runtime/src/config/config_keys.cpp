// Every config key: description, accepted values, reader, check and writer. Adding a key is
// adding a field to config.hpp and one entry to key_rules() below.
#include "config_keys.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>

#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/duration.hpp"
#include "toml_text.hpp"

namespace llmq::config_detail {

namespace {

// (config.*section).*member, for const and non-const Configs alike.
template <typename S, typename F>
struct Field {
    S Config::*section;
    F S::*member;
    F& operator()(Config& c) const { return (c.*section).*member; }
    const F& operator()(const Config& c) const { return (c.*section).*member; }
};

template <typename S, typename F>
Field<S, F> field(S Config::*section, F S::*member) {
    return {section, member};
}

std::string range_text(int64_t lo, int64_t hi) {
    return "between " + std::to_string(lo) + " and " + std::to_string(hi);
}

// ---- integers ---------------------------------------------------------------------------

template <typename S, typename F>
KeyRule integer_key(std::string_view section, std::string_view key, Field<S, F> f, int64_t lo,
                    int64_t hi, std::string_view description, bool power_of_two = false) {
    std::string allowed = (power_of_two ? "a power of two " : "") + range_text(lo, hi);
    auto why = [=](int64_t v) -> std::string {
        bool ok = v >= lo && v <= hi && (!power_of_two || (v & (v - 1)) == 0);
        return ok ? "" : "must be " + allowed;
    };
    return KeyRule{
        section, key, description, allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            const auto* value = node.as_integer();
            if (!value) return "must be an integer " + allowed;
            std::string bad = why(value->get());
            if (bad.empty()) f(c) = static_cast<F>(value->get());
            return bad;
        },
        [=](const Config& c) { return why(static_cast<int64_t>(f(c))); },
        [=](const Config& c) { return std::to_string(f(c)); },
    };
}

// An integer or "auto" (stored as std::nullopt).
template <typename S>
KeyRule integer_or_auto_key(std::string_view section, std::string_view key,
                            Field<S, std::optional<int>> f, int64_t hi,
                            std::string_view description) {
    std::string allowed = "\"auto\" or an integer " + range_text(1, hi);
    auto why = [=](int64_t v) -> std::string {
        return v >= 1 && v <= hi ? "" : "must be " + allowed;
    };
    return KeyRule{
        section, key, description, allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            if (const auto* text = node.as_string()) {
                if (text->get() != "auto") return "must be " + allowed;
                f(c) = std::nullopt;
                return "";
            }
            const auto* value = node.as_integer();
            if (!value) return "must be " + allowed;
            std::string bad = why(value->get());
            if (bad.empty()) f(c) = static_cast<int>(value->get());
            return bad;
        },
        [=](const Config& c) -> std::string { return f(c) ? why(*f(c)) : ""; },
        [=](const Config& c) -> std::string {
            return f(c) ? std::to_string(*f(c)) : std::string("\"auto\"");
        },
    };
}

// ---- real numbers -------------------------------------------------------------------------

// A finite number in (lo, hi] (or [lo, hi] when lo_inclusive). TOML integers are accepted.
template <typename S>
KeyRule real_key(std::string_view section, std::string_view key, Field<S, double> f, double lo,
                 bool lo_inclusive, double hi, std::string_view description) {
    auto plain = [](double v) {   // "0", "1", "0.5": for people, not for TOML
        std::string text = toml_float_literal(v);
        return text.ends_with(".0") ? text.substr(0, text.size() - 2) : text;
    };
    std::string allowed = (lo_inclusive ? "at least " : "greater than ") + plain(lo) +
                          " and at most " + plain(hi);
    auto why = [=](double v) -> std::string {
        bool ok = std::isfinite(v) && (lo_inclusive ? v >= lo : v > lo) && v <= hi;
        return ok ? "" : "must be " + allowed;
    };
    return KeyRule{
        section, key, description, allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            double v;
            if (const auto* real = node.as_floating_point()) {
                v = real->get();
            } else if (const auto* integer = node.as_integer()) {
                v = static_cast<double>(integer->get());
            } else {
                return "must be a number " + allowed;
            }
            std::string bad = why(v);
            if (bad.empty()) f(c) = v;
            return bad;
        },
        [=](const Config& c) { return why(f(c)); },
        [=](const Config& c) { return toml_float_literal(f(c)); },
    };
}

// ---- booleans -------------------------------------------------------------------------------

template <typename S>
KeyRule bool_key(std::string_view section, std::string_view key, Field<S, bool> f,
                 std::string_view description) {
    return KeyRule{
        section, key, description, "true or false",
        [=](const toml::node& node, Config& c) -> std::string {
            const auto* value = node.as_boolean();
            if (!value) return "must be true or false";
            f(c) = value->get();
            return "";
        },
        [](const Config&) { return std::string(); },
        [=](const Config& c) { return std::string(f(c) ? "true" : "false"); },
    };
}

// ---- strings --------------------------------------------------------------------------------

using StringCheck = bool (*)(std::string_view);

template <typename S>
KeyRule string_key(std::string_view section, std::string_view key, Field<S, std::string> f,
                   std::string allowed, StringCheck ok, std::string_view description) {
    auto why = [=](std::string_view v) -> std::string { return ok(v) ? "" : "must be " + allowed; };
    return KeyRule{
        section, key, description, allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            const auto* value = node.as_string();
            if (!value) return "must be a string: " + allowed;
            std::string bad = why(value->get());
            if (bad.empty()) f(c) = value->get();
            return bad;
        },
        [=](const Config& c) { return why(f(c)); },
        [=](const Config& c) { return toml_string_literal(f(c)); },
    };
}

// One of a few names, stored as an enum.
template <typename S, typename E, size_t N>
KeyRule choice_key(std::string_view section, std::string_view key, Field<S, E> f,
                   std::array<std::pair<std::string_view, E>, N> choices,
                   std::string_view description) {
    std::string allowed = N == 2 ? "" : "one of ";
    for (size_t i = 0; i < N; ++i) {
        if (i > 0) allowed += (N == 2 ? " or " : ", ");
        allowed.append("\"").append(choices[i].first).append("\"");
    }
    return KeyRule{
        section, key, description, allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            const auto* value = node.as_string();
            for (const auto& [name, e] : choices) {
                if (value && value->get() == name) {
                    f(c) = e;
                    return "";
                }
            }
            return "must be " + allowed;
        },
        [=](const Config& c) -> std::string {
            for (const auto& choice : choices)
                if (choice.second == f(c)) return "";
            return "must be " + allowed;
        },
        [=](const Config& c) -> std::string {
            for (const auto& [name, e] : choices)
                if (e == f(c)) return toml_string_literal(name);
            return "\"?\"";
        },
    };
}

// ---- sizes and durations ----------------------------------------------------------------------

constexpr uint64_t kNoUpperLimit = UINT64_MAX;

// A size in bytes, from an integer or a string with a unit. zero_means != "": 0 is allowed
// and means that.
template <typename S>
KeyRule size_key(std::string_view section, std::string_view key, Field<S, uint64_t> f,
                 uint64_t lo, uint64_t hi, std::string_view zero_means,
                 std::string_view description) {
    std::string allowed = zero_means.empty() ? "" : "0 (" + std::string(zero_means) + ") or ";
    allowed += hi == kNoUpperLimit
                   ? "a size of at least " + format_byte_size_exact(lo)
                   : "a size between " + format_byte_size_exact(lo) + " and " +
                         format_byte_size_exact(hi);
    auto why = [=](uint64_t v) -> std::string {
        bool ok = (v == 0 && !zero_means.empty()) || (v >= lo && v <= hi);
        return ok ? "" : "must be " + allowed;
    };
    const std::string form = "an integer (bytes) or a string such as \"16MiB\", \"512KiB\", \"1.5GB\"";
    return KeyRule{
        section, key, description, allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            uint64_t bytes;
            if (const auto* integer = node.as_integer()) {
                if (integer->get() < 0) return "must be " + allowed;
                bytes = static_cast<uint64_t>(integer->get());
            } else if (const auto* text = node.as_string()) {
                auto parsed = parse_byte_size(text->get());
                if (!parsed) return "must be a size: " + form;
                bytes = *parsed;
            } else {
                return "must be a size: " + form;
            }
            std::string bad = why(bytes);
            if (bad.empty()) f(c) = bytes;
            return bad;
        },
        [=](const Config& c) { return why(f(c)); },
        [=](const Config& c) -> std::string {
            uint64_t v = f(c);
            if (v == 0 || v % 1024 != 0) return std::to_string(v);
            return toml_string_literal(format_byte_size_exact(v));
        },
    };
}

template <typename S>
KeyRule duration_key(std::string_view section, std::string_view key,
                     Field<S, std::chrono::milliseconds> f, std::chrono::milliseconds lo,
                     std::chrono::milliseconds hi, std::string_view description) {
    std::string allowed =
        "a duration between " + format_duration(lo) + " and " + format_duration(hi);
    auto why = [=](std::chrono::milliseconds v) -> std::string {
        return v >= lo && v <= hi ? "" : "must be " + allowed;
    };
    return KeyRule{
        section, key, description, allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            const auto* text = node.as_string();
            if (!text) return "must be a duration string such as \"5s\" or \"250ms\"";
            auto parsed = parse_duration(text->get());
            if (!parsed) return "must be a duration such as \"5s\" or \"250ms\" (units ms, s, m, h)";
            std::string bad = why(*parsed);
            if (bad.empty()) f(c) = *parsed;
            return bad;
        },
        [=](const Config& c) { return why(f(c)); },
        [=](const Config& c) { return toml_string_literal(format_duration(f(c))); },
    };
}

// ---- [devices] cuda -------------------------------------------------------------------------

constexpr int kMaxCudaOrdinal = 1023;

std::string check_cuda(const CudaSelection& cuda) {
    if (cuda.mode != CudaSelection::Mode::list) return "";
    if (cuda.ordinals.empty()) return "must not be an empty list; write \"none\" for no GPU";
    std::set<int> seen;
    for (int ordinal : cuda.ordinals) {
        if (ordinal < 0 || ordinal > kMaxCudaOrdinal)
            return "must list GPU ordinals " + range_text(0, kMaxCudaOrdinal);
        if (!seen.insert(ordinal).second)
            return "lists GPU " + std::to_string(ordinal) + " twice";
    }
    return "";
}

KeyRule cuda_key() {
    auto f = field(&Config::devices, &DevicesConfig::cuda);
    std::string allowed = "\"auto\", \"none\" or a list of distinct GPU ordinals such as [0, 1]";
    return KeyRule{
        "devices", "cuda",
        "CUDA GPUs to use; \"auto\" = every visible one",
        allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            CudaSelection cuda;
            if (const auto* text = node.as_string()) {
                if (text->get() == "auto") {
                    cuda.mode = CudaSelection::Mode::automatic;
                } else if (text->get() == "none") {
                    cuda.mode = CudaSelection::Mode::none;
                } else {
                    return "must be " + allowed;
                }
            } else if (const auto* list = node.as_array()) {
                cuda.mode = CudaSelection::Mode::list;
                for (const toml::node& element : *list) {
                    const auto* ordinal = element.as_integer();
                    if (!ordinal || ordinal->get() < 0 || ordinal->get() > kMaxCudaOrdinal)
                        return "must list GPU ordinals " + range_text(0, kMaxCudaOrdinal);
                    cuda.ordinals.push_back(static_cast<int>(ordinal->get()));
                }
            } else {
                return "must be " + allowed;
            }
            std::string bad = check_cuda(cuda);
            if (bad.empty()) f(c) = std::move(cuda);
            return bad;
        },
        [=](const Config& c) { return check_cuda(f(c)); },
        [=](const Config& c) -> std::string {
            const CudaSelection& cuda = f(c);
            if (cuda.mode == CudaSelection::Mode::automatic) return "\"auto\"";
            if (cuda.mode == CudaSelection::Mode::none) return "\"none\"";
            std::string out = "[";
            for (size_t i = 0; i < cuda.ordinals.size(); ++i)
                out += (i ? ", " : "") + std::to_string(cuda.ordinals[i]);
            return out + "]";
        },
    };
}

// ---- names ----------------------------------------------------------------------------------

bool is_name_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

bool is_name(std::string_view s, size_t max_length) {
    return !s.empty() && s.size() <= max_length && std::all_of(s.begin(), s.end(), is_name_char);
}

bool is_digits(std::string_view s) {
    return !s.empty() && s.size() <= 10 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool has_no_nul(std::string_view s) { return s.find('\0') == std::string_view::npos; }

bool is_printable_line(std::string_view s) {
    return std::none_of(s.begin(), s.end(),
                        [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

bool is_instance_name(std::string_view s) { return is_name(s, 64); }
bool is_path_or_empty(std::string_view s) { return s.size() <= 4096 && has_no_nul(s); }

// "" or HOST:PORT with a port of 0..65535 (the address itself is checked when it is bound).
bool is_listen_address_or_empty(std::string_view s) {
    if (s.empty()) return true;
    const size_t colon = s.rfind(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == s.size() || s.size() > 256) return false;
    const std::string_view port = s.substr(colon + 1);
    if (port.size() > 5 || !std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; }))
        return false;
    return std::stoi(std::string(port)) <= 65535 && has_no_nul(s);
}
bool is_absolute_path_or_empty(std::string_view s) {
    return is_path_or_empty(s) && (s.empty() || s.front() == '/');
}
bool is_plugin_reference(std::string_view s) {
    return !s.empty() && s.size() <= 4096 && is_printable_line(s);
}
bool is_plugin_reference_or_empty(std::string_view s) {
    return s.empty() || is_plugin_reference(s);
}
bool is_model_name(std::string_view s) { return s.size() <= 128 && is_printable_line(s); }

// POSIX-portable user and group names (plus a trailing '$' as Samba machine accounts have),
// or a numeric id.
bool is_account_name_or_id(std::string_view s) {
    if (is_digits(s)) return std::stoull(std::string(s)) <= 4294967294ull;
    if (s.empty() || s.size() > 32 || s.front() == '-') return false;
    std::string_view body = s.back() == '$' ? s.substr(0, s.size() - 1) : s;
    return !body.empty() && std::all_of(body.begin(), body.end(), is_name_char);
}
bool is_group_or_empty(std::string_view s) { return s.empty() || is_account_name_or_id(s); }

// ---- [ipc] allowed_users --------------------------------------------------------------------

constexpr size_t kMaxAllowedUsers = 1024;

std::string check_users(const std::vector<std::string>& users) {
    if (users.size() > kMaxAllowedUsers)
        return "must list at most " + std::to_string(kMaxAllowedUsers) + " users";
    for (const std::string& user : users)
        if (!is_account_name_or_id(user))
            return "must list user names or uids; " + toml_string_literal(user) + " is neither";
    return "";
}

KeyRule allowed_users_key() {
    auto f = field(&Config::ipc, &IpcConfig::allowed_users);
    std::string allowed = "a list of user names or uids, such as [\"alice\", 1001]";
    return KeyRule{
        "ipc", "allowed_users",
        "Users allowed to connect, by name or uid; [] = the daemon's own user and root",
        allowed,
        [=](const toml::node& node, Config& c) -> std::string {
            const auto* list = node.as_array();
            if (!list) return "must be " + allowed;
            std::vector<std::string> users;
            for (const toml::node& element : *list) {
                if (const auto* name = element.as_string()) {
                    users.push_back(name->get());
                } else if (const auto* uid = element.as_integer()) {
                    if (uid->get() < 0 || uid->get() > 4294967294ll)
                        return "must list user names or uids; " + node_text(element) +
                               " is not a uid";
                    users.push_back(std::to_string(uid->get()));
                } else {
                    return "must be " + allowed;
                }
            }
            std::string bad = check_users(users);
            if (bad.empty()) f(c) = std::move(users);
            return bad;
        },
        [=](const Config& c) { return check_users(f(c)); },
        [=](const Config& c) -> std::string {
            std::string out = "[";
            const auto& users = f(c);
            for (size_t i = 0; i < users.size(); ++i) {
                out += i ? ", " : "";
                // A uid is written as the integer the user would have written.
                out += is_digits(users[i]) ? users[i] : toml_string_literal(users[i]);
            }
            return out + "]";
        },
    };
}

using namespace std::chrono_literals;

std::vector<KeyRule> make_key_rules() {
    std::vector<KeyRule> rules;

    // [model]
    rules.push_back(string_key("model", "path", field(&Config::model, &ModelConfig::path),
                               "a file path", is_path_or_empty,
                               "Model file (GGUF) to load; \"\" = none, give one on the command line"));
    rules.push_back(integer_key("model", "context_length",
                                field(&Config::model, &ModelConfig::context_length), 0, 1 << 24,
                                "Context length in tokens; 0 = the model's training context, "
                                "capped by what [kv_cache] memory holds"));
    rules.push_back(string_key("model", "name", field(&Config::model, &ModelConfig::name),
                               "at most 128 bytes without control characters", is_model_name,
                               "Name clients see; \"\" = the model file's name without extension"));
    rules.push_back(string_key("model", "chat_template", field(&Config::model, &ModelConfig::chat_template),
                               "a file path", is_path_or_empty,
                               "Jinja chat template file used instead of the model file's "
                               "tokenizer.chat_template; \"\" = the model's own"));
    rules.push_back(string_key("model", "vision", field(&Config::model, &ModelConfig::vision),
                               "a file path", is_path_or_empty,
                               "LLaVA-style vision projector (GGUF of architecture clip, an mmproj file) "
                               "paired with the model; \"\" = text only"));

    // [devices]
    rules.push_back(choice_key<DevicesConfig, DeviceBackend, 3>(
        "devices", "backend", field(&Config::devices, &DevicesConfig::backend),
        {{{"auto", DeviceBackend::automatic}, {"cpu", DeviceBackend::cpu}, {"cuda", DeviceBackend::cuda}}},
        "Devices that serve: \"auto\" = the GPUs when there are any, else CPU devices; "
        "\"cuda\" without a GPU is a load error"));
    rules.push_back(integer_key("devices", "cpu", field(&Config::devices, &DevicesConfig::cpu), 0,
                                256, "Number of CPU devices the host is split into"));
    rules.push_back(integer_key("devices", "cpu_threads_per_device",
                                field(&Config::devices, &DevicesConfig::cpu_threads_per_device), 0,
                                1024, "Threads of each CPU device; 0 = the host's cores divided evenly"));
    rules.push_back(size_key("devices", "cpu_memory_limit",
                             field(&Config::devices, &DevicesConfig::cpu_memory_limit), 1ull << 20,
                             kNoUpperLimit, "no limit", "Memory each CPU device may use"));
    rules.push_back(real_key("devices", "memory_fraction",
                             field(&Config::devices, &DevicesConfig::memory_fraction), 0.0, false,
                             1.0, "Share of each device's memory the runtime may plan to use"));
    rules.push_back(cuda_key());
    rules.push_back(integer_key("devices", "cuda_devices_per_gpu",
                                field(&Config::devices, &DevicesConfig::cuda_devices_per_gpu), 1, 64,
                                "Logical devices each GPU is split into, each with its own stream and "
                                "memory limit (tests tensor and pipeline parallelism on one GPU)"));
    rules.push_back(size_key("devices", "cuda_memory_limit",
                             field(&Config::devices, &DevicesConfig::cuda_memory_limit), 1ull << 20,
                             kNoUpperLimit, "the GPU's free memory divided among its logical devices",
                             "Memory each CUDA device may use"));
    rules.push_back(choice_key<DevicesConfig, CudaCommunicator, 3>(
        "devices", "cuda_communicator", field(&Config::devices, &DevicesConfig::cuda_communicator),
        {{{"auto", CudaCommunicator::automatic}, {"nccl", CudaCommunicator::nccl},
          {"device-memory", CudaCommunicator::device_memory}}},
        "Collectives between CUDA devices: \"auto\" = NCCL when each device is a whole GPU, "
        "else copies through device memory"));

    // [cuda]
    rules.push_back(bool_key("cuda", "graphs", field(&Config::cuda, &CudaConfig::graphs),
                             "Decode steps on a single CUDA device recorded once per batch bucket as "
                             "a CUDA graph and replayed (off until a GPU run has checked them)"));

    // [parallel]
    rules.push_back(integer_or_auto_key(
        "parallel", "tensor", field(&Config::parallel, &ParallelConfig::tensor), 4096,
        "Tensor-parallel ranks, which split every layer; \"auto\" = chosen from the devices"));
    rules.push_back(integer_or_auto_key(
        "parallel", "pipeline", field(&Config::parallel, &ParallelConfig::pipeline), 4096,
        "Pipeline stages, each holding a range of layers; \"auto\" = chosen from the devices"));

    // [kv_cache]
    rules.push_back(choice_key<KvCacheConfig, KvCacheDtype, 2>(
        "kv_cache", "dtype", field(&Config::kv_cache, &KvCacheConfig::dtype),
        {{{"f16", KvCacheDtype::f16}, {"f32", KvCacheDtype::f32}}},
        "Element type of cached keys and values"));
    rules.push_back(integer_key("kv_cache", "block_size",
                                field(&Config::kv_cache, &KvCacheConfig::block_size), 1, 256,
                                "Tokens per KV-cache block, the unit of paging", true));
    rules.push_back(size_key("kv_cache", "memory", field(&Config::kv_cache, &KvCacheConfig::memory),
                             1ull << 10, kNoUpperLimit,
                             "auto: max_running_sequences x context_length",
                             "Memory for the KV cache on all devices together"));

    // [scheduler]
    auto scheduler = [&](std::string_view key, int SchedulerConfig::*member, int64_t lo,
                         int64_t hi, std::string_view description) {
        rules.push_back(
            integer_key("scheduler", key, field(&Config::scheduler, member), lo, hi, description));
    };
    scheduler("max_tokens_per_step", &SchedulerConfig::max_tokens_per_step, 1, 1 << 20,
              "Most tokens in one engine step: prefill chunks plus one per decoding sequence");
    scheduler("max_running_sequences", &SchedulerConfig::max_running_sequences, 1, 4096,
              "Most sequences in one step's batch");
    scheduler("max_queued_requests", &SchedulerConfig::max_queued_requests, 0, 1 << 20,
              "Most requests waiting to start; more are answered \"busy\"");
    scheduler("max_new_tokens", &SchedulerConfig::max_new_tokens, 1, 1 << 24,
              "Upper limit of any request's max_tokens");
    scheduler("prefill_chunk", &SchedulerConfig::prefill_chunk, 1, 1 << 20,
              "Most prompt tokens of one request processed in one step");

    // [ipc]
    rules.push_back(string_key("ipc", "dir", field(&Config::ipc, &IpcConfig::dir),
                               "\"\" or an absolute path", is_absolute_path_or_empty,
                               "Directory of the instance's socket and lock; \"\" = "
                               "$XDG_RUNTIME_DIR/llmq, else /tmp/llmq-<uid>"));
    rules.push_back(string_key("ipc", "instance", field(&Config::ipc, &IpcConfig::instance),
                               "1 to 64 characters from A-Z a-z 0-9 _ . -", is_instance_name,
                               "Instance name; the socket is llmq-<instance>.sock in dir"));
    rules.push_back(string_key("ipc", "group", field(&Config::ipc, &IpcConfig::group),
                               "\"\", a group name or a gid", is_group_or_empty,
                               "Group whose members may connect too; \"\" = no group"));
    rules.push_back(allowed_users_key());
    rules.push_back(size_key("ipc", "region_size", field(&Config::ipc, &IpcConfig::region_size),
                             64ull << 10, 1ull << 30, "", "Size of each client's private shared-memory region"));
    rules.push_back(integer_key("ipc", "request_ring_slots",
                                field(&Config::ipc, &IpcConfig::request_ring_slots), 2, 1 << 16,
                                "Requests a client can have in flight", true));
    rules.push_back(integer_key("ipc", "response_ring_slots",
                                field(&Config::ipc, &IpcConfig::response_ring_slots), 2, 1 << 20,
                                "Response events buffered for a client before it must read", true));
    rules.push_back(integer_key("ipc", "max_clients", field(&Config::ipc, &IpcConfig::max_clients),
                                1, 1 << 16, "Most clients connected at once"));
    rules.push_back(integer_key("ipc", "max_handshaking", field(&Config::ipc, &IpcConfig::max_handshaking),
                                1, 1 << 16,
                                "Most connections still in the handshake; a new one evicts the oldest"));
    rules.push_back(integer_key("ipc", "max_clients_per_uid",
                                field(&Config::ipc, &IpcConfig::max_clients_per_uid), 1, 1 << 16,
                                "Most connections of one user; idle ones are evicted for a new one"));
    rules.push_back(integer_key("ipc", "max_clients_per_pid",
                                field(&Config::ipc, &IpcConfig::max_clients_per_pid), 1, 1 << 16,
                                "Most connections of one process"));
    rules.push_back(integer_key("ipc", "max_requests_per_client",
                                field(&Config::ipc, &IpcConfig::max_requests_per_client), 1, 1 << 20,
                                "Most queued or running requests of one connection; more are answered \"busy\""));
    rules.push_back(integer_key("ipc", "max_running_per_client",
                                field(&Config::ipc, &IpcConfig::max_running_per_client), 1, 4096,
                                "Most running sequences of one connection; its others wait"));
    rules.push_back(integer_key("ipc", "max_pending_events",
                                field(&Config::ipc, &IpcConfig::max_pending_events), 1, 1 << 20,
                                "Events held for a client whose response ring is full; past it, or "
                                "stalled for stall_timeout, the client is cut off"));
    rules.push_back(size_key("ipc", "max_prompt_bytes",
                             field(&Config::ipc, &IpcConfig::max_prompt_bytes), 1, 256ull << 20, "",
                             "Largest prompt of one request"));
    rules.push_back(size_key("ipc", "max_image_bytes",
                             field(&Config::ipc, &IpcConfig::max_image_bytes), 0, 256ull << 20, "",
                             "Largest total of one request's images, as sent (PNG/JPEG bytes); 0 = no images"));
    rules.push_back(integer_key("ipc", "max_images", field(&Config::ipc, &IpcConfig::max_images), 0, 64,
                                "Images one request may carry"));
    rules.push_back(integer_key("ipc", "max_image_dimension",
                                field(&Config::ipc, &IpcConfig::max_image_dimension), 1, 65535,
                                "Widest or tallest image accepted, in pixels (checked from its header)"));
    rules.push_back(integer_key("ipc", "max_image_pixels",
                                field(&Config::ipc, &IpcConfig::max_image_pixels), 1, int64_t(1) << 32,
                                "Most pixels (width x height) of one image (checked from its header, "
                                "before decoding)"));
    rules.push_back(duration_key("ipc", "stall_timeout",
                                 field(&Config::ipc, &IpcConfig::stall_timeout), 10ms, 1h,
                                 "A request whose client reads nothing for this long is cancelled"));
    rules.push_back(duration_key("ipc", "drain_timeout",
                                 field(&Config::ipc, &IpcConfig::drain_timeout), 0ms, 1h,
                                 "On SIGTERM or drain, how long running requests may take to finish"));
    rules.push_back(size_key("ipc", "control_max_line",
                             field(&Config::ipc, &IpcConfig::control_max_line), 256, 16ull << 20,
                             "", "Longest control-command line"));
    rules.push_back(integer_key("ipc", "control_max_depth",
                                field(&Config::ipc, &IpcConfig::control_max_depth), 1, 1024,
                                "Deepest JSON nesting of a control command"));
    rules.push_back(integer_key("ipc", "idle_spin_us", field(&Config::ipc, &IpcConfig::idle_spin_us), 0, 10000,
                                "Microseconds llmqd spins on its clients' rings after its last work before it "
                                "sleeps (answers from idle without a wake-up; vain spins take at most 0.5 % of a "
                                "core); 0: never"));

    // [plugins]
    rules.push_back(string_key("plugins", "dir", field(&Config::plugins, &PluginsConfig::dir),
                               "a path", is_path_or_empty,
                               "Plugin folder; \"\" = where the build or the install put them"));
    // The plugins of each backend's devices: [plugins] gemm / attention / vision for CPU
    // devices, [plugins.cuda] for CUDA ones. [plugins.cuda] has no SectionRule: print_config
    // prints it under [plugins], and as a table only when it differs from the defaults.
    struct BackendPluginKeys {
        std::string_view section;
        std::string PluginsConfig::*gemm;
        std::string PluginsConfig::*attention;
        std::string PluginsConfig::*vision;
        std::string_view gemm_text, attention_text, vision_text;
    };
    const BackendPluginKeys backend_plugin_keys[] = {
        {"plugins", &PluginsConfig::gemm, &PluginsConfig::attention, &PluginsConfig::vision,
         "GEMM plugin of CPU devices, looked up in dir unless given as a path",
         "Attention plugin of CPU devices, looked up in dir unless given as a path",
         "Vision plugin of CPU devices, looked up in dir unless given as a path; \"\" = none"},
        {"plugins.cuda", &PluginsConfig::cuda_gemm, &PluginsConfig::cuda_attention, &PluginsConfig::cuda_vision,
         "GEMM plugin of CUDA devices, looked up in [plugins] dir unless given as a path",
         "Attention plugin of CUDA devices, looked up in [plugins] dir unless given as a path",
         "Vision plugin of CUDA devices; \"\" = none"},
    };
    for (const BackendPluginKeys& b : backend_plugin_keys) {
        rules.push_back(string_key(b.section, "gemm", field(&Config::plugins, b.gemm),
                                   "a plugin name or a path to its .so", is_plugin_reference, b.gemm_text));
        rules.push_back(string_key(b.section, "attention", field(&Config::plugins, b.attention),
                                   "a plugin name or a path to its .so", is_plugin_reference,
                                   b.attention_text));
        rules.push_back(string_key(b.section, "vision", field(&Config::plugins, b.vision),
                                   "\"\" or a plugin name or a path to its .so",
                                   is_plugin_reference_or_empty, b.vision_text));
    }
    rules.push_back(bool_key("plugins", "watch", field(&Config::plugins, &PluginsConfig::watch),
                             "Swap a plugin when its file in dir is replaced"));
    rules.push_back(bool_key("plugins", "probe", field(&Config::plugins, &PluginsConfig::probe),
                             "Load a plugin new to the runtime in a short-lived probe process first"));
    rules.push_back(size_key("plugins", "max_file_size", field(&Config::plugins, &PluginsConfig::max_file_size),
                             4096, 16ull << 30, "", "Largest plugin file that is loaded"));
    rules.push_back(integer_key("plugins", "swap_queue", field(&Config::plugins, &PluginsConfig::swap_queue), 1,
                                1024, "Plugin swap and reload jobs that may wait; more are refused"));
    auto tolerance = [&](std::string_view key, double PluginsConfig::*member,
                         std::string_view description) {
        rules.push_back(real_key("plugins", key, field(&Config::plugins, member), 0.0, false, 1.0,
                                 description));
    };
    tolerance("tolerance_f32", &PluginsConfig::tolerance_f32,
              "Canary tolerance of a swapped plugin on F32 weights");
    tolerance("tolerance_f16", &PluginsConfig::tolerance_f16,
              "Canary tolerance of a swapped plugin on F16 weights");
    tolerance("tolerance_bf16", &PluginsConfig::tolerance_bf16,
              "Canary tolerance of a swapped plugin on BF16 weights");
    tolerance("tolerance_q8_0", &PluginsConfig::tolerance_q8_0,
              "Canary tolerance of a swapped plugin on Q8_0 weights");

    // [log]
    rules.push_back(choice_key<LogConfig, log::level, 4>(
        "log", "level", field(&Config::log, &LogConfig::level),
        {{{"error", log::level::error},
          {"warn", log::level::warn},
          {"info", log::level::info},
          {"debug", log::level::debug}}},
        "Least severe level written"));
    rules.push_back(string_key("log", "file", field(&Config::log, &LogConfig::file), "a path",
                               is_path_or_empty, "Log file, appended to; \"\" = stderr"));
    rules.push_back(bool_key("log", "json", field(&Config::log, &LogConfig::json),
                             "Write each line as a JSON object"));
    // [metrics]
    rules.push_back(string_key("metrics", "listen", field(&Config::metrics, &MetricsConfig::listen),
                               "\"\" or \"ADDRESS:PORT\"", is_listen_address_or_empty,
                               "Serve Prometheus text at http://ADDRESS:PORT/metrics (port 0: any free "
                               "one, logged); \"\" = off. llmq-gateway's /metrics serves the same"));
    return rules;
}

// sockaddr_un.sun_path holds 108 bytes including the terminating NUL.
constexpr size_t kMaxSocketPath = 107;

std::vector<RelationRule> make_relation_rules() {
    return {
        {"devices", "cpu",
         [](const Config& c) -> std::string {
             if (c.devices.cpu == 0 && c.devices.cuda.mode == CudaSelection::Mode::none)
                 return "leaves no device, as [devices] cuda = \"none\"; use at least 1 CPU device";
             if (c.devices.cpu == 0 && c.devices.backend == DeviceBackend::cpu)
                 return "leaves no device, as [devices] backend = \"cpu\"; use at least 1 CPU device";
             return "";
         }},
        {"devices", "backend",
         [](const Config& c) -> std::string {
             if (c.devices.backend == DeviceBackend::cuda && c.devices.cuda.mode == CudaSelection::Mode::none)
                 return "is \"cuda\" but [devices] cuda = \"none\" selects no GPU";
             return "";
         }},
        {"scheduler", "prefill_chunk",
         [](const Config& c) -> std::string {
             if (c.scheduler.prefill_chunk > c.scheduler.max_tokens_per_step)
                 return "must not exceed [scheduler] max_tokens_per_step = " +
                        std::to_string(c.scheduler.max_tokens_per_step);
             return "";
         }},
        {"ipc", "max_prompt_bytes",
         [](const Config& c) -> std::string {
             // The region also holds the rings and the responses.
             if (c.ipc.max_prompt_bytes > c.ipc.region_size / 2)
                 return "must be at most half of [ipc] region_size = " +
                        format_byte_size_exact(c.ipc.region_size) +
                        ", which also holds the rings; raise region_size";
             return "";
         }},
        {"ipc", "allowed_users",
         [](const Config& c) -> std::string {
             // Without a group the socket's directory is 0700: no other user can reach the
             // socket, so the list could never let anyone in.
             if (c.ipc.allowed_users.empty() || !c.ipc.group.empty()) return "";
             return "needs [ipc] group: without it the socket's directory is 0700, so no other "
                    "user can reach the socket; set group to one these users are in (the list "
                    "then narrows that group)";
         }},
        {"ipc", "dir",
         [](const Config& c) -> std::string {
             if (c.ipc.dir.empty()) return "";
             size_t length = c.ipc.dir.size() + std::string_view("/llmq-").size() +
                             c.ipc.instance.size() + std::string_view(".sock").size();
             if (length > kMaxSocketPath)
                 return "is too long: the socket path " + c.ipc.dir + "/llmq-" + c.ipc.instance +
                        ".sock has " + std::to_string(length) + " bytes, UNIX sockets allow " +
                        std::to_string(kMaxSocketPath);
             return "";
         }},
    };
}

}  // namespace

const std::vector<SectionRule>& section_rules() {
    static const std::vector<SectionRule> sections = {
        {"model", "The model to load"},
        {"devices", "The devices llmq uses: CPU devices (groups of cores) and CUDA GPUs"},
        {"cuda", "How CUDA devices run the model"},
        {"parallel", "How the model is split across devices"},
        {"kv_cache", "The paged KV cache"},
        {"scheduler", "Continuous batching: what one engine step may hold"},
        {"ipc", "The instance's socket and each client's shared-memory region"},
        {"plugins", "Kernel plugins"},
        {"log", "The daemon's log"},
        {"metrics", "Prometheus metrics served by llmqd itself (off by default)"},
    };
    return sections;
}

const std::vector<KeyRule>& key_rules() {
    static const std::vector<KeyRule> rules = make_key_rules();
    return rules;
}

const std::vector<RelationRule>& relation_rules() {
    static const std::vector<RelationRule> rules = make_relation_rules();
    return rules;
}

bool is_plugin_name(std::string_view name) { return is_name(name, 64); }

}  // namespace llmq::config_detail
