// A client that scribbles over its own region never takes the daemon down: an impossible ring
// index closes that client's connection, random bytes over the whole region give error events
// or a closed connection, and another client is served throughout.
#include <doctest/doctest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <random>

#include "echo_daemon.hpp"
#include "llmq/ipc/client.hpp"
#include "raw_connection.hpp"

using namespace llmq::ipc;
using namespace llmq::ipc::testing;
using namespace std::chrono_literals;

namespace {

// A raw client's view of its region after the handshake.
struct RawRegion {
    explicit RawRegion(RawConnection& raw) {
        auto welcome = raw.hello();
        REQUIRE(welcome.has_value());
        REQUIRE(raw.fds.size() == 2);
        size = nlohmann::json::parse(*welcome)["region_size"].get<std::uint64_t>();
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, raw.fds[0].get(), 0);
        REQUIRE(p != MAP_FAILED);
        base = static_cast<std::byte*>(p);
        doorbell = raw.fds[1].get();
    }
    ~RawRegion() { ::munmap(base, size); }
    void ring() {
        const std::uint64_t one = 1;
        REQUIRE(::write(doorbell, &one, sizeof one) == sizeof one);
    }
    RegionControl* control() { return reinterpret_cast<RegionControl*>(base); }

    std::byte* base = nullptr;
    std::uint64_t size = 0;
    int doorbell = -1;
};

std::unique_ptr<Client> bystander(const std::filesystem::path& dir) {
    ConnectOptions o;
    o.dir = dir;
    auto client = Client::connect(o);
    REQUIRE(client.ok());
    return std::move(*client);
}

}  // namespace

TEST_CASE("an impossible request ring index closes that client's connection") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    auto other = bystander(tmp.path() / "run");
    RawConnection raw(daemon.listener().socket_path());
    RawRegion region(raw);
    region.control()->request_head.value = ~std::uint64_t{0} - 31;
    region.ring();
    CHECK(raw.closed_within(2000ms));
    CHECK(other->ping(3000ms).ok());
}

TEST_CASE("random bytes over a whole region give error events or a closed connection, never a crash") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    auto other = bystander(tmp.path() / "run");
    std::mt19937_64 rng(2024);
    for (int round = 0; round < 20; ++round) {
        RawConnection raw(daemon.listener().socket_path());
        RawRegion region(raw);
        // Everything after the header, including the ring indices, the slots and the arena.
        for (std::uint64_t i = sizeof(RegionHeader); i + 8 <= region.size; i += 8) {
            const std::uint64_t value = rng();
            std::memcpy(region.base + i, &value, sizeof value);
        }
        // Half the rounds keep the request ring index plausible so the descriptors get decoded.
        if (round % 2 == 0) {
            region.control()->request_head.value = 16;
            region.control()->request_tail.value = 0;
        }
        region.ring();
        // The daemon either closed the connection or answered with events; give it a moment.
        (void)raw.closed_within(100ms);
        CHECK(other->ping(3000ms).ok());
    }
    // The survivor still gets real work done.
    GenerateRequest r;
    r.prompt_text = "ok";
    REQUIRE(other->submit(r).ok());
    std::string text;
    for (;;) {
        auto e = other->next_event(3000ms);
        REQUIRE(e.ok());
        if (e->kind == EventKind::final) break;
        text += e->text;
    }
    CHECK(text == "ok");
}
