// A plugin's own TOML table (host->config_toml) parsed, with a parse error turned into a
// status and a message that names the plugin and the line.
#pragma once

#include <string>
#include <toml++/toml.h>

#include "cuda_plugin_checks.hpp"

namespace llmq::cuda_plugin {

// `table` is empty for NULL or "" text.
inline llmq_status parse_config(const char* text, const char* plugin, toml::table* table, llmq_error* error) {
    if (text == nullptr || *text == '\0') return LLMQ_OK;
    try {
        *table = toml::parse(std::string_view(text));
    } catch (const toml::parse_error& e) {
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s config: line %u: %s", plugin,
                    unsigned(e.source().begin.line), std::string(e.description()).c_str());
    }
    return LLMQ_OK;
}

}  // namespace llmq::cuda_plugin
