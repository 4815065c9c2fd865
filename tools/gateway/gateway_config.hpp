// GatewayConfig: the settings of llmq-gateway, from the [gateway] table of its own TOML file.
//
// The gateway has its own reader (not llmqd's): it is a separate program that links only the
// client library, and llmqd's reader refuses sections it does not know. A gateway file holds
// one [gateway] table; any other table, an unknown key or a bad value is an error naming the
// file, line and key, as llmqd's are. Command-line flags override the file.
#pragma once

#include <cstdint>
#include <string>

namespace llmq::gateway {

struct GatewayConfig {
    std::string listen = "127.0.0.1";    // address to bind; 127.0.0.1 keeps it on this host
    uint32_t port = 8080;                // TCP port; 0 picks a free one (printed at start)
    std::string instance = "default";    // the llmqd instance to serve
    std::string ipc_dir;                 // its socket folder; "" = the client library's default
    std::string api_keys_file;           // one bearer token a line; "" = no authentication
    // Larger request bodies get 413. 12 MiB holds llmqd's default 8 MiB of images a request
    // ([ipc] max_image_bytes) as base64 data URLs (4/3 of their bytes) and the text.
    uint64_t max_body_bytes = 12u << 20;
    uint32_t max_header_bytes = 16384;   // larger request headers get 431
    uint32_t request_timeout_ms = 30000; // the whole request (headers and body) must arrive in this
    uint32_t idle_timeout_ms = 60000;    // a kept-alive connection with no request is closed after this
    uint32_t max_streams = 64;           // generations in flight at once; more get 429
    uint32_t max_connections = 256;      // open HTTP connections; more are closed at accept
    uint32_t max_tokens_limit = 1 << 20; // larger max_tokens values are refused (400)
};

// One entry of the key table: for --print-config and the reader.
struct GatewayKey {
    const char* key;
    const char* description;
};
const GatewayKey* gateway_keys(std::size_t* count);

// Reads `path` into *config (starting from its current values). Returns "" on success, else the
// error ("file:line: [gateway] key = value: why").
std::string load_gateway_config(const std::string& path, GatewayConfig* config);

// The file with every key at its default, each with its description.
std::string print_gateway_config(const GatewayConfig& config);

}  // namespace llmq::gateway
