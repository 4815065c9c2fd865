// How long llmqd's Asio thread may busy-wait for the next request before it sleeps.
//
// Waking a sleeping thread costs a context switch, and on a virtual machine an idle vCPU's
// wake-up (about 15 µs on the 2-vCPU KVM guest this project is measured on): more than a whole
// ping round trip. So after its last piece of work the daemon spins on its clients' rings for
// a short window (the doorbells disarmed, so a client publishes without a system call), and
// sleeps only when nothing came. A spin that finds work costs nothing extra: the daemon was
// busy serving. A spin that finds nothing is waste, and this budget bounds it: waste is paid
// from a bucket that fills at `share` of the wall clock (0.5 % by default, so that a daemon
// woken 100 times a second, each wake-up followed by a vain spin, stays under 1 % of a core
// with the wake-ups' own cost) and holds `burst` windows, so over any interval T the daemon
// spins in vain for at most share x T + burst x window. A spin is a whole window or none:
// spins shorter than the gaps between requests would all fail and keep the bucket empty while
// a client pings back to back. An idle daemon (no client activity) never spins at all: a spin
// follows only a handler.
//
// Thread: one (the spinning thread). Plain arithmetic, no clock of its own: the caller passes
// the time, so a test can drive it.
#pragma once

#include <algorithm>
#include <chrono>

namespace llmq {

class SpinBudget {
public:
    using Clock = std::chrono::steady_clock;

    // window 0: never spin. share in (0, 1]: the fraction of wall time vain spins may take;
    // burst >= 1: the windows the bucket holds (it starts full).
    explicit SpinBudget(std::chrono::nanoseconds window, double share = 0.005, int burst = 10,
                        Clock::time_point now = Clock::now())
        : window_(window), share_(share), capacity_ns_(static_cast<double>(window.count()) * std::max(burst, 1)),
          filled_at_(now), tokens_ns_(capacity_ns_) {}

    // How long the spin that starts at `now` may last: the window, or 0 (sleep at once) while
    // the bucket holds less than a window.
    std::chrono::nanoseconds allowance(Clock::time_point now) {
        if (window_.count() <= 0) return std::chrono::nanoseconds(0);
        if (now > filled_at_) {
            tokens_ns_ = std::min(capacity_ns_, tokens_ns_ + share_ * static_cast<double>((now - filled_at_).count()));
            filled_at_ = now;
        }
        return tokens_ns_ >= static_cast<double>(window_.count()) ? window_ : std::chrono::nanoseconds(0);
    }

    // A spin that found nothing lasted `spent` (may overshoot its allowance a little; the
    // overshoot is paid back before the next spin).
    void charge(std::chrono::nanoseconds spent) { tokens_ns_ -= static_cast<double>(spent.count()); }

    std::chrono::nanoseconds window() const { return window_; }

private:
    std::chrono::nanoseconds window_;
    double share_;
    double capacity_ns_;
    Clock::time_point filled_at_;
    double tokens_ns_;
};

}  // namespace llmq
