// Client: the C++ client library. Connects to an llmqd instance, submits requests through its
// private region and reads their events; sends control commands over the socket.
//
// Liveness: every wait is bounded by the caller's timeout, and while waiting the client checks
// the socket at least every 100 ms: when the daemon dies or restarts the kernel closes the
// socket and the next call fails with ErrorCode::disconnected within that time (events the
// daemon published before it went are still delivered first).
//
// Thread: a Client is used by one thread at a time; separate Clients are independent.
// Not copyable; destroying it closes the connection, which cancels its requests in the daemon.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "llmq/ipc/control_line.hpp"
#include "llmq/ipc/event.hpp"
#include "llmq/ipc/generate_request.hpp"
#include "llmq/ipc/result.hpp"
#include "llmq/ipc/unique_fd.hpp"

namespace llmq::ipc {

class ClientRegion;

// One turn of a conversation, for Client::render_chat.
struct ChatTurn {
    std::string role;  // "system", "user", "assistant", ...
    std::string content;
    // Images of this turn (vision models), placed before its text; the request that sends the
    // rendered tokens carries the conversation's images in turn order.
    std::uint32_t images = 0;
};

// A conversation rendered by the daemon's chat template.
struct RenderedChat {
    std::string origin;           // which template rendered it
    std::string text;             // the prompt text (markup and messages)
    std::vector<std::int32_t> tokens;  // the ids to submit (GenerateRequest::prompt_tokens),
                                       // a kImagePromptToken where each image goes
};

struct ConnectOptions {
    std::string instance = "default";
    std::filesystem::path dir;                    // empty: client_ipc_dirs() (llmqd's default, then /run/llmq)
    std::string client_name = "llmq-client";      // shown in llmqd's logs and status
    std::chrono::milliseconds timeout{5000};      // for the connection and handshake
    std::chrono::microseconds spin{50};           // busy-wait before sleeping on the futex
};

class Client {
public:
    // Connects and completes the handshake. Errors: not_found (no daemon serves the instance:
    // the message names the socket path), permission_denied (the daemon refused this user or
    // the directory is closed to it), protocol (version mismatch, bad region), timeout.
    [[nodiscard]] static Result<std::unique_ptr<Client>> connect(const ConnectOptions& options);

    ~Client();
    Client(const Client&) = delete;
    Client& operator=(const Client&) = delete;

    // Places a generate request in the region and returns its id (counting from 1 on this
    // connection). Errors: busy (request ring or arena full now), invalid_argument (cannot be
    // encoded or larger than the arena), disconnected, protocol. Validation of the fields is the
    // daemon's: a bad field comes back as an error event for this id.
    [[nodiscard]] Result<std::uint64_t> submit(const GenerateRequest& request);

    // The next event of any request, waiting at most `timeout`. Long texts arrive reassembled.
    // Errors: timeout, disconnected (after every event already published was delivered), protocol.
    [[nodiscard]] Result<Event> next_event(std::chrono::milliseconds timeout);

    // Asks the daemon to cancel a request; its final event (finish_reason cancelled), or its
    // last events if it had already finished, still arrive through next_event.
    [[nodiscard]] Result<void> cancel(std::uint64_t request_id);

    // A ping through the region (the daemon answers without the engine); returns the round trip.
    // Events of other requests that arrive meanwhile are kept for next_event.
    [[nodiscard]] Result<std::chrono::nanoseconds> ping(std::chrono::milliseconds timeout);

    // A control command over the socket; returns the reply's "result". Errors: the daemon's
    // error (its code and message), timeout, disconnected.
    [[nodiscard]] Result<nlohmann::json> control(std::string_view command, const nlohmann::json& args,
                                                 std::chrono::milliseconds timeout);

    // Renders `turns` with the model's chat template (or `template_source`, Jinja, when not
    // empty) in the daemon and tokenizes it there: control tokens come only from the
    // template's markup, so message text that spells "<|eot_id|>" stays text. Submit the
    // tokens with prompt_is_tokens. Errors: the daemon's invalid_argument naming the message
    // or the template line that cannot render, timeout, disconnected, protocol (a reply
    // without text and tokens).
    [[nodiscard]] Result<RenderedChat> render_chat(const std::vector<ChatTurn>& turns, bool add_generation_prompt,
                                                   std::string_view template_source,
                                                   std::chrono::milliseconds timeout);

    // Notices the daemon sent ({"notice": ...}) since the last call.
    std::vector<nlohmann::json> take_notices();

    // What the daemon said in its welcome (instance, server, region_size, connection).
    const nlohmann::json& welcome() const { return welcome_; }
    // The connection's socket (for a caller's own poll loop; readable means a line or EOF).
    int socket_fd() const { return socket_.get(); }

private:
    using Clock = std::chrono::steady_clock;

    explicit Client(const ConnectOptions& options);
    void read_socket(std::chrono::milliseconds wait);
    void handle_line(const std::string& line);
    Result<void> send_line(const std::string& line, Clock::time_point deadline);
    // The next event from the region (or, with use_held, from those set aside first).
    Result<Event> wait_event(Clock::time_point deadline, bool use_held);
    Error disconnected_error() const;

    UniqueFd socket_;
    LineFramer framer_;
    std::unique_ptr<ClientRegion> region_;
    ConnectOptions options_;
    nlohmann::json welcome_;
    std::uint64_t next_request_id_ = 1;
    std::uint64_t next_control_id_ = 1;
    std::deque<Event> held_events_;
    std::deque<nlohmann::json> replies_;
    std::vector<nlohmann::json> notices_;
    bool disconnected_ = false;
    std::optional<Error> socket_fault_;  // the daemon broke the line protocol
    std::optional<std::string> closed_reason_;  // from the daemon's last word, a "closed" notice
};

}  // namespace llmq::ipc
