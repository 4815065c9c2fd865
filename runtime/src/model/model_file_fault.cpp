#include "llmq/runtime/model_file_fault.hpp"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>

namespace llmq {

namespace {

// Everything the handler reads is here, in static storage, written before it is published:
// a slot's path and size are filled while its base is 0, then the base is stored (release);
// the handler loads the base (acquire) and trusts the rest. Only async-signal-safe calls
// (write, unlink, _exit, sigaction) run in the handler.
constexpr int max_mappings = 16;
constexpr size_t max_path = 4096;

struct Mapping {
    std::atomic<uintptr_t> base{0};
    std::atomic<size_t> size{0};
    char path[max_path] = {};
};
Mapping mappings[max_mappings];
std::atomic<bool> slot_taken[max_mappings];
char socket_path_buffer[max_path] = {};

void write_all(const char* text, size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(STDERR_FILENO, text, n);
        if (w <= 0) return;
        text += w;
        n -= static_cast<size_t>(w);
    }
}
void write_text(const char* text) { write_all(text, std::strlen(text)); }
void write_number(uint64_t v) {
    char digits[24];
    int i = sizeof digits;
    do {
        digits[--i] = static_cast<char>('0' + v % 10);
        v /= 10;
    } while (v > 0);
    write_all(digits + i, sizeof digits - i);
}

void on_sigbus(int, siginfo_t* info, void*) {
    const auto address = reinterpret_cast<uintptr_t>(info->si_addr);
    for (Mapping& m : mappings) {
        const uintptr_t base = m.base.load(std::memory_order_acquire);
        if (base == 0 || address < base || address - base >= m.size.load(std::memory_order_relaxed))
            continue;
        write_text("llmqd: fatal: the model file ");
        write_text(m.path);
        write_text(" changed while it was being served (truncated or rewritten in place): "
                   "byte ");
        write_number(address - base);
        write_text(" of it can no longer be read (SIGBUS). Exiting with status ");
        write_number(model_file_fault_exit_code);
        write_text("; replace model files by renaming a new file over the old one.\n");
        if (socket_path_buffer[0] != '\0') ::unlink(socket_path_buffer);
        ::_exit(model_file_fault_exit_code);
    }
    // Not a model mapping: the default action, when the faulting access runs again.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(SIGBUS, &dfl, nullptr);
}

}  // namespace

void register_model_mapping(const void* base, size_t size, const std::string& path) {
    for (int i = 0; i < max_mappings; ++i) {
        if (slot_taken[i].exchange(true)) continue;
        Mapping& m = mappings[i];
        const size_t n = std::min(path.size(), max_path - 1);
        std::memcpy(m.path, path.data(), n);
        m.path[n] = '\0';
        m.size.store(size, std::memory_order_relaxed);
        m.base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
        return;
    }
}

void unregister_model_mapping(const void* base) {
    for (int i = 0; i < max_mappings; ++i) {
        if (mappings[i].base.load(std::memory_order_acquire) != reinterpret_cast<uintptr_t>(base))
            continue;
        mappings[i].base.store(0, std::memory_order_release);
        slot_taken[i].store(false);
        return;
    }
}

void install_model_file_fault_handler(const std::string& socket_path) {
    const size_t n = std::min(socket_path.size(), max_path - 1);
    std::memcpy(socket_path_buffer, socket_path.data(), n);
    socket_path_buffer[n] = '\0';
    struct sigaction sa {};
    sa.sa_sigaction = on_sigbus;
    sa.sa_flags = SA_SIGINFO;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGBUS, &sa, nullptr);
}

}  // namespace llmq
