// Byte sizes as people write them in config files and read them in logs and plans.
//
// Units: B; binary KiB, MiB, GiB, TiB (powers of 1024); decimal kB, MB, GB, TB (powers of
// 1000). Unit names are matched without regard to case ("mib" = "MiB"); a space may stand
// between number and unit. The number may have a fraction ("1.5GB"); the result is rounded
// down to whole bytes.
//
// Threads: pure functions, callable from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "llmq/runtime/status.hpp"

namespace llmq {

// "16MiB" -> 16777216, "1.5GB" -> 1500000000, "4096" -> 4096. invalid_argument naming the
// text when it is not a size or does not fit in 64 bits.
[[nodiscard]] Expected<uint64_t> parse_byte_size(std::string_view text);

// For people: binary units with one decimal, "131.4 GiB", "1.0 KiB", "512 B". Lossy.
std::string format_bytes(uint64_t bytes);

// The shortest exact form in the largest binary unit that divides it: "16MiB", "1536KiB",
// "1000B", "0B". parse_byte_size(format_byte_size_exact(n)) == n.
std::string format_byte_size_exact(uint64_t bytes);

}  // namespace llmq
