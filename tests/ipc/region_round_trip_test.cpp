// A server region and a client region over one memfd, in one process: requests go one way,
// events the other, with the wake-ups, the full states and the arena's reuse.
#include <doctest/doctest.h>

#include <poll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "llmq/ipc/client_region.hpp"
#include "llmq/ipc/request_payload.hpp"
#include "llmq/ipc/server_region.hpp"

using namespace llmq::ipc;
using namespace std::chrono_literals;

namespace {

struct Pair {
    std::shared_ptr<ServerRegion> server;
    std::unique_ptr<ClientRegion> client;
};

Pair make_pair(RegionGeometry geometry = {}) {
    auto server = ServerRegion::create(geometry);
    REQUIRE(server.ok());
    auto client = ClientRegion::attach(UniqueFd(::dup((*server)->memfd())), UniqueFd(::dup((*server)->doorbell_fd())));
    REQUIRE_MESSAGE(client.ok(), (client.ok() ? "" : client.error().message));
    return Pair{*server, std::move(*client)};
}

RegionGeometry small_geometry() {
    RegionGeometry g;
    g.request_capacity = 8;
    g.response_capacity = 8;
    g.region_size = 4096 * 2 + (64u << 10);  // control + slots page, 64 KiB arena
    return g;
}

std::vector<std::byte> payload_of(const GenerateRequest& r) {
    std::vector<std::byte> out;
    REQUIRE(encode_generate_payload(r, out).ok());
    return out;
}

DecodeLimits limits() {
    DecodeLimits l;
    l.vocab_size = 1000;
    return l;
}

bool doorbell_rang(int fd) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, 0) == 1;
}

}  // namespace

TEST_CASE("a generate request crosses the region and decodes to what was sent") {
    Pair p = make_pair();
    GenerateRequest r;
    r.prompt_text = "hello region";
    r.stop = {"END"};
    r.max_tokens = 12;
    REQUIRE(p.client->submit(5, RequestKind::generate, payload_of(r)).ok());
    std::vector<PolledRequest> polled;
    CHECK(p.server->poll(limits(), polled) == 1);
    REQUIRE(polled.size() == 1);
    const auto* d = std::get_if<DecodedRequest>(&polled[0]);
    REQUIRE(d != nullptr);
    CHECK(d->request_id == 5);
    CHECK(d->generate.prompt_text == "hello region");
    CHECK(d->generate.stop == std::vector<std::string>{"END"});
    CHECK(d->generate.max_tokens == 12);
    CHECK(p.server->poll(limits(), polled) == 0);
}

TEST_CASE("events longer than a slot arrive whole, in order, with their fields") {
    Pair p = make_pair();
    const std::string piece(200, 'x');
    REQUIRE(p.server->push_event(Event::token(9, 123, piece, -0.25f)));
    REQUIRE(p.server->push_event(Event::final_event(9, FinishReason::length, 11, 1, 100, 200, 300)));
    REQUIRE(p.server->push_event(Event::error(10, EventError::invalid_request, std::string(1500, 'e'))));

    auto first = p.client->try_pop_event();
    REQUIRE(first.ok());
    REQUIRE(first->has_value());
    const Event& token = **first;
    CHECK(token.kind == EventKind::token);
    CHECK(token.request_id == 9);
    CHECK(token.token_id == 123);
    CHECK(token.has_logprob);
    CHECK(token.logprob == -0.25f);
    CHECK(token.text == piece);

    auto second = p.client->try_pop_event();
    REQUIRE(second.ok());
    REQUIRE(second->has_value());
    CHECK((*second)->kind == EventKind::final);
    CHECK((*second)->finish_reason() == FinishReason::length);
    CHECK((*second)->prompt_tokens == 11);
    CHECK((*second)->generated_tokens == 1);
    CHECK((*second)->queued_us == 100);
    CHECK((*second)->prefill_us == 200);
    CHECK((*second)->decode_us == 300);

    auto third = p.client->try_pop_event();
    REQUIRE(third.ok());
    REQUIRE(third->has_value());
    CHECK((*third)->error_code() == EventError::invalid_request);
    CHECK((*third)->text.size() == kMaxEventMessageBytes);
    CHECK((*third)->text.substr(kMaxEventMessageBytes - 3) == "...");

    auto none = p.client->try_pop_event();
    REQUIRE(none.ok());
    CHECK_FALSE(none->has_value());
    CHECK(p.server->events_drained());
}

