// Progress of long work (loading a model, quantizing one), reported to whoever shows it: the
// CLI draws a bar on a terminal or writes JSON lines (tools/llmq/progress_display.hpp).
//
// A callback is called on the thread doing the work, as often as the work likes (once per row
// of a tensor is fine): it must be cheap and throttle what it shows itself. `done` only grows
// within one stage and reaches `total` when the stage ends.
#pragma once

#include <cstdint>
#include <functional>
#include <string_view>

namespace llmq {

struct ProgressEvent {
    std::string_view stage;   // what is being done: "loading model", "quantizing"
    std::string_view detail;  // the step or item within it ("planning memory", a tensor name)
    uint64_t done = 0;
    uint64_t total = 0;
    bool bytes = false;       // done/total count bytes (else steps)
};

using ProgressFn = std::function<void(const ProgressEvent&)>;

}  // namespace llmq
