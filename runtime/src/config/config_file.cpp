// Reading, validating and printing the config file, driven by the key table in
// config_keys.cpp.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "config_keys.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/edit_distance.hpp"
#include "toml_text.hpp"

namespace llmq {

using config_detail::key_rules;
using config_detail::KeyRule;
using config_detail::node_text;
using config_detail::relation_rules;
using config_detail::section_rules;

const char* kv_cache_dtype_name(KvCacheDtype dtype) {
    switch (dtype) {
        case KvCacheDtype::f16: return "f16";
        case KvCacheDtype::f32: return "f32";
    }
    return "?";
}

namespace {

constexpr std::string_view kListHint = " (llmqd --print-config lists every key)";

const KeyRule* find_key(std::string_view section, std::string_view key) {
    for (const KeyRule& rule : key_rules())
        if (rule.section == section && rule.key == key) return &rule;
    return nullptr;
}

bool is_section(std::string_view name) {
    return std::any_of(section_rules().begin(), section_rules().end(),
                       [&](const auto& s) { return s.name == name; });
}

// " (did you mean X?)" when one candidate is close, else "".
std::string suggestion(std::string_view wrong, const std::vector<std::string_view>& candidates,
                       std::string_view before = "", std::string_view after = "") {
    std::string_view best;
    size_t best_distance = SIZE_MAX;
    for (std::string_view candidate : candidates) {
        size_t d = edit_distance(wrong, candidate);
        if (d < best_distance) {
            best_distance = d;
            best = candidate;
        }
    }
    if (best.empty() || best_distance > std::max<size_t>(2, wrong.size() / 3)) return "";
    return " (did you mean " + std::string(before) + std::string(best) + std::string(after) +
           "?)";
}

std::vector<std::string_view> keys_of(std::string_view section) {
    std::vector<std::string_view> keys;
    for (const KeyRule& rule : key_rules())
        if (rule.section == section) keys.push_back(rule.key);
    return keys;
}

// One problem of a file, kept with its line so all of them can be listed in file order.
struct Problem {
    uint32_t line;   // 0: no line (the key is absent from the file)
    std::string text;
};

class ProblemList {
public:
    explicit ProblemList(std::string_view source) : source_(source) {}

    void add(uint32_t line, std::string text) { problems_.push_back({line, std::move(text)}); }
    bool empty() const { return problems_.empty(); }

