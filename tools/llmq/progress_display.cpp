#include "progress_display.hpp"

#include <unistd.h>

#include <cstdio>
#include <nlohmann/json.hpp>

#include "llmq/runtime/byte_size.hpp"

namespace llmq::cli {

ProgressDisplay::ProgressDisplay(bool json) : json_(json), terminal_(!json && ::isatty(STDERR_FILENO)) {}

ProgressDisplay::~ProgressDisplay() {
    if (drawn_) std::fputc('\n', stderr);
}

void ProgressDisplay::operator()(const ProgressEvent& e) {
    if (!json_ && !terminal_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool end = e.done >= e.total;
    const bool changed = e.stage != last_stage_ || e.detail != last_detail_;
    if (e.stage != last_stage_) stage_started_ = now;
    if (terminal_ && !drawn_ && now - stage_started_ < std::chrono::milliseconds(300)) {
        last_stage_ = e.stage;
        return;
    }
    const bool due = now - last_shown_ >= std::chrono::milliseconds(100);
    if (!end && !due && !(json_ && changed)) return;
    last_shown_ = now;
    last_stage_ = e.stage;
    last_detail_ = e.detail;
    if (json_) {
        nlohmann::json j{{"progress", e.stage}, {"detail", e.detail}, {"done", e.done}, {"total", e.total},
                         {"unit", e.bytes ? "bytes" : "steps"}};
        std::fprintf(stderr, "%s\n", j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
        std::fflush(stderr);
        return;
    }
    constexpr int kWidth = 24;
    const double share = e.total ? static_cast<double>(e.done) / static_cast<double>(e.total) : 1.0;
    const int filled = static_cast<int>(share * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::string amount = e.bytes ? "  " + format_bytes(e.done) + " of " + format_bytes(e.total) : "";
    // \r and clear to the end of the line: the bar redraws in place.
    std::fprintf(stderr, "\r\x1b[K%.*s [%s] %3d%%%s  %.*s", static_cast<int>(e.stage.size()), e.stage.data(),
                 bar.c_str(), static_cast<int>(share * 100), amount.c_str(), static_cast<int>(e.detail.size()),
                 e.detail.data());
    drawn_ = true;
    if (end) {
        std::fputc('\n', stderr);
        drawn_ = false;
    }
    std::fflush(stderr);
}

}  // namespace llmq::cli
