// Control lines: the line-delimited JSON both sides exchange on the socket after the handshake.
//
//   client -> daemon  request   {"id": 7, "command": "status", "args": {...}}   (args optional)
//   daemon -> client  reply     {"id": 7, "ok": true, "result": ...}
//                               {"id": 7, "ok": false, "error": {"code": "invalid_argument",
//                                                                "message": "..."}}
//   daemon -> client  notice    {"notice": "draining", ...}                     (no id, no reply)
//
// Limits are enforced before anything is parsed deeply: a line longer than max_line_bytes is
// never buffered past the limit (LineFramer), and nesting deeper than max_depth is found by a
// linear pre-scan (json_depth_within) before nlohmann's parser sees the line.
//
// What the daemon does with a bad line (listener.cpp):
//   - longer than max_line_bytes: error reply with "id": null, then the connection is CLOSED
//     (the stream cannot be re-synchronised cheaply and only a broken or hostile client does it);
//   - nested deeper than max_depth, not JSON, not an object, bad fields, unknown command:
//     error reply (with the id when one could be read), the connection is KEPT.
//
// Thread: everything here is a pure function or a value type; any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "llmq/ipc/result.hpp"

namespace llmq::ipc {

struct ControlLimits {
    std::size_t max_line_bytes = 64u << 10;  // bytes before the '\n'
    std::uint32_t max_depth = 32;            // nested objects and arrays
};

// Splits a byte stream into '\n'-terminated lines (a '\r' before the '\n' is dropped), holding
// at most max_line_bytes of an unfinished line.
class LineFramer {
public:
    explicit LineFramer(std::size_t max_line_bytes) : max_(max_line_bytes) {}

    // Appends received bytes. Ignored once overflowed().
    void feed(const char* data, std::size_t size);
    // The next complete line without its terminator, or nullopt.
    std::optional<std::string> next_line();
    // True once a line grew past the limit; the stream is then unusable.
    bool overflowed() const { return overflowed_; }
    // Bytes held (complete lines not yet taken plus the unfinished one).
    std::size_t buffered() const { return buffer_.size() - start_; }

private:
    std::size_t max_;
    std::string buffer_;
    std::size_t start_ = 0;    // first byte of the current line
    std::size_t scanned_ = 0;  // bytes from start_ known to hold no '\n'
    bool overflowed_ = false;
};

// True when no object or array in `text` is nested deeper than max_depth (strings and their
// escapes are skipped). Linear, no recursion; says nothing about whether `text` is valid JSON.
bool json_depth_within(std::string_view text, std::uint32_t max_depth);

// Parses one line into a JSON object: length, depth, syntax (including UTF-8) and "is an
// object". Errors are invalid_argument and say which limit or what was wrong.
[[nodiscard]] Result<nlohmann::json> parse_control_line(std::string_view line, const ControlLimits& limits);

struct ControlRequest {
    std::uint64_t id = 0;
    std::string command;
    nlohmann::json args = nlohmann::json::object();
};

// Reads a request's fields: "id" (unsigned integer), "command" (non-empty string of at most
// 64 bytes), "args" (object, optional). Errors name the field.
[[nodiscard]] Result<ControlRequest> parse_control_request(const nlohmann::json& message);

// The id of a message if it has a usable one (for error replies to otherwise bad requests).
std::optional<std::uint64_t> control_message_id(const nlohmann::json& message);

// Serialised lines, each ending in '\n'. Invalid UTF-8 in strings is replaced, never thrown.
std::string format_control_request(std::uint64_t id, std::string_view command, const nlohmann::json& args);
std::string format_control_result(std::uint64_t id, const nlohmann::json& result);
std::string format_control_error(std::optional<std::uint64_t> id, const Error& error);
std::string format_control_notice(std::string_view notice, const nlohmann::json& details);
std::string format_json_line(const nlohmann::json& message);

// ErrorCode for a name written by error_code_name(); internal for unknown names.
ErrorCode error_code_from_name(std::string_view name);

}  // namespace llmq::ipc
