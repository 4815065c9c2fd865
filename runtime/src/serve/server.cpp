#include "llmq/runtime/server.hpp"

#include <pwd.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <boost/asio.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "llmq/ipc/instance_directory.hpp"
#include "llmq/kernels/cpu.hpp"
#include "llmq/ipc/listener.hpp"
#include "llmq/ipc/request_decoder.hpp"
#include "llmq/ipc/request_payload.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/chat_command.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/request_log.hpp"
#include "llmq/runtime/model_file_fault.hpp"
#include "llmq/runtime/plugin_commands.hpp"
#include "llmq/runtime/metrics_endpoint.hpp"
#include "llmq/runtime/serving_metrics.hpp"
#include "llmq/runtime/spin_budget.hpp"
#include "llmq/runtime/vision_encoder.hpp"
#include "prompt_worker.hpp"

namespace llmq {

namespace {

using Clock = std::chrono::steady_clock;

// Most request descriptors one doorbell wake-up takes from one client; the rest wait for a
// later turn of the Asio loop, after every other client's handlers.
constexpr size_t kRequestsPerWake = 8;

// A request of a client, as the Asio thread knows it.
struct LiveRequest {
    uint64_t engine_id = 0;  // 0 while the prompt worker prepares it
    bool cancelled = false;  // cancelled (or disconnected) while it was being prepared
    bool finished = false;   // the engine finished it before its id came back
};

// One connected client, shared by the Asio thread (requests, control), the prompt worker and
// the engine thread (its requests' events).
//
// What the daemon holds for a client is bounded: events go to its response ring, and only
// those that do not fit wait in `pending`, at most max_pending; while any wait, the client's
// request ring is not read (so it cannot ask for more), and a client whose pending events
// overflow, or make no progress for the stall timeout, is cut off.
struct ClientState {
    std::shared_ptr<ipc::Connection> connection;
    std::shared_ptr<ipc::ServerRegion> region;
    std::atomic<bool> open{true};
    size_t max_pending = 256;

    // The response ring has one producer at a time: this mutex (the daemon's own, never
    // shared with the client) lets every thread push.
    std::mutex events_mutex;
    std::deque<ipc::Event> pending;   // events that did not fit yet, in order
    Clock::time_point pending_since;  // last progress while `pending` was not empty
    bool overflowed = false;          // an event found `pending` full (and was dropped)

    // Asio thread only: the client's request ids → what became of them.
    std::unordered_map<uint64_t, LiveRequest> requests;
    bool deferred = false;  // its request ring is left unread until `pending` drains

    // Push in order after whatever is pending; false when it had to wait or was dropped.
    bool push(ipc::Event e) {
        std::lock_guard lock(events_mutex);
        flush_locked();
        if (pending.empty() && region->push_event(e)) return true;
        if (pending.size() >= max_pending) {
            overflowed = true;
            return false;
        }
        if (pending.empty()) pending_since = Clock::now();
        pending.push_back(std::move(e));
        return false;
    }
    bool flush() {
        std::lock_guard lock(events_mutex);
        flush_locked();
        return pending.empty();
    }
    void flush_locked() {
        bool moved = false;
        while (!pending.empty() && region->push_event(pending.front())) {
            pending.pop_front();
            moved = true;
        }
        if (moved) pending_since = Clock::now();
    }
    // Why this client must be cut off now, or "" (it drains, or has nothing waiting).
    std::string why_cut_off(std::chrono::milliseconds stall_timeout) {
        std::lock_guard lock(events_mutex);
        flush_locked();
        if (overflowed)
            return "it does not read its events: more than " + std::to_string(max_pending) +
                   " waited beside its full response ring ([ipc] max_pending_events)";
        if (!pending.empty() && Clock::now() - pending_since > stall_timeout)
            return "it read none of its " + std::to_string(pending.size()) +
                   " waiting events within the stall timeout ([ipc] stall_timeout)";
        return "";
    }
};

uint64_t micros(double ms) { return ms > 0 ? static_cast<uint64_t>(ms * 1000.0) : 0; }

// Writes one request's results into its client's response ring.
class ClientSink final : public RequestSink {
public:
    ClientSink(std::shared_ptr<ClientState> client, uint64_t request_id, bool logprobs,
               ServingMetrics& metrics, std::function<void(uint64_t)> done)
        : client_(std::move(client)), id_(request_id), logprobs_(logprobs), metrics_(metrics),
          done_(std::move(done)) {}

