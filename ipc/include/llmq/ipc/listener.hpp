// Listener: the daemon's side of the instance socket, run by the daemon's Boost.Asio io_context.
//
// open() prepares the instance directory (instance_directory.hpp), takes the instance lock
// (instance_lock.hpp), removes a socket a dead daemon left (only now that the lock proves no
// daemon is alive), binds llmq-<instance>.sock and listens. start() accepts connections; for
// each one it:
//   1. reads the peer's credentials (SO_PEERCRED) and asks allow_peer; a refused peer gets a
//      "refused" line and is closed;
//   2. waits (handshake_timeout) for the hello line (handshake.hpp) and checks its protocol;
//   3. creates the client's private region (ServerRegion::create) and sends the welcome line
//      with the region memfd and doorbell eventfd attached (SCM_RIGHTS);
//   4. calls on_connect, then waits on the doorbell (on_requests) and on control lines (the
//      registered commands) until the client goes; a client whose region faulted (it wrote an
//      impossible ring index) is closed right after on_requests returns. A doorbell that finds
//      the request ring empty is noise: after two in a row the doorbell is watched again only
//      after a pause that doubles up to 50 ms, so ringing without publishing costs no CPU;
//   5. when the socket closes (the client exited, crashed or was killed: the kernel closes it),
//      calls on_disconnect: the connection is the lease, its requests must be cancelled.
//
// Control lines follow control_line.hpp: over-long lines get an error reply and the connection
// is closed; any other bad line gets an error reply and the connection stays.
//
// Threads: every member function and every callback runs on the io_context's thread (one
// thread runs that io_context). Callbacks may call back into the Listener and Connection.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmq/ipc/control_line.hpp"
#include "llmq/ipc/region_layout.hpp"
#include "llmq/ipc/result.hpp"
#include "llmq/ipc/server_region.hpp"

namespace boost::asio {
class io_context;
}

namespace llmq::ipc {

struct PeerCredentials {
    pid_t pid = 0;
    uid_t uid = 0;
    gid_t gid = 0;
};

class Listener;
class ConnectionImpl;

// One connected client. Owned by the Listener while open; callbacks get a shared_ptr they may
// keep (a closed Connection is inert: is_open() false, sends ignored).
class Connection {
public:
    virtual ~Connection() = default;

