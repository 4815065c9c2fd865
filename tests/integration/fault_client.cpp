// llmq-fault-client: the client half of the integration and fault tests. The Python drivers
// start llmqd and run this program in children: it pauses at a chosen phase of a request and
// waits to be SIGKILLed, stalls, floods, or plays a hostile client that writes garbage into its
// region. Every mode prints one JSON object per line on stdout (flushed), so the driver can
// wait for "ready" and read results. It finds the instance as every client does
// (LLMQ_IPC_DIR, --instance).
//
// A paused child ends itself after --lifetime seconds, so a driver that dies cannot leave it
// behind.
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "llmq/ipc/client.hpp"
#include "llmq/ipc/request_payload.hpp"
#include "raw_session.hpp"

using namespace std::chrono_literals;
using llmq::integration::die;
using llmq::integration::RawSession;
namespace ipc = llmq::ipc;
using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

namespace {

struct RequestFlags {
    std::string prompt = "Once upon a time";
    int prompt_tokens = 0;  // > 0: a prompt of this many token ids instead of text
    int max_tokens = 16;
    float temperature = 0.0f;
    std::optional<std::uint64_t> seed;
    bool ignore_eos = true;
};

void add_request_flags(CLI::App& app, RequestFlags& f) {
    app.add_option("--prompt", f.prompt);
    app.add_option("--prompt-tokens", f.prompt_tokens, "use a prompt of N token ids");
    app.add_option("--max-tokens", f.max_tokens);
    app.add_option("--temperature", f.temperature);
    app.add_option("--seed", f.seed);
    app.add_option("--ignore-eos", f.ignore_eos);
}

ipc::GenerateRequest make_request(const RequestFlags& f) {
    ipc::GenerateRequest r;
    if (f.prompt_tokens > 0) {
        r.prompt_is_tokens = true;
        r.prompt_tokens.push_back(1);
        for (int i = 1; i < f.prompt_tokens; ++i) r.prompt_tokens.push_back(3 + (i * 37) % 250);  // ids every test vocabulary has
    } else {
        r.prompt_text = f.prompt;
    }
    r.max_tokens = f.max_tokens;
    r.ignore_eos = f.ignore_eos;
    r.sampling.temperature = f.temperature;
    if (f.seed) {
        r.sampling.seed = *f.seed;
        r.sampling.seed_set = true;
    }
    return r;
}

void emit(const json& j) {
    const std::string line = j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
    std::fwrite(line.data(), 1, line.size(), stdout);
    std::fflush(stdout);
}

[[noreturn]] void pause_forever() {
    for (;;) ::pause();
}

json event_json(const ipc::Event& e) {
    json j{{"id", e.request_id}, {"kind", ipc::event_kind_name(e.kind)}};
    if (e.kind == ipc::EventKind::error) {
        j["code"] = ipc::event_error_name(e.error_code());
        j["text"] = e.text;
    } else if (e.kind == ipc::EventKind::final) {
        j["finish"] = ipc::finish_reason_name(e.finish_reason());
        j["generated"] = e.generated_tokens;
    } else if (e.kind == ipc::EventKind::token) {
        j["token"] = e.token_id;
    }
    return j;
}

std::unique_ptr<ipc::Client> connect(const std::string& instance, const std::string& name) {
    ipc::ConnectOptions o;
    o.instance = instance;
    o.client_name = name;
    auto c = ipc::Client::connect(o);
    if (!c) die("connect: " + c.error().message);
    return std::move(*c);
}

// Reads events of `id` until it ends; returns the terminal event (final or error), or an
// error object when the connection broke or nothing came within `timeout`.
json wait_terminal(ipc::Client& client, std::uint64_t id, std::chrono::milliseconds timeout,
                   std::vector<std::int32_t>* tokens = nullptr) {
    const auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
        auto e = client.next_event(100ms);
        if (!e) {
            if (e.error().code == ipc::ErrorCode::timeout) continue;
            return json{{"kind", "client_error"}, {"text", e.error().to_string()}};
        }
        if (e->request_id != id) continue;
        if (e->kind == ipc::EventKind::token && tokens && e->token_id >= 0) tokens->push_back(e->token_id);
        if (e->kind == ipc::EventKind::final || e->kind == ipc::EventKind::error) return event_json(*e);
    }
    return json{{"kind", "timeout"}};
}

