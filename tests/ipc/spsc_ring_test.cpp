// The SPSC ring's states (spsc_ring.hpp): empty, partly full, full, wrapped, and the impossible
// indices a hostile peer can write.
#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <thread>

#include "llmq/ipc/spsc_ring.hpp"

using llmq::ipc::RingConsumer;
using llmq::ipc::RingProducer;

namespace {

struct Slot {
    std::uint64_t value;
    std::uint64_t check;
};

struct Ring {
    alignas(64) std::uint64_t head = 0;
    alignas(64) std::uint64_t tail = 0;
    std::array<Slot, 4> slots{};
    RingProducer<Slot> producer{&head, &tail, slots.data(), 4, 0};
    RingConsumer<Slot> consumer{&head, &tail, slots.data(), 4, 0};
};

}  // namespace

TEST_CASE("an empty ring has nothing to read and everything to write") {
    Ring r;
    CHECK(r.consumer.readable() == 0);
    CHECK(r.producer.writable() == 4);
    Slot s{};
    CHECK_FALSE(r.consumer.try_pop(s));
    CHECK(r.producer.drained());
}

TEST_CASE("a full ring refuses the next push until one slot is released") {
    Ring r;
    for (std::uint64_t i = 0; i < 4; ++i) CHECK(r.producer.try_push(Slot{i, ~i}));
    CHECK(r.producer.writable() == 0);
    CHECK_FALSE(r.producer.try_push(Slot{99, 0}));
    CHECK(r.head == 4);
    CHECK(r.consumer.readable() == 4);
    Slot s{};
    REQUIRE(r.consumer.try_pop(s));
    CHECK(s.value == 0);
    CHECK(r.tail == 1);
    CHECK(r.producer.writable() == 1);
    CHECK(r.producer.try_push(Slot{4, ~std::uint64_t{4}}));
    CHECK_FALSE(r.producer.try_push(Slot{5, 0}));
}

TEST_CASE("items keep their order across many wrap-arounds") {
    Ring r;
    std::uint64_t next_in = 0, next_out = 0;
    for (int round = 0; round < 1000; ++round) {
        const int pushes = 1 + round % 4;
        for (int i = 0; i < pushes; ++i) {
            if (r.producer.try_push(Slot{next_in, ~next_in})) ++next_in;
        }
        const int pops = 1 + (round * 7) % 4;
        for (int i = 0; i < pops; ++i) {
            Slot s{};
            if (!r.consumer.try_pop(s)) break;
            CHECK(s.value == next_out);
            CHECK(s.check == ~next_out);
            ++next_out;
        }
    }
    CHECK(next_in > 1000);
    // Indices run freely; slots repeat every 4.
    CHECK(r.head == next_in);
    CHECK(r.tail == next_out);
}

TEST_CASE("several slots published at once become visible together") {
    Ring r;
    REQUIRE(r.producer.writable() >= 3);
    for (std::uint64_t k = 0; k < 3; ++k) r.producer.unpublished(k) = Slot{k, 0};
    CHECK(r.consumer.readable() == 0);
    r.producer.publish(3);
    CHECK(r.consumer.readable() == 3);
    Slot s{};
    r.consumer.copy(2, s);
    CHECK(s.value == 2);
    r.consumer.release(3);
    CHECK(r.producer.unconsumed() == 0);
}

TEST_CASE("a producer asking for several slots re-reads the consumer's index") {
    Ring r;
    for (std::uint64_t i = 0; i < 3; ++i) REQUIRE(r.producer.try_push(Slot{i, 0}));
    Slot s{};
    for (int i = 0; i < 3; ++i) REQUIRE(r.consumer.try_pop(s));
    CHECK(r.producer.writable() >= 1);  // the cached index may still say 3 used
    CHECK(r.producer.writable(4) == 4);  // asking for 4 must look again
}

TEST_CASE("a consumer that reads an impossible head faults and reads nothing") {
    SUBCASE("head more than capacity ahead") {
        Ring r;
        r.head = 5;
        CHECK(r.consumer.readable() == 0);
        CHECK(r.consumer.faulted());
    }
    SUBCASE("head behind tail") {
        Ring r;
        r.producer.try_push(Slot{1, 1});
        Slot s{};
        r.consumer.try_pop(s);
        r.head = 0;  // the peer moved its index backwards
        CHECK(r.consumer.readable() == 0);
        CHECK(r.consumer.faulted());
    }
    SUBCASE("head at 2^64 - 32") {
        Ring r;
        r.head = ~std::uint64_t{0} - 31;
        CHECK(r.consumer.readable() == 0);
        CHECK(r.consumer.faulted());
    }
}

TEST_CASE("a producer that reads an impossible tail faults and writes nothing") {
    Ring r;
    for (int i = 0; i < 4; ++i) CHECK(r.producer.try_push(Slot{0, 0}));
    r.tail = 9;  // the peer claims to have consumed more than was published
    CHECK(r.producer.writable() == 0);
    CHECK(r.producer.faulted());
    CHECK_FALSE(r.producer.try_push(Slot{1, 1}));
}

TEST_CASE("a producer thread and a consumer thread move 200 000 items in order") {
    Ring r;
    constexpr std::uint64_t kItems = 200'000;
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < kItems;) {
            if (r.producer.try_push(Slot{i, ~i})) {
                ++i;
            } else {
                std::this_thread::yield();
            }
        }
    });
    std::uint64_t expected = 0;
    bool ordered = true;
    while (expected < kItems) {
        Slot s{};
        if (!r.consumer.try_pop(s)) {
            std::this_thread::yield();
            continue;
        }
        ordered = ordered && s.value == expected && s.check == ~expected;
        ++expected;
    }
    producer.join();
    CHECK(ordered);
    CHECK_FALSE(r.consumer.faulted());
    CHECK_FALSE(r.producer.faulted());
}
