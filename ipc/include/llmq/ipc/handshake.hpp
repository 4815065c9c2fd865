// The handshake: the first line each side sends on a new connection.
//
//   client -> daemon  {"type": "hello", "protocol": 1, "client": "llmq generate"}
//   daemon -> client  {"type": "welcome", "protocol": 1, "instance": "default",
//                      "server": "llmqd", "region_size": 4194304, "connection": 3}
//                     sent with SCM_RIGHTS carrying two descriptors, in this order:
//                     the region memfd and the doorbell eventfd
//   or                {"type": "refused", "error": {"code": "permission_denied", "message": "..."}}
//                     and the daemon closes the connection.
//
// After the welcome the socket carries control lines (control_line.hpp).
#pragma once

#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "llmq/ipc/result.hpp"

namespace llmq::ipc {

struct Hello {
    std::uint32_t protocol = 0;
    std::string client;  // free-form name for logs and `llmq status`, at most 128 bytes
};

struct Welcome {
    std::uint32_t protocol = 0;
    std::string instance;
    std::string server;
    std::uint64_t region_size = 0;
    std::uint64_t connection = 0;
};

std::string format_hello(const Hello& hello);
std::string format_welcome(const Welcome& welcome);
std::string format_refusal(const Error& error);

// Checks a parsed hello line: type, protocol version (must equal kProtocolVersion; the error
// names both versions), client name.
[[nodiscard]] Result<Hello> parse_hello(const nlohmann::json& message);

// Reads the daemon's first line: a welcome (checked like a hello), or a refusal turned into the
// Error it carries.
[[nodiscard]] Result<Welcome> parse_welcome(const nlohmann::json& message);

}  // namespace llmq::ipc