// ---- pause: stop at one phase of a request and wait to be killed ---------------------------

int run_pause(const std::string& instance, const std::string& phase, const RequestFlags& f, int delay_ms) {
    if (phase == "connect") {
        auto fd = llmq::integration::connect_socket(instance);
        emit({{"ready", phase}});
        pause_forever();
    }
    if (phase == "handshake") {
        auto fd = llmq::integration::connect_socket(instance);
        llmq::integration::send_all(fd.get(), ipc::format_hello(ipc::Hello{ipc::kProtocolVersion, "fault handshake"}));
        emit({{"ready", phase}});  // the welcome and its descriptors stay unread in the socket
        pause_forever();
    }
    if (phase == "writing" || phase == "published") {
        RawSession s(instance);
        std::vector<std::byte> payload;
        if (!ipc::encode_generate_payload(make_request(f), payload)) die("encode failed");
        ipc::RequestDescriptor d{};
        d.request_id = 1;
        d.kind = static_cast<std::uint32_t>(ipc::RequestKind::generate);
        d.payload_offset = 0;
        d.payload_length = payload.size();
        if (phase == "writing") {
            // Half the payload written, the descriptor staged, nothing published.
            std::memcpy(s.arena(), payload.data(), payload.size() / 2);
            s.stage(d);
        } else {
            // Published, but the doorbell not rung yet.
            std::memcpy(s.arena(), payload.data(), payload.size());
            s.stage(d);
            s.publish(1, /*ring=*/false);
        }
        emit({{"ready", phase}});
        pause_forever();
    }
    auto client = connect(instance, "fault " + phase);
    auto id = client->submit(make_request(f));
    if (!id) die("submit: " + id.error().message);
    if (phase == "queued") {
        emit({{"ready", phase}});
        pause_forever();
    }
    if (phase == "prefill") {
        if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        auto e = client->next_event(0ms);
        emit({{phase == "prefill" && !e ? "ready" : "missed", phase}});
        pause_forever();
    }
    if (phase == "streaming" || phase == "cancelling") {
        const int want = phase == "streaming" ? 3 : 1;
        int tokens = 0;
        const auto deadline = Clock::now() + 60s;
        while (tokens < want && Clock::now() < deadline) {
            auto e = client->next_event(100ms);
            if (!e) {
                if (e.error().code == ipc::ErrorCode::timeout) continue;
                die("while streaming: " + e.error().message);
            }
            if (e->kind == ipc::EventKind::token) ++tokens;
            if (e->kind == ipc::EventKind::final || e->kind == ipc::EventKind::error) break;
        }
        if (tokens < want) {
            emit({{"missed", phase}});
            pause_forever();
        }
        if (phase == "cancelling" && !client->cancel(*id)) die("cancel failed");
        emit({{"ready", phase}});
        pause_forever();
    }
    die("unknown phase " + phase);
}

// ---- stall: submit, then read nothing for a while --------------------------------------------

int run_stall(const std::string& instance, const RequestFlags& f, int sleep_ms) {
    auto client = connect(instance, "fault stall");
    auto id = client->submit(make_request(f));
    if (!id) die("submit: " + id.error().message);
    emit({{"ready", "stall"}});
    std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    std::vector<std::int32_t> tokens;
    json end = wait_terminal(*client, *id, 30s, &tokens);
    end["tokens_read"] = tokens.size();
    emit(end);
    return 0;
}

// ---- flood: many submits at once, to overflow the daemon's queue ------------------------------