    Status status() {
        std::stable_sort(problems_.begin(), problems_.end(),
                         [](const Problem& a, const Problem& b) { return a.line < b.line; });
        std::string message;
        for (const Problem& problem : problems_) {
            if (!message.empty()) message += '\n';
            message += source_;
            if (problem.line != 0) message.append(":").append(std::to_string(problem.line));
            message += ": " + problem.text;
        }
        return invalid_argument(message);
    }

private:
    std::string source_;
    std::vector<Problem> problems_;
};

std::string key_label(std::string_view section, std::string_view key) {
    return std::string("[").append(section).append("] ").append(key);
}

void read_plugin_table(std::string_view name, const toml::node& node, Config& config,
                       ProblemList& problems) {
    uint32_t line = node.source().begin.line;
    if (!config_detail::is_plugin_name(name)) {
        problems.add(line, "[plugins." + std::string(name) +
                               "]: a plugin table needs a plugin name of 1 to 64 characters "
                               "from A-Z a-z 0-9 _ . -");
        return;
    }
    std::ostringstream text;
    text << toml::toml_formatter(*node.as_table());
    config.plugins.tables[std::string(name)] = text.str();
}

void read_section(std::string_view section, const toml::table& table, Config& config,
                  ProblemList& problems) {
    for (auto&& [key, node] : table) {
        const KeyRule* rule = find_key(section, key.str());
        if (!rule) {
            // [plugins.cuda] names the CUDA devices' plugins; [plugins.<other>] is a plugin's
            // own table. [plugins.cpu] would be a third way to name the CPU ones: refused.
            if (section == "plugins" && node.is_table() && key.str() == "cuda") {
                read_section("plugins.cuda", *node.as_table(), config, problems);
                continue;
            }
            if (section == "plugins" && node.is_table() && key.str() == "cpu") {
                problems.add(key.source().begin.line,
                             "[plugins.cpu]: the plugins of CPU devices are [plugins] gemm, attention "
                             "and vision; [plugins.cuda] names those of CUDA devices");
                continue;
            }
            if (section == "plugins" && node.is_table()) {
                read_plugin_table(key.str(), node, config, problems);
                continue;
            }
            problems.add(key.source().begin.line,
                         key_label(section, key.str()) + ": unknown key" +
                             suggestion(key.str(), keys_of(section)) + std::string(kListHint));
            continue;
        }
        std::string why = rule->read(node, config);
        if (!why.empty())
            problems.add(node.source().begin.line,
                         key_label(section, key.str()) + " = " + node_text(node) + ": " + why);
    }
}

std::string toml_parse_message(const toml::parse_error& error, std::string_view source) {
    std::string message(source);
    const auto& begin = error.source().begin;
    if (begin.line != 0)
        message += ":" + std::to_string(begin.line) + ":" + std::to_string(begin.column);
    return message + ": not valid TOML: " + std::string(error.description());
}

// Why a plugin table's text is not a TOML document, or "".
std::string check_plugin_table_text(const std::string& text) {
    try {
        (void)toml::parse(text, std::string_view("plugin table"));
        return "";
    } catch (const toml::parse_error& error) {
        return "is not valid TOML: " + std::string(error.description());
    }
}

// The keys of a [plugins.<backend>] table: printed as a table when one differs from its
// default, else as comment lines that give the defaults (so the defaults print the same
// keys whatever backends a build knows).
std::string print_backend_plugins(const Config& config, std::string_view section, std::string_view backend) {
    const Config defaults;
    std::string documented, table;
    bool changed = false;
    for (const KeyRule& rule : key_rules()) {
        if (rule.section != section) continue;
        const std::string value = rule.write(config);
        changed = changed || value != rule.write(defaults);
        documented += "#   " + std::string(rule.key) + " = " + rule.write(defaults) + "   " +
                      std::string(rule.description) + "\n";
        table += "# " + std::string(rule.description) + " (" + rule.allowed + ")\n" + std::string(rule.key) +
                 " = " + value + "\n";
    }
    std::string out = "# [" + std::string(section) + "] names the plugins of " + std::string(backend) +
                      " devices, as the keys above do for CPU devices";
    if (!changed) return out + "; its keys and defaults:\n" + documented;
    return out + ".\n[" + std::string(section) + "]\n" + table;
}

}  // namespace

Expected<Config> parse_config(std::string_view toml_text, std::string_view source_name) {
    toml::table root;
    try {
        root = toml::parse(toml_text, source_name);
    } catch (const toml::parse_error& error) {
        return invalid_argument(toml_parse_message(error, source_name) +
                                "; fix the syntax at that place");
    }

    Config config;
    ProblemList problems(source_name);
    std::vector<std::string_view> section_names;
    std::string all_sections;  // "[model], [devices], ..."
    for (const auto& section : section_rules()) {
        section_names.push_back(section.name);
        all_sections.append(all_sections.empty() ? "[" : ", [").append(section.name).append("]");
    }

    for (auto&& [name, node] : root) {
        uint32_t line = name.source().begin.line;
        if (!is_section(name.str())) {
            std::string text = node.is_table() ? std::string("[").append(name.str()).append("]")
                                               : std::string(name.str());
            problems.add(line, text + ": unknown section" +
                                   suggestion(name.str(), section_names, "[", "]") +
                                   "; the sections are " + all_sections);
            continue;
        }
        if (!node.is_table()) {
            problems.add(line, std::string(name.str()) + " = " + node_text(node) +
                                   ": must be a table, written [" + std::string(name.str()) + "]");
            continue;
        }
        read_section(name.str(), *node.as_table(), config, problems);
    }

    // Rules between keys only make sense once every key on its own is right.
    if (problems.empty()) {
        for (const auto& relation : relation_rules()) {
            std::string why = relation.check(config);
            if (why.empty()) continue;
            const toml::node* node = root.at_path(std::string(relation.section) + "." +
                                                  std::string(relation.key)).node();
            uint32_t line = node ? node->source().begin.line : 0;
            problems.add(line, key_label(relation.section, relation.key) + " = " +
                                   find_key(relation.section, relation.key)->write(config) +
                                   ": " + why);
        }
    }
    if (!problems.empty()) return problems.status();
    return config;
}

Status validate_config(const Config& config) {
    std::vector<std::string> problems;
    for (const KeyRule& rule : key_rules()) {
        std::string why = rule.check(config);
        if (!why.empty())
            problems.push_back(key_label(rule.section, rule.key) + " = " + rule.write(config) +
                               ": " + why);
    }
    for (const auto& [name, text] : config.plugins.tables) {
        if (!config_detail::is_plugin_name(name))
            problems.push_back("[plugins." + name + "]: a plugin table needs a plugin name of 1 "
                               "to 64 characters from A-Z a-z 0-9 _ . -");
        else if (std::string why = check_plugin_table_text(text); !why.empty())
            problems.push_back("[plugins." + name + "] " + why);
    }
    if (problems.empty()) {
        for (const auto& relation : relation_rules()) {
            std::string why = relation.check(config);
            if (!why.empty())
                problems.push_back(key_label(relation.section, relation.key) + " = " +
                                   find_key(relation.section, relation.key)->write(config) +
                                   ": " + why);
        }
    }
    if (problems.empty()) return Status::ok_status();
    std::string message = "invalid configuration: ";
    for (size_t i = 0; i < problems.size(); ++i) message += (i ? "\n" : "") + problems[i];
    return invalid_argument(message);
}

Expected<Config> load_config_file(const std::string& path) {
    constexpr long kMaxConfigBytes = 1 << 20;
    FILE* file = std::fopen(path.c_str(), "rb");
    if (!file) {
        int error = errno;
        std::string message = "reading config " + path + ": " + std::strerror(error);
        if (error == ENOENT) return not_found(message + "; check the --config path");
        return io_error(message);
    }
    std::string text;
    char buffer[65536];
    size_t n;
    while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) {
        text.append(buffer, n);
        if (text.size() > static_cast<size_t>(kMaxConfigBytes)) {
            std::fclose(file);
            return invalid_argument("reading config " + path +
                                    ": larger than 1 MiB, which no llmq config needs");
        }
    }
    bool failed = std::ferror(file) != 0;
    int error = errno;
    std::fclose(file);
    if (failed) return io_error("reading config " + path + ": " + std::strerror(error));
    return parse_config(text, path);
}

