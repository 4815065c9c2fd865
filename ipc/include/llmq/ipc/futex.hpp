// Futex waits on a u32 word in a shared mapping (process-shared futexes, not FUTEX_PRIVATE).
// The client sleeps on the region's client_wake word; the daemon wakes it. No lock is involved.
#pragma once

#include <chrono>
#include <cstdint>

namespace llmq::ipc {

// Sleeps while *word == expected, at most `timeout`. Returns on a wake-up, a timeout, a signal,
// or at once when *word != expected: the caller re-checks its condition in every case.
void futex_wait(std::uint32_t* word, std::uint32_t expected, std::chrono::nanoseconds timeout);

// Wakes every thread sleeping on `word` (in any process that maps it).
void futex_wake_all(std::uint32_t* word);

}  // namespace llmq::ipc
