// MetricsEndpoint: llmqd's own Prometheus endpoint, for installs without llmq-gateway
// ([metrics] listen = "ADDRESS:PORT"; off by default).
//
// GET /metrics answers the text of the `metrics` control command (ipc/prometheus_text.hpp);
// anything else is 404 or 405. One request per connection (closed after the answer), headers
// of at most 8 KiB, 5 s for a request to arrive: a scraper's endpoint, not a web server.
//
// Thread: runs on the daemon's Asio thread, where `metrics` (the provider) is called.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

namespace llmq {

class MetricsEndpoint {
public:
    using Provider = std::function<nlohmann::json()>;
    // Binds `listen` ("ADDRESS:PORT", port 0 = any free one) and starts accepting. Returns null
    // with *error set when the address is bad or taken.
    static std::unique_ptr<MetricsEndpoint> start(boost::asio::io_context& io, const std::string& listen,
                                                  Provider metrics, std::string* error);
    ~MetricsEndpoint();
    // "http://ADDRESS:PORT/metrics" as bound (the real port when 0 was asked for).
    std::string url() const;

    struct State;

private:
    explicit MetricsEndpoint(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;
};

}  // namespace llmq
