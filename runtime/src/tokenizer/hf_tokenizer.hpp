// A Hugging Face tokenizer (tokenizer.json, tokenizer_config.json, generation_config.json,
// chat_template.jinja of a model directory) as the tokenizer.* metadata keys of the GGUF file
// it would convert to, so vocab_from_gguf and Tokenizer read it like any GGUF vocabulary.
//
// Supported: byte-level BPE ("model": {"type": "BPE"}, no byte fallback) with the GPT-2,
// Llama 3 or Qwen2 pre-tokenizer (a ByteLevel pre-tokenizer with its own regex, or a Split of
// one of the regexes pretokenizer.hpp implements followed by a ByteLevel without one). An
// unknown pre-tokenizer, normalizer or model type is an error naming it, never a fallback.
//
// Internal to the runtime. Pure function, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

// Appends tokenizer.ggml.{model,pre,tokens,token_type,merges,bos_token_id,eos_token_id,
// eos_token_ids,padding_token_id,add_bos_token,add_eos_token} and tokenizer.chat_template for
// the model directory `dir`, whose parsed config.json is `config`. The vocabulary is padded
// with unused "[PAD<id>]" tokens up to `vocab_size` (config.json's, the embedding's rows) when
// the tokenizer has fewer ids; more is an error. Errors name the file and the key.
[[nodiscard]] Status append_hf_tokenizer_metadata(const std::string& dir, const nlohmann::json& config,
                                                  uint32_t vocab_size,
                                                  std::vector<std::pair<std::string, GgufValue>>& kv);

}  // namespace llmq
