// A process's memory as the kernel counts it (/proc/<pid>/status).
//
// Threads: any.
#pragma once

#include <cstdint>
#include <string>

namespace llmq::bench {

struct ProcessMemory {
    uint64_t rss = 0;       // VmRSS: resident now
    uint64_t hwm = 0;       // VmHWM: the most ever resident
    uint64_t rss_anon = 0;  // RssAnon: heap and anonymous mappings (weights copied to devices)
    uint64_t rss_file = 0;  // RssFile: file pages mapped (the model file's touched pages)

    // This process, or another one (/proc/<pid>/status). Zeros when it cannot be read.
    static ProcessMemory now();
    static ProcessMemory of(int pid);
    // "VmRSS 2.31 GiB (anon 2.21, file 0.10), VmHWM 2.40 GiB"
    std::string to_text() const;
};

// "2.31 GiB", "512.0 MiB"
std::string format_bytes(uint64_t bytes);

}  // namespace llmq::bench
