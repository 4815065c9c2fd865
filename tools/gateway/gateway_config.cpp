#include "gateway_config.hpp"

#include <fstream>
#include <iterator>
#include <sstream>

#include <toml++/toml.h>

namespace llmq::gateway {

namespace {

constexpr GatewayKey kKeys[] = {
    {"listen", "address to bind (127.0.0.1 keeps the gateway on this host; 0.0.0.0 opens it)"},
    {"port", "TCP port (0 picks a free one, printed at start)"},
    {"instance", "the llmqd instance to serve"},
    {"ipc_dir", "llmqd's socket folder (\"\": $LLMQ_IPC_DIR, else the user's runtime folder)"},
    {"api_keys_file", "file of accepted bearer tokens, one a line (\"\": no authentication)"},
    {"max_body_bytes", "largest request body; larger ones get 413 (base64 images take 4/3 of their bytes)"},
    {"max_header_bytes", "largest request header block; larger ones get 431"},
    {"request_timeout_ms", "time for a whole request to arrive; slower senders get 408"},
    {"idle_timeout_ms", "a kept-alive connection with no request is closed after this"},
    {"max_streams", "generations in flight at once; more get 429"},
    {"max_connections", "open HTTP connections; more are closed at accept"},
    {"max_tokens_limit", "largest max_tokens a request may ask for"},
};

std::string where(const std::string& path, const toml::node& node) {
    return path + ":" + std::to_string(node.source().begin.line);
}

std::string integer(const std::string& path, const std::string& key, const toml::node& node,
                    int64_t low, int64_t high, uint64_t* out) {
    const auto* v = node.as_integer();
    if (!v) return where(path, node) + ": [gateway] " + key + ": must be an integer";
    const int64_t value = v->get();
    if (value < low || value > high)
        return where(path, node) + ": [gateway] " + key + " = " + std::to_string(value) + ": must be between " +
               std::to_string(low) + " and " + std::to_string(high);
    *out = static_cast<uint64_t>(value);
    return "";
}

std::string string(const std::string& path, const std::string& key, const toml::node& node, std::string* out) {
    const auto* v = node.as_string();
    if (!v) return where(path, node) + ": [gateway] " + key + ": must be a string";
    *out = v->get();
    return "";
}

std::string apply(const std::string& path, const std::string& key, const toml::node& node, GatewayConfig* c) {
    uint64_t n = 0;
    std::string error;
    auto u32 = [&](uint32_t* field, int64_t low, int64_t high) {
        error = integer(path, key, node, low, high, &n);
        if (error.empty()) *field = static_cast<uint32_t>(n);
        return error;
    };
    if (key == "listen") return string(path, key, node, &c->listen);
    if (key == "instance") return string(path, key, node, &c->instance);
    if (key == "ipc_dir") return string(path, key, node, &c->ipc_dir);
    if (key == "api_keys_file") return string(path, key, node, &c->api_keys_file);
    if (key == "port") return u32(&c->port, 0, 65535);
    if (key == "max_header_bytes") return u32(&c->max_header_bytes, 1024, 1 << 20);
    if (key == "request_timeout_ms") return u32(&c->request_timeout_ms, 100, 3600000);
    if (key == "idle_timeout_ms") return u32(&c->idle_timeout_ms, 100, 3600000);
    if (key == "max_streams") return u32(&c->max_streams, 1, 65536);
    if (key == "max_connections") return u32(&c->max_connections, 1, 65536);
    if (key == "max_tokens_limit") return u32(&c->max_tokens_limit, 1, 1 << 24);
    if (key == "max_body_bytes") {
        error = integer(path, key, node, 1024, int64_t{1} << 30, &n);
        if (error.empty()) c->max_body_bytes = n;
        return error;
    }
    return where(path, node) + ": [gateway] " + key + ": unknown key (llmq-gateway --print-config lists every key)";
}

}  // namespace

const GatewayKey* gateway_keys(std::size_t* count) {
    *count = std::size(kKeys);
    return kKeys;
}

std::string load_gateway_config(const std::string& path, GatewayConfig* config) {
    std::ifstream in(path);
    if (!in) return path + ": cannot open the gateway's config file";
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    toml::table root;
    try {
        root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
        return path + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description());
    }
    for (const auto& [name, node] : root) {
        if (name.str() != "gateway" || !node.is_table())
            return where(path, node) + ": [" + std::string(name.str()) +
                   "]: llmq-gateway's file holds only a [gateway] table (llmqd's sections go in llmqd's file)";
        for (const auto& [key, value] : *node.as_table()) {
            std::string error = apply(path, std::string(key.str()), value, config);
            if (!error.empty()) return error;
        }
    }
    return "";
}

std::string print_gateway_config(const GatewayConfig& c) {
    std::ostringstream out;
    out << "[gateway]\n";
    auto line = [&](const char* key, const std::string& value) {
        for (const auto& k : kKeys)
            if (std::string_view(k.key) == key) out << "# " << k.description << "\n";
        out << key << " = " << value << "\n";
    };
    auto quoted = [](const std::string& s) { return "\"" + s + "\""; };
    line("listen", quoted(c.listen));
    line("port", std::to_string(c.port));
    line("instance", quoted(c.instance));
    line("ipc_dir", quoted(c.ipc_dir));
    line("api_keys_file", quoted(c.api_keys_file));
    line("max_body_bytes", std::to_string(c.max_body_bytes));
    line("max_header_bytes", std::to_string(c.max_header_bytes));
    line("request_timeout_ms", std::to_string(c.request_timeout_ms));
    line("idle_timeout_ms", std::to_string(c.idle_timeout_ms));
    line("max_streams", std::to_string(c.max_streams));
    line("max_connections", std::to_string(c.max_connections));
    line("max_tokens_limit", std::to_string(c.max_tokens_limit));
    return out.str();
}

}  // namespace llmq::gateway
