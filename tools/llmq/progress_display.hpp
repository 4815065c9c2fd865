// Showing the progress of long work (runtime/include/llmq/runtime/progress.hpp) on stderr:
//
//   terminal:  loading model [##########..........]  50%  planning memory
//              quantizing    [################....]  80%  1.2 GiB of 1.5 GiB  blk.20.ffn_up.weight
//   --json:    {"progress": "quantizing", "detail": "...", "done": 123, "total": 456, "unit": "bytes"}
//   otherwise (a pipe, a file): nothing.
//
// Updates are throttled (10 a second, and every change of stage or detail for JSON lines);
// the end of each stage is always shown. A bar appears only for work that lasts more than
// 0.3 s, so quick loads leave the terminal as it was. Stdout stays the command's own.
#pragma once

#include <chrono>
#include <string>

#include "llmq/runtime/progress.hpp"

namespace llmq::cli {

class ProgressDisplay {
public:
    explicit ProgressDisplay(bool json);
    ~ProgressDisplay();  // ends a bar that is still drawn

    void operator()(const ProgressEvent& event);
    // A ProgressFn that draws on this display (which must outlive it).
    ProgressFn callback() {
        return [this](const ProgressEvent& e) { (*this)(e); };
    }

private:
    bool json_;
    bool terminal_;
    bool drawn_ = false;  // a bar is on the current line
    std::string last_stage_, last_detail_;
    std::chrono::steady_clock::time_point stage_started_{};
    std::chrono::steady_clock::time_point last_shown_{};
};

}  // namespace llmq::cli
