// Stop strings: end generation when the text contains one of them, without ever showing it.
//
// Text arrives piece by piece (each token's decoded text). The matcher emits text as soon as
// it cannot be the start of a stop string, holds back the tail that still could be, and stops
// at the first match: it emits the text before the match and never the stop string or what
// follows it. A stop string may span any number of pieces.
//
// Pieces should end on UTF-8 character boundaries (the tokenizer's decoder guarantees it);
// when the stop strings are valid UTF-8 the emitted text then never splits a character.
//
// Threads: one matcher per sequence; not thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace llmq {

class StopStringMatcher {
public:
    // Empty strings in `stops` are ignored; no stop strings means every push emits its piece.
    explicit StopStringMatcher(std::vector<std::string> stops);

    struct Result {
        std::string emit;       // text that is certainly output, possibly empty
        bool stopped = false;   // a stop string was found; generation should end
    };

    // Add a piece. After a stop every push returns {"", true}.
    Result push(std::string_view piece);

    // At the end of generation (no stop found): the text held back, which is output after all.
    // Empty after a stop.
    std::string flush();

    bool stopped() const { return stopped_; }
    // The stop string that matched; empty before a stop.
    const std::string& matched() const { return matched_; }

private:
    std::vector<std::string> stops_;
    std::string pending_;   // held back: a suffix of the text that is a prefix of a stop string
    std::string matched_;
    bool stopped_ = false;
};

}  // namespace llmq
