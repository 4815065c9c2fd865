#include "llmq/ipc/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "llmq/ipc/client_region.hpp"
#include "llmq/ipc/fd_passing.hpp"
#include "llmq/ipc/handshake.hpp"
#include "llmq/ipc/instance_directory.hpp"
#include "llmq/ipc/request_payload.hpp"

namespace llmq::ipc {
namespace {

using namespace std::chrono_literals;

// Replies can be large (status); the daemon is trusted more than clients are.
constexpr ControlLimits kClientLimits{16u << 20, 256};
constexpr auto kLivenessSlice = 100ms;

std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(left, 0ms);
}

}  // namespace

Client::Client(const ConnectOptions& options) : framer_(kClientLimits.max_line_bytes), options_(options) {}
Client::~Client() = default;

Error Client::disconnected_error() const {
    if (socket_fault_) return *socket_fault_;
    if (closed_reason_) {
        return make_error(ErrorCode::disconnected, "llmqd closed the connection: " + *closed_reason_ + "; reconnect");
    }
    return make_error(ErrorCode::disconnected,
                      "llmqd closed the connection (it stopped, restarted or died); reconnect");
}

Result<std::unique_ptr<Client>> Client::connect(const ConnectOptions& options) {
    if (auto ok = validate_instance_name(options.instance); !ok) return ok.error();
    const std::vector<std::filesystem::path> dirs =
        options.dir.empty() ? client_ipc_dirs() : std::vector<std::filesystem::path>{options.dir};
    const std::filesystem::path path = find_instance_socket(dirs, options.instance);
    const std::string shown = path.string();
    sockaddr_un address{};
    if (shown.size() >= sizeof address.sun_path) {
        return make_error(ErrorCode::invalid_argument, "socket path " + shown + " is too long");
    }
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, shown.c_str(), shown.size() + 1);

    std::unique_ptr<Client> client(new Client(options));
    client->socket_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!client->socket_.valid()) return errno_error("creating a socket");
    const auto deadline = Clock::now() + options.timeout;
    // Non-blocking: a UNIX connect answers at once, or EAGAIN while the daemon's backlog is
    // full (a daemon that does not accept): retried until the deadline, never a hang.
    while (::connect(client->socket_.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
        const int err = errno;
        if (err == EINTR) continue;
        if (err == EAGAIN && Clock::now() < deadline) {
            ::poll(nullptr, 0, 10);
            continue;
        }
        if (err == EAGAIN) {
            return make_error(ErrorCode::timeout, "llmqd at " + shown + " accepted no connection within " +
                                                      std::to_string(options.timeout.count()) + " ms");
        }
        if (err == ENOENT || err == ECONNREFUSED) {
            std::string looked;
            if (dirs.size() > 1) {
                looked = " (looked in " + dirs.front().string() + " and " + dirs.back().string();
                // A system service's folder that this user cannot enter: say so, it is the likely cause.
                if (::access(dirs.back().c_str(), X_OK) != 0 && errno == EACCES)
                    looked += "; " + dirs.back().string() + " is closed to this user: the service's [ipc] group "
                              "decides who may enter it";
                looked += ")";
            }
            return make_error(ErrorCode::not_found,
                              "no llmqd serves instance '" + options.instance + "' (" + shown +
                                  (err == ENOENT ? " does not exist" : " refuses connections") +
                                  "); start llmqd, or pass the right --instance or LLMQ_IPC_DIR" + looked);
        }
        errno = err;
        return errno_error("connecting to " + shown);
    }

    // A daemon that refuses (busy, not allowed) may write its refusal and close before the
    // hello is sent: the hello then fails, and the refusal still waits in the socket.
    if (auto sent = client->send_line(format_hello(Hello{kProtocolVersion, options.client_name}), deadline);
        !sent && sent.error().code != ErrorCode::disconnected) {
        return sent.error();
    }

    // The welcome line, with the region memfd and the doorbell attached to its first byte.
    std::vector<UniqueFd> fds;
    std::optional<std::string> line;
    std::array<char, 4096> buffer;
    while (!(line = client->framer_.next_line())) {
        if (client->framer_.overflowed()) return make_error(ErrorCode::protocol, "llmqd's welcome line is too long");
        pollfd p{client->socket_.get(), POLLIN, 0};
        const int ready = ::poll(&p, 1, static_cast<int>(remaining(deadline).count()));
        if (ready < 0 && errno != EINTR) return errno_error("waiting for llmqd's welcome");
        if (ready == 0) {
            return make_error(ErrorCode::timeout, "llmqd at " + shown + " did not answer the hello within " +
                                                      std::to_string(options.timeout.count()) + " ms");
        }
        auto n = receive_with_fds(client->socket_.get(), buffer.data(), buffer.size(), fds);
        if (!n) {
            if (n.error().code == ErrorCode::timeout) continue;
            return n.error();
        }
        if (*n == 0) return make_error(ErrorCode::disconnected, "llmqd closed the connection during the handshake");
        client->framer_.feed(buffer.data(), *n);
    }
    auto message = parse_control_line(*line, kClientLimits);
    if (!message) return make_error(ErrorCode::protocol, "llmqd's welcome: " + message.error().message);
    auto welcome = parse_welcome(*message);
    if (!welcome) return welcome.error();
    if (fds.size() != 2) {
        return make_error(ErrorCode::protocol, "llmqd's welcome carried " + std::to_string(fds.size()) +
                                                   " descriptors instead of 2 (region, doorbell)");
    }
    auto region = ClientRegion::attach(std::move(fds[0]), std::move(fds[1]));
    if (!region) return region.error();
    client->region_ = std::move(*region);
    client->welcome_ = std::move(*message);
    while (auto more = client->framer_.next_line()) client->handle_line(*more);
    return client;
}

