#include "llmq/ipc/result.hpp"

#include <cerrno>
#include <cstring>

namespace llmq::ipc {

const char* error_code_name(ErrorCode code) {
    switch (code) {
        case ErrorCode::ok: return "ok";
        case ErrorCode::invalid_argument: return "invalid_argument";
        case ErrorCode::not_found: return "not_found";
        case ErrorCode::permission_denied: return "permission_denied";
        case ErrorCode::busy: return "busy";
        case ErrorCode::timeout: return "timeout";
        case ErrorCode::disconnected: return "disconnected";
        case ErrorCode::protocol: return "protocol";
        case ErrorCode::io_error: return "io_error";
        case ErrorCode::internal: return "internal";
    }
    return "unknown";
}

std::string Error::to_string() const { return std::string(error_code_name(code)) + ": " + message; }

Error errno_error(const std::string& what) {
    const int err = errno;
    ErrorCode code = ErrorCode::io_error;
    if (err == EACCES || err == EPERM) code = ErrorCode::permission_denied;
    if (err == ENOENT || err == ECONNREFUSED) code = ErrorCode::not_found;
    return Error{code, what + ": " + std::strerror(err)};
}

}  // namespace llmq::ipc
