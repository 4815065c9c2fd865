#include <doctest/doctest.h>

#include <cstdint>

#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/duration.hpp"

using namespace std::chrono_literals;
using llmq::format_byte_size_exact;
using llmq::format_bytes;
using llmq::format_duration;
using llmq::parse_byte_size;
using llmq::parse_duration;

TEST_CASE("sizes parse in binary and decimal units") {
    CHECK(*parse_byte_size("0") == 0);
    CHECK(*parse_byte_size("4096") == 4096);
    CHECK(*parse_byte_size("512KiB") == 512ull * 1024);
    CHECK(*parse_byte_size("16MiB") == 16ull << 20);
    CHECK(*parse_byte_size("6GiB") == 6ull << 30);
    CHECK(*parse_byte_size("2TiB") == 2ull << 40);
    CHECK(*parse_byte_size("1.5GB") == 1'500'000'000ull);
    CHECK(*parse_byte_size("1.5GiB") == 1'610'612'736ull);
    CHECK(*parse_byte_size("3kB") == 3000);
    CHECK(*parse_byte_size("7MB") == 7'000'000);
    CHECK(*parse_byte_size("1TB") == 1'000'000'000'000ull);
    CHECK(*parse_byte_size("100B") == 100);
    CHECK(*parse_byte_size("16 MiB") == 16ull << 20);
    CHECK(*parse_byte_size("16mib") == 16ull << 20);
    CHECK(*parse_byte_size(" 1KiB ") == 1024);
    // Fractions of a byte are rounded down.
    CHECK(*parse_byte_size("1.3KiB") == 1331);
    CHECK(*parse_byte_size("0016MiB") == 16ull << 20);
}

TEST_CASE("sizes that are not sizes are refused with the text and the units") {
    for (const char* bad : {"", "MiB", "16XB", "-1", "1e9", "1.", ".5GiB", "16 MiB extra", "1,5GB",
                            "0x10", "16 M i B", "18446744073709551616", "17179869184GiB",
                            "1000000000000000000000000000000"}) {
        CAPTURE(bad);
        auto parsed = parse_byte_size(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.status().code() == llmq::status_code::invalid_argument);
        CHECK(parsed.status().message().find("\"" + std::string(bad) + "\" is not a size") == 0);
        CHECK(parsed.status().message().find("MiB") != std::string::npos);
    }
    CHECK(parse_byte_size("16XB").status().message().find("unknown unit \"XB\"") !=
          std::string::npos);
    CHECK(*parse_byte_size("18446744073709551615") == UINT64_MAX);
}

TEST_CASE("sizes print for people with one decimal in binary units") {
    CHECK(format_bytes(0) == "0 B");
    CHECK(format_bytes(512) == "512 B");
    CHECK(format_bytes(1023) == "1023 B");
    CHECK(format_bytes(1024) == "1.0 KiB");
    CHECK(format_bytes(1536) == "1.5 KiB");
    CHECK(format_bytes(16ull << 20) == "16.0 MiB");
    CHECK(format_bytes(141'100'000'000ull) == "131.4 GiB");
    CHECK(format_bytes((1ull << 20) - 1) == "1.0 MiB");
    CHECK(format_bytes(UINT64_MAX) == "16.0 EiB");
}

TEST_CASE("exact sizes print in the largest unit that divides and parse back") {
    CHECK(format_byte_size_exact(0) == "0B");
    CHECK(format_byte_size_exact(1000) == "1000B");
    CHECK(format_byte_size_exact(1024) == "1KiB");
    CHECK(format_byte_size_exact(1536 * 1024) == "1536KiB");
    CHECK(format_byte_size_exact(16ull << 20) == "16MiB");
    CHECK(format_byte_size_exact(3ull << 40) == "3TiB");
    CHECK(format_byte_size_exact(5ull << 50) == "5120TiB");
    for (uint64_t n : std::initializer_list<uint64_t>{0, 1, 1000, 1024, 123456789, 16ull << 20, 5ull << 50,
                       UINT64_MAX, UINT64_MAX - 1023}) {
        CAPTURE(n);
        CHECK(*parse_byte_size(format_byte_size_exact(n)) == n);
    }
}

TEST_CASE("durations parse in ms, s, m and h") {
    CHECK(*parse_duration("250ms") == 250ms);
    CHECK(*parse_duration("5s") == 5000ms);
    CHECK(*parse_duration("1.5s") == 1500ms);
    CHECK(*parse_duration("2m") == 120'000ms);
    CHECK(*parse_duration("1h") == 3'600'000ms);
    CHECK(*parse_duration("0s") == 0ms);
    CHECK(*parse_duration("30 s") == 30'000ms);
}

TEST_CASE("durations that are not durations are refused") {
    for (const char* bad : {"", "5", "s", "5 sec", "5S", "-1s", "1.0005s", "0.5ms", "5us",
                            "99999999999999999999h"}) {
        CAPTURE(bad);
        auto parsed = parse_duration(bad);
        REQUIRE_FALSE(parsed.ok());
        CHECK(parsed.status().message().find("\"" + std::string(bad) + "\" is not a duration") ==
              0);
    }
    CHECK(parse_duration("5").status().message().find("unit is missing") != std::string::npos);
    CHECK(parse_duration("1.0005s").status().message().find("finer than a millisecond") !=
          std::string::npos);
}

TEST_CASE("durations print exactly in the largest unit and parse back") {
    CHECK(format_duration(0ms) == "0s");
    CHECK(format_duration(250ms) == "250ms");
    CHECK(format_duration(5000ms) == "5s");
    CHECK(format_duration(1500ms) == "1500ms");
    CHECK(format_duration(120'000ms) == "2m");
    CHECK(format_duration(7'200'000ms) == "2h");
    for (auto d : {0ms, 1ms, 999ms, 1000ms, 61'000ms, 3'600'000ms, 3'600'001ms}) {
        CAPTURE(d.count());
        CHECK(*parse_duration(format_duration(d)) == d);
    }
}
