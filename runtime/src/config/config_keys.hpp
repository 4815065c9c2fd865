// The table of every config key: the single source of truth behind parse_config,
// validate_config and print_config. Private to runtime/src/config.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "llmq/runtime/config.hpp"

namespace llmq::config_detail {

struct SectionRule {
    std::string_view name;
    std::string_view description;   // one line, printed above the section
};

struct KeyRule {
    std::string_view section;
    std::string_view key;
    std::string_view description;   // one line, printed above the key
    std::string allowed;            // what values are accepted, e.g. "1 to 4096"
    // Convert a present TOML value into the field and check it. Returns "" or why the value
    // is wrong ("must be between 1 and 4096"); on failure the field is left as it was.
    std::function<std::string(const toml::node&, Config&)> read;
    // Why the value now in the Config is wrong, or "". Same rule as read.
    std::function<std::string(const Config&)> check;
    // The value as a TOML literal.
    std::function<std::string(const Config&)> write;
};

// A rule that ties keys together, reported at (section, key).
struct RelationRule {
    std::string_view section;
    std::string_view key;
    std::function<std::string(const Config&)> check;   // "" or why
};

// In print order.
const std::vector<SectionRule>& section_rules();
const std::vector<KeyRule>& key_rules();
const std::vector<RelationRule>& relation_rules();

// [plugins.<name>]: names of plugin tables.
bool is_plugin_name(std::string_view name);

}  // namespace llmq::config_detail
