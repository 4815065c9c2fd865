#include "llmq/ipc/listener.hpp"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <map>
#include <unordered_map>
#include <utility>

#include "llmq/ipc/fd_passing.hpp"
#include "llmq/ipc/handshake.hpp"
#include "llmq/ipc/instance_directory.hpp"
#include "llmq/ipc/instance_lock.hpp"

namespace llmq::ipc {

namespace asio = boost::asio;
using stream = asio::local::stream_protocol;
using Clock = std::chrono::steady_clock;

class ConnectionImpl;

struct Listener::Impl {
    Impl(asio::io_context& io_context, ListenerOptions opts)
        : io(io_context), options(std::move(opts)), acceptor(io_context) {}
    ~Impl();

    void accept_next();
    // Makes room in the handshake stage for one more connection (evicts its oldest member).
    void bound_handshakes();
    // At a hello: the limit this newcomer would pass after evicting the longest-idle
    // connection in that limit's scope, or nullopt when it may be served.
    std::optional<Error> admit(const ConnectionImpl& newcomer);
    void log(const std::string& message) const {
        if (options.log) options.log(message);
    }

    asio::io_context& io;
    ListenerOptions options;
    std::filesystem::path dir;
    std::filesystem::path socket_path;
    std::optional<InstanceLock> lock;  // first member to go after the socket file is removed
    bool bound = false;
    stream::acceptor acceptor;
    bool accepting = false;
    std::uint64_t next_id = 1;
    std::map<std::uint64_t, std::shared_ptr<ConnectionImpl>> connections;
    std::unordered_map<std::string, CommandHandler> commands;
    ConnectionCallback connect_callback;
    ConnectionCallback requests_callback;
    ConnectionCallback disconnect_callback;
    std::weak_ptr<Impl> self;
};

class ConnectionImpl final : public Connection, public std::enable_shared_from_this<ConnectionImpl> {
public:
    ConnectionImpl(std::weak_ptr<Listener::Impl> owner, std::uint64_t id, stream::socket socket,
                   const ListenerOptions& options)
        : owner_(std::move(owner)),
          id_(id),
          socket_(std::move(socket)),
          handshake_timer_(socket_.get_executor()),
          framer_(options.control_limits.max_line_bytes),
          limits_(options.control_limits),
          geometry_(options.geometry),
          instance_(options.instance),
          server_name_(options.server_name) {}

    ~ConnectionImpl() override {
        if (paused_doorbell_ >= 0) ::close(paused_doorbell_);
    }

    std::uint64_t id() const override { return id_; }
    const PeerCredentials& peer() const override { return peer_; }
    const std::string& client_name() const override { return client_name_; }
    const std::shared_ptr<ServerRegion>& region() const override { return region_; }
    bool is_open() const override { return state_ != State::closed; }

    void send_notice(std::string_view notice, const nlohmann::json& details) override {
        if (state_ != State::ready) return;
        queue_write(format_control_notice(notice, details));
    }

    void defer_requests() override { deferred_ = true; }

    void resume_requests() override {
        if (!deferred_ || state_ != State::ready) return;
        deferred_ = false;
        const auto self = shared_from_this();
        asio::post(socket_.get_executor(), [self] {
            if (self->state_ != State::ready) return;
            self->serve_requests();
            self->watch_doorbell();
        });
    }

    // The doorbell spin (Listener::poll_requests): serves a ready, not deferred connection
    // whose ring holds a descriptor, as a doorbell wake-up would. True when it did.
    bool poll_ring() {
        if (state_ != State::ready || deferred_) return false;
        if (!region_->has_pending_requests() && !region_->faulted()) return false;
        noise_ = 0;  // a ring the spin beat to its descriptor is not noise
        serve_requests();
        return true;
    }
    // Listener::arm_doorbells: false when a descriptor is already waiting (flag left clear).
    bool arm_doorbell() {
        if (state_ != State::ready || deferred_) return true;  // a deferred one is resumed by the daemon
        return region_->arm_doorbell();
    }
    void disarm_doorbell() {
        if (state_ == State::ready) region_->disarm_doorbell();
    }

    bool in_handshake() const { return state_ == State::handshake; }
    bool served() const { return state_ == State::ready; }
    Clock::time_point last_activity() const { return last_activity_; }

