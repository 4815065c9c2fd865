#include "llmq/runtime/stop_strings.hpp"

#include <algorithm>

namespace llmq {

StopStringMatcher::StopStringMatcher(std::vector<std::string> stops) : stops_(std::move(stops)) {
    std::erase_if(stops_, [](const std::string& s) { return s.empty(); });
}

StopStringMatcher::Result StopStringMatcher::push(std::string_view piece) {
    if (stopped_) return {"", true};
    pending_.append(piece);

    // Invariant: nothing emitted so far can start a match, because any suffix of the text
    // that was a prefix of a stop string was held back in pending_. So the earliest match in
    // pending_ is the earliest in the whole text.
    size_t first = std::string::npos;
    const std::string* first_stop = nullptr;
    for (const std::string& stop : stops_) {
        const size_t at = pending_.find(stop);
        if (at < first) {
            first = at;
            first_stop = &stop;
        }
    }
    if (first_stop) {
        stopped_ = true;
        matched_ = *first_stop;
        Result result{pending_.substr(0, first), true};
        pending_.clear();
        return result;
    }

    // Hold back the longest suffix that is a proper prefix of some stop string.
    const std::string_view text = pending_;
    size_t hold = 0;
    for (const std::string& stop : stops_) {
        for (size_t length = std::min(stop.size() - 1, text.size()); length > hold; --length) {
            if (text.substr(text.size() - length) == std::string_view(stop).substr(0, length)) {
                hold = length;
                break;
            }
        }
    }
    Result result{pending_.substr(0, pending_.size() - hold), false};
    pending_.erase(0, pending_.size() - hold);
    return result;
}

std::string StopStringMatcher::flush() {
    std::string rest;
    rest.swap(pending_);
    return rest;
}

}  // namespace llmq
