#include "process_memory.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>

namespace llmq::bench {

namespace {

ProcessMemory read_status(const std::string& path) {
    ProcessMemory m;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        unsigned long long kib = 0;
        char key[32] = {};
        if (std::sscanf(line.c_str(), "%31[^:]: %llu kB", key, &kib) != 2) continue;
        const uint64_t bytes = static_cast<uint64_t>(kib) * 1024;
        if (std::strcmp(key, "VmRSS") == 0) m.rss = bytes;
        else if (std::strcmp(key, "VmHWM") == 0) m.hwm = bytes;
        else if (std::strcmp(key, "RssAnon") == 0) m.rss_anon = bytes;
        else if (std::strcmp(key, "RssFile") == 0) m.rss_file = bytes;
    }
    return m;
}

}  // namespace

ProcessMemory ProcessMemory::now() { return read_status("/proc/self/status"); }

ProcessMemory ProcessMemory::of(int pid) { return read_status("/proc/" + std::to_string(pid) + "/status"); }

std::string format_bytes(uint64_t bytes) {
    char text[32];
    const double b = static_cast<double>(bytes);
    if (b >= 1024.0 * 1024 * 1024) std::snprintf(text, sizeof text, "%.2f GiB", b / (1024.0 * 1024 * 1024));
    else std::snprintf(text, sizeof text, "%.1f MiB", b / (1024.0 * 1024));
    return text;
}

std::string ProcessMemory::to_text() const {
    return "VmRSS " + format_bytes(rss) + " (anon " + format_bytes(rss_anon) + ", file " +
           format_bytes(rss_file) + "), VmHWM " + format_bytes(hwm);
}

}  // namespace llmq::bench
