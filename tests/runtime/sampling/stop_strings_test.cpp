// StopStringMatcher: holds back possible starts of a stop string, stops at the first match.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "llmq/runtime/stop_strings.hpp"

using llmq::StopStringMatcher;

namespace {

struct Outcome {
    std::string text;   // everything emitted, including flush() when no stop came
    bool stopped = false;
    std::vector<std::string> emits;
};

Outcome run(std::vector<std::string> stops, const std::vector<std::string>& pieces) {
    StopStringMatcher matcher(std::move(stops));
    Outcome out;
    for (const std::string& piece : pieces) {
        auto result = matcher.push(piece);
        out.emits.push_back(result.emit);
        out.text += result.emit;
        if (result.stopped) {
            out.stopped = true;
            break;
        }
    }
    if (!out.stopped) out.text += matcher.flush();
    return out;
}

}  // namespace

TEST_CASE("without stop strings every piece is emitted as it comes") {
    auto out = run({}, {"Hello", ", ", "world"});
    CHECK(out.emits == std::vector<std::string>{"Hello", ", ", "world"});
    CHECK_FALSE(out.stopped);
}

TEST_CASE("a stop string inside one piece stops with the text before it") {
    auto out = run({"###"}, {"abc", "de###fg", "never"});
    CHECK(out.stopped);
    CHECK(out.text == "abcde");
}

TEST_CASE("a stop string across piece boundaries is held back and never emitted") {
    auto out = run({"</s>"}, {"Hi <", "/", "s", "> more"});
    CHECK(out.stopped);
    CHECK(out.text == "Hi ");
    CHECK(out.emits == std::vector<std::string>{"Hi ", "", "", ""});
}

TEST_CASE("held-back text is released once it cannot start a stop string") {
    auto out = run({"</s>"}, {"a <", "/b", "> c"});
    CHECK_FALSE(out.stopped);
    CHECK(out.text == "a </b> c");
    CHECK(out.emits == std::vector<std::string>{"a ", "</b", "> c"});
}

TEST_CASE("text held back at the end comes out of flush") {
    StopStringMatcher matcher({"STOP"});
    CHECK(matcher.push("the end ST").emit == "the end ");
    CHECK(matcher.flush() == "ST");
    CHECK(matcher.flush().empty());
}

TEST_CASE("the earliest match wins among several stop strings") {
    auto out = run({"world", "lo w"}, {"hel", "lo wor", "ld"});
    CHECK(out.stopped);
    CHECK(out.text == "hel");
    StopStringMatcher matcher({"b", "abc"});
    auto result = matcher.push("xab");
    CHECK(result.stopped);
    CHECK(result.emit == "xa");
    CHECK(matcher.matched() == "b");
}

TEST_CASE("overlapping partial matches restart correctly") {
    // "aab" must be found in "aaab" even though the first "aa" did not continue to "b".
    auto out = run({"aab"}, {"a", "a", "a", "b"});
    CHECK(out.stopped);
    CHECK(out.text == "a");
    out = run({"abab"}, {"ab", "a", "bab"});
    CHECK(out.stopped);
    CHECK(out.text.empty());
}

TEST_CASE("after a stop, pushes emit nothing") {
    StopStringMatcher matcher({"\n\n"});
    auto first = matcher.push("line\n");
    CHECK(first.emit == "line");
    auto second = matcher.push("\nnext");
    CHECK(second.stopped);
    CHECK(second.emit.empty());
    auto third = matcher.push("more");
    CHECK(third.stopped);
    CHECK(third.emit.empty());
    CHECK(matcher.flush().empty());
    CHECK(matcher.stopped());
}

TEST_CASE("empty stop strings are ignored") {
    auto out = run({"", "x"}, {"abc"});
    CHECK_FALSE(out.stopped);
    CHECK(out.emits == std::vector<std::string>{"abc"});
}

TEST_CASE("multi-byte characters are never split when stop strings are UTF-8") {
    // "é" is C3 A9; the stop string starts with "é!" so "é" alone is held back whole.
    auto out = run({"\xc3\xa9!"}, {"caf\xc3\xa9", " ok"});
    CHECK_FALSE(out.stopped);
    CHECK(out.emits == std::vector<std::string>{"caf", "\xc3\xa9 ok"});
}

TEST_CASE("matches every stop string at every split of the text") {
    const std::string text = "The answer is 42.\nUser: thanks";
    const std::string stop = "\nUser:";
    for (size_t a = 0; a <= text.size(); ++a) {
        for (size_t b = a; b <= text.size(); ++b) {
            auto out = run({stop}, {text.substr(0, a), text.substr(a, b - a), text.substr(b)});
            CHECK(out.stopped);
            CHECK(out.text == "The answer is 42.");
        }
    }
}
