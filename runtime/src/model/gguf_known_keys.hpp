// Metadata keys whose value type the GGUF specification fixes, checked once when a file is
// opened (internal to the GGUF reader).
#pragma once

#include <string>

#include "llmq/runtime/gguf.hpp"

namespace llmq {

// ok, or corrupt naming the file, the key, the type found and the type required, when a key
// of the specification (general.alignment, tokenizer.ggml.*) is stored with another type; or
// when a special token id (tokenizer.ggml.*_token_id) does not name a token of
// tokenizer.ggml.tokens.
[[nodiscard]] Status check_known_keys(const GgufFile& file);

}  // namespace llmq