int run_flood(const std::string& instance, const RequestFlags& f, int count) {
    auto client = connect(instance, "fault flood");
    std::map<std::uint64_t, Clock::time_point> submitted;
    std::map<std::uint64_t, json> ended;
    int refused_locally = 0;
    for (int i = 0; i < count; ++i) {
        auto id = client->submit(make_request(f));
        if (!id) {
            ++refused_locally;
            continue;
        }
        submitted[*id] = Clock::now();
    }
    const auto deadline = Clock::now() + 120s;
    while (ended.size() < submitted.size() && Clock::now() < deadline) {
        auto e = client->next_event(100ms);
        if (!e) {
            if (e.error().code == ipc::ErrorCode::timeout) continue;
            die("flood: " + e.error().message);
        }
        if (e->kind != ipc::EventKind::final && e->kind != ipc::EventKind::error) continue;
        json j = event_json(*e);
        j["ms"] = std::chrono::duration<double, std::milli>(Clock::now() - submitted[e->request_id]).count();
        ended[e->request_id] = j;
    }
    json out{{"submitted", submitted.size()}, {"refused_locally", refused_locally}, {"results", json::array()}};
    for (auto& [id, j] : ended) out["results"].push_back(j);
    emit(out);
    return 0;
}

// ---- late: connect now, submit when the driver says so (a line on stdin) ----------------------

int run_late(const std::string& instance, const RequestFlags& f) {
    auto client = connect(instance, "fault late");
    emit({{"ready", "late"}});
    std::string line;
    std::getline(std::cin, line);
    auto id = client->submit(make_request(f));
    if (!id) {
        emit({{"kind", "client_error"}, {"text", id.error().to_string()}});
        return 0;
    }
    emit(wait_terminal(*client, *id, 10s));
    return 0;
}

// ---- hostile clients --------------------------------------------------------------------------

// What the daemon did about this connection within `wait`: closed it, or sent which events.
// With `settle`, returns early once an error or final event came and `settle` passed quietly.
json observe(RawSession& s, std::chrono::milliseconds wait,
             std::optional<std::chrono::milliseconds> settle = std::nullopt) {
    json out{{"closed", false}, {"errors", 0}, {"pongs", 0}, {"finals", 0}, {"tokens", 0},
             {"messages", json::array()}};
    const auto deadline = Clock::now() + wait;
    auto last_event = Clock::now();
    while (Clock::now() < deadline) {
        if (settle && out["errors"].get<int>() + out["finals"].get<int>() > 0 && Clock::now() - last_event > *settle) break;
        if (s.closed(0ms)) {
            out["closed"] = true;
            break;
        }
        if (s.broken()) {
            std::this_thread::sleep_for(10ms);
            continue;
        }
        auto e = s.next_event(10ms);
        if (!e) continue;
        last_event = Clock::now();
        if (e->kind == ipc::EventKind::error) {
            out["errors"] = out["errors"].get<int>() + 1;
            if (out["messages"].size() < 4) out["messages"].push_back(e->text);
        } else if (e->kind == ipc::EventKind::pong) {
            out["pongs"] = out["pongs"].get<int>() + 1;
        } else if (e->kind == ipc::EventKind::final) {
            out["finals"] = out["finals"].get<int>() + 1;
        } else {
            out["tokens"] = out["tokens"].get<int>() + 1;
        }
    }
    out["region_unreadable"] = s.broken();
    return out;
}

void fill_random(std::byte* p, std::size_t n, std::mt19937_64& rng) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::byte>(rng() & 0xff);
}

ipc::RequestDescriptor generate_descriptor(std::uint64_t id, std::uint64_t offset, std::uint64_t length) {
    ipc::RequestDescriptor d{};
    d.request_id = id;
    d.kind = static_cast<std::uint32_t>(ipc::RequestKind::generate);
    d.payload_offset = offset;
    d.payload_length = length;
    return d;
}

