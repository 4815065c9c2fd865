// RawConnection: a test's own client socket, speaking the line protocol by hand, so tests can
// send what the client library never would and look at the descriptors the daemon sends.
#pragma once

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <array>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "llmq/ipc/control_line.hpp"
#include "llmq/ipc/fd_passing.hpp"
#include "llmq/ipc/unique_fd.hpp"

namespace llmq::ipc::testing {

class RawConnection {
public:
    explicit RawConnection(const std::filesystem::path& socket_path) {
        fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(fd_.valid());
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        std::strncpy(address.sun_path, socket_path.c_str(), sizeof address.sun_path - 1);
        REQUIRE(::connect(fd_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    }

    // Sends everything; false when the daemon has closed the connection.
    bool send(const std::string& bytes) {
        std::size_t sent = 0;
        while (sent < bytes.size()) {
            const ssize_t n = ::send(fd_.get(), bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
            if (n <= 0) return false;
            sent += static_cast<std::size_t>(n);
        }
        return true;
    }

    // The next line, or nullopt on EOF or after `timeout`.
    std::optional<std::string> read_line(std::chrono::milliseconds timeout = std::chrono::milliseconds(3000)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            if (auto line = framer_.next_line()) return line;
            if (eof_) return std::nullopt;
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return std::nullopt;
            pollfd p{fd_.get(), POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
            std::array<char, 65536> buffer;
            auto n = receive_with_fds(fd_.get(), buffer.data(), buffer.size(), fds);
            if (!n && n.error().code == ErrorCode::timeout) continue;
            if (!n || *n == 0) {  // closed, or reset after the daemon dropped unread bytes
                eof_ = true;
                continue;
            }
            framer_.feed(buffer.data(), *n);
        }
    }

    // True when the daemon closes the connection within `timeout` (lines before are skipped).
    bool closed_within(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!eof_ && std::chrono::steady_clock::now() < deadline) {
            (void)read_line(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
        }
        return eof_;
    }

    // Sends a hello and returns the daemon's answer line.
    std::optional<std::string> hello(int protocol = 1) {
        REQUIRE(send("{\"type\":\"hello\",\"protocol\":" + std::to_string(protocol) + ",\"client\":\"raw test\"}\n"));
        return read_line();
    }

    int fd() const { return fd_.get(); }
    std::vector<UniqueFd> fds;  // descriptors received so far

private:
    UniqueFd fd_;
    LineFramer framer_{1u << 22};
    bool eof_ = false;
};

}  // namespace llmq::ipc::testing
