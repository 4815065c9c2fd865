// Error and Result<T>: how every fallible function in llmq::ipc reports failure.
//
// ipc/ knows nothing of the runtime, so it has its own small error type; the daemon converts it
// to llmq::Status in one place, the C ABI converts it to llmq_client_status (llmq_client.h).
//
// | code              | meaning                                                           |
// | ok                | success                                                           |
// | invalid_argument  | the caller's input is wrong (request field, option, instance name) |
// | not_found         | no daemon listens on that instance (socket missing)               |
// | permission_denied | directory, socket or peer credentials refused                     |
// | busy              | full right now (request ring, arena); try again later             |
// | timeout           | the wait ended before anything arrived                            |
// | disconnected      | the peer closed the connection (daemon stopped, restarted, died)  |
// | protocol          | the peer broke the protocol (bad line, bad region, bad version)   |
// | io_error          | the operating system refused (socket, memfd, mmap, lock)          |
// | internal          | a bug in llmq                                                     |
//
// Messages follow "what failed: why (path/field/value), what to do".
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace llmq::ipc {

enum class ErrorCode {
    ok = 0,
    invalid_argument,
    not_found,
    permission_denied,
    busy,
    timeout,
    disconnected,
    protocol,
    io_error,
    internal,
};

// "invalid_argument", "busy", ... (stable; used in control replies).
const char* error_code_name(ErrorCode code);

struct Error {
    ErrorCode code = ErrorCode::internal;
    std::string message;

    // "<code name>: <message>"
    std::string to_string() const;
};

// Error from the current errno: "<what>: <strerror(errno)>", code io_error unless the errno
// says otherwise (EACCES/EPERM: permission_denied, ENOENT/ECONNREFUSED: not_found).
Error errno_error(const std::string& what);

// A value or the Error that says why there is none.
template <typename T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::move(value)) {}
    Result(Error error) : v_(std::move(error)) {}

    bool ok() const { return v_.index() == 0; }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    // The failure; only valid when !ok().
    const Error& error() const { return std::get<1>(v_); }

private:
    std::variant<T, Error> v_;
};

// Success or the Error that says why not.
template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : error_(std::move(error)), ok_(false) {}

    bool ok() const { return ok_; }
    explicit operator bool() const { return ok_; }
    const Error& error() const { return error_; }

private:
    Error error_;
    bool ok_ = true;
};

inline Error make_error(ErrorCode code, std::string message) { return Error{code, std::move(message)}; }

}  // namespace llmq::ipc