    // A client that stopped reading pauses its request (the engine cancels it after the
    // stall timeout). A closed client is always "ready": its cancellation is on its way.
    bool ready() override {
        if (!client_->open.load()) return true;
        return client_->flush() && client_->region->writable_event_slots() >= 8;
    }
    void on_token(int32_t token, std::string_view text, float logprob) override {
        if (!client_->open.load()) return;
        if (logprobs_ && token >= 0) client_->push(ipc::Event::token(id_, token, text, logprob));
        else client_->push(ipc::Event::token(id_, token, text));
    }
    void on_finish(const FinishInfo& info) override {
        record_metrics(info);
        log::info(request_finished_line({id_, client_->connection->id(), client_->connection->peer().pid}, info));
        if (client_->open.load()) {
            const auto& t = info.timings;
            if (info.reason == FinishReason::error) {
                client_->push(ipc::Event::error(id_, ipc::EventError::internal, info.error));
            } else if (info.reason == FinishReason::cancelled && !info.error.empty()) {
                client_->push(ipc::Event::error(id_, ipc::EventError::stalled, info.error));
            } else {
                ipc::FinishReason r = info.reason == FinishReason::length      ? ipc::FinishReason::length
                                      : info.reason == FinishReason::cancelled ? ipc::FinishReason::cancelled
                                      : info.stop_string                       ? ipc::FinishReason::stop_string
                                                                               : ipc::FinishReason::eos;
                client_->push(ipc::Event::final_event(
                    id_, r, static_cast<uint32_t>(info.prompt_tokens.size()),
                    static_cast<uint32_t>(info.tokens.size()), micros(t.queue_ms),
                    micros(t.prefill_ms), micros(t.decode_ms)));
            }
        }
        done_(id_);
    }

private:
    void record_metrics(const FinishInfo& info) {
        const RequestOutcome outcome = info.reason == FinishReason::length      ? RequestOutcome::length
                                       : info.reason == FinishReason::cancelled ? RequestOutcome::cancelled
                                       : info.reason == FinishReason::error     ? RequestOutcome::error
                                       : info.stop_string                       ? RequestOutcome::stop_string
                                                                                : RequestOutcome::eos;
        metrics_.record_finished(outcome, info.prompt_tokens.size(), info.tokens.size(),
                                 info.timings.queue_ms, info.timings.prefill_ms, info.timings.decode_ms);
    }

    std::shared_ptr<ClientState> client_;
    uint64_t id_;
    bool logprobs_;
    ServingMetrics& metrics_;
    std::function<void(uint64_t)> done_;
};

bool user_allowed(const IpcConfig& ipc, uid_t uid) {
    if (uid == 0 || uid == getuid()) return true;
    if (!ipc.group.empty() && ipc.allowed_users.empty()) return true;  // the group decides
    for (const auto& u : ipc.allowed_users) {
        if (!u.empty() && std::all_of(u.begin(), u.end(), ::isdigit)) {
            if (static_cast<uid_t>(std::stoul(u)) == uid) return true;
        } else if (struct passwd* pw = getpwnam(u.c_str()); pw && pw->pw_uid == uid) {
            return true;
        }
    }
    return false;
}

class Server {
public:
    Server(const ServerOptions& options, MpiWorld* world) : options_(options), world_(world) {}
    int run();

private:
    void handle_requests(const std::shared_ptr<ipc::Connection>& c);
    void submit(const std::shared_ptr<ClientState>& client, const ipc::DecodedRequest& r);
    void submitted(const std::shared_ptr<ClientState>& client, uint64_t id, Expected<uint64_t> engine_id);
    void cut_off(const std::shared_ptr<ClientState>& client, const std::string& why);
    void disconnect(const std::shared_ptr<ipc::Connection>& c);
    void begin_drain(const std::string& why);
    void check_drain();
    void stop();
    void engine_loop();
    void serve_io();
    nlohmann::json status_json(const ipc::PeerCredentials& asker);
    nlohmann::json metrics_json(const ipc::PeerCredentials& asker);
    void on_request_done(uint64_t connection, uint64_t request_id);

