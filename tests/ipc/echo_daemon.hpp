// EchoDaemon: a stand-in for llmqd in ipc tests. A Listener on its own io_context thread that
// answers pings with pongs, each generate request with one token per prompt byte (token id =
// the byte, piece = the byte) then a final event, cancels with a cancelled final event, and
// defects with error events. Commands: "status" ({"connections": n}), "echo" (returns args),
// "fail" (an invalid_argument error).
//
// Also TempDir: a private directory under /tmp, removed with everything in it.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <future>
#include <thread>

#include "llmq/ipc/listener.hpp"

namespace llmq::ipc::testing {

class TempDir {
public:
    TempDir() {
        char pattern[] = "/tmp/llmq-ipc-test-XXXXXX";
        REQUIRE(::mkdtemp(pattern) != nullptr);
        path_ = pattern;
    }
    ~TempDir() {
        std::error_code ignored;
        std::filesystem::remove_all(path_, ignored);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    std::filesystem::path path_;
};

// Answers what arrived on one connection's region.
inline void serve_requests(Connection& connection) {
    DecodeLimits limits;
    limits.vocab_size = 256;
    std::vector<PolledRequest> polled;
    ServerRegion& region = *connection.region();
    region.poll(limits, polled);
    for (const auto& result : polled) {
        if (const auto* defect = std::get_if<RequestDefect>(&result)) {
            (void)region.push_event(Event::error(defect->request_id, EventError::invalid_request, defect->message));
            continue;
        }
        const auto& request = std::get<DecodedRequest>(result);
        switch (request.kind) {
            case RequestKind::ping: (void)region.push_event(Event::pong(request.request_id)); break;
            case RequestKind::cancel:
                (void)region.push_event(Event::final_event(request.request_id, FinishReason::cancelled, 0, 0, 0, 0, 0));
                break;
            case RequestKind::generate: {
                const std::string& text = request.generate.prompt_text;
                std::size_t n = text.size();
                if (request.generate.max_tokens > 0) n = std::min<std::size_t>(n, request.generate.max_tokens);
                for (std::size_t i = 0; i < n; ++i) {
                    const auto byte = static_cast<unsigned char>(text[i]);
                    (void)region.push_event(Event::token(request.request_id, byte, text.substr(i, 1)));
                }
                (void)region.push_event(Event::final_event(request.request_id, FinishReason::eos,
                                                           static_cast<std::uint32_t>(text.size()),
                                                           static_cast<std::uint32_t>(n), 1, 2, 3));
                break;
            }
        }
    }
}

inline void install_echo_handlers(Listener& listener, std::atomic<int>* connects = nullptr,
                                  std::atomic<int>* disconnects = nullptr) {
    listener.on_connect([connects](const std::shared_ptr<Connection>&) {
        if (connects) ++*connects;
    });
    listener.on_disconnect([disconnects](const std::shared_ptr<Connection>&) {
        if (disconnects) ++*disconnects;
    });
    listener.on_requests([](const std::shared_ptr<Connection>& connection) { serve_requests(*connection); });
    Listener* self = &listener;
    listener.add_command("status", [self](Connection&, const nlohmann::json&) -> Result<nlohmann::json> {
        return nlohmann::json{{"connections", self->connections().size()}};
    });
    listener.add_command("echo", [](Connection&, const nlohmann::json& args) -> Result<nlohmann::json> { return args; });
    listener.add_command("fail", [](Connection&, const nlohmann::json&) -> Result<nlohmann::json> {
        return make_error(ErrorCode::invalid_argument, "asked to fail");
    });
}

class EchoDaemon {
public:
    explicit EchoDaemon(const std::filesystem::path& dir, ListenerOptions options = {})
        : work_(boost::asio::make_work_guard(io_)) {
        options.dir = dir;
        auto listener = Listener::open(io_, std::move(options));
        REQUIRE_MESSAGE(listener.ok(), (listener.ok() ? "" : listener.error().message));
        listener_ = std::move(*listener);
        install_echo_handlers(*listener_, &connects, &disconnects);
        listener_->start();
        thread_ = std::thread([this] { io_.run(); });
    }

    // Runs `f` on the io thread and waits for it.
    template <typename F>
    auto on_io(F f) -> decltype(f()) {
        std::packaged_task<decltype(f())()> task(std::move(f));
        auto result = task.get_future();
        boost::asio::post(io_, [&task] { task(); });
        return result.get();
    }

    ~EchoDaemon() {
        on_io([this] { listener_.reset(); });
        work_.reset();
        io_.stop();
        thread_.join();
    }

    Listener& listener() { return *listener_; }

    std::atomic<int> connects{0};
    std::atomic<int> disconnects{0};

private:
    boost::asio::io_context io_;
    boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
    std::unique_ptr<Listener> listener_;
    std::thread thread_;
};

}  // namespace llmq::ipc::testing
