#include "llmq/ipc/handshake.hpp"

#include "llmq/ipc/control_line.hpp"
#include "llmq/ipc/region_layout.hpp"

namespace llmq::ipc {
namespace {

constexpr std::size_t kMaxClientName = 128;

Error bad(const std::string& what, const std::string& why) {
    return make_error(ErrorCode::protocol, what + ": " + why);
}

Result<std::uint32_t> protocol_of(const nlohmann::json& m, const std::string& what) {
    const auto it = m.find("protocol");
    if (it == m.end() || !it->is_number_unsigned()) return bad(what, "\"protocol\" is missing or not a number");
    const auto version = it->get<std::uint64_t>();
    if (version != kProtocolVersion) {
        return bad(what, "peer speaks protocol " + std::to_string(version) + ", this side speaks " +
                             std::to_string(kProtocolVersion) + "; update the older of llmqd and the client");
    }
    return static_cast<std::uint32_t>(version);
}

std::string string_field(const nlohmann::json& m, const char* key) {
    const auto it = m.find(key);
    if (it == m.end() || !it->is_string()) return {};
    return it->get<std::string>();
}

}  // namespace

std::string format_hello(const Hello& hello) {
    return format_json_line({{"type", "hello"}, {"protocol", hello.protocol}, {"client", hello.client}});
}

std::string format_welcome(const Welcome& w) {
    return format_json_line({{"type", "welcome"},
                             {"protocol", w.protocol},
                             {"instance", w.instance},
                             {"server", w.server},
                             {"region_size", w.region_size},
                             {"connection", w.connection}});
}

std::string format_refusal(const Error& error) {
    return format_json_line(
        {{"type", "refused"}, {"error", {{"code", error_code_name(error.code)}, {"message", error.message}}}});
}

Result<Hello> parse_hello(const nlohmann::json& m) {
    if (!m.is_object() || string_field(m, "type") != "hello") {
        return bad("handshake", "the first line must be {\"type\": \"hello\", \"protocol\": " +
                                    std::to_string(kProtocolVersion) + ", ...}");
    }
    auto protocol = protocol_of(m, "hello");
    if (!protocol) return protocol.error();
    Hello hello;
    hello.protocol = *protocol;
    hello.client = string_field(m, "client");
    if (hello.client.size() > kMaxClientName) hello.client.resize(kMaxClientName);
    return hello;
}

Result<Welcome> parse_welcome(const nlohmann::json& m) {
    if (!m.is_object()) return bad("handshake", "llmqd's first line is not a JSON object");
    const std::string type = string_field(m, "type");
    if (type == "refused") {
        const auto it = m.find("error");
        if (it == m.end() || !it->is_object()) return bad("handshake", "llmqd refused the connection");
        return make_error(error_code_from_name(string_field(*it, "code")),
                          "llmqd refused the connection: " + string_field(*it, "message"));
    }
    if (type != "welcome") return bad("handshake", "llmqd's first line is neither a welcome nor a refusal");
    auto protocol = protocol_of(m, "welcome");
    if (!protocol) return protocol.error();
    Welcome w;
    w.protocol = *protocol;
    w.instance = string_field(m, "instance");
    w.server = string_field(m, "server");
    const auto size = m.find("region_size");
    if (size != m.end() && size->is_number_unsigned()) w.region_size = size->get<std::uint64_t>();
    const auto conn = m.find("connection");
    if (conn != m.end() && conn->is_number_unsigned()) w.connection = conn->get<std::uint64_t>();
    return w;
}

}  // namespace llmq::ipc