    const ServerOptions& options_;
    MpiWorld* world_;
    boost::asio::io_context io_;
    std::unique_ptr<ipc::Listener> listener_;
    std::unique_ptr<ModelRuntime> runtime_;
    std::unordered_map<uint64_t, std::shared_ptr<ClientState>> clients_;  // by connection id
    ipc::DecodeLimits limits_;
    uint64_t max_prompt_text_bytes_ = 0;  // longer text cannot tokenize into the context
    size_t preparing_ = 0;                // requests at the prompt worker (Asio thread)
    std::unique_ptr<PromptWorker> prompt_worker_;
    std::atomic<bool> stopping_{false};
    bool draining_ = false;
    Clock::time_point drain_deadline_;
    std::unique_ptr<boost::asio::steady_timer> drain_timer_;
    std::unique_ptr<boost::asio::steady_timer> flush_timer_;
    std::function<void(const boost::system::error_code&)> flush_tick_;
    bool flush_armed_ = false;
    // Starts the 20 ms flush tick unless it runs; it stops itself once no client has a request
    // or an event waiting, so an idle daemon has no timer wake-ups.
    void arm_flush() {
        if (flush_armed_ || stopping_.load() || !flush_timer_) return;
        flush_armed_ = true;
        flush_timer_->expires_after(std::chrono::milliseconds(20));
        flush_timer_->async_wait(flush_tick_);
    }
    std::thread engine_thread_;
    Clock::time_point started_ = Clock::now();
    int exit_code_ = 0;
    std::mt19937_64 seeds_{std::random_device{}()};
    ServingMetrics metrics_;
    std::unique_ptr<MetricsEndpoint> metrics_endpoint_;  // [metrics] listen
};

void Server::engine_loop() {
    Engine& engine = runtime_->engine();
    while (!stopping_.load()) {
        // Submit, cancel and stop wake it; an idle engine sleeps without timer wake-ups.
        if (!engine.step()) engine.wait_for_work(std::chrono::hours(1));
    }
}

// The Asio thread once serving: handlers as they come and, between them, a spin on the
// clients' rings (doorbells disarmed) of at most [ipc] idle_spin_us, paid for by SpinBudget
// when it finds nothing; then the doorbells are armed and the thread sleeps in epoll. With
// idle_spin_us = 0 the doorbells stay armed and this is io_.run().
void Server::serve_io() {
    const auto window = std::chrono::microseconds(options_.config.ipc.idle_spin_us);
    if (window.count() == 0) {
        io_.run();
        return;
    }
    SpinBudget budget(window);
    while (!io_.stopped()) {
        if (io_.poll() + listener_->poll_requests() != 0) continue;
        const Clock::time_point spin_start = Clock::now();
        const std::chrono::nanoseconds allowed = budget.allowance(spin_start);
        bool found = false;
        if (allowed.count() > 0) {
            listener_->disarm_doorbells();  // a client connected since the last spin starts armed
            for (unsigned i = 1; !found; ++i) {
                // The rings are plain memory reads; the reactor (sockets, timers, posts from
                // other threads) is an epoll_wait system call, so it is asked every 16th turn.
                if (listener_->poll_requests() != 0) found = true;
                else if (i % 16 == 0 && (io_.poll() != 0 || io_.stopped())) found = true;
                else if (i % 16 == 0 && Clock::now() - spin_start >= allowed) break;
#if defined(__x86_64__) || defined(__i386__)
                else __builtin_ia32_pause();
#endif
            }
            if (found) continue;
            budget.charge(Clock::now() - spin_start);
        }
        if (!listener_->arm_doorbells()) continue;  // a request slipped in: serve it, spin again
        io_.run_one();
        listener_->disarm_doorbells();
    }
}

void Server::on_request_done(uint64_t connection, uint64_t request_id) {
    // Engine thread → Asio thread: forget the mapping there.
    boost::asio::post(io_, [this, connection, request_id] {
        auto it = clients_.find(connection);
        if (it != clients_.end()) {
            auto& requests = it->second->requests;
            auto r = requests.find(request_id);
            // Finished before its engine id came back from the prompt worker: forgotten then.
            if (r != requests.end() && r->second.engine_id == 0) r->second.finished = true;
            else if (r != requests.end()) requests.erase(r);
        }
        if (draining_) check_drain();
    });
}

void Server::submit(const std::shared_ptr<ClientState>& client, const ipc::DecodedRequest& r) {
    const uint64_t id = r.request_id;
    if (draining_) {
        metrics_.record_rejected();
        client->push(ipc::Event::error(id, ipc::EventError::shutting_down,
                                       "llmqd is shutting down and takes no new requests"));
        return;
    }
    if (client->requests.count(id) != 0) {
        client->push(ipc::Event::error(id, ipc::EventError::invalid_request,
                                       "request_id " + std::to_string(id) +
                                           " is already in use by a live request of this connection; "
                                           "the new request was refused"));
        return;
    }
    const size_t share = static_cast<size_t>(options_.config.ipc.max_requests_per_client);
    if (client->requests.size() >= share) {
        client->push(ipc::Event::error(id, ipc::EventError::busy,
                                       "busy: this connection has " + std::to_string(client->requests.size()) +
                                           " live requests, its share ([ipc] max_requests_per_client); "
                                           "retry when one ends"));
        return;
    }
    const ipc::GenerateRequest& g = r.generate;
    if (!g.prompt_is_tokens && g.prompt_text.size() > max_prompt_text_bytes_) {
        client->push(ipc::Event::error(
            id, ipc::EventError::invalid_request,
            "prompt: " + std::to_string(g.prompt_text.size()) + " bytes of text cannot fit the context of " +
                std::to_string(runtime_->plan().context_length) + " positions (no token of this model is longer than " +
                std::to_string(max_prompt_text_bytes_ / std::max<int64_t>(1, runtime_->plan().context_length - 1)) +
                " bytes, so at most " + std::to_string(max_prompt_text_bytes_) + " bytes can)"));
        return;
    }
    GenerateRequest req;
    req.owner = client->connection->id();
    if (g.prompt_is_tokens) req.prompt_tokens = g.prompt_tokens;
    else req.prompt = g.prompt_text;
    req.images = g.images;  // decoded and checked by the engine (an error event for this request alone)
    req.add_bos = g.add_bos;
    req.priority = g.priority;
    auto& p = req.sampling;
    p.temperature = g.sampling.temperature;
    p.top_k = g.sampling.top_k;
    p.top_p = g.sampling.top_p;
    p.min_p = g.sampling.min_p;
    p.repetition_penalty = g.sampling.repetition_penalty;
    p.presence_penalty = g.sampling.presence_penalty;
    p.frequency_penalty = g.sampling.frequency_penalty;
    p.penalty_last_n = g.sampling.penalty_last_n;
    p.seed = g.sampling.seed_set ? g.sampling.seed : seeds_();
    p.seed_set = true;
    p.max_tokens = g.max_tokens > 0 ? g.max_tokens : options_.config.scheduler.max_new_tokens;
    p.ignore_eos = g.ignore_eos;
    p.logprobs = g.logprobs ? 1 : 0;
    p.stop = g.stop;
    const uint64_t conn = client->connection->id();
    auto sink = std::make_shared<ClientSink>(client, id, g.logprobs, metrics_,
                                             [this, conn](uint64_t rid) { on_request_done(conn, rid); });
    client->requests[id] = LiveRequest{};
    ++preparing_;
    arm_flush();
    prompt_worker_->post([this, client, id, req = std::move(req), sink]() mutable {
        auto engine_id = runtime_->engine().submit(std::move(req), sink);
        boost::asio::post(io_, [this, client, id, engine_id = std::move(engine_id)]() mutable {
            submitted(client, id, std::move(engine_id));
        });
    });
}

// Asio thread: the prompt worker's answer for one request.
void Server::submitted(const std::shared_ptr<ClientState>& client, uint64_t id, Expected<uint64_t> engine_id) {
    --preparing_;
    auto it = client->requests.find(id);
    if (!engine_id) {
        if (it != client->requests.end()) client->requests.erase(it);
        const Status& s = engine_id.status();
        ipc::EventError code = s.code() == status_code::unavailable ? ipc::EventError::busy
                                                                      : ipc::EventError::invalid_request;
        metrics_.record_rejected();
        if (client->open.load() && !client->push(ipc::Event::error(id, code, s.message()))) arm_flush();
    } else if (it == client->requests.end() || it->second.cancelled || !client->open.load()) {
        runtime_->engine().cancel(*engine_id);
        if (it != client->requests.end()) it->second.engine_id = *engine_id;
    } else if (it->second.finished) {
        client->requests.erase(it);
    } else {
        it->second.engine_id = *engine_id;
    }
    if (draining_) check_drain();
}

void Server::cut_off(const std::shared_ptr<ClientState>& client, const std::string& why) {
    const auto& c = client->connection;
    log::warn("client " + std::to_string(c->id()) + " (pid " + std::to_string(c->peer().pid) + ", " +
              c->client_name() + ") cut off: " + why);
    c->close("cut off: " + why);
}

void Server::handle_requests(const std::shared_ptr<ipc::Connection>& c) {
    auto it = clients_.find(c->id());
    if (it == clients_.end()) return;
    auto client = it->second;
    if (const std::string why = client->why_cut_off(options_.config.ipc.stall_timeout); !why.empty()) {
        cut_off(client, why);
        return;
    }
    if (!client->flush()) {
        // Its events wait beside a full ring: read no more requests until it drains them.
        client->deferred = true;
        c->defer_requests();
        arm_flush();
        return;
    }
    std::vector<ipc::PolledRequest> polled;
    client->region->poll(limits_, polled, kRequestsPerWake);
    if (client->region->faulted()) {
        log::warn("client " + std::to_string(c->id()) + " (pid " + std::to_string(c->peer().pid) +
                  ") corrupted its region's ring indices; closing it");
        c->close("the region's ring indices were corrupted");
        return;
    }
    for (const auto& p : polled) {
        if (const auto* defect = std::get_if<ipc::RequestDefect>(&p)) {
            client->push(ipc::Event::error(defect->request_id, ipc::EventError::invalid_request,
                                           defect->message));
            continue;
        }
        const auto& r = std::get<ipc::DecodedRequest>(p);
        switch (r.kind) {
            case ipc::RequestKind::ping:
                client->push(ipc::Event::pong(r.request_id));
                break;
            case ipc::RequestKind::cancel:
                if (auto m = client->requests.find(r.request_id); m != client->requests.end()) {
                    if (m->second.engine_id != 0) runtime_->engine().cancel(m->second.engine_id);
                    else m->second.cancelled = true;
                }
                break;
            case ipc::RequestKind::generate:
                submit(client, r);
                break;
            default:
                client->push(ipc::Event::error(r.request_id, ipc::EventError::invalid_request,
                                               "unknown request kind"));
        }
    }
    if (!c->is_open()) return;
    if (const std::string why = client->why_cut_off(options_.config.ipc.stall_timeout); !why.empty()) {
        cut_off(client, why);
        return;
    }
    if (!client->flush()) arm_flush();  // answers wait beside its full ring
    if (client->region->has_pending_requests()) {
        // This wake-up's share is done; the rest after every other client's turn.
        c->defer_requests();
        c->resume_requests();
    }
}

void Server::disconnect(const std::shared_ptr<ipc::Connection>& c) {
    auto it = clients_.find(c->id());
    if (it == clients_.end()) return;
    auto client = it->second;
    client->open.store(false);
    for (auto& [rid, r] : client->requests) {
        if (r.engine_id != 0) runtime_->engine().cancel(r.engine_id);
        else r.cancelled = true;  // cancelled when the prompt worker hands it over
    }
    log::debug("client " + std::to_string(c->id()) + " gone; cancelled " +
               std::to_string(client->requests.size()) + " request(s)");
    clients_.erase(it);
    if (draining_) check_drain();
}

void Server::begin_drain(const std::string& why) {
    if (draining_) return;
    draining_ = true;
    log::info("draining (" + why + "): no new requests; waiting up to " +
              std::to_string(options_.config.ipc.drain_timeout.count()) + " ms for running ones");
    // Keep accepting: a client that connects now gets its welcome and a "shutting down" error
    // for each request (submit), instead of hanging in the listen backlog until the daemon exits.
    drain_deadline_ = Clock::now() + options_.config.ipc.drain_timeout;
    check_drain();
}

void Server::check_drain() {
    if (stopping_.load()) return;
    Engine& engine = runtime_->engine();
    if (engine.idle() && preparing_ == 0) {
        stop();
        return;
    }
    if (Clock::now() > drain_deadline_) {
        log::warn("drain timeout: cancelling the requests still running");
        for (auto& [id, client] : clients_)
            for (auto& [rid, r] : client->requests) {
                if (r.engine_id != 0) engine.cancel(r.engine_id);
                else r.cancelled = true;
            }
        drain_deadline_ = Clock::now() + std::chrono::seconds(5);  // for the cancellations
    }
    drain_timer_->expires_after(std::chrono::milliseconds(20));
    drain_timer_->async_wait([this](const boost::system::error_code& ec) {
        if (!ec) check_drain();
    });
}

void Server::stop() {
    if (stopping_.exchange(true)) return;
    runtime_->engine().notify();
    for (auto& [id, client] : clients_) client->flush();
    listener_->close_all("llmqd is stopping");
    io_.stop();
}

nlohmann::json Server::status_json(const ipc::PeerCredentials& asker) {
    const EngineStats s = runtime_->engine().stats();
    nlohmann::json j;
    j["server"] = "llmqd";
    j["instance"] = options_.config.ipc.instance;
    j["pid"] = getpid();
    j["uptime_s"] = std::chrono::duration<double>(Clock::now() - started_).count();
    j["draining"] = draining_;
    const auto& hp = runtime_->hparams();
    j["model"] = {{"name", runtime_->model_name()}, {"path", runtime_->model_path()},
                  {"architecture", hp.arch}, {"vocab", hp.n_vocab}, {"layers", hp.n_layer},
                  {"dim", hp.n_embd}, {"context_length", runtime_->plan().context_length},
                  {"load_seconds", runtime_->load_seconds()}};
    // What a client needs to send images (null: the model takes none).
    j["model"]["vision"] = nullptr;
    if (const VisionEncoder* v = runtime_->vision())
        j["model"]["vision"] = {{"tokens_per_image", v->tokens_per_image()},
                                {"max_images", limits_.max_images},
                                {"max_image_bytes", limits_.max_image_bytes}};
    else if (runtime_->mllama_vision())  // one <|image|> token an image; the rows go to cross-attention
        j["model"]["vision"] = {{"tokens_per_image", 1},
                                {"max_images", limits_.max_images},
                                {"max_image_bytes", limits_.max_image_bytes}};
    j["devices"] = nlohmann::json::array();
    for (const auto& d : runtime_->devices())
        j["devices"].push_back({{"name", d->info().name}, {"threads", d->info().threads},
                                {"memory_capacity_bytes", d->info().memory_capacity},
                                {"memory_used_bytes", d->memory_used()}});
    j["plan"] = runtime_->plan().to_json();
    {
        // The kernel path run-time dispatch picked on this CPU (LLMQ_CPU_ISA may cap it), and
        // the GEMM driver it runs for the model's weights at decode (1 row) and prefill sizes.
        namespace k = kernels;
        const k::isa isa = k::best_isa();
        nlohmann::json supported = nlohmann::json::array();
        for (int i = 0; std::string(k::isa_name(static_cast<k::isa>(i))) != "unknown"; ++i)
            if (k::isa_supported(static_cast<k::isa>(i))) supported.push_back(k::isa_name(static_cast<k::isa>(i)));
        const auto& layers = runtime_->layout().layers;
        const k::dtype weights = !layers.empty() && layers[0].wq ? layers[0].wq->dtype : k::dtype::f32;
        j["cpu_kernels"] = {{"isa", k::isa_name(isa)}, {"supported", supported},
                            {"weights", k::dtype_name(weights)},
                            {"gemm_decode", k::gemm_path(isa, weights, 1)},
                            {"gemm_prefill", k::gemm_path(isa, weights, 512)}};
    }
    j["plugins"] = nlohmann::json::array();
    auto set = runtime_->plugins().snapshot();
    if (!set->devices.empty()) {
        for (const auto* inst : {set->devices[0].gemm.get(), set->devices[0].attention.get(),
                                 set->devices[0].vision.get()}) {
            if (!inst) continue;
            const auto& d = inst->library().descriptor();
            j["plugins"].push_back({{"kind", plugin_kind_name(d.kind)}, {"backend", backend_name(d.backend)},
                                    {"name", d.name}, {"version", d.version},
                                    {"path", inst->library().path()}, {"calls", inst->calls()},
                                    {"errors", inst->errors()}});
        }
    }
    // Who else uses the daemon is the daemon's user's business, and each user's own: another
    // user's clients are counted, never named.
    const bool sees_all = asker.uid == getuid() || asker.uid == 0;
    j["clients"] = clients_.size();
    j["client_list"] = nlohmann::json::array();
    size_t hidden = 0;
    for (const auto& [id, c] : clients_) {
        if (!sees_all && c->connection->peer().uid != asker.uid) {
            ++hidden;
            continue;
        }
        j["client_list"].push_back({{"id", id}, {"name", c->connection->client_name()},
                                    {"pid", c->connection->peer().pid},
                                    {"uid", c->connection->peer().uid},
                                    {"requests", c->requests.size()}});
    }
    j["other_users_clients"] = hidden;
    // Requests at the prompt worker are accepted and wait like queued ones.
    j["requests"] = {{"running", s.running}, {"queued", s.queued + static_cast<int64_t>(preparing_)},
                     {"finished", s.requests_finished}};
    j["kv_blocks"] = {{"used", s.kv_blocks_used}, {"free", s.kv_blocks_total - s.kv_blocks_used},
                      {"total", s.kv_blocks_total}, {"block_size", runtime_->plan().block_size}};
    j["tokens_per_s"] = s.tokens_per_s;
    j["tokens_generated"] = s.tokens_generated;
    j["preemptions"] = s.preemptions;
    j["steps"] = s.steps;
    return j;
}

// The `metrics` command: the serving counters and histograms, with the gauges an operator
// watches taken from the status.
nlohmann::json Server::metrics_json(const ipc::PeerCredentials& asker) {
    nlohmann::json j = metrics_.to_json();
    const nlohmann::json st = status_json(asker);
    for (const char* key : {"model", "devices", "plugins", "clients", "kv_blocks", "preemptions", "uptime_s"})
        j[key] = st[key];
    j["queued"] = st["requests"]["queued"];
    j["running"] = st["requests"]["running"];
    j["plugin_swaps"] = runtime_->plugins().swaps();
    return j;
}

int Server::run() {
    const Config& config = options_.config;
    // Signals first: a SIGTERM during the load stops the daemon cleanly after it.
    boost::asio::signal_set signals(io_, SIGINT, SIGTERM, SIGHUP);
    std::atomic<int> early_signal{0};
    std::function<void(const boost::system::error_code&, int)> on_signal;
    on_signal = [&](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        if (sig == SIGHUP) {
            if (runtime_) runtime_->plugins().request_reload("SIGHUP");
            else log::info("SIGHUP during the model load: no plugins to reload yet; ignoring");
        } else if (!runtime_) {
            early_signal.store(sig);
        } else {
            begin_drain(sig == SIGINT ? "SIGINT" : "SIGTERM");
        }
        signals.async_wait(on_signal);
    };
    signals.async_wait(on_signal);
    unblock_stop_signals();  // daemon_main blocked them until this handler existed

    // The instance (lock + socket) before the model: a second daemon refuses at once.
    ipc::ListenerOptions lo;
    lo.instance = config.ipc.instance;
    if (!config.ipc.dir.empty()) lo.dir = config.ipc.dir;
    if (!config.ipc.group.empty()) {
        auto gid = ipc::lookup_group(config.ipc.group);
        if (!gid) {
            log::error("[ipc] group = \"" + config.ipc.group + "\": " + gid.error().message);
            return 1;
        }
        lo.group = *gid;
    }
    lo.geometry.region_size = config.ipc.region_size;
    lo.geometry.request_capacity = static_cast<uint32_t>(config.ipc.request_ring_slots);
    lo.geometry.response_capacity = static_cast<uint32_t>(config.ipc.response_ring_slots);
    lo.control_limits.max_line_bytes = config.ipc.control_max_line;
    lo.control_limits.max_depth = static_cast<uint32_t>(config.ipc.control_max_depth);
    lo.max_connections = static_cast<size_t>(config.ipc.max_clients);
    lo.max_handshaking = static_cast<size_t>(config.ipc.max_handshaking);
    lo.max_per_uid = static_cast<size_t>(config.ipc.max_clients_per_uid);
    lo.max_per_pid = static_cast<size_t>(config.ipc.max_clients_per_pid);
    lo.evictable = [this](const ipc::Connection& c) {
        auto it = clients_.find(c.id());
        return it == clients_.end() || it->second->requests.empty();
    };
    lo.allow_peer = [&config](const ipc::PeerCredentials& p) { return user_allowed(config.ipc, p.uid); };
    lo.log = [](std::string_view m) { log::debug(std::string(m)); };
    auto listener = ipc::Listener::open(io_, lo);
    if (!listener) {
        log::error("cannot open instance \"" + config.ipc.instance + "\": " + listener.error().message);
        return 1;
    }
    listener_ = std::move(*listener);
    log::info("instance \"" + config.ipc.instance + "\" at " + listener_->socket_path().string());
    install_model_file_fault_handler(listener_->socket_path().string());

    // Load while the Asio thread watches for signals.
    std::thread signal_thread([this] { io_.run(); });
    // The load's steps in the log (the last one is the "model ... loaded" line below).
    auto rt = ModelRuntime::load(config, world_, [](const ProgressEvent& e) {
        if (e.done < e.total)
            log::info(std::string(e.stage) + ": " + std::string(e.detail) + " (step " + std::to_string(e.done + 1) +
                      " of " + std::to_string(e.total) + ")");
    });
    io_.stop();
    signal_thread.join();
    io_.restart();
    if (!rt) {
        log::error("cannot load the model: " + rt.status().message());
        return 1;
    }
    runtime_ = std::move(*rt);
    log::info("model " + runtime_->model_name() + " loaded in " +
              std::to_string(runtime_->load_seconds()) + " s");
    if (early_signal.load()) {
        log::info("stopping: signal " + std::to_string(early_signal.load()) + " arrived during the load");
        if (world_) runtime_->executor().stop_followers();
        return 0;
    }

    limits_.vocab_size = static_cast<uint32_t>(runtime_->tokenizer().vocab_size());
    limits_.max_prompt_tokens = static_cast<uint32_t>(runtime_->plan().context_length);
    limits_.max_prompt_bytes = config.ipc.max_prompt_bytes;
    limits_.max_new_tokens = config.scheduler.max_new_tokens;
    if (runtime_->takes_images()) {
        limits_.max_images = static_cast<uint32_t>(config.ipc.max_images);
        limits_.max_image_bytes = config.ipc.max_image_bytes;
    }
    {
        // A token covers at most `longest` bytes, so longer text needs at least a whole
        // context of tokens: refused by its size alone, before anything tokenizes it.
        const Tokenizer& tok = runtime_->tokenizer();
        uint64_t longest = 1;
        for (int32_t id = 0; id < tok.vocab_size(); ++id)
            longest = std::max<uint64_t>(longest, tok.token_bytes(id).size());
        const int64_t context = runtime_->plan().context_length;
        max_prompt_text_bytes_ = static_cast<uint64_t>(std::max<int64_t>(context - 1, 0)) * longest;
        // The largest payload that can hold a servable request, so a bigger one is refused by
        // its descriptor alone, before a byte of it is copied.
        const uint64_t prompt = std::max<uint64_t>(std::min<uint64_t>(max_prompt_text_bytes_, limits_.max_prompt_bytes),
                                                   uint64_t{limits_.max_prompt_tokens} * 4);
        const uint64_t stops = uint64_t{limits_.max_stop_strings} * (4 + limits_.max_stop_bytes);
        const uint64_t images = limits_.max_images == 0 ? 0 : 4 + 4ull * limits_.max_images + limits_.max_image_bytes;
        limits_.max_payload_bytes =
            std::min(limits_.max_payload_bytes + images, ipc::kPayloadFixedBytes + prompt + stops + images);
        limits_.max_payload_why = "the most a request with a prompt that fits the context of " +
                                  std::to_string(context) + " positions and its stop strings can take";
    }
    prompt_worker_ = std::make_unique<PromptWorker>();

    listener_->on_connect([this](const std::shared_ptr<ipc::Connection>& c) {
        auto state = std::make_shared<ClientState>();
        state->max_pending = static_cast<size_t>(options_.config.ipc.max_pending_events);
        state->connection = c;
        state->region = c->region();
        clients_[c->id()] = state;
        log::debug("client " + std::to_string(c->id()) + " connected: " + c->client_name() +
                   " (pid " + std::to_string(c->peer().pid) + ")");
    });
    listener_->on_requests([this](const std::shared_ptr<ipc::Connection>& c) { handle_requests(c); });
    listener_->on_disconnect([this](const std::shared_ptr<ipc::Connection>& c) { disconnect(c); });
    listener_->add_command("status", [this](ipc::Connection& asker, const nlohmann::json&) -> ipc::Result<nlohmann::json> {
        return status_json(asker.peer());
    });
    listener_->add_command("metrics", [this](ipc::Connection& asker, const nlohmann::json&) -> ipc::Result<nlohmann::json> {
        return metrics_json(asker.peer());
    });
    if (!config.metrics.listen.empty()) {
        std::string error;
        // An HTTP scraper is nobody in particular: it gets counts, never another user's clients.
        const ipc::PeerCredentials scraper{0, static_cast<uid_t>(-1), static_cast<gid_t>(-1)};
        metrics_endpoint_ = MetricsEndpoint::start(
            io_, config.metrics.listen, [this, scraper] { return metrics_json(scraper); }, &error);
        if (!metrics_endpoint_) {
            log::error(error);
            return 1;
        }
        log::info("Prometheus metrics at " + metrics_endpoint_->url());
    }
    listener_->add_command("drain", [this](ipc::Connection&, const nlohmann::json&) -> ipc::Result<nlohmann::json> {
        begin_drain("drain command");
        return nlohmann::json{{"draining", true}};
    });
    listener_->add_command("shutdown", [this](ipc::Connection&, const nlohmann::json&) -> ipc::Result<nlohmann::json> {
        begin_drain("shutdown command");
        return nlohmann::json{{"stopping", true}};
    });
    listener_->add_command("tokenize", [this](ipc::Connection&, const nlohmann::json& args) -> ipc::Result<nlohmann::json> {
        if (!args.is_object() || !args.contains("text") || !args["text"].is_string())
            return ipc::make_error(ipc::ErrorCode::invalid_argument, "tokenize: args.text must be a string");
        const std::string& text = args["text"].get_ref<const std::string&>();
        if (text.size() > options_.config.ipc.max_prompt_bytes || !ipc::is_valid_utf8(text.data(), text.size()))
            return ipc::make_error(ipc::ErrorCode::invalid_argument,
                                   "tokenize: args.text is too long or not valid UTF-8");
        const bool add_bos = args.value("add_bos", true), special = args.value("special", false);
        return nlohmann::json{{"tokens", runtime_->tokenizer().encode(text, add_bos, special)}};
    });
    register_chat_command(*listener_, *runtime_, config);
    listener_->add_command("ping", [](ipc::Connection&, const nlohmann::json&) -> ipc::Result<nlohmann::json> {
        return nlohmann::json{{"pong", true}};
    });
    register_plugin_commands(io_, *listener_, *runtime_, config);  // plugins.list/swap/reload/job, watch
    drain_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    // Events that found a full ring wait in their client's queue; retry them regularly.
    flush_timer_ = std::make_unique<boost::asio::steady_timer>(io_);
    flush_tick_ = [this](const boost::system::error_code& ec) {
        flush_armed_ = false;
        if (ec || stopping_.load()) return;
        // A client that corrupted its response ring is found by the engine thread while it
        // pushes; close it here instead of waiting for its next doorbell (it may never ring),
        // which cancels its requests and frees their KV blocks now.
        std::vector<std::shared_ptr<ipc::Connection>> faulted;
        std::vector<std::pair<std::shared_ptr<ClientState>, std::string>> stuck;
        for (auto& [id, c] : clients_) {
            if (std::string why = c->why_cut_off(options_.config.ipc.stall_timeout); !why.empty()) {
                stuck.emplace_back(c, std::move(why));
            } else if (c->deferred && c->flush()) {
                c->deferred = false;
                c->connection->resume_requests();
            }
            if (c->region->faulted()) faulted.push_back(c->connection);
        }
        for (const auto& [c, why] : stuck) cut_off(c, why);
        for (const auto& c : faulted) {
            log::warn("client " + std::to_string(c->id()) + " (pid " + std::to_string(c->peer().pid) +
                      ") corrupted its region's response ring; closing it");
            c->close("the region's response ring index was corrupted");
        }
        // Again while some client has requests in flight or events waiting (an event pushed
        // from the engine thread belongs to a request still listed here); else the tick stops
        // until submit() or a held event starts it again.
        bool busy = false;
        for (auto& [id, c] : clients_) {
            if (!c->requests.empty() || c->deferred) busy = true;
            std::lock_guard lock(c->events_mutex);
            if (!c->pending.empty()) busy = true;
        }
        if (busy) arm_flush();
    };

    listener_->start();
    engine_thread_ = std::thread([this] { engine_loop(); });
    log::info("serving");
    serve_io();

    stopping_.store(true);
    prompt_worker_->stop();  // before the engine goes: its jobs submit there
    runtime_->engine().notify();
    if (engine_thread_.joinable()) engine_thread_.join();
    if (world_) runtime_->executor().stop_followers();
    clients_.clear();
    listener_.reset();
    log::info("stopped");
    return exit_code_;
}

}  // namespace

void block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

void unblock_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
}

int run_server(const ServerOptions& options, MpiWorld* world) {
    if (world && world->rank() != 0) {
        // A follower: hold one shard and run the steps rank 0 broadcasts. mpirun forwards
        // SIGINT/SIGTERM to every rank; rank 0 drains and then stops the followers itself.
        std::signal(SIGINT, SIG_IGN);
        std::signal(SIGTERM, SIG_IGN);
        unblock_stop_signals();
        install_model_file_fault_handler("");  // rank 0 owns the socket
        auto rt = ModelRuntime::load(options.config, world);
        if (!rt) {
            log::error("rank " + std::to_string(world->rank()) + ": cannot load the model: " +
                       rt.status().message());
            return 1;
        }
        log::info("rank " + std::to_string(world->rank()) + ": shard loaded; following rank 0");
        Status s = (*rt)->executor().follow();
        if (!s.ok()) {
            log::error("rank " + std::to_string(world->rank()) + ": " + s.message());
            return 1;
        }
        return 0;
    }
    Server server(options, world);
    return server.run();
}

}  // namespace llmq
