#include "daemon_bridge.hpp"

#include <boost/asio/post.hpp>

namespace llmq::gateway {

using namespace std::chrono_literals;

namespace {
// How long the bridge waits for an event before looking at its queue again: the most a new
// submit waits for the thread. Short enough to be lost in a request's latency.
constexpr auto kEventSlice = 3ms;
constexpr auto kControlTimeout = 10s;
}  // namespace

DaemonBridge::DaemonBridge(boost::asio::io_context& io, ipc::ConnectOptions options, EventSink events)
    : io_(io), options_(std::move(options)), events_(std::move(events)), thread_([this] { run(); }) {}

DaemonBridge::~DaemonBridge() {
    {
        std::lock_guard lock(mutex_);
        stopping_ = true;
    }
    wake_.notify_all();
    thread_.join();
}

void DaemonBridge::submit(ipc::GenerateRequest request, SubmitDone done) {
    Job job{Job::submit, std::move(request), 0, {}, {}, std::move(done), {}};
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    wake_.notify_all();
}

void DaemonBridge::cancel(uint64_t request_id) {
    Job job{Job::cancel, {}, request_id, {}, {}, {}, {}};
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    wake_.notify_all();
}

void DaemonBridge::control(std::string command, nlohmann::json args, ControlDone done) {
    Job job{Job::control, {}, 0, std::move(command), std::move(args), {}, std::move(done)};
    std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
    wake_.notify_all();
}

uint64_t DaemonBridge::connections() const {
    std::lock_guard lock(mutex_);
    return connections_;
}

ipc::Result<void> DaemonBridge::ensure_connected() {
    if (client_) return {};
    auto client = ipc::Client::connect(options_);
    if (!client) return client.error();
    client_ = std::move(*client);
    std::lock_guard lock(mutex_);
    ++connections_;
    return {};
}

void DaemonBridge::lose_connection(const ipc::Error& why) {
    client_.reset();
    const std::string message = "the connection to llmqd broke: " + why.message;
    for (uint64_t id : in_flight_) {
        boost::asio::post(io_, [sink = events_, id, message] {
            sink(ipc::Event::error(id, ipc::EventError::internal, message));
        });
    }
    in_flight_.clear();
}

void DaemonBridge::run_job(Job& job) {
    if (job.kind == Job::cancel) {
        if (client_ && in_flight_.count(job.request_id)) (void)client_->cancel(job.request_id);
        return;
    }
    if (auto connected = ensure_connected(); !connected) {
        ipc::Error error = connected.error();
        if (job.kind == Job::submit)
            boost::asio::post(io_, [done = std::move(job.submit_done), error] { done(error); });
        else
            boost::asio::post(io_, [done = std::move(job.control_done), error] { done(error); });
        return;
    }
    if (job.kind == Job::submit) {
        auto id = client_->submit(job.request);
        if (id) in_flight_.insert(*id);
        ipc::Result<uint64_t> result = id ? ipc::Result<uint64_t>(*id) : ipc::Result<uint64_t>(id.error());
        boost::asio::post(io_, [done = std::move(job.submit_done), result] { done(result); });
        if (!id && id.error().code == ipc::ErrorCode::disconnected) lose_connection(id.error());
        return;
    }
    auto reply = client_->control(job.command, job.args, kControlTimeout);
    const bool lost = !reply && reply.error().code == ipc::ErrorCode::disconnected;
    boost::asio::post(io_, [done = std::move(job.control_done), reply] { done(reply); });
    if (lost) lose_connection(reply.error());
}

void DaemonBridge::run() {
    for (;;) {
        std::deque<Job> jobs;
        {
            std::unique_lock lock(mutex_);
            if (!client_ || in_flight_.empty())  // nothing to listen for: sleep until a job comes
                wake_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
            if (stopping_) return;
            jobs.swap(jobs_);
        }
        for (auto& job : jobs) run_job(job);
        if (!client_ || in_flight_.empty()) continue;
        // Events until none comes within a slice, or for one slice at most, then back to the
        // queue (a long stream must not keep a cancel waiting).
        const auto round_end = std::chrono::steady_clock::now() + kEventSlice;
        while (std::chrono::steady_clock::now() < round_end) {
            auto event = client_->next_event(std::chrono::duration_cast<std::chrono::milliseconds>(kEventSlice));
            if (!event) {
                if (event.error().code != ipc::ErrorCode::timeout) lose_connection(event.error());
                break;
            }
            if (event->kind == ipc::EventKind::final || event->kind == ipc::EventKind::error)
                in_flight_.erase(event->request_id);
            boost::asio::post(io_, [sink = events_, e = std::move(*event)]() mutable { sink(std::move(e)); });
            if (in_flight_.empty()) break;
        }
    }
}

}  // namespace llmq::gateway