Result<void> Client::send_line(const std::string& line, Clock::time_point deadline) {
    std::size_t sent = 0;
    while (sent < line.size()) {
        const ssize_t n = ::send(socket_.get(), line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
        if (n >= 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) continue;
        if (errno == EPIPE || errno == ECONNRESET) {
            disconnected_ = true;
            return disconnected_error();
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK) return errno_error("sending to llmqd");
        pollfd p{socket_.get(), POLLOUT, 0};
        const auto left = remaining(deadline);
        if (left.count() == 0) return make_error(ErrorCode::timeout, "sending to llmqd: it does not read");
        ::poll(&p, 1, static_cast<int>(std::min(left, kLivenessSlice).count()));
    }
    return {};
}

void Client::read_socket(std::chrono::milliseconds wait) {
    if (disconnected_) return;
    pollfd p{socket_.get(), POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(wait.count()));
    if (ready <= 0) return;
    std::array<char, 16384> buffer;
    for (;;) {
        const ssize_t n = ::recv(socket_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
        if (n > 0) {
            framer_.feed(buffer.data(), static_cast<std::size_t>(n));
            while (auto line = framer_.next_line()) handle_line(*line);
            if (framer_.overflowed()) {
                socket_fault_ = make_error(ErrorCode::protocol, "llmqd sent a line longer than 16 MiB; reconnect");
                disconnected_ = true;
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        disconnected_ = true;  // 0: orderly close; other errors: reset
        return;
    }
}

void Client::handle_line(const std::string& line) {
    auto message = parse_control_line(line, kClientLimits);
    if (!message) return;  // nothing to answer to; the daemon's lines are its business
    if (message->contains("notice")) {
        if ((*message)["notice"] == "closed") {
            const auto reason = message->find("reason");
            closed_reason_ = reason != message->end() && reason->is_string() ? reason->get<std::string>() : "no reason given";
            return;
        }
        notices_.push_back(std::move(*message));
    } else if (message->contains("id")) {
        replies_.push_back(std::move(*message));
    }
}

Result<Event> Client::wait_event(Clock::time_point deadline, bool use_held) {
    for (;;) {
        if (use_held && !held_events_.empty()) {
            Event e = std::move(held_events_.front());
            held_events_.pop_front();
            return e;
        }
        auto popped = region_->try_pop_event();
        if (!popped) return popped.error();
        if (*popped) return std::move(**popped);
        if (disconnected_) return disconnected_error();
        const auto now = Clock::now();
        if (now >= deadline) return make_error(ErrorCode::timeout, "no event within the timeout");
        if (region_->spin_for_events(std::min<Clock::duration>(options_.spin, deadline - now))) continue;
        read_socket(0ms);
        if (disconnected_) continue;  // deliver what was published before the daemon went
        region_->sleep_for_events(std::min<Clock::duration>(kLivenessSlice, deadline - Clock::now()));
    }
}

Result<std::uint64_t> Client::submit(const GenerateRequest& request) {
    if (disconnected_) return disconnected_error();
    std::vector<std::byte> payload;
    if (auto ok = encode_generate_payload(request, payload); !ok) return ok.error();
    const std::uint64_t id = next_request_id_;
    if (auto ok = region_->submit(id, RequestKind::generate, payload); !ok) return ok.error();
    ++next_request_id_;
    return id;
}

Result<Event> Client::next_event(std::chrono::milliseconds timeout) {
    return wait_event(Clock::now() + timeout, true);
}

Result<void> Client::cancel(std::uint64_t request_id) {
    if (disconnected_) return disconnected_error();
    if (request_id == 0 || request_id >= next_request_id_) {
        return make_error(ErrorCode::invalid_argument,
                          "cancel: request " + std::to_string(request_id) + " was never submitted on this connection");
    }
    return region_->submit(request_id, RequestKind::cancel, {});
}

Result<std::chrono::nanoseconds> Client::ping(std::chrono::milliseconds timeout) {
    if (disconnected_) return disconnected_error();
    const auto start = Clock::now();
    const auto deadline = start + timeout;
    const std::uint64_t id = next_request_id_;
    if (auto ok = region_->submit(id, RequestKind::ping, {}); !ok) return ok.error();
    ++next_request_id_;
    for (;;) {
        auto event = wait_event(deadline, false);
        if (!event) return event.error();
        if (event->kind == EventKind::pong && event->request_id == id) return Clock::now() - start;
        if (event->kind == EventKind::error && event->request_id == id) {
            return make_error(ErrorCode::protocol, "ping refused by llmqd: " + event->text);
        }
        held_events_.push_back(std::move(*event));
    }
}

Result<RenderedChat> Client::render_chat(const std::vector<ChatTurn>& turns, bool add_generation_prompt,
                                         std::string_view template_source, std::chrono::milliseconds timeout) {
    nlohmann::json messages = nlohmann::json::array();
    for (const ChatTurn& t : turns) {
        if (t.images == 0) {
            messages.push_back({{"role", t.role}, {"content", t.content}});
            continue;
        }
        nlohmann::json parts = nlohmann::json::array();
        for (std::uint32_t i = 0; i < t.images; ++i) parts.push_back({{"type", "image"}});
        parts.push_back({{"type", "text"}, {"text", t.content}});
        messages.push_back({{"role", t.role}, {"content", std::move(parts)}});
    }
    nlohmann::json args{{"messages", std::move(messages)}, {"add_generation_prompt", add_generation_prompt}};
    if (!template_source.empty()) args["template"] = std::string(template_source);
    auto reply = control("chat_template", args, timeout);
    if (!reply) return reply.error();
    const nlohmann::json& j = *reply;
    if (!j.is_object() || !j.contains("text") || !j["text"].is_string() || !j.contains("tokens") ||
        !j["tokens"].is_array())
        return make_error(ErrorCode::protocol, "chat_template: the daemon's reply has no text and tokens");
    RenderedChat out;
    out.origin = j.value("origin", std::string());
    out.text = j["text"].get<std::string>();
    for (const auto& id : j["tokens"]) {
        if (!id.is_number_integer()) return make_error(ErrorCode::protocol, "chat_template: a token id is not an integer");
        out.tokens.push_back(id.get<std::int32_t>());
    }
    return out;
}

Result<nlohmann::json> Client::control(std::string_view command, const nlohmann::json& args,
                                       std::chrono::milliseconds timeout) {
    if (disconnected_) return disconnected_error();
    const auto deadline = Clock::now() + timeout;
    const std::uint64_t id = next_control_id_++;
    if (auto sent = send_line(format_control_request(id, command, args.is_null() ? nlohmann::json::object() : args), deadline);
        !sent) {
        return sent.error();
    }
    for (;;) {
        for (auto it = replies_.begin(); it != replies_.end(); ++it) {
            const auto reply_id = control_message_id(*it);
            // A reply without a usable id answers a line the daemon could not read: ours.
            if (reply_id && *reply_id != id) continue;
            nlohmann::json reply = std::move(*it);
            replies_.erase(it);
            const auto ok = reply.find("ok");
            if (ok != reply.end() && ok->is_boolean() && ok->get<bool>()) {
                const auto result = reply.find("result");
                return result == reply.end() ? nlohmann::json() : *result;
            }
            const auto error = reply.find("error");
            if (error == reply.end() || !error->is_object()) {
                return make_error(ErrorCode::protocol, "llmqd's reply to '" + std::string(command) + "' is malformed");
            }
            const auto code = error->value("code", std::string("internal"));
            return make_error(error_code_from_name(code), error->value("message", std::string("(no message)")));
        }
        if (disconnected_) return disconnected_error();
        const auto left = remaining(deadline);
        if (left.count() == 0) {
            return make_error(ErrorCode::timeout, "llmqd did not answer '" + std::string(command) + "' within " +
                                                      std::to_string(timeout.count()) + " ms");
        }
        read_socket(std::min(left, std::chrono::duration_cast<std::chrono::milliseconds>(kLivenessSlice)));
    }
}

std::vector<nlohmann::json> Client::take_notices() { return std::exchange(notices_, {}); }

}  // namespace llmq::ipc