// Random bytes over one part of the region, then the doorbell.
int run_garbage(const std::string& instance, const std::string& what, std::uint64_t seed) {
    RawSession s(instance);
    std::mt19937_64 rng(seed);
    const auto& l = s.layout();
    if (what == "region") {
        fill_random(s.base(), l.region_size, rng);
        s.ring();
    } else if (what == "requests") {
        fill_random(reinterpret_cast<std::byte*>(s.slots()), std::uint64_t{l.request_capacity} * 64, rng);
        s.publish(1 + rng() % l.request_capacity);
    } else if (what == "arena") {
        const std::uint64_t length = 1 + rng() % 4096;
        fill_random(s.arena(), length, rng);
        s.stage(generate_descriptor(1, 0, length));
        s.publish(1);
    } else if (what == "payload") {
        // A valid payload with random bytes over a random stretch of it.
        RequestFlags f;
        std::vector<std::byte> payload;
        if (!ipc::encode_generate_payload(make_request(f), payload)) die("encode failed");
        const std::size_t at = rng() % payload.size();
        const std::size_t n = 1 + rng() % 8;
        for (std::size_t i = at; i < std::min(payload.size(), at + n); ++i) payload[i] = static_cast<std::byte>(rng() & 0xff);
        std::memcpy(s.arena(), payload.data(), payload.size());
        s.stage(generate_descriptor(1, 0, payload.size()));
        s.publish(1);
    } else if (what == "response-tail") {
        // The daemon reads the client's tail only when its cached copy says the ring is full: a
        // request with more events than the ring holds makes it look.
        std::atomic_ref<std::uint64_t>(s.control()->response_tail.value).store(rng() | (1ull << 40));
        RequestFlags f;
        f.max_tokens = static_cast<int>(l.response_capacity) + 64;
        std::vector<std::byte> payload;
        if (!ipc::encode_generate_payload(make_request(f), payload)) die("encode failed");
        std::memcpy(s.arena(), payload.data(), payload.size());
        s.stage(generate_descriptor(1, 0, payload.size()));
        s.publish(1);
        // Read nothing meanwhile: taking an event would store a valid tail over the garbage.
        std::this_thread::sleep_for(500ms);
    } else {
        die("unknown garbage target " + what);
    }
    json out = observe(s, 3000ms, 200ms);
    if (!out["closed"].get<bool>() && out["errors"].get<int>() + out["finals"].get<int>() == 0) {
        // Ring once more: a daemon that found the region broken while producing events
        // notices at the latest when it next reads requests.
        s.ring();
        json again = observe(s, 1500ms, 200ms);
        out["closed"] = again["closed"];
        out["errors"] = out["errors"].get<int>() + again["errors"].get<int>();
    }
    out["what"] = what;
    emit(out);
    return 0;
}

// One thread publishes valid requests while another rewrites descriptor fields and payload bytes.
int run_rewrite(const std::string& instance, int duration_ms, std::uint64_t seed) {
    RawSession s(instance);
    const auto& l = s.layout();
    const std::uint32_t capacity = l.request_capacity;
    constexpr std::uint64_t kChunk = 1024;
    if (std::uint64_t{capacity} * kChunk > l.arena_size) die("arena too small for the rewrite test");
    RequestFlags f;
    f.max_tokens = 2;
    std::vector<std::byte> payload;
    if (!ipc::encode_generate_payload(make_request(f), payload)) die("encode failed");

    std::atomic<bool> stop{false};
    std::thread scribbler([&] {
        std::mt19937_64 rng(seed);
        const std::uint64_t interesting[] = {0, 1, 63, 64, l.arena_size - 8, l.arena_size, l.arena_size + 1,
                                             ~0ull - 31, ~0ull, 1ull << 32, 1ull << 63};
        while (!stop.load(std::memory_order_relaxed)) {
            auto* d = &s.slots()[rng() % capacity];
            const std::uint64_t value = (rng() & 1) ? interesting[rng() % std::size(interesting)] : rng();
            switch (rng() % 6) {
                case 0: std::atomic_ref<std::uint64_t>(d->request_id).store(value, std::memory_order_relaxed); break;
                case 1: std::atomic_ref<std::uint64_t>(d->payload_offset).store(value, std::memory_order_relaxed); break;
                case 2: std::atomic_ref<std::uint64_t>(d->payload_length).store(value, std::memory_order_relaxed); break;
                case 3: std::atomic_ref<std::uint32_t>(d->kind).store(static_cast<std::uint32_t>(value % 5), std::memory_order_relaxed); break;
                case 4: std::atomic_ref<std::uint32_t>(d->flags).store(static_cast<std::uint32_t>(value & 3), std::memory_order_relaxed); break;
                default: {
                    auto* byte = reinterpret_cast<unsigned char*>(s.arena() + rng() % (std::uint64_t{capacity} * kChunk));
                    std::atomic_ref<unsigned char>(*byte).store(static_cast<unsigned char>(rng()), std::memory_order_relaxed);
                }
            }
        }
    });

    json out{{"published", 0}};
    json seen = observe(s, 0ms);
    std::uint64_t published = 0;
    const auto until = Clock::now() + std::chrono::milliseconds(duration_ms);
    while (Clock::now() < until && !s.closed(0ms)) {
        const std::uint64_t tail = s.request_tail();
        if (s.head() - tail >= capacity) {
            std::this_thread::sleep_for(1ms);
        } else {
            const std::uint64_t slot = s.head() & (capacity - 1);
            std::memcpy(s.arena() + slot * kChunk, payload.data(), payload.size());
            s.stage(generate_descriptor(s.head() + 1, slot * kChunk, payload.size()));
            s.publish(1);
            ++published;
        }
        json more = observe(s, 1ms);
        for (const char* k : {"errors", "pongs", "finals", "tokens"}) seen[k] = seen[k].get<int>() + more[k].get<int>();
        for (auto& m : more["messages"]) if (seen["messages"].size() < 4) seen["messages"].push_back(m);
        if (more["closed"].get<bool>()) seen["closed"] = true;
    }
    stop.store(true);
    scribbler.join();
    json tail = observe(s, 1000ms);
    for (const char* k : {"errors", "pongs", "finals", "tokens"}) seen[k] = seen[k].get<int>() + tail[k].get<int>();
    seen["closed"] = seen["closed"].get<bool>() || tail["closed"].get<bool>();
    seen["published"] = published;
    emit(seen);
    return 0;
}