std::string print_config(const Config& config) {
    std::string out =
        "# llmq configuration. Every key is optional; each is shown with its value (the default\n"
        "# unless a file said otherwise), what it does and what it accepts.\n"
        "# Sizes: bytes, or \"512KiB\", \"16MiB\", \"6GiB\", \"1.5GB\". "
        "Durations: \"250ms\", \"5s\", \"2m\", \"1h\".\n";
    for (const auto& section : section_rules()) {
        out += "\n# " + std::string(section.description) + "\n";
        out.append("[").append(section.name).append("]\n");
        for (const KeyRule& rule : key_rules()) {
            if (rule.section != section.name) continue;
            out += "# " + std::string(rule.description) + " (" + rule.allowed + ")\n";
            out += std::string(rule.key) + " = " + rule.write(config) + "\n";
        }
        if (section.name != "plugins") continue;
        out += print_backend_plugins(config, "plugins.cuda", "CUDA");
        out += "# [plugins.<name>] tables are handed to that plugin at init as its own config.\n";
        toml::table plugins;
        for (const auto& [name, text] : config.plugins.tables) {
            try {
                plugins.insert(name, toml::parse(text, std::string_view("plugin table")));
            } catch (const toml::parse_error& error) {
                out += "# [plugins." + name + "] left out: not valid TOML (" +
                       std::string(error.description()) + ")\n";
            }
        }
        if (!plugins.empty()) {
            toml::table wrapper;
            wrapper.insert("plugins", std::move(plugins));
            std::ostringstream text;
            text << toml::toml_formatter(wrapper, toml::toml_formatter::default_flags &
                                                      ~toml::format_flags::indentation);
            out.append("\n").append(text.str()).append("\n");
        }
    }
    return out;
}

}  // namespace llmq
