// The one entry point that opens a model for the runtime and the tools: a GGUF file, or a
// Hugging Face safetensors directory presented as the GgufFile it would convert to
// (safetensors.hpp). Callers then read it with load_llama_layout, vocab_from_gguf and the
// planner whatever its format.
#pragma once

#include <memory>
#include <string>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

// A directory opens with open_safetensors_directory, anything else with GgufFile::open.
[[nodiscard]] Expected<std::shared_ptr<const GgufFile>> open_model_file(const std::string& path,
                                                                        GgufFile::Options options);
[[nodiscard]] inline Expected<std::shared_ptr<const GgufFile>> open_model_file(const std::string& path) {
    return open_model_file(path, GgufFile::Options{});
}

}  // namespace llmq