// Offsets at 2^64 - 32 and lengths whose sums wrap, through a real region.
int run_wrap(const std::string& instance) {
    RawSession s(instance);
    const std::uint64_t arena = s.layout().arena_size;
    constexpr std::uint64_t kTop = ~0ull - 31;  // 2^64 - 32
    struct Case {
        std::string name, field;
        ipc::RequestDescriptor d;
        std::vector<std::byte> payload;  // written at arena offset 0 when not empty
    };
    std::vector<Case> cases;
    std::uint64_t id = 1;
    auto add = [&](std::string name, std::string field, std::uint32_t kind, std::uint64_t offset,
                   std::uint64_t length, std::vector<std::byte> payload = {}) {
        ipc::RequestDescriptor d{};
        d.request_id = id++;
        d.kind = kind;
        d.payload_offset = offset;
        d.payload_length = length;
        cases.push_back({std::move(name), std::move(field), d, std::move(payload)});
    };
    const std::uint32_t generate = 1, ping = 3;
    add("offset 2^64-32, length 64 (sum wraps to 32)", "payload_offset", generate, kTop, 64);
    add("offset 2^64-32, length 32 (sum wraps to 0)", "payload_offset", generate, kTop, 32);
    add("offset 2^64-32, length 0", "payload_offset", generate, kTop, 0);
    add("offset arena-8, length 2^64-arena+24 (sum wraps to 16)", "payload_length", generate, arena - 8,
        0ull - arena + 24);
    add("offset 8, length 2^64-8 (sum wraps to 0)", "payload_length", generate, 8, 0ull - 8);
    add("offset 64, length 2^64-32 (sum wraps to 32)", "payload_length", generate, 64, kTop);
    add("offset arena-32, length 64 (past the end)", "payload_length", generate, arena - 32, 64);
    add("offset arena+1", "payload_offset", generate, arena + 1, 8);
    add("ping with length 2^64-1", "payload_length", ping, 0, ~0ull);

    // Payloads whose inner lengths would wrap 32-bit arithmetic.
    RequestFlags f;
    std::vector<std::byte> base;
    if (!ipc::encode_generate_payload(make_request(f), base)) die("encode failed");
    auto patch32 = [](std::vector<std::byte> p, std::size_t at, std::uint32_t v) {
        std::memcpy(p.data() + at, &v, 4);
        return p;
    };
    add("prompt_length 2^32-1", "prompt_length", generate, 0, base.size(), patch32(base, 56, 0xffffffffu));
    add("prompt_length 2^32-16 (text)", "prompt_length", generate, 0, base.size(), patch32(base, 56, 0xfffffff0u));
    {
        f.prompt_tokens = 4;
        std::vector<std::byte> tokens;
        if (!ipc::encode_generate_payload(make_request(f), tokens)) die("encode failed");
        // 2^30 token ids: 2^32 bytes, zero in 32-bit arithmetic.
        add("prompt_length 2^30 token ids (bytes wrap u32 to 0)", "prompt_length", generate, 0, tokens.size(),
            patch32(tokens, 56, 1u << 30));
        add("prompt_length 2000 token ids, 4 present", "prompt_length", generate, 0, tokens.size(),
            patch32(tokens, 56, 2000));
        f.prompt_tokens = 0;
    }
    {
        RequestFlags g;
        ipc::GenerateRequest r = make_request(g);
        r.stop = {"abc"};
        std::vector<std::byte> p;
        if (!ipc::encode_generate_payload(r, p)) die("encode failed");
        const std::size_t stop_at = 64 + r.prompt_text.size();
        add("stop[0] length 2^32-1", "stop[0]", generate, 0, p.size(), patch32(p, stop_at, 0xffffffffu));
        add("stop[0] length 2^32-4 (end wraps u32)", "stop[0]", generate, 0, p.size(), patch32(p, stop_at, 0xfffffffcu));
        add("stop_count 2^32-1", "stop_count", generate, 0, p.size(), patch32(p, 60, 0xffffffffu));
        add("stop[0] length 200, 3 bytes present", "stop[0]", generate, 0, p.size(), patch32(p, stop_at, 200));
        add("stop_count 2, one present", "stop[1]", generate, 0, p.size(), patch32(p, 60, 2));
    }

    json out{{"cases", json::array()}};
    for (auto& c : cases) {
        if (!c.payload.empty()) std::memcpy(s.arena(), c.payload.data(), c.payload.size());
        s.stage(c.d);
        s.publish(1);
        std::optional<ipc::Event> e;
        const auto deadline = Clock::now() + 3s;
        while (Clock::now() < deadline) {
            e = s.next_event(50ms);
            if (e || s.closed(0ms)) break;
        }
        json j{{"case", c.name}, {"field", c.field}};
        if (e) j["event"] = event_json(*e);
        j["closed"] = s.closed(0ms);
        out["cases"].push_back(j);
        if (j["closed"].get<bool>()) break;
    }
    // The connection still serves a valid request.
    {
        RequestFlags g;
        g.max_tokens = 4;
        std::vector<std::byte> p;
        if (!ipc::encode_generate_payload(make_request(g), p)) die("encode failed");
        std::memcpy(s.arena(), p.data(), p.size());
        s.stage(generate_descriptor(id++, 0, p.size()));
        s.publish(1);
        json seen = observe(s, 0ms);
        const auto deadline = Clock::now() + 20s;
        while (Clock::now() < deadline && seen["finals"].get<int>() + seen["errors"].get<int>() == 0 &&
               !seen["closed"].get<bool>()) {
            json more = observe(s, 50ms);
            for (const char* k : {"errors", "finals", "tokens"}) seen[k] = seen[k].get<int>() + more[k].get<int>();
            seen["closed"] = more["closed"];
        }
        out["valid_after"] = seen;
    }
    // A ring index 2^64 - 32 ahead of the daemon's: the ring is impossible, the connection goes.
    s.publish_head(s.request_tail() + kTop);
    const auto deadline = Clock::now() + 2s;
    bool closed = false;
    while (!closed && Clock::now() < deadline) closed = s.closed(50ms);
    out["closed_after_bad_head"] = closed;
    emit(out);
    return 0;
}

