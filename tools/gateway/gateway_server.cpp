#include "gateway_server.hpp"

#include <sys/socket.h>

#include <chrono>
#include <ctime>
#include <array>
#include <deque>
#include <fstream>
#include <iostream>
#include <random>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include "openai_request.hpp"
#include "openai_response.hpp"
#include "llmq/ipc/prometheus_text.hpp"

namespace llmq::gateway {

using ipc::MetricsWriter;
using ipc::write_daemon_metrics;

namespace net = boost::asio;
namespace http = boost::beast::http;
using tcp = net::ip::tcp;
using json = nlohmann::json;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;

// One generation's events, handed from the bridge to the session that waits for them.
struct GenerationStream {
    explicit GenerationStream(net::any_io_executor ex) : wake(ex) {}
    std::deque<ipc::Event> events;
    net::steady_timer wake;  // cancelled to wake the waiting session
    bool client_gone = false;
};

namespace {

// A value that a bridge callback delivers later, on the io thread, to a waiting session.
template <typename T>
struct Awaited {
    explicit Awaited(net::any_io_executor ex) : wake(ex) {}
    std::optional<T> value;
    net::steady_timer wake;  // cancelled when the value is set

    void set(T v) {
        value.emplace(std::move(v));
        wake.cancel();
    }
    net::awaitable<void> wait() {
        while (!value) {
            wake.expires_at(net::steady_timer::time_point::max());
            error_code ec;
            co_await wake.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
    }
};

std::string random_id(const char* prefix) {
    static std::mt19937_64 rng{std::random_device{}()};
    static const char* digits = "0123456789abcdef";
    std::string id = prefix;
    for (int i = 0; i < 24; ++i) id += digits[rng() % 16];
    return id;
}

ApiError server_error(int status, const std::string& type, const std::string& message, const std::string& code = "") {
    return ApiError{status, type, message, "", code};
}

// An ipc error (bridge submit or control) as the HTTP answer.
ApiError from_ipc(const ipc::Error& e) {
    switch (e.code) {
        case ipc::ErrorCode::invalid_argument: return ApiError{400, "invalid_request_error", e.message, "", ""};
        case ipc::ErrorCode::busy: return server_error(503, "server_error", "llmqd is busy: " + e.message, "server_busy");
        case ipc::ErrorCode::not_found:
        case ipc::ErrorCode::disconnected:
        case ipc::ErrorCode::timeout:
        case ipc::ErrorCode::permission_denied:
            return server_error(503, "server_error", "llmqd is not reachable: " + e.message, "daemon_unavailable");
        default: return server_error(500, "server_error", e.message);
    }
}

// A request's error event as the HTTP answer.
ApiError from_event(const ipc::Event& e) {
    switch (e.error_code()) {
        case ipc::EventError::invalid_request: return ApiError{400, "invalid_request_error", e.text, "", ""};
        case ipc::EventError::busy:
            return server_error(503, "server_error", "llmqd's queue is full: " + e.text, "server_busy");
        case ipc::EventError::shutting_down: return server_error(503, "server_error", e.text, "shutting_down");
        default: return server_error(500, "server_error", e.text);
    }
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class GatewayServer::Session : public std::enable_shared_from_this<Session> {
public:
    Session(GatewayServer& server, tcp::socket socket)
        : server_(server), socket_(std::move(socket)), watchdog_(socket_.get_executor()) {}

    net::awaitable<void> run();

private:
    using Request = http::request<http::string_body>;

    // The watchdog: when it fires, every operation on the socket is cancelled.
    void arm(std::chrono::milliseconds limit) {
        timed_out_ = false;
        watchdog_.expires_after(limit);
        watchdog_.async_wait([self = shared_from_this()](const error_code& ec) {
            if (ec) return;
            self->timed_out_ = true;
            error_code ignored;
            self->socket_.cancel(ignored);
        });
    }
    void disarm() { watchdog_.cancel(); }

    net::awaitable<bool> write_json(const Request& req, int status, const json& body, const std::string& route);
    net::awaitable<bool> write_text(const Request& req, int status, const std::string& content_type,
                                    std::string body, const std::string& route);
    net::awaitable<bool> write_error(const Request& req, const ApiError& error, const std::string& route) {
        co_return co_await write_json(req, error.status, error.to_json(), route);
    }
    net::awaitable<ipc::Result<json>> control(const std::string& command, json args);
    net::awaitable<bool> handle(const Request& req);
    net::awaitable<bool> handle_generate(const Request& req, bool chat, const std::string& route);
    net::awaitable<bool> handle_models(const Request& req, const std::string& target);
    net::awaitable<bool> handle_metrics(const Request& req);
    net::awaitable<std::string> model_name(bool refresh);
    // Watches the socket while a generation runs: EOF or an error marks the client gone and
    // cancels its request.
    void watch_for_disconnect(const std::shared_ptr<GenerationStream>& stream, uint64_t request_id);
    net::awaitable<bool> write_chunk(const std::string& data);
    // After refusing a request whose rest is still arriving: stop sending, read and drop what
    // comes for a moment, then close, so the kernel does not reset the connection (and the
    // client's copy of the answer) because unread bytes were left.
    net::awaitable<void> linger_close();

    GatewayServer& server_;
    tcp::socket socket_;
    net::steady_timer watchdog_;
    bool timed_out_ = false;
    boost::beast::flat_buffer buffer_;
};

net::awaitable<bool> GatewayServer::Session::write_text(const Request& req, int status, const std::string& content_type,
                                                        std::string body, const std::string& route) {
    http::response<http::string_body> res{static_cast<http::status>(status), req.version()};
    res.set(http::field::server, "llmq-gateway");
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive() && status < 500);
    res.body() = std::move(body);
    res.prepare_payload();
    ++server_.counters_.http_requests[{route, status}];
    arm(std::chrono::milliseconds(server_.config_.request_timeout_ms));
    error_code ec;
    co_await http::async_write(socket_, res, net::redirect_error(net::use_awaitable, ec));
    disarm();
    co_return !ec && res.keep_alive();
}

net::awaitable<bool> GatewayServer::Session::write_json(const Request& req, int status, const json& body,
                                                        const std::string& route) {
    const std::string type = "application/json";
    std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
    co_return co_await write_text(req, status, type, std::move(text), route);
}

net::awaitable<ipc::Result<json>> GatewayServer::Session::control(const std::string& command, json args) {
    auto reply = std::make_shared<Awaited<ipc::Result<json>>>(socket_.get_executor());
    server_.bridge_->control(command, std::move(args), [reply](ipc::Result<json> r) { reply->set(std::move(r)); });
    co_await reply->wait();
    co_return std::move(*reply->value);
}

net::awaitable<std::string> GatewayServer::Session::model_name(bool refresh) {
    if (server_.model_name_.empty() || refresh) {
        const std::string command = "status";
        auto status = co_await control(command, json::object());
        if (status && status->contains("model") && (*status)["model"].contains("name"))
            server_.model_name_ = (*status)["model"]["name"].get<std::string>();
    }
    co_return server_.model_name_;
}

net::awaitable<void> GatewayServer::Session::run() {
    const auto& cfg = server_.config_;
    for (;;) {
        // Idle: wait for the next request's first byte.
        if (buffer_.size() == 0) {
            arm(std::chrono::milliseconds(cfg.idle_timeout_ms));
            error_code ec;
            co_await socket_.async_wait(tcp::socket::wait_read, net::redirect_error(net::use_awaitable, ec));
            disarm();
            if (ec || timed_out_) break;
        }
        http::request_parser<http::string_body> parser;
        parser.header_limit(cfg.max_header_bytes);
        parser.body_limit(cfg.max_body_bytes);
        arm(std::chrono::milliseconds(cfg.request_timeout_ms));
        error_code ec;
        co_await http::async_read_header(socket_, buffer_, parser, net::redirect_error(net::use_awaitable, ec));
        if (!ec && parser.get()[http::field::expect] == "100-continue") {
            http::response<http::empty_body> cont{http::status::continue_, parser.get().version()};
            co_await http::async_write(socket_, cont, net::redirect_error(net::use_awaitable, ec));
        }
        if (!ec && !parser.is_done())
            co_await http::async_read(socket_, buffer_, parser, net::redirect_error(net::use_awaitable, ec));
        disarm();
        if (ec == http::error::end_of_stream) break;
        if (ec) {
            Request dummy;
            dummy.version(11);
            dummy.keep_alive(false);
            ApiError error{400, "invalid_request_error", "malformed HTTP request: " + ec.message(), "", ""};
            if (timed_out_) {
                error = ApiError{408, "invalid_request_error",
                                 "the request did not arrive within " + std::to_string(cfg.request_timeout_ms) +
                                     " ms ([gateway] request_timeout_ms)",
                                 "", "request_timeout"};
            } else if (ec == http::error::header_limit) {
                error = ApiError{431, "invalid_request_error",
                                 "the request headers are larger than " + std::to_string(cfg.max_header_bytes) +
                                     " bytes ([gateway] max_header_bytes)",
                                 "", ""};
            } else if (ec == http::error::body_limit) {
                error = ApiError{413, "invalid_request_error",
                                 "the request body is larger than " + std::to_string(cfg.max_body_bytes) +
                                     " bytes ([gateway] max_body_bytes)",
                                 "", ""};
            } else if (ec == net::error::eof || ec == net::error::connection_reset || ec == http::error::partial_message) {
                break;  // the client went away mid-request
            }
            const std::string invalid_route = "invalid";
            (void)co_await write_error(dummy, error, invalid_route);
            co_await linger_close();
            co_return;
        }
        Request req = parser.release();
        const bool keep = co_await handle(req);
        if (!keep) break;
    }
    error_code ignored;
    socket_.shutdown(tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
}

net::awaitable<bool> GatewayServer::Session::handle(const Request& req) {
    const std::string target(req.target());
    const std::string path = target.substr(0, target.find('?'));
    const auto started = Clock::now();
    bool keep = true;
    std::string route = path;
    auto method_not_allowed = [&](const std::string& allowed) {
        return ApiError{405, "invalid_request_error", std::string(req.method_string()) + " " + path + ": use " + allowed,
                        "", "method_not_allowed"};
    };
    const bool is_v1 = path.rfind("/v1/", 0) == 0;
    if (is_v1 && !server_.api_keys_.empty()) {
        const std::string auth(req[http::field::authorization]);
        const std::string bearer = "Bearer ";
        const bool ok = auth.rfind(bearer, 0) == 0 && server_.api_keys_.count(auth.substr(bearer.size()));
        if (!ok) {
            const ApiError error{401, "invalid_request_error",
                                 auth.empty() ? "no API key: send \"Authorization: Bearer <key>\"" : "the API key is not accepted",
                                 "", "invalid_api_key"};
            const std::string unauthorized = "unauthorized";
            co_return co_await write_error(req, error, unauthorized);
        }
    }
    if (path == "/health") {
        if (req.method() != http::verb::get) {
            const ApiError error = method_not_allowed("GET");
            co_return co_await write_error(req, error, path);
        }
        const std::string command = "ping";
        auto pong = co_await control(command, json::object());
        const json answer = pong ? json{{"status", "ok"}} : json{{"status", "unavailable"}, {"error", pong.error().message}};
        keep = co_await write_json(req, pong ? 200 : 503, answer, route);
    } else if (path == "/metrics") {
        if (req.method() != http::verb::get) {
            const ApiError error = method_not_allowed("GET");
            co_return co_await write_error(req, error, path);
        }
        keep = co_await handle_metrics(req);
    } else if (path == "/v1/models" || path.rfind("/v1/models/", 0) == 0) {
        if (req.method() != http::verb::get) {
            const ApiError error = method_not_allowed("GET");
            co_return co_await write_error(req, error, path);
        }
        route = "/v1/models";
        keep = co_await handle_models(req, path);
    } else if (path == "/v1/completions" || path == "/v1/chat/completions") {
        if (req.method() != http::verb::post) {
            const ApiError error = method_not_allowed("POST");
            co_return co_await write_error(req, error, path);
        }
        keep = co_await handle_generate(req, path == "/v1/chat/completions", route);
    } else {
        route = "unknown";
        const ApiError error{404, "invalid_request_error", "no route " + path, "", "not_found"};
        keep = co_await write_error(req, error, route);
    }
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
    std::clog << "llmq-gateway: " << req.method_string() << ' ' << path << " " << ms << " ms\n";
    co_return keep;
}

net::awaitable<bool> GatewayServer::Session::handle_models(const Request& req, const std::string& path) {
    const std::string route = "/v1/models", command = "status";
    auto status = co_await control(command, json::object());
    if (!status) {
        const ApiError error = from_ipc(status.error());
        co_return co_await write_error(req, error, route);
    }
    const std::string name = (*status)["model"].value("name", "model");
    server_.model_name_ = name;
    const int64_t created = static_cast<int64_t>(std::time(nullptr)) -
                            static_cast<int64_t>((*status).value("uptime_s", 0.0));
    json model{{"id", name}, {"object", "model"}, {"created", created}, {"owned_by", "llmq"}};
    if (path == route) {
        const json list{{"object", "list"}, {"data", json::array({model})}};
        co_return co_await write_json(req, 200, list, route);
    }
    const std::string wanted = path.substr(std::string("/v1/models/").size());
    if (wanted != name) {
        const ApiError error{404, "invalid_request_error",
                             "the model '" + wanted + "' does not exist; llmqd serves '" + name + "'", "model",
                             "model_not_found"};
        co_return co_await write_error(req, error, route);
    }
    co_return co_await write_json(req, 200, model, route);
}

net::awaitable<bool> GatewayServer::Session::handle_metrics(const Request& req) {
    const std::string command = "metrics";
    auto metrics = co_await control(command, json::object());
    MetricsWriter w;
    w.family("llmq_up", "gauge", "1 when the gateway reached llmqd for this scrape.");
    w.sample("llmq_up", {}, metrics ? 1 : 0);
    if (metrics) write_daemon_metrics(w, *metrics);
    else w.comment("llmqd: " + metrics.error().message);
    const auto& c = server_.counters_;
    w.family("llmq_gateway_http_requests_total", "counter", "HTTP requests the gateway answered, by route and status.");
    for (const auto& [key, count] : c.http_requests)
        w.sample("llmq_gateway_http_requests_total", {{"route", key.first}, {"code", std::to_string(key.second)}},
                 static_cast<double>(count));
    w.family("llmq_gateway_connections", "gauge", "Open HTTP connections.");
    w.sample("llmq_gateway_connections", {}, static_cast<double>(c.connections_open));
    w.family("llmq_gateway_connections_total", "counter", "HTTP connections accepted.");
    w.sample("llmq_gateway_connections_total", {}, static_cast<double>(c.connections_total));
    w.family("llmq_gateway_connections_refused_total", "counter", "HTTP connections closed at accept ([gateway] max_connections).");
    w.sample("llmq_gateway_connections_refused_total", {}, static_cast<double>(c.connections_refused));
    w.family("llmq_gateway_streams", "gauge", "Generations in flight through the gateway.");
    w.sample("llmq_gateway_streams", {}, static_cast<double>(c.streams_open));
    w.family("llmq_gateway_cancelled_by_disconnect_total", "counter", "Generations cancelled because their HTTP client left.");
    w.sample("llmq_gateway_cancelled_by_disconnect_total", {}, static_cast<double>(c.cancelled_by_disconnect));
    w.family("llmq_gateway_daemon_connections_total", "counter", "Connections the gateway made to llmqd.");
    w.sample("llmq_gateway_daemon_connections_total", {}, static_cast<double>(server_.bridge_->connections()));
    const std::string type = "text/plain; version=0.0.4; charset=utf-8", route = "/metrics";
    co_return co_await write_text(req, 200, type, w.text(), route);
}

void GatewayServer::Session::watch_for_disconnect(const std::shared_ptr<GenerationStream>& stream, uint64_t request_id) {
    socket_.async_wait(tcp::socket::wait_read,
                       [self = shared_from_this(), weak = std::weak_ptr<GenerationStream>(stream), request_id](const error_code& ec) {
                           auto stream = weak.lock();
                           if (!stream || ec == net::error::operation_aborted) return;
                           char byte;
                           const ssize_t n = ::recv(self->socket_.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
                           if (n > 0) return;  // a pipelined request: read after this one
                           if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                               self->watch_for_disconnect(stream, request_id);
                               return;
                           }
                           if (stream->client_gone) return;
                           stream->client_gone = true;
                           ++self->server_.counters_.cancelled_by_disconnect;
                           self->server_.bridge_->cancel(request_id);
                           stream->wake.cancel();
                       });
}

net::awaitable<void> GatewayServer::Session::linger_close() {
    error_code ec;
    socket_.shutdown(tcp::socket::shutdown_send, ec);
    arm(std::chrono::milliseconds(1000));
    std::array<char, 16384> sink;
    while (!ec && !timed_out_)
        co_await socket_.async_read_some(net::buffer(sink), net::redirect_error(net::use_awaitable, ec));
    disarm();
    socket_.close(ec);
}

net::awaitable<bool> GatewayServer::Session::write_chunk(const std::string& data) {
    arm(std::chrono::milliseconds(server_.config_.request_timeout_ms));
    error_code ec;
    co_await net::async_write(socket_, http::make_chunk(net::buffer(data)), net::redirect_error(net::use_awaitable, ec));
    disarm();
    co_return !ec;
}

net::awaitable<bool> GatewayServer::Session::handle_generate(const Request& req, bool chat, const std::string& route) {
    auto body = parse_json_body(req.body());
    if (auto* error = std::get_if<ApiError>(&body)) co_return co_await write_error(req, *error, route);
    RequestLimits limits;
    limits.max_tokens = server_.config_.max_tokens_limit;
    const json& j = std::get<json>(body);
    ParsedRequest parsed = chat ? parse_chat_request(j, limits) : parse_completion_request(j, limits);
    if (auto* error = std::get_if<ApiError>(&parsed)) co_return co_await write_error(req, *error, route);
    ApiRequest api = std::move(std::get<ApiRequest>(parsed));

    // The model: llmqd serves one; a request must name it.
    std::string name = co_await model_name(false);
    if (api.model != name) name = co_await model_name(true);
    std::optional<ApiError> refusal;
    if (name.empty())
        refusal = server_error(503, "server_error", "llmqd is not reachable", "daemon_unavailable");
    else if (api.model != name)
        refusal = ApiError{404, "invalid_request_error",
                           "the model '" + api.model + "' does not exist; llmqd serves '" + name + "'", "model",
                           "model_not_found"};
    else if (server_.counters_.streams_open >= server_.config_.max_streams)
        refusal = ApiError{429, "requests",
                           "too many generations in flight (" + std::to_string(server_.config_.max_streams) +
                               ", [gateway] max_streams); retry later",
                           "", "rate_limit_exceeded"};
    if (refusal) co_return co_await write_error(req, *refusal, route);

    if (!api.generate.images.empty()) {
        // llmqd's own limits, asked now (they are its [ipc] settings and its model's).
        const std::string command = "status";
        auto status = co_await control(command, json::object());
        if (!status) refusal = from_ipc(status.error());
        else refusal = image_refusal(*status, api.generate);
        if (refusal) co_return co_await write_error(req, *refusal, route);
    }
    if (chat) {
        const std::string command = "chat_template";
        json args{{"messages", api.messages}, {"add_generation_prompt", true}};
        auto rendered = co_await control(command, std::move(args));
        if (!rendered) refusal = from_ipc(rendered.error());
        else if (!rendered->contains("tokens") || !(*rendered)["tokens"].is_array())
            refusal = server_error(500, "server_error", "llmqd's chat_template command returned no tokens (llmqd too old?)");
        if (refusal) co_return co_await write_error(req, *refusal, route);
        api.generate.prompt_tokens = (*rendered)["tokens"].get<std::vector<int32_t>>();
    }

    // Submit and register the stream before any event can be dispatched (the bridge posts the
    // submit's result before the request's events).
    auto submitted = std::make_shared<Awaited<ipc::Result<uint64_t>>>(socket_.get_executor());
    auto stream = std::make_shared<GenerationStream>(socket_.get_executor());
    GatewayServer& server = server_;
    server_.bridge_->submit(api.generate, [submitted, stream, &server](ipc::Result<uint64_t> id) {
        if (id) server.streams_[*id] = stream;
        submitted->set(std::move(id));
    });
    co_await submitted->wait();
    if (!*submitted->value) {
        const ApiError error = from_ipc(submitted->value->error());
        co_return co_await write_error(req, error, route);
    }
    const uint64_t request_id = submitted->value->value();
    ++server_.counters_.streams_open;
    // Whatever way this returns: a request that has not ended (its client stopped reading, a
    // write failed) is cancelled in llmqd, so it never runs on for nobody.
    struct Release {
        GatewayServer& s;
        uint64_t id;
        bool ended = false;
        ~Release() {
            if (!ended) s.bridge_->cancel(id);
            s.streams_.erase(id);
            --s.counters_.streams_open;
        }
    } release{server_, request_id};
    watch_for_disconnect(stream, request_id);

    ResponseContext ctx{random_id(chat ? "chatcmpl-" : "cmpl-"), static_cast<int64_t>(std::time(nullptr)),
                        api.model, chat, api.logprobs};
    Utf8Joiner joiner;
    std::string text;
    CompletionLogprobs completion_logprobs;
    json chat_logprobs = json::array();
    bool headers_sent = false;
    bool first_chunk = true;
    auto sse = [](const json& j) { return "data: " + j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n"; };
    auto send_headers = [&]() -> net::awaitable<bool> {
        http::response<http::empty_body> res{http::status::ok, req.version()};
        res.set(http::field::server, "llmq-gateway");
        res.set(http::field::content_type, "text/event-stream");
        res.set(http::field::cache_control, "no-cache");
        res.keep_alive(req.keep_alive());
        res.chunked(true);
        http::response_serializer<http::empty_body> sr{res};
        ++server_.counters_.http_requests[{route, 200}];
        arm(std::chrono::milliseconds(server_.config_.request_timeout_ms));
        error_code ec;
        co_await http::async_write_header(socket_, sr, net::redirect_error(net::use_awaitable, ec));
        disarm();
        headers_sent = true;
        co_return !ec;
    };

    for (;;) {
        while (stream->events.empty() && !stream->client_gone) {
            stream->wake.expires_at(net::steady_timer::time_point::max());
            error_code ec;
            co_await stream->wake.async_wait(net::redirect_error(net::use_awaitable, ec));
        }
        if (stream->client_gone) {
            std::clog << "llmq-gateway: client left; cancelled request " << request_id << "\n";
            co_return false;
        }
        ipc::Event e = std::move(stream->events.front());
        stream->events.pop_front();
        if (e.kind == ipc::EventKind::final || e.kind == ipc::EventKind::error) release.ended = true;
        if (e.kind == ipc::EventKind::token) {
            const std::string piece = joiner.push(e.text);
            json lp = nullptr;
            if (api.logprobs && e.has_logprob) {
                if (chat) {
                    chat_logprobs.push_back(chat_logprob_entry(e.text, e.logprob));
                    lp = json{{"content", json::array({chat_logprob_entry(e.text, e.logprob)})}};
                } else {
                    completion_logprobs.add(e.text, e.logprob);
                    CompletionLogprobs one;
                    one.offset = text.size();
                    one.add(e.text, e.logprob);
                    lp = one.to_json();
                }
            }
            text += piece;
            if (api.stream) {
                if (!headers_sent && !co_await send_headers()) co_return false;
                const std::string chunk = sse(stream_chunk(ctx, piece, first_chunk, "", lp));
                if (!co_await write_chunk(chunk)) co_return false;
                first_chunk = false;
            }
            continue;
        }
        if (e.kind == ipc::EventKind::error) {
            const ApiError error = from_event(e);
            if (!headers_sent) co_return co_await write_error(req, error, route);
            const std::string chunk = sse(error.to_json());
            (void)co_await write_chunk(chunk);
            co_return false;  // a stream cut short: close, so the client sees the end
        }
        if (e.kind != ipc::EventKind::final) continue;
        const std::string rest = joiner.finish();
        text += rest;
        const std::string finish = openai_finish_reason(e.finish_reason());
        Usage usage{e.prompt_tokens, e.generated_tokens};
        if (!api.stream) {
            json lp = nullptr;
            if (api.logprobs) lp = chat ? json{{"content", chat_logprobs}} : completion_logprobs.to_json();
            const json whole = whole_response(ctx, text, finish, usage, lp);
            co_return co_await write_json(req, 200, whole, route);
        }
        if (!headers_sent && !co_await send_headers()) co_return false;
        const std::string last = sse(stream_chunk(ctx, rest, first_chunk, finish, nullptr));
        if (!co_await write_chunk(last)) co_return false;
        const std::string usage_text = sse(usage_chunk(ctx, usage)), done = "data: [DONE]\n\n";
        if (api.include_usage && !co_await write_chunk(usage_text)) co_return false;
        if (!co_await write_chunk(done)) co_return false;
        arm(std::chrono::milliseconds(server_.config_.request_timeout_ms));
        error_code ec;
        co_await net::async_write(socket_, http::make_chunk_last(), net::redirect_error(net::use_awaitable, ec));
        disarm();
        co_return !ec && req.keep_alive();
    }
}

// ---------------------------------------------------------------------------------------------

GatewayServer::GatewayServer(net::io_context& io, GatewayConfig config, std::set<std::string> api_keys)
    : io_(io), config_(std::move(config)), api_keys_(std::move(api_keys)), acceptor_(io) {
    ipc::ConnectOptions options;
    options.instance = config_.instance;
    if (!config_.ipc_dir.empty()) options.dir = config_.ipc_dir;
    options.client_name = "llmq-gateway";
    bridge_ = std::make_unique<DaemonBridge>(io_, options, [this](ipc::Event e) { on_event(std::move(e)); });
}

GatewayServer::~GatewayServer() { bridge_.reset(); }

std::string GatewayServer::start() {
    error_code ec;
    const auto address = net::ip::make_address(config_.listen, ec);
    if (ec) return "[gateway] listen = \"" + config_.listen + "\": not an IP address (" + ec.message() + ")";
    const tcp::endpoint endpoint(address, static_cast<uint16_t>(config_.port));
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
        return "cannot listen on " + config_.listen + ":" + std::to_string(config_.port) + ": " + ec.message() +
               " (another program on that port? set [gateway] port or --port)";
    net::co_spawn(io_, accept_loop(), net::detached);
    return "";
}

uint16_t GatewayServer::port() const { return acceptor_.local_endpoint().port(); }

void GatewayServer::on_event(ipc::Event event) {
    auto it = streams_.find(event.request_id);
    if (it == streams_.end()) return;  // its session is gone
    auto stream = it->second;
    const bool last = event.kind == ipc::EventKind::final || event.kind == ipc::EventKind::error;
    stream->events.push_back(std::move(event));
    if (last) streams_.erase(it);
    stream->wake.cancel();
}

net::awaitable<void> GatewayServer::accept_loop() {
    for (;;) {
        error_code ec;
        tcp::socket socket = co_await acceptor_.async_accept(net::redirect_error(net::use_awaitable, ec));
        if (ec) {
            if (ec == net::error::operation_aborted) co_return;
            continue;
        }
        if (counters_.connections_open >= config_.max_connections) {
            ++counters_.connections_refused;
            socket.close(ec);
            continue;
        }
        socket.set_option(tcp::no_delay(true), ec);
        // A fixed send buffer (the kernel doubles it) instead of one autotuned up to megabytes:
        // it bounds what a connection holds in the kernel, and a client that stops reading
        // blocks the gateway's writes soon, so the write timeout finds it and its request is
        // cancelled instead of generating into a buffer nobody reads.
        socket.set_option(net::socket_base::send_buffer_size(64 * 1024), ec);
        ++counters_.connections_open;
        ++counters_.connections_total;
        auto session = std::make_shared<Session>(*this, std::move(socket));
        net::co_spawn(io_, [session, this]() -> net::awaitable<void> {
            co_await session->run();
            --counters_.connections_open;
        }, net::detached);
    }
}

std::string read_api_keys(const std::string& path, std::set<std::string>* keys) {
    std::ifstream in(path);
    if (!in) return "[gateway] api_keys_file = \"" + path + "\": cannot open it";
    std::string line;
    while (std::getline(in, line)) {
        const auto begin = line.find_first_not_of(" \t\r");
        if (begin == std::string::npos || line[begin] == '#') continue;
        const auto end = line.find_last_not_of(" \t\r");
        keys->insert(line.substr(begin, end - begin + 1));
    }
    if (keys->empty()) return "[gateway] api_keys_file = \"" + path + "\": holds no key (one a line)";
    return "";
}

}  // namespace llmq::gateway