TEST_CASE("a full response ring refuses an event whole and takes it once the client reads") {
    Pair p = make_pair(small_geometry());
    for (int i = 0; i < 7; ++i) REQUIRE(p.server->push_event(Event::token(1, i, "a")));
    CHECK(p.server->writable_event_slots() == 1);
    // Needs 2 slots: nothing of it may be published.
    CHECK_FALSE(p.server->push_event(Event::token(1, 7, std::string(100, 'b'))));
    REQUIRE(p.server->push_event(Event::token(1, 7, "c")));
    CHECK_FALSE(p.server->push_event(Event::token(1, 8, "d")));
    for (int i = 0; i < 8; ++i) {
        auto e = p.client->try_pop_event();
        REQUIRE(e.ok());
        REQUIRE(e->has_value());
        CHECK((*e)->token_id == i);
    }
    CHECK(p.server->push_event(Event::token(1, 8, std::string(100, 'b'))));
}

TEST_CASE("a long event fits as soon as the client has read, though the ring never looked full") {
    Pair p = make_pair(small_geometry());
    for (int i = 0; i < 7; ++i) REQUIRE(p.server->push_event(Event::token(1, i, "a")));
    for (int i = 0; i < 7; ++i) {
        auto e = p.client->try_pop_event();
        REQUIRE(e.ok());
        REQUIRE(e->has_value());
    }
    // 7 of 8 slots looked used when last seen; the client has freed them all since.
    CHECK(p.server->writable_event_slots() == 8);
    CHECK(p.server->push_event(Event::token(1, 7, std::string(8 * kEventTextBytes, 'l'))));
    auto e = p.client->try_pop_event();
    REQUIRE(e.ok());
    REQUIRE(e->has_value());
    CHECK((*e)->text.size() == 8 * kEventTextBytes);
}

TEST_CASE("a full request ring answers busy at once") {
    Pair p = make_pair(small_geometry());
    for (std::uint64_t i = 1; i <= 8; ++i) REQUIRE(p.client->submit(i, RequestKind::ping, {}).ok());
    auto refused = p.client->submit(9, RequestKind::ping, {});
    REQUIRE_FALSE(refused.ok());
    CHECK(refused.error().code == ErrorCode::busy);
    std::vector<PolledRequest> polled;
    CHECK(p.server->poll(limits(), polled, 3) == 3);
    CHECK(p.client->requests_in_flight() == 5);
    CHECK(p.client->submit(9, RequestKind::ping, {}).ok());
}

TEST_CASE("arena space comes back once the daemon has taken the request") {
    Pair p = make_pair(small_geometry());
    GenerateRequest r;
    r.prompt_text = std::string(10000, 'p');
    const auto payload = payload_of(r);
    std::vector<PolledRequest> polled;
    // 64 KiB arena, 10 KiB requests: without reuse this stops after 6.
    std::uint64_t id = 1;
    for (int round = 0; round < 200; ++round) {
        for (int k = 0; k < 3; ++k) REQUIRE(p.client->submit(id++, RequestKind::generate, payload).ok());
        polled.clear();
        REQUIRE(p.server->poll(limits(), polled) == 3);
        for (const auto& result : polled) {
            const auto* d = std::get_if<DecodedRequest>(&result);
            REQUIRE(d != nullptr);
            CHECK(d->generate.prompt_text.size() == 10000);
        }
    }
    // Without the daemon taking anything the arena fills: busy, not corruption.
    int accepted = 0;
    for (;; ++accepted) {
        auto ok = p.client->submit(id++, RequestKind::generate, payload);
        if (!ok) {
            CHECK(ok.error().code == ErrorCode::busy);
            break;
        }
    }
    CHECK(accepted == 6);
    polled.clear();
    CHECK(p.server->poll(limits(), polled) == 6);
    for (const auto& result : polled) CHECK(std::holds_alternative<DecodedRequest>(result));
}

