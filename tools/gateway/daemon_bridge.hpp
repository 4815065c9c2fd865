// DaemonBridge: the gateway's one connection to llmqd, owned by one thread.
//
// ipc::Client is used by one thread at a time, and a generation's events arrive through shared
// memory, not a socket Asio could watch; so one bridge thread owns the client: it runs the
// submits, cancels and control commands the HTTP side queues, and waits for events between
// them (a few milliseconds at a time). Everything it hands back (submit results, events,
// control replies) is posted to the HTTP side's io_context, in the order it happened, so a
// request's id is always known there before its first event.
//
// When llmqd goes away, every request in flight gets an error event (code internal, message
// "llmqd ..."), and the next call reconnects.
//
// Thread: queue calls from any thread; callbacks run on the io_context.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_set>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

#include "llmq/ipc/client.hpp"

namespace llmq::gateway {

class DaemonBridge {
public:
    using SubmitDone = std::function<void(ipc::Result<uint64_t>)>;
    using ControlDone = std::function<void(ipc::Result<nlohmann::json>)>;
    using EventSink = std::function<void(ipc::Event)>;

    // `events` receives every event of every request (on `io`).
    DaemonBridge(boost::asio::io_context& io, ipc::ConnectOptions options, EventSink events);
    ~DaemonBridge();  // stops the thread; the connection closes, which cancels everything

    void submit(ipc::GenerateRequest request, SubmitDone done);
    void cancel(uint64_t request_id);
    void control(std::string command, nlohmann::json args, ControlDone done);

    // Connections to llmqd made so far (1 after the first; more after restarts).
    uint64_t connections() const;

private:
    struct Job {
        enum Kind { submit, cancel, control } kind;
        ipc::GenerateRequest request;
        uint64_t request_id = 0;
        std::string command;
        nlohmann::json args;
        SubmitDone submit_done;
        ControlDone control_done;
    };

    void run();
    ipc::Result<void> ensure_connected();
    void run_job(Job& job);
    void lose_connection(const ipc::Error& why);

    boost::asio::io_context& io_;
    ipc::ConnectOptions options_;
    EventSink events_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<Job> jobs_;
    bool stopping_ = false;
    uint64_t connections_ = 0;

    // Bridge thread only.
    std::unique_ptr<ipc::Client> client_;
    std::unordered_set<uint64_t> in_flight_;  // submitted, no final or error event yet
    std::thread thread_;
};

}  // namespace llmq::gateway
