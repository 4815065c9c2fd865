#include "llmq/runtime/status.hpp"

namespace llmq {

const char* status_code_name(status_code code) {
    switch (code) {
        case status_code::ok: return "ok";
        case status_code::invalid_argument: return "invalid argument";
        case status_code::not_found: return "not found";
        case status_code::corrupt: return "corrupt";
        case status_code::unsupported: return "unsupported";
        case status_code::out_of_memory: return "out of memory";
        case status_code::unavailable: return "unavailable";
        case status_code::io_error: return "I/O error";
        case status_code::internal: return "internal error";
    }
    return "unknown";
}

std::string Status::to_string() const {
    if (ok()) return "ok";
    return std::string(status_code_name(code_)) + ": " + message_;
}

}  // namespace llmq
