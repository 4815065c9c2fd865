#include "llmq/ipc/control_line.hpp"

#include <string>

namespace llmq::ipc {
namespace {

constexpr std::size_t kMaxCommandBytes = 64;

Error bad(const std::string& why) { return make_error(ErrorCode::invalid_argument, "control line: " + why); }

}  // namespace

void LineFramer::feed(const char* data, std::size_t size) {
    if (overflowed_) return;
    if (start_ != 0 && start_ >= buffer_.size() / 2) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    buffer_.append(data, size);
    // Stop buffering as soon as the unfinished line passes the limit.
    const std::size_t newline = buffer_.find('\n', start_ + scanned_);
    if (newline == std::string::npos) {
        scanned_ = buffer_.size() - start_;
        if (scanned_ > max_) {
            overflowed_ = true;
            buffer_.clear();
            start_ = scanned_ = 0;
        }
    }
}

std::optional<std::string> LineFramer::next_line() {
    if (overflowed_) return std::nullopt;
    const std::size_t newline = buffer_.find('\n', start_ + scanned_);
    if (newline == std::string::npos) {
        scanned_ = buffer_.size() - start_;
        if (scanned_ > max_) {
            overflowed_ = true;
            buffer_.clear();
            start_ = scanned_ = 0;
        }
        return std::nullopt;
    }
    std::size_t length = newline - start_;
    if (length > max_) {
        overflowed_ = true;
        buffer_.clear();
        start_ = scanned_ = 0;
        return std::nullopt;
    }
    if (length > 0 && buffer_[start_ + length - 1] == '\r') --length;
    std::string line = buffer_.substr(start_, length);
    start_ = newline + 1;
    scanned_ = 0;
    if (start_ == buffer_.size()) {
        buffer_.clear();
        start_ = 0;
    }
    return line;
}

bool json_depth_within(std::string_view text, std::uint32_t max_depth) {
    std::uint32_t depth = 0;
    bool in_string = false;
    bool escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) {
                escaped = false;
            } else if (c == '\\') {
                escaped = true;
            } else if (c == '"') {
                in_string = false;
            }
            continue;
        }
        if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max_depth) return false;
        } else if ((c == '}' || c == ']') && depth > 0) {
            --depth;
        }
    }
    return true;
}

Result<nlohmann::json> parse_control_line(std::string_view line, const ControlLimits& limits) {
    if (line.size() > limits.max_line_bytes) {
        return bad("longer than " + std::to_string(limits.max_line_bytes) + " bytes");
    }
    if (!json_depth_within(line, limits.max_depth)) {
        return bad("nested deeper than " + std::to_string(limits.max_depth) + " levels");
    }
    nlohmann::json message;
    try {
        message = nlohmann::json::parse(line.begin(), line.end());
    } catch (const nlohmann::json::parse_error& e) {
        return bad("not valid JSON (byte " + std::to_string(e.byte) + ")");
    } catch (const nlohmann::json::exception&) {
        // out_of_range: a number too large for a double ("4E864").
        return bad("holds a number out of range");
    }
    if (!message.is_object()) return bad("not a JSON object");
    return message;
}

std::optional<std::uint64_t> control_message_id(const nlohmann::json& message) {
    if (!message.is_object()) return std::nullopt;
    const auto it = message.find("id");
    if (it == message.end() || !it->is_number_unsigned()) return std::nullopt;
    return it->get<std::uint64_t>();
}

Result<ControlRequest> parse_control_request(const nlohmann::json& message) {
    if (!message.is_object()) return bad("not a JSON object");
    ControlRequest request;
    bool have_id = false, have_command = false;
    for (auto it = message.begin(); it != message.end(); ++it) {
        const std::string& key = it.key();
        const nlohmann::json& value = it.value();
        if (key == "id") {
            if (!value.is_number_unsigned()) return bad("\"id\" must be a non-negative integer");
            request.id = value.get<std::uint64_t>();
            have_id = true;
        } else if (key == "command") {
            if (!value.is_string()) return bad("\"command\" must be a string");
            const auto& name = value.get_ref<const std::string&>();
            if (name.empty() || name.size() > kMaxCommandBytes) {
                return bad("\"command\" must be 1 to " + std::to_string(kMaxCommandBytes) + " bytes");
            }
            for (const char c : name) {
                const bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
                if (!ok) return bad("\"command\" may hold only a-z, 0-9, '.', '_' and '-'");
            }
            request.command = name;
            have_command = true;
        } else if (key == "args") {
            if (value.is_null()) continue;
            if (!value.is_object()) return bad("\"args\" must be an object");
            request.args = value;
        } else {
            std::string shown = key.size() > 32 ? key.substr(0, 32) + "..." : key;
            return bad("unknown key \"" + shown + "\" (known: id, command, args)");
        }
    }
    if (!have_id) return bad("\"id\" is missing");
    if (!have_command) return bad("\"command\" is missing");
    return request;
}

std::string format_json_line(const nlohmann::json& message) {
    std::string line = message.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    return line;
}

std::string format_control_request(std::uint64_t id, std::string_view command, const nlohmann::json& args) {
    return format_json_line({{"id", id}, {"command", std::string(command)}, {"args", args}});
}

std::string format_control_result(std::uint64_t id, const nlohmann::json& result) {
    return format_json_line({{"id", id}, {"ok", true}, {"result", result}});
}

std::string format_control_error(std::optional<std::uint64_t> id, const Error& error) {
    nlohmann::json message;
    if (id) {
        message["id"] = *id;
    } else {
        message["id"] = nullptr;
    }
    message["ok"] = false;
    message["error"] = {{"code", error_code_name(error.code)}, {"message", error.message}};
    return format_json_line(message);
}

std::string format_control_notice(std::string_view notice, const nlohmann::json& details) {
    nlohmann::json message = details.is_object() ? details : nlohmann::json::object();
    message["notice"] = std::string(notice);
    return format_json_line(message);
}

ErrorCode error_code_from_name(std::string_view name) {
    for (int c = static_cast<int>(ErrorCode::ok); c <= static_cast<int>(ErrorCode::internal); ++c) {
        if (name == error_code_name(static_cast<ErrorCode>(c))) return static_cast<ErrorCode>(c);
    }
    return ErrorCode::internal;
}

}  // namespace llmq::ipc
