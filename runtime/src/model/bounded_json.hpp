// JSON from files llmq did not write (safetensors headers, Hugging Face config.json and
// tokenizer.json), parsed without exceptions and with a nesting limit, so a hostile file is an
// error naming it, never a thrown exception or a parser recursing out of its stack.
//
// Internal to the runtime. Pure functions, any thread.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "llmq/runtime/status.hpp"

namespace llmq {

// Parses `text` as one JSON value nested at most `max_depth` arrays/objects deep. Errors:
// corrupt, "<what>: <parser's reason>" (with the byte offset) or "<what>: JSON nested deeper
// than N levels at byte B".
[[nodiscard]] Expected<nlohmann::json> parse_bounded_json(std::string_view text, const std::string& what,
                                                          int max_depth);

// Reads the file at `path` (at most `max_bytes`) and parses it as above; `what` names it in
// errors. Errors: not_found / io_error for the file, corrupt for its contents or its size.
[[nodiscard]] Expected<nlohmann::json> read_bounded_json_file(const std::string& path, const std::string& what,
                                                              size_t max_bytes, int max_depth);

// "a string", "an integer", "an object", ... for error messages.
std::string json_kind(const nlohmann::json& v);

}  // namespace llmq
