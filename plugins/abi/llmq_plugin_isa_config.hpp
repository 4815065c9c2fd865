// The plugin TOML table of a CPU plugin whose only key is `isa` (attention-cpu, vision-cpu):
//   isa = "scalar" | "avx2" | "avx512" | "avx512_bf16"   force an ISA (refused if the CPU lacks it)
// Header-only, for the plugins of this tree (they link toml++ and the kernels); never installed.
#pragma once

#include <string>
#include <string_view>
#include <toml++/toml.h>

#include "llmq/kernels/cpu.hpp"
#include "llmq_plugin_checks.hpp"

namespace llmq::plugin_checks {

// Reads `text` (the host's config_toml; NULL or "" = defaults) into *isa, which keeps its
// value when the key is absent. Errors name the plugin, the line or key and what is allowed.
inline llmq_status read_isa_only_config(const char* text, const char* plugin_name, kernels::isa* isa,
                                        llmq_error* error) {
    if (text == nullptr || *text == '\0') return LLMQ_OK;
    toml::table table;
    try {
        table = toml::parse(std::string_view(text));
    } catch (const toml::parse_error& e) {
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s config: line %u: %s", plugin_name,
                    unsigned(e.source().begin.line), std::string(e.description()).c_str());
    }
    for (const auto& [key, value] : table) {
        if (key != "isa")
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s config: unknown key '%s' (known: isa)", plugin_name,
                        std::string(key.str()).c_str());
        const auto* name = value.as_string();
        kernels::isa chosen;
        if (name == nullptr || !kernels::parse_isa(name->get().c_str(), &chosen))
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                        "%s config: isa must be one of \"scalar\", \"avx2\", \"avx512\", \"avx512_bf16\"", plugin_name);
        if (!kernels::isa_supported(chosen))
            return fail(error, LLMQ_STATUS_UNSUPPORTED,
                        "%s config: isa = \"%s\" is not available on this CPU (best: %s); remove the key or "
                        "choose a lower ISA",
                        plugin_name, kernels::isa_name(chosen), kernels::isa_name(kernels::best_isa()));
        *isa = chosen;
    }
    return LLMQ_OK;
}

}  // namespace llmq::plugin_checks
