#include "llmq/runtime/metrics_endpoint.hpp"

#include <chrono>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "llmq/ipc/prometheus_text.hpp"

namespace llmq {

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using boost::system::error_code;

struct MetricsEndpoint::State {
    explicit State(net::io_context& io) : acceptor(io) {}
    tcp::acceptor acceptor;
    Provider metrics;
};

namespace {

net::awaitable<void> answer(std::shared_ptr<MetricsEndpoint::State> state, tcp::socket socket) {
    net::steady_timer deadline(socket.get_executor());
    deadline.expires_after(std::chrono::seconds(5));
    deadline.async_wait([&socket](const error_code& ec) {
        if (!ec) {
            error_code ignored;
            socket.close(ignored);
        }
    });
    boost::beast::flat_buffer buffer;
    http::request_parser<http::empty_body> parser;
    parser.header_limit(8192);
    error_code ec;
    co_await http::async_read(socket, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    if (!ec) {
        const auto& req = parser.get();
        const std::string target(req.target());
        http::response<http::string_body> res{http::status::ok, req.version()};
        res.set(http::field::server, "llmqd");
        res.keep_alive(false);
        if (target != "/metrics" && target.rfind("/metrics?", 0) != 0) {
            res.result(http::status::not_found);
            res.body() = "llmqd serves only /metrics here\n";
        } else if (req.method() != http::verb::get) {
            res.result(http::status::method_not_allowed);
            res.body() = "use GET /metrics\n";
        } else {
            ipc::MetricsWriter w;
            w.family("llmq_up", "gauge", "1: llmqd answered this scrape itself.");
            w.sample("llmq_up", {}, 1);
            ipc::write_daemon_metrics(w, state->metrics());
            res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
            res.body() = w.text();
        }
        res.prepare_payload();
        co_await http::async_write(socket, res, net::redirect_error(net::use_awaitable, ec));
    }
    deadline.cancel();
    error_code ignored;
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
}

net::awaitable<void> accept_loop(std::shared_ptr<MetricsEndpoint::State> state) {
    for (;;) {
        error_code ec;
        tcp::socket socket = co_await state->acceptor.async_accept(net::redirect_error(net::use_awaitable, ec));
        if (ec == net::error::operation_aborted || !state->acceptor.is_open()) co_return;
        if (ec) continue;
        net::co_spawn(state->acceptor.get_executor(), answer(state, std::move(socket)), net::detached);
    }
}

}  // namespace

std::unique_ptr<MetricsEndpoint> MetricsEndpoint::start(net::io_context& io, const std::string& listen,
                                                        Provider metrics, std::string* error) {
    const size_t colon = listen.rfind(':');
    std::string host = listen.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    error_code ec;
    const auto address = net::ip::make_address(host, ec);
    if (ec) {
        *error = "[metrics] listen = \"" + listen + "\": \"" + host + "\" is not an IP address";
        return nullptr;
    }
    const tcp::endpoint endpoint(address, static_cast<uint16_t>(std::stoi(listen.substr(colon + 1))));
    auto state = std::make_shared<State>(io);
    state->metrics = std::move(metrics);
    state->acceptor.open(endpoint.protocol(), ec);
    if (!ec) state->acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) state->acceptor.bind(endpoint, ec);
    if (!ec) state->acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) {
        *error = "[metrics] listen = \"" + listen + "\": cannot listen there: " + ec.message();
        return nullptr;
    }
    net::co_spawn(io, accept_loop(state), net::detached);
    return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(state));
}

MetricsEndpoint::~MetricsEndpoint() {
    error_code ignored;
    state_->acceptor.close(ignored);
}

std::string MetricsEndpoint::url() const {
    error_code ec;
    const auto ep = state_->acceptor.local_endpoint(ec);
    if (ec) return "";
    const std::string host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
    return "http://" + host + ":" + std::to_string(ep.port()) + "/metrics";
}

}  // namespace llmq