// ---- clients that try to grow, wedge or starve the daemon ------------------------------------

// Publishes pings (--what pings) or descriptors that fail to decode (--what bad) as fast as the
// ring takes them for --ms, reading no event, and reports whether the daemon cut it off.
int run_noread(const std::string& instance, const std::string& what, int duration_ms) {
    RawSession s(instance);
    const std::uint32_t capacity = s.layout().request_capacity;
    std::uint64_t published = 0;
    bool closed = false;
    const auto start = Clock::now();
    const auto until = start + std::chrono::milliseconds(duration_ms);
    emit({{"ready", "noread"}});
    while (Clock::now() < until && !(closed = s.closed(0ms))) {
        if (s.head() - s.request_tail() >= capacity) {
            std::this_thread::sleep_for(1ms);
            continue;
        }
        ipc::RequestDescriptor d{};
        d.request_id = s.head() + 1;
        d.kind = what == "pings" ? static_cast<std::uint32_t>(ipc::RequestKind::ping) : 77u;  // 77: no such kind
        s.stage(d);
        s.publish(1);
        ++published;
    }
    emit({{"closed", closed}, {"published", published},
          {"seconds", std::chrono::duration<double>(Clock::now() - start).count()}});
    return 0;
}

// Two live generate requests with one request id, then exit (the connection ends).
int run_duplicate_id(const std::string& instance, const RequestFlags& f) {
    RawSession s(instance);
    std::vector<std::byte> payload;
    if (!ipc::encode_generate_payload(make_request(f), payload)) die("encode failed");
    std::memcpy(s.arena(), payload.data(), payload.size());
    s.stage(generate_descriptor(7, 0, payload.size()));
    s.publish(1);
    // The first one runs before the second arrives.
    int tokens = 0;
    const auto deadline = Clock::now() + 20s;
    while (tokens == 0 && Clock::now() < deadline) {
        auto e = s.next_event(20ms);
        if (e && e->kind == ipc::EventKind::token) ++tokens;
    }
    if (tokens == 0) die("the first request never streamed");
    std::memcpy(s.arena() + 4096, payload.data(), payload.size());
    s.stage(generate_descriptor(7, 4096, payload.size()));
    s.publish(1);
    json out{{"second", nullptr}};
    const auto until = Clock::now() + 5s;
    while (Clock::now() < until) {
        auto e = s.next_event(20ms);
        if (e && (e->kind == ipc::EventKind::error || e->kind == ipc::EventKind::final)) {
            out["second"] = event_json(*e);
            break;
        }
    }
    emit(out);
    return 0;  // the connection closes with the process
}