TEST_CASE("the client rings the doorbell only while the daemon sleeps") {
    Pair p = make_pair();
    const int bell = p.server->doorbell_fd();
    REQUIRE(p.client->submit(1, RequestKind::ping, {}).ok());  // a fresh region is armed
    CHECK(doorbell_rang(bell));
    p.server->drain_doorbell();
    CHECK_FALSE(doorbell_rang(bell));

    p.server->disarm_doorbell();
    REQUIRE(p.client->submit(2, RequestKind::ping, {}).ok());
    CHECK_FALSE(doorbell_rang(bell));
    CHECK_FALSE(p.server->arm_doorbell());  // a request is waiting: poll it, don't sleep

    std::vector<PolledRequest> polled;
    CHECK(p.server->poll(limits(), polled) == 2);
    CHECK(p.server->arm_doorbell());
    REQUIRE(p.client->submit(3, RequestKind::ping, {}).ok());
    CHECK(doorbell_rang(bell));
}

TEST_CASE("a sleeping client wakes when the daemon publishes") {
    Pair p = make_pair();
    std::atomic<bool> woke{false};
    std::chrono::steady_clock::duration slept{};
    std::thread client([&] {
        const auto start = std::chrono::steady_clock::now();
        while (!p.client->has_events()) p.client->sleep_for_events(5s);
        slept = std::chrono::steady_clock::now() - start;
        woke = true;
    });
    std::this_thread::sleep_for(50ms);
    REQUIRE(p.server->push_event(Event::pong(1)));
    client.join();
    CHECK(woke);
    CHECK(slept < 2s);
}

TEST_CASE("a daemon that publishes an impossible head is a protocol error for the client") {
    Pair p = make_pair();
    void* raw = ::mmap(nullptr, p.client->layout().region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                       p.server->memfd(), 0);
    REQUIRE(raw != MAP_FAILED);
    auto* control = static_cast<RegionControl*>(raw);
    control->response_head.value = 1u << 20;
    auto e = p.client->try_pop_event();
    REQUIRE_FALSE(e.ok());
    CHECK(e.error().code == ErrorCode::protocol);
    ::munmap(raw, p.client->layout().region_size);
}

TEST_CASE("a client that publishes an impossible head faults its region and nothing is decoded") {
    Pair p = make_pair();
    void* raw = ::mmap(nullptr, p.client->layout().region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                       p.server->memfd(), 0);
    REQUIRE(raw != MAP_FAILED);
    auto* control = static_cast<RegionControl*>(raw);
    control->request_head.value = ~std::uint64_t{0} - 31;
    std::vector<PolledRequest> polled;
    CHECK(p.server->poll(limits(), polled) == 0);
    CHECK(polled.empty());
    CHECK(p.server->faulted());
    // A client that claims to have read events never published faults the event side too.
    Pair q = make_pair();
    void* raw_q = ::mmap(nullptr, q.client->layout().region_size, PROT_READ | PROT_WRITE, MAP_SHARED,
                         q.server->memfd(), 0);
    REQUIRE(raw_q != MAP_FAILED);
    static_cast<RegionControl*>(raw_q)->response_tail.value = 1u << 30;
    // However long the daemon trusts its cached copy of the index, it meets the bad one before
    // it could overwrite an unread slot.
    std::uint64_t pushed = 0;
    while (pushed <= q.client->layout().response_capacity && q.server->push_event(Event::pong(pushed + 1))) ++pushed;
    CHECK(pushed <= q.client->layout().response_capacity);
    CHECK(q.server->faulted());
    CHECK_FALSE(q.server->push_event(Event::pong(1)));
    ::munmap(raw, p.client->layout().region_size);
    ::munmap(raw_q, q.client->layout().region_size);
}

TEST_CASE("the region is sealed against resizing before the client gets it") {
    Pair p = make_pair();
    CHECK(::ftruncate(p.server->memfd(), 4096) != 0);
    CHECK(::ftruncate(p.server->memfd(), 64u << 20) != 0);
}
