#include "llmq/runtime/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace llmq::log {

namespace {
std::atomic<int> g_level{static_cast<int>(level::info)};
std::atomic<bool> g_json{false};
std::mutex g_mutex;
FILE* g_file = nullptr;  // nullptr: stderr

const char* name_of(level l) {
    switch (l) {
        case level::error: return "error";
        case level::warn: return "warn";
        case level::info: return "info";
        case level::debug: return "debug";
    }
    return "info";
}

void json_escape(std::string& out, std::string_view s) {
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
}
}  // namespace

void set_level(level l) { g_level.store(static_cast<int>(l)); }
level current_level() { return static_cast<level>(g_level.load()); }
void set_json(bool json) { g_json.store(json); }

bool set_file(const std::string& path, std::string* why) {
    std::lock_guard lock(g_mutex);
    if (path.empty()) {
        if (g_file) std::fclose(g_file);
        g_file = nullptr;
        return true;
    }
    FILE* f = std::fopen(path.c_str(), "ae");
    if (!f) {
        if (why) *why = "cannot open log file " + path + " for appending";
        return false;
    }
    if (g_file) std::fclose(g_file);
    g_file = f;
    return true;
}

bool parse_level(std::string_view text, level* out) {
    for (level l : {level::error, level::warn, level::info, level::debug}) {
        if (text == name_of(l)) {
            *out = l;
            return true;
        }
    }
    return false;
}

void write(level l, std::string_view message) {
    if (static_cast<int>(l) > g_level.load()) return;
    const auto now = std::chrono::system_clock::now();
    const auto t = std::chrono::system_clock::to_time_t(now);
    const int ms = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[40];
    std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    std::string line;
    if (g_json.load()) {
        line = std::string("{\"time\":\"") + stamp + "\",\"level\":\"" + name_of(l) +
               "\",\"message\":\"";
        json_escape(line, message);
        line += "\"}\n";
    } else {
        line = std::string(stamp) + " " + name_of(l) + (l == level::info || l == level::warn ? "  " : " ");
        line.append(message);
        line += '\n';
    }
    std::lock_guard lock(g_mutex);
    FILE* f = g_file ? g_file : stderr;
    std::fwrite(line.data(), 1, line.size(), f);
    std::fflush(f);
}

}  // namespace llmq::log