// Rings the doorbell in a tight loop for --ms without publishing anything.
int run_doorbell(const std::string& instance, int duration_ms) {
    RawSession s(instance);
    emit({{"ready", "doorbell"}});
    std::uint64_t rings = 0;
    const auto until = Clock::now() + std::chrono::milliseconds(duration_ms);
    while (Clock::now() < until) {
        for (int i = 0; i < 64; ++i) s.ring();
        rings += 64;
    }
    emit({{"rings", rings}, {"closed", s.closed(0ms)}});
    return 0;
}

// Publishes text prompts of --bytes bytes back to back for --ms, reading the answers.
int run_big_prompts(const std::string& instance, std::uint64_t bytes, int duration_ms) {
    RawSession s(instance);
    RequestFlags f;
    f.prompt.assign(bytes, 'a');
    for (std::uint64_t i = 7; i < bytes; i += 8) f.prompt[i] = ' ';
    f.max_tokens = 1;
    std::vector<std::byte> payload;
    if (!ipc::encode_generate_payload(make_request(f), payload)) die("encode failed");
    if (payload.size() * 2 > s.layout().arena_size) die("the arena holds fewer than two such prompts");
    const std::uint64_t slots = s.layout().arena_size / payload.size();
    emit({{"ready", "big-prompts"}});
    std::uint64_t published = 0, answered = 0;
    json first_answer;
    const auto until = Clock::now() + std::chrono::milliseconds(duration_ms);
    while (Clock::now() < until && !s.closed(0ms)) {
        while (auto e = s.next_event(0ms)) {
            if (e->kind == ipc::EventKind::error || e->kind == ipc::EventKind::final) {
                if (answered++ == 0) first_answer = event_json(*e);
            }
        }
        // One payload slot per outstanding request, so none is overwritten before it is read.
        if (published - answered >= std::min<std::uint64_t>(slots, s.layout().request_capacity)) {
            std::this_thread::sleep_for(1ms);
            continue;
        }
        const std::uint64_t at = (published % slots) * payload.size();
        std::memcpy(s.arena() + at, payload.data(), payload.size());
        s.stage(generate_descriptor(published + 1, at, payload.size()));
        s.publish(1);
        ++published;
    }
    emit({{"published", published}, {"answered", answered}, {"first_answer", first_answer}});
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"llmq-fault-client: client faults for llmq's integration tests"};
    app.require_subcommand(1);
    std::string instance = "default";
    int lifetime_s = 300;
    app.add_option("--instance", instance);
    app.add_option("--lifetime", lifetime_s, "exit after this many seconds whatever happens");

    RequestFlags f;
    std::string phase;
    int delay_ms = 0, sleep_ms = 0, count = 0, duration_ms = 1000;
    std::string what;
    std::uint64_t seed = 1;

    auto* pause = app.add_subcommand("pause", "stop at a phase and wait for SIGKILL");
    pause->add_option("--phase", phase)->required()->check(
        CLI::IsMember({"connect", "handshake", "writing", "published", "queued", "prefill", "streaming", "cancelling"}));
    pause->add_option("--delay-ms", delay_ms);
    add_request_flags(*pause, f);
    auto* stall = app.add_subcommand("stall", "submit and read nothing for --sleep-ms");
    stall->add_option("--sleep-ms", sleep_ms)->required();
    add_request_flags(*stall, f);
    auto* flood = app.add_subcommand("flood", "submit --count requests at once");
    flood->add_option("--count", count)->required();
    add_request_flags(*flood, f);
    auto* late = app.add_subcommand("late", "connect, then submit when a line arrives on stdin");
    add_request_flags(*late, f);
    auto* garbage = app.add_subcommand("garbage", "random bytes over part of the region");
    garbage->add_option("--what", what)->required()->check(
        CLI::IsMember({"region", "requests", "arena", "payload", "response-tail"}));
    garbage->add_option("--seed", seed);
    auto* rewrite = app.add_subcommand("rewrite", "rewrite descriptors while the daemon reads them");
    rewrite->add_option("--ms", duration_ms);
    rewrite->add_option("--seed", seed);
    auto* wrap = app.add_subcommand("wrap", "offsets at 2^64-32 and wrapping lengths");
    auto* noread = app.add_subcommand("noread", "publish pings or bad descriptors for --ms, read nothing");
    noread->add_option("--what", what)->required()->check(CLI::IsMember({"pings", "bad"}));
    noread->add_option("--ms", duration_ms);
    auto* duplicate = app.add_subcommand("duplicate-id", "two live requests with one id, then exit");
    add_request_flags(*duplicate, f);
    auto* doorbell = app.add_subcommand("doorbell", "ring the doorbell for --ms without publishing");
    doorbell->add_option("--ms", duration_ms);
    std::uint64_t prompt_bytes = 1u << 20;
    auto* big = app.add_subcommand("big-prompts", "text prompts of --bytes back to back for --ms");
    big->add_option("--bytes", prompt_bytes);
    big->add_option("--ms", duration_ms);
    CLI11_PARSE(app, argc, argv);

    ::alarm(static_cast<unsigned>(lifetime_s));  // SIGALRM ends a forgotten child
    if (*pause) return run_pause(instance, phase, f, delay_ms);
    if (*stall) return run_stall(instance, f, sleep_ms);
    if (*flood) return run_flood(instance, f, count);
    if (*late) return run_late(instance, f);
    if (*garbage) return run_garbage(instance, what, seed);
    if (*rewrite) return run_rewrite(instance, duration_ms, seed);
    if (*wrap) return run_wrap(instance);
    if (*noread) return run_noread(instance, what, duration_ms);
    if (*duplicate) return run_duplicate_id(instance, f);
    if (*doorbell) return run_doorbell(instance, duration_ms);
    if (*big) return run_big_prompts(instance, prompt_bytes, duration_ms);
    return 2;
}