    void close(std::string_view reason) override {
        if (state_ == State::closed) return;
        const bool was_connected = state_ == State::ready || connected_;
        if (state_ == State::ready && !writing_) {
            // The client's last word, best effort and never waited for: a client that does not
            // read its socket must not keep the connection open.
            const std::string notice = format_control_notice("closed", {{"reason", std::string(reason)}});
            [[maybe_unused]] const ssize_t n =
                ::send(socket_.native_handle(), notice.data(), notice.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
        }
        state_ = State::closed;
        boost::system::error_code ignored;
        handshake_timer_.cancel();
        if (doorbell_) doorbell_->close(ignored);
        if (paused_doorbell_ >= 0) ::close(std::exchange(paused_doorbell_, -1));
        socket_.shutdown(stream::socket::shutdown_both, ignored);
        socket_.close(ignored);
        auto self = shared_from_this();
        if (auto owner = owner_.lock()) {
            owner->log("connection " + std::to_string(id_) + " (pid " + std::to_string(peer_.pid) +
                       ") closed: " + std::string(reason));
            owner->connections.erase(id_);
            if (was_connected && owner->disconnect_callback) owner->disconnect_callback(self);
        }
    }

    // Called once, right after accept.
    void begin() {
        ucred cred{};
        socklen_t length = sizeof cred;
        if (::getsockopt(socket_.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &length) != 0) {
            refuse(make_error(ErrorCode::io_error, "could not read the peer's credentials"));
            return;
        }
        peer_ = PeerCredentials{cred.pid, cred.uid, cred.gid};
        auto owner = owner_.lock();
        if (!owner) return;
        if (!peer_allowed(*owner)) {
            owner->log("refused uid " + std::to_string(peer_.uid) + " (pid " + std::to_string(peer_.pid) + ")");
            refuse(make_error(ErrorCode::permission_denied,
                              "uid " + std::to_string(peer_.uid) + " may not use this llmqd instance"));
            return;
        }
        const auto self = shared_from_this();
        handshake_timer_.expires_after(owner->options.handshake_timeout);
        handshake_timer_.async_wait([self](const boost::system::error_code& ec) {
            if (!ec && self->state_ == State::handshake) self->close("no hello line within the handshake timeout");
        });
        read_more();
    }

private:
    enum class State { handshake, ready, refused, closed };

    bool peer_allowed(const Listener::Impl& owner) const {
        if (owner.options.allow_peer) return owner.options.allow_peer(peer_);
        return peer_.uid == ::geteuid() || peer_.uid == 0 || owner.options.group.has_value();
    }

    void refuse(const Error& error) {
        state_ = State::refused;
        queue_write(format_refusal(error));
        close_after_flush_ = true;
    }

    void read_more() {
        const auto self = shared_from_this();
        socket_.async_read_some(asio::buffer(read_buffer_),
                                [self](const boost::system::error_code& ec, std::size_t n) {
                                    self->on_read(ec, n);
                                });
    }

    void on_read(const boost::system::error_code& ec, std::size_t n) {
        if (state_ == State::closed || state_ == State::refused) return;
        if (ec) {
            close(ec == asio::error::eof ? "the client closed its socket" : "read failed: " + ec.message());
            return;
        }
        framer_.feed(read_buffer_.data(), n);
        while (state_ == State::handshake || state_ == State::ready) {
            std::optional<std::string> line = framer_.next_line();
            if (!line) break;
            if (state_ == State::handshake) {
                handle_hello(*line);
            } else {
                handle_command(*line);
            }
        }
        if (framer_.overflowed() && (state_ == State::handshake || state_ == State::ready)) {
            const Error error = make_error(ErrorCode::invalid_argument,
                                           "control line longer than " + std::to_string(limits_.max_line_bytes) +
                                               " bytes: refused; closing the connection");
            if (auto owner = owner_.lock()) owner->log("connection " + std::to_string(id_) + ": " + error.message);
            if (state_ == State::handshake) {
                refuse(error);
            } else {
                queue_write(format_control_error(std::nullopt, error));
                state_ = State::refused;
                close_after_flush_ = true;
            }
            return;
        }
        if (state_ == State::handshake || state_ == State::ready) read_more();
    }

    void handle_hello(const std::string& line) {
        auto message = parse_control_line(line, limits_);
        if (!message) {
            refuse(make_error(ErrorCode::protocol, "handshake: " + message.error().message));
            return;
        }
        auto hello = parse_hello(*message);
        if (!hello) {
            refuse(hello.error());
            return;
        }
        client_name_ = hello->client;
        if (auto owner = owner_.lock()) {
            if (auto full = owner->admit(*this)) {
                owner->log("connection " + std::to_string(id_) + " (uid " + std::to_string(peer_.uid) + " pid " +
                           std::to_string(peer_.pid) + ") refused: " + full->message);
                refuse(*full);
                return;
            }
        }
        auto region = ServerRegion::create(geometry_);
        if (!region) {
            refuse(make_error(ErrorCode::internal, "llmqd could not create the client region: " + region.error().message));
            return;
        }
        region_ = *region;
        Welcome welcome;
        welcome.protocol = kProtocolVersion;
        welcome.instance = instance_;
        welcome.server = server_name_;
        welcome.region_size = region_->layout().region_size;
        welcome.connection = id_;
        // Nothing is queued yet: the welcome is the first byte the client receives.
        const int fds[2] = {region_->memfd(), region_->doorbell_fd()};
        auto sent = send_with_fds(socket_.native_handle(), format_welcome(welcome), fds);
        region_->close_memfd();
        if (!sent) {
            close("sending the welcome failed: " + sent.error().message);
            return;
        }
        const int doorbell = ::dup(region_->doorbell_fd());
        if (doorbell < 0) {
            close("duplicating the doorbell failed");
            return;
        }
        doorbell_.emplace(socket_.get_executor(), doorbell);
        state_ = State::ready;
        connected_ = true;
        handshake_timer_.cancel();
        const auto self = shared_from_this();
        if (auto owner = owner_.lock()) {
            owner->log("connection " + std::to_string(id_) + ": uid " + std::to_string(peer_.uid) + " pid " +
                       std::to_string(peer_.pid) + " (" + client_name_ + ") connected");
            if (owner->connect_callback) owner->connect_callback(self);
        }
        last_activity_ = Clock::now();
        if (state_ == State::ready) watch_doorbell();
    }

    // Runs on_requests and closes a connection whose region faulted meanwhile.
    void serve_requests() {
        last_activity_ = Clock::now();
        if (auto owner = owner_.lock()) {
            if (owner->requests_callback) owner->requests_callback(shared_from_this());
        }
        if (state_ == State::ready && region_->faulted()) {
            close("the client wrote an impossible ring index into its region");
        }
    }

    // One wait on the doorbell at a time; none while deferred or pausing after noise.
    void watch_doorbell() {
        if (state_ != State::ready || deferred_ || doorbell_waiting_) return;
        doorbell_waiting_ = true;
        const auto self = shared_from_this();
        doorbell_->async_wait(asio::posix::descriptor_base::wait_read, [self](const boost::system::error_code& ec) {
            self->doorbell_waiting_ = false;
            if (ec || self->state_ != State::ready) return;
            self->region_->drain_doorbell();
            // Coalescing: the eventfd counts every ring, one wake-up takes them all; a wake-up
            // that finds nothing published is noise, and repeated noise is watched lazily.
            if (self->region_->has_pending_requests() || self->region_->faulted()) {
                self->noise_ = 0;
                self->serve_requests();
            } else {
                ++self->noise_;
            }
            if (self->state_ != State::ready) return;
            if (self->noise_ < 2) {
                self->watch_doorbell();
                return;
            }
            // Out of the reactor for the pause: a registered eventfd wakes the Asio thread on
            // every write, even with no wait pending on it.
            const auto pause = std::chrono::milliseconds(1 << std::min(self->noise_ - 2, 6));
            self->paused_doorbell_ = self->doorbell_->release();
            self->handshake_timer_.expires_after(std::min(pause, std::chrono::milliseconds(50)));
            self->doorbell_waiting_ = true;
            self->handshake_timer_.async_wait([self](const boost::system::error_code& timer_ec) {
                self->doorbell_waiting_ = false;
                if (self->paused_doorbell_ < 0) return;  // closed meanwhile
                boost::system::error_code assign_ec;
                self->doorbell_->assign(std::exchange(self->paused_doorbell_, -1), assign_ec);
                if (assign_ec) {
                    self->close("watching the doorbell again failed: " + assign_ec.message());
                    return;
                }
                if (!timer_ec) self->watch_doorbell();
            });
        });
    }

    void handle_command(const std::string& line) {
        auto message = parse_control_line(line, limits_);
        if (!message) {
            queue_write(format_control_error(std::nullopt, message.error()));
            return;
        }
        const std::optional<std::uint64_t> id = control_message_id(*message);
        auto request = parse_control_request(*message);
        if (!request) {
            queue_write(format_control_error(id, request.error()));
            return;
        }
        auto owner = owner_.lock();
        if (!owner) return;
        const auto it = owner->commands.find(request->command);
        if (it == owner->commands.end()) {
            std::string known;
            for (const auto& [name, handler] : owner->commands) known += (known.empty() ? "" : ", ") + name;
            queue_write(format_control_error(
                request->id, make_error(ErrorCode::invalid_argument,
                                        "unknown command '" + request->command + "' (known: " + known + ")")));
            return;
        }
        const CommandHandler handler = it->second;  // a handler may replace itself
        const auto self = shared_from_this();
        std::optional<Result<nlohmann::json>> reply;
        try {
            last_activity_ = Clock::now();
            reply.emplace(handler(*this, request->args));
        } catch (const std::exception& e) {
            reply.emplace(make_error(ErrorCode::internal, "command '" + request->command + "' failed: " + e.what()));
        }
        if (state_ == State::closed) return;
        if (reply->ok()) {
            queue_write(format_control_result(request->id, reply->value()));
        } else {
            queue_write(format_control_error(request->id, reply->error()));
        }
    }

    void queue_write(std::string line) {
        if (state_ == State::closed) return;
        queued_bytes_ += line.size();
        if (queued_bytes_ > kMaxQueuedReplyBytes) {
            close("the client does not read its replies (" + std::to_string(queued_bytes_) + " bytes queued)");
            return;
        }
        write_queue_.push_back(std::move(line));
        if (!writing_) write_next();
    }

    void write_next() {
        if (write_queue_.empty()) {
            writing_ = false;
            if (close_after_flush_) close("refused");
            return;
        }
        writing_ = true;
        const auto self = shared_from_this();
        asio::async_write(socket_, asio::buffer(write_queue_.front()),
                          [self](const boost::system::error_code& ec, std::size_t) {
                              if (self->state_ == State::closed) return;
                              if (ec) {
                                  self->close("write failed: " + ec.message());
                                  return;
                              }
                              self->queued_bytes_ -= self->write_queue_.front().size();
                              self->write_queue_.pop_front();
                              self->write_next();
                          });
    }

    std::weak_ptr<Listener::Impl> owner_;
    std::uint64_t id_;
    stream::socket socket_;
    asio::steady_timer handshake_timer_;
    std::optional<asio::posix::stream_descriptor> doorbell_;
    LineFramer framer_;
    ControlLimits limits_;
    RegionGeometry geometry_;
    std::string instance_;
    std::string server_name_;
    std::array<char, 16384> read_buffer_{};
    // A client that sends commands but never reads the replies is cut off past this.
    static constexpr std::size_t kMaxQueuedReplyBytes = 16u << 20;
    std::deque<std::string> write_queue_;
    std::size_t queued_bytes_ = 0;
    bool writing_ = false;
    bool close_after_flush_ = false;
    bool connected_ = false;
    bool deferred_ = false;
    bool doorbell_waiting_ = false;  // a wait on the doorbell or the noise pause is pending
    int noise_ = 0;                  // doorbells in a row that found no request
    int paused_doorbell_ = -1;       // the doorbell, out of the reactor during a noise pause
    Clock::time_point last_activity_ = Clock::now();
    State state_ = State::handshake;
    PeerCredentials peer_;
    std::string client_name_;
    std::shared_ptr<ServerRegion> region_;
};

Listener::Impl::~Impl() {
    boost::system::error_code ignored;
    acceptor.close(ignored);
    // No callbacks from here: owner_.lock() fails in every connection now.
    auto open = std::move(connections);
    for (auto& [id, connection] : open) connection->close("llmqd is shutting down");
    if (bound) ::unlink(socket_path.c_str());
    // `lock` is released after this body, when the members go.
}

void Listener::Impl::accept_next() {
    if (!accepting) return;
    std::weak_ptr<Impl> weak = self;
    acceptor.async_accept([weak](const boost::system::error_code& ec, stream::socket socket) {
        auto impl = weak.lock();
        if (!impl || !impl->accepting) return;
        if (ec) {
            if (ec == asio::error::operation_aborted) return;
            impl->log("accept failed: " + ec.message());
        } else {
            impl->bound_handshakes();
            const std::uint64_t id = impl->next_id++;
            auto connection = std::make_shared<ConnectionImpl>(weak, id, std::move(socket), impl->options);
            impl->connections.emplace(id, connection);
            connection->begin();
        }
        impl->accept_next();
    });
}

void Listener::Impl::bound_handshakes() {
    std::size_t handshaking = 0;
    std::shared_ptr<ConnectionImpl> oldest;  // lowest id: connections are numbered as accepted
    for (const auto& [id, c] : connections) {
        if (!c->in_handshake()) continue;
        ++handshaking;
        if (!oldest) oldest = c;
    }
    if (oldest && handshaking >= options.max_handshaking) {
        oldest->close("evicted: the oldest of " + std::to_string(handshaking) +
                      " connections still in the handshake ([ipc] max_handshaking)");
    }
}

std::optional<Error> Listener::Impl::admit(const ConnectionImpl& newcomer) {
    const PeerCredentials& me = newcomer.peer();
    struct Scope {
        const char* key;
        std::size_t limit;
        std::function<bool(const ConnectionImpl&)> member;
        const char* whose;
    };
    const Scope scopes[] = {
        {"max_clients_per_pid", options.max_per_pid, [&](const ConnectionImpl& c) { return c.peer().pid == me.pid; },
         "of this process"},
        {"max_clients_per_uid", options.max_per_uid, [&](const ConnectionImpl& c) { return c.peer().uid == me.uid; },
         "of this user"},
        {"max_clients", options.max_connections, [](const ConnectionImpl&) { return true; }, "in all"},
    };
    const auto now = Clock::now();
    for (const Scope& scope : scopes) {
        std::size_t count = 0;
        std::shared_ptr<ConnectionImpl> idlest;
        for (const auto& [id, c] : connections) {
            if (!c->served() || !scope.member(*c)) continue;
            ++count;
            if (now - c->last_activity() < options.idle_grace || !options.evictable || !options.evictable(*c)) continue;
            if (!idlest || c->last_activity() < idlest->last_activity()) idlest = c;
        }
        if (count < scope.limit) continue;
        if (idlest) {
            idlest->close(std::string("evicted: idle while llmqd was full (") + scope.key + " = " +
                          std::to_string(scope.limit) + ")");
            continue;
        }
        return make_error(ErrorCode::busy, "busy: llmqd serves its maximum of " + std::to_string(scope.limit) +
                                               " connections " + scope.whose + " ([ipc] " + scope.key +
                                               ") and none has been idle for " +
                                               std::to_string(options.idle_grace.count()) + " ms; retry later");
    }
    return std::nullopt;
}

Listener::Listener(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Listener::~Listener() = default;

Result<std::unique_ptr<Listener>> Listener::open(asio::io_context& io, ListenerOptions options) {
    if (auto ok = validate_instance_name(options.instance); !ok) return ok.error();
    if (auto geometry = compute_layout(options.geometry); !geometry) return geometry.error();

    auto impl = std::make_shared<Impl>(io, std::move(options));
    impl->self = impl;
    const ListenerOptions& o = impl->options;
    impl->dir = o.dir.empty() ? default_ipc_dir() : o.dir;
    impl->socket_path = instance_socket_path(impl->dir, o.instance);
    if (impl->socket_path.native().size() >= sizeof(sockaddr_un::sun_path)) {
        return make_error(ErrorCode::invalid_argument,
                          "socket path " + impl->socket_path.string() + " is longer than " +
                              std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                              " bytes; choose a shorter [ipc] dir or instance name");
    }
    if (auto ok = prepare_instance_dir(impl->dir, o.group); !ok) return ok.error();

    auto lock = InstanceLock::acquire(instance_lock_path(impl->dir, o.instance), o.instance);
    if (!lock) return lock.error();
    impl->lock.emplace(std::move(*lock));

    // The lock proves no daemon serves this instance: a socket file here is a dead one's.
    struct stat st {};
    if (::lstat(impl->socket_path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            return make_error(ErrorCode::invalid_argument,
                              impl->socket_path.string() + " exists and is not a socket; remove it");
        }
        if (::unlink(impl->socket_path.c_str()) != 0) return errno_error("removing the stale socket " + impl->socket_path.string());
        impl->log("removed the socket a previous llmqd left: " + impl->socket_path.string());
    }

    boost::system::error_code ec;
    impl->acceptor.open(stream(), ec);
    if (!ec) impl->acceptor.bind(stream::endpoint(impl->socket_path.string()), ec);
    if (ec) return make_error(ErrorCode::io_error, "binding " + impl->socket_path.string() + ": " + ec.message());
    impl->bound = true;
    const mode_t mode = o.group ? 0660 : 0600;
    if (::chmod(impl->socket_path.c_str(), mode) != 0) return errno_error("setting the mode of " + impl->socket_path.string());
    if (o.group && ::chown(impl->socket_path.c_str(), static_cast<uid_t>(-1), *o.group) != 0) {
        return errno_error("giving " + impl->socket_path.string() + " to group " + std::to_string(*o.group));
    }
    impl->acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) return make_error(ErrorCode::io_error, "listening on " + impl->socket_path.string() + ": " + ec.message());
    return std::unique_ptr<Listener>(new Listener(std::move(impl)));
}

void Listener::add_command(std::string name, CommandHandler handler) { impl_->commands[std::move(name)] = std::move(handler); }
void Listener::on_connect(ConnectionCallback callback) { impl_->connect_callback = std::move(callback); }
void Listener::on_requests(ConnectionCallback callback) { impl_->requests_callback = std::move(callback); }
void Listener::on_disconnect(ConnectionCallback callback) { impl_->disconnect_callback = std::move(callback); }

void Listener::start() {
    if (impl_->accepting) return;
    impl_->accepting = true;
    impl_->accept_next();
}

void Listener::stop_accepting() {
    impl_->accepting = false;
    boost::system::error_code ignored;
    impl_->acceptor.cancel(ignored);
}

void Listener::close_all(std::string_view reason) {
    auto open = impl_->connections;
    for (auto& [id, connection] : open) connection->close(reason);
}

std::vector<std::shared_ptr<Connection>> Listener::connections() const {
    std::vector<std::shared_ptr<Connection>> out;
    out.reserve(impl_->connections.size());
    for (const auto& [id, connection] : impl_->connections) out.push_back(connection);
    return out;
}

std::size_t Listener::poll_requests() {
    // Serving may close a connection (and erase it from the map): pick first, then serve.
    std::shared_ptr<ConnectionImpl> one;
    std::vector<std::shared_ptr<ConnectionImpl>> more;
    for (const auto& [id, connection] : impl_->connections) {
        if (!connection->served() || !connection->region()->has_pending_requests()) continue;
        if (!one) one = connection;
        else more.push_back(connection);
    }
    if (!one) return 0;
    std::size_t served = one->poll_ring() ? 1 : 0;
    for (const auto& c : more) served += c->poll_ring() ? 1 : 0;
    return served;
}

bool Listener::arm_doorbells() {
    for (const auto& [id, connection] : impl_->connections) {
        if (!connection->arm_doorbell()) {
            disarm_doorbells();
            return false;
        }
    }
    return true;
}

void Listener::disarm_doorbells() {
    for (const auto& [id, connection] : impl_->connections) connection->disarm_doorbell();
}

const std::filesystem::path& Listener::socket_path() const { return impl_->socket_path; }
const std::filesystem::path& Listener::directory() const { return impl_->dir; }

}  // namespace llmq::ipc
