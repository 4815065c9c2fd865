// The UTF-8 sanitizer behind decode() and the stream decoder.
#include <doctest/doctest.h>

#include "utf8.hpp"

namespace {

std::string sanitize(std::string_view bytes) {
    std::string out;
    CHECK(llmq::utf8::append_sanitized(out, bytes, true) == bytes.size());
    return out;
}

const std::string R = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace

TEST_CASE("each ill-formed maximal subpart becomes one U+FFFD") {
    // The example of the Unicode standard (ch. 3, "U+FFFD Substitution of Maximal Subparts").
    CHECK(sanitize("\x61\xF1\x80\x80\xE1\x80\xC2\x62\x80\x63\x80\xBF\x64") ==
          "a" + R + R + R + "b" + R + "c" + R + R + "d");
    CHECK(sanitize("\xC0\xAF") == R + R);          // overlong: C0 is never a lead byte
    CHECK(sanitize("\xED\xA0\x80") == R + R + R);  // a surrogate: ED allows only 80..9F next
    CHECK(sanitize("\xF4\x90\x80\x80") == R + R + R + R);  // above U+10FFFF
    CHECK(sanitize("\xF0\x9F\xA6") == R);          // truncated at the end: one subpart
    CHECK(sanitize("caf\xC3\xA9 \xF0\x9F\xA6\x99") == "caf\xC3\xA9 \xF0\x9F\xA6\x99");
    CHECK(llmq::utf8::is_valid("\xE6\x97\xA5\xE6\x9C\xAC"));
    CHECK_FALSE(llmq::utf8::is_valid("\xE6\x97"));
}

TEST_CASE("without at_end a sequence that may still complete is left for later") {
    std::string out;
    CHECK(llmq::utf8::append_sanitized(out, "ab\xF0\x9F\xA6", false) == 2);
    CHECK(out == "ab");
    out.clear();
    // ...but a sequence that can no longer complete is replaced at once.
    CHECK(llmq::utf8::append_sanitized(out, "ab\xF0\x41", false) == 4);
    CHECK(out == "ab" + R + "A");
}
