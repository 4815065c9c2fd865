// Helpers shared by the config tests.
#pragma once

#include <string>
#include <string_view>

#include "llmq/runtime/config.hpp"

// The message parse_config gives for `text` read as "llmq.toml"; "" when it parsed.
inline std::string config_error(std::string_view text) {
    auto parsed = llmq::parse_config(text, "llmq.toml");
    if (parsed.ok()) return "";
    return parsed.status().message();
}
