// SpinBudget: the spin before llmqd's Asio thread sleeps wastes at most its share of a core.
#include <doctest/doctest.h>

#include "llmq/runtime/spin_budget.hpp"

using namespace std::chrono_literals;
using llmq::SpinBudget;

TEST_CASE("a spin budget grants whole windows from a bucket that refills at its share of the wall clock") {
    const auto t0 = SpinBudget::Clock::now();
    SpinBudget b(100us, 0.01, 2, t0);
    CHECK(b.allowance(t0) == 100us);
    b.charge(100us);                       // spun the whole window and found nothing
    CHECK(b.allowance(t0) == 100us);       // the second window of the burst
    b.charge(100us);
    CHECK(b.allowance(t0) == 0ns);         // empty: sleep at once
    CHECK(b.allowance(t0 + 5ms) == 0ns);   // half a window back (1 % of 5 ms): still no spin
    CHECK(b.allowance(t0 + 10ms) == 100us);
    b.charge(30us);                        // a spin that found nothing after 30 us...
    CHECK(b.allowance(t0 + 10ms) == 0ns);  // ...leaves less than a window
    CHECK(b.allowance(t0 + 1s) == 100us);  // full again, never more than the burst
    b.charge(100us);
    b.charge(100us);
    CHECK(b.allowance(t0 + 1s) == 0ns);
}

TEST_CASE("vain spins woken every 200 us for ten seconds take at most their share of the time") {
    // The worst pattern for a spin window: a handler (a timer, a client's doorbell) every
    // 200 us, each followed by a spin that finds nothing.
    auto now = SpinBudget::Clock::now();
    const auto start = now;
    SpinBudget b(100us, 0.005, 10, now);
    std::chrono::nanoseconds spent{0};
    for (int i = 0; i < 50000; ++i) {
        const auto spin = b.allowance(now);
        if (spin.count() > 0) {
            b.charge(spin + 300ns);  // the spin loop overshoots its window a little
            spent += spin + 300ns;
        }
        now += 200us;
    }
    const double share = double(spent.count()) / double((now - start).count());
    INFO("vain spin share " << share);
    CHECK(share <= 0.005 + 10 * 100e-6 / 10.0);  // share x T + burst x window, T = 10 s
    CHECK(share > 0.004);                          // and the budget is used, not a spin of nothing
}

TEST_CASE("a zero window never spins") {
    SpinBudget b(0us);
    CHECK(b.allowance(SpinBudget::Clock::now() + 1s) == 0ns);
}
