// Status and Expected<T>: how every fallible function inside the runtime reports failure.
//
// | code              | meaning                                                      |
// | ok                | success                                                      |
// | invalid_argument  | the caller's input is wrong (config key, request field)      |
// | not_found         | a named thing does not exist (file, plugin, key)             |
// | corrupt           | a file's contents are malformed (GGUF, plugin library)       |
// | unsupported       | valid, but llmq cannot do it (tensor type, architecture)     |
// | out_of_memory     | does not fit (memory plan, KV blocks, arena)                 |
// | unavailable       | try again later (busy, draining, peer gone)                  |
// | io_error          | the operating system refused (open, mmap, socket)            |
// | internal          | a bug in llmq                                                |
//
// Messages follow "what failed: why (file/key/value), what to do".
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace llmq {

enum class status_code {
    ok = 0,
    invalid_argument,
    not_found,
    corrupt,
    unsupported,
    out_of_memory,
    unavailable,
    io_error,
    internal,
};

const char* status_code_name(status_code code);

class [[nodiscard]] Status {
public:
    Status() = default;
    Status(status_code code, std::string message) : code_(code), message_(std::move(message)) {}

    static Status ok_status() { return {}; }

    bool ok() const { return code_ == status_code::ok; }
    status_code code() const { return code_; }
    const std::string& message() const { return message_; }
    // "<code>: <message>"
    std::string to_string() const;

    // Prefix the message with context: "loading model.gguf: " + message.
    Status with_context(const std::string& context) const {
        if (ok()) return *this;
        return Status(code_, context + ": " + message_);
    }

private:
    status_code code_ = status_code::ok;
    std::string message_;
};

inline Status invalid_argument(std::string m) { return {status_code::invalid_argument, std::move(m)}; }
inline Status not_found(std::string m) { return {status_code::not_found, std::move(m)}; }
inline Status corrupt(std::string m) { return {status_code::corrupt, std::move(m)}; }
inline Status unsupported(std::string m) { return {status_code::unsupported, std::move(m)}; }
inline Status out_of_memory(std::string m) { return {status_code::out_of_memory, std::move(m)}; }
inline Status unavailable(std::string m) { return {status_code::unavailable, std::move(m)}; }
inline Status io_error(std::string m) { return {status_code::io_error, std::move(m)}; }
inline Status internal_error(std::string m) { return {status_code::internal, std::move(m)}; }

// A value or the Status that says why there is none.
template <typename T>
class [[nodiscard]] Expected {
public:
    Expected(T value) : v_(std::move(value)) {}
    Expected(Status status) : v_(std::move(status)) { assert(!std::get<Status>(v_).ok()); }

    bool ok() const { return std::holds_alternative<T>(v_); }
    explicit operator bool() const { return ok(); }

    T& value() & { return std::get<T>(v_); }
    const T& value() const& { return std::get<T>(v_); }
    T&& value() && { return std::get<T>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }

    // The failure; Status() (ok) when there is a value.
    Status status() const { return ok() ? Status() : std::get<Status>(v_); }

private:
    std::variant<T, Status> v_;
};

}  // namespace llmq

// Return early from a function returning Status or Expected<T>.
#define LLMQ_TRY(expr)                              \
    do {                                            \
        ::llmq::Status llmq_try_status_ = (expr);   \
        if (!llmq_try_status_.ok()) return llmq_try_status_; \
    } while (0)
