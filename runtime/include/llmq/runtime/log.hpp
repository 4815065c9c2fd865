// The runtime's log: one line per event, to stderr or a file, at a configurable level.
// Thread-safe. Lines look like "2026-11-25T15:04:05.123Z info  model loaded in 1.2 s".
#pragma once

#include <string>
#include <string_view>

namespace llmq::log {

enum class level { error = 0, warn = 1, info = 2, debug = 3 };

void set_level(level l);
level current_level();
// Open `path` for appending (empty: stderr). Returns false with *why when it cannot.
bool set_file(const std::string& path, std::string* why);
void set_json(bool json);
// Parse "error" | "warn" | "info" | "debug".
bool parse_level(std::string_view text, level* out);

void write(level l, std::string_view message);
inline void error(std::string_view m) { write(level::error, m); }
inline void warn(std::string_view m) { write(level::warn, m); }
inline void info(std::string_view m) { write(level::info, m); }
inline void debug(std::string_view m) { write(level::debug, m); }

}  // namespace llmq::log