    // Unique per Listener, counting from 1.
    virtual std::uint64_t id() const = 0;
    virtual const PeerCredentials& peer() const = 0;
    // The name the client gave in its hello (for logs and status).
    virtual const std::string& client_name() const = 0;
    // The client's region; non-null from on_connect on, kept alive by whoever holds it.
    virtual const std::shared_ptr<ServerRegion>& region() const = 0;
    // Sends {"notice": notice, ...details} (details must be an object or null).
    virtual void send_notice(std::string_view notice, const nlohmann::json& details) = 0;
    // Closes the socket now; on_disconnect follows (once) if on_connect was called.
    virtual void close(std::string_view reason) = 0;
    virtual bool is_open() const = 0;
    // From on_requests: "I left descriptors on the ring on purpose" (the client has too many
    // events waiting, or one wake-up's share of work is done). The doorbell is not watched
    // until resume_requests(), so a client that keeps ringing costs nothing meanwhile.
    virtual void defer_requests() = 0;
    // Watches the doorbell again and calls on_requests once, soon (posted, never inline).
    virtual void resume_requests() = 0;
};

// A control command: gets the connection it came on and the request's "args" object; returns
// the reply's "result" or an Error (sent as {"ok": false, "error": {code, message}}). An
// exception escaping it becomes an internal error reply.
using CommandHandler = std::function<Result<nlohmann::json>(Connection& connection, const nlohmann::json& args)>;
using ConnectionCallback = std::function<void(const std::shared_ptr<Connection>& connection)>;

struct ListenerOptions {
    std::string instance = "default";
    std::filesystem::path dir;            // empty: default_ipc_dir()
    std::optional<gid_t> group;           // open the directory and socket to this group
    RegionGeometry geometry;              // every client's region
    ControlLimits control_limits;
    std::chrono::milliseconds handshake_timeout{5000};
    // Connection limits. A connection counts against max_connections, max_per_uid and
    // max_per_pid once its hello is answered; before that only against max_handshaking, and a
    // new connection evicts the oldest one still in the handshake when that stage is full. A
    // hello that would pass a limit first evicts the longest-idle connection in the same scope
    // (evictable() true and no doorbell or command for idle_grace); failing that it is refused
    // with "busy" and the limit's name.
    std::size_t max_connections = 1024;
    std::size_t max_handshaking = 64;
    std::size_t max_per_uid = 1024;
    std::size_t max_per_pid = 1024;
    std::chrono::milliseconds idle_grace{2000};
    // Whether a connection may be evicted for a newcomer (the daemon: it holds no live
    // request). Empty: never.
    std::function<bool(const Connection&)> evictable;
    std::string server_name = "llmqd";    // sent in the welcome
    // Who may connect. Empty: the daemon's own uid and root; with `group` set, also anyone
    // (the directory's group permission already decided who can reach the socket).
    std::function<bool(const PeerCredentials&)> allow_peer;
    // Diagnostics (refused peers, protocol errors, closed connections). Empty: silent.
    std::function<void(std::string_view message)> log;
};

class Listener {
public:
    // Directory, lock, stale socket, bind, listen. Errors: permission_denied (directory),
    // busy (another daemon holds the instance; the message names its pid), io_error,
    // invalid_argument (instance name, geometry, socket path longer than 107 bytes).
    [[nodiscard]] static Result<std::unique_ptr<Listener>> open(boost::asio::io_context& io, ListenerOptions options);

    // Closes every connection WITHOUT calling on_disconnect (call close_all() first for that),
    // removes the socket file, then releases the lock.
    ~Listener();
    Listener(const Listener&) = delete;
    Listener& operator=(const Listener&) = delete;

    // Registers a command; a later registration of the same name replaces it.
    void add_command(std::string name, CommandHandler handler);
    // After the handshake; the region is ready.
    void on_connect(ConnectionCallback callback);
    // The doorbell rang (already drained): poll connection->region().
    void on_requests(ConnectionCallback callback);
    // The connection ended (peer closed, protocol fault, close()); called once per connection
    // that saw on_connect.
    void on_disconnect(ConnectionCallback callback);

    // Begins accepting. Call once, after registering callbacks.
    void start();
    // Stops accepting new connections (draining); existing ones stay.
    void stop_accepting();
    // Closes every connection, with on_disconnect for each.
    void close_all(std::string_view reason);

    // The doorbell spin, for a caller that runs the io_context itself and busy-waits between
    // handlers (llmqd's Asio thread; the same thread only). disarm_doorbells() clears every
    // region's daemon_sleeping flag, so clients publish without ringing; poll_requests() then
    // calls on_requests for each connection (handshaked, not deferred) whose ring holds a
    // descriptor and returns how many it served; arm_doorbells() sets the flags again before
    // the caller sleeps, returning false (every flag cleared again) when a descriptor slipped
    // in meanwhile: poll instead of sleeping. Regions start armed; a deferred connection is
    // left as it is (resume_requests() serves it).
    std::size_t poll_requests();
    [[nodiscard]] bool arm_doorbells();
    void disarm_doorbells();

    std::vector<std::shared_ptr<Connection>> connections() const;
    const std::filesystem::path& socket_path() const;
    const std::filesystem::path& directory() const;

private:
    friend class ConnectionImpl;
    struct Impl;
    explicit Listener(std::shared_ptr<Impl> impl);
    std::shared_ptr<Impl> impl_;  // shared with pending handlers through weak_ptr
};

}  // namespace llmq::ipc
