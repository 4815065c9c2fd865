// GatewayServer: llmq-gateway's HTTP/1.1 side (Boost.Beast on one Asio thread).
//
// Routes: GET /health, GET /metrics, GET /v1/models, GET /v1/models/{id}, POST /v1/completions,
// POST /v1/chat/completions. Each connection is one coroutine that reads a request, answers it
// and waits for the next (keep-alive). Generations go through the DaemonBridge; streamed ones
// are written as Server-Sent Events (one `data: {json}` chunk per token, then `data: [DONE]`).
//
// Limits (GatewayConfig): header and body size (431, 413), the time a request may take to
// arrive (408), the idle time of a kept-alive connection (closed), generations in flight (429),
// open connections (closed at accept). A client that closes its connection while its request
// runs has it cancelled in llmqd at once (the connection is watched while the tokens come).
// With api_keys_file, /v1/* need "Authorization: Bearer <key>" (401 otherwise); /health and
// /metrics stay open, for load balancers and scrapers on the host.
//
// Thread: everything runs on the io_context's thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include "daemon_bridge.hpp"
#include "gateway_config.hpp"

namespace llmq::gateway {

struct GenerationStream;

class GatewayServer {
public:
    // Binds and listens; returns "" or the error. api_keys: accepted bearer tokens (empty: none
    // needed).
    GatewayServer(boost::asio::io_context& io, GatewayConfig config, std::set<std::string> api_keys);
    ~GatewayServer();
    std::string start();
    uint16_t port() const;

    // Called by the bridge (on the io thread) with each event.
    void on_event(ipc::Event event);
    DaemonBridge& bridge() { return *bridge_; }

    // The gateway's own counters, for /metrics.
    struct Counters {
        std::map<std::pair<std::string, int>, uint64_t> http_requests;  // (route, status) → count
        uint64_t connections_open = 0;
        uint64_t connections_total = 0;
        uint64_t connections_refused = 0;
        uint64_t streams_open = 0;
        uint64_t cancelled_by_disconnect = 0;
    };

private:
    class Session;
    friend class Session;

    boost::asio::awaitable<void> accept_loop();

    boost::asio::io_context& io_;
    GatewayConfig config_;
    std::set<std::string> api_keys_;
    boost::asio::ip::tcp::acceptor acceptor_;
    std::unique_ptr<DaemonBridge> bridge_;
    std::unordered_map<uint64_t, std::shared_ptr<GenerationStream>> streams_;  // by llmqd request id
    Counters counters_;
    std::string model_name_;  // cached from status; refreshed when a request names another
};

// The accepted keys of an api_keys_file: one a line, blank lines and '#' comments skipped.
// Returns "" or the error.
std::string read_api_keys(const std::string& path, std::set<std::string>* keys);

}  // namespace llmq::gateway
