// RawSession: a test client that does the handshake by hand and maps its region itself, so a
// fault test can write what the client library never would (half-written payloads, garbage over
// the region, descriptors rewritten while the daemon reads them, offsets that wrap).
//
// It keeps two views of the one memfd: its own writable mapping (raw publishing and garbage),
// and a ClientRegion attached to duplicates of the descriptors, used only to read events (the
// response ring is independent of the request ring, so raw publishing does not confuse it).
//
// Thread: publish/write from one thread; a second thread may scribble over the mapping at the
// same time (that is the point). Failures print to stderr and exit(3): these are test tools.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "llmq/ipc/client_region.hpp"
#include "llmq/ipc/control_line.hpp"
#include "llmq/ipc/fd_passing.hpp"
#include "llmq/ipc/handshake.hpp"
#include "llmq/ipc/instance_directory.hpp"
#include "llmq/ipc/region_layout.hpp"
#include "llmq/ipc/unique_fd.hpp"

namespace llmq::integration {

[[noreturn]] inline void die(const std::string& why) {
    std::fprintf(stderr, "llmq-fault-client: %s\n", why.c_str());
    std::exit(3);
}

// A connected UNIX socket to the instance, nothing sent yet.
inline ipc::UniqueFd connect_socket(const std::string& instance) {
    const std::filesystem::path path = ipc::instance_socket_path(ipc::default_ipc_dir(), instance);
    ipc::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd.valid()) die("socket() failed");
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
        die("connect " + path.string() + ": " + std::strerror(errno));
    }
    return fd;
}

inline void send_all(int fd, const std::string& bytes) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
        const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
        if (n <= 0) die("send failed");
        sent += static_cast<std::size_t>(n);
    }
}

class RawSession {
public:
    // Connects, says hello, reads the welcome and maps the region.
    explicit RawSession(const std::string& instance) : socket_(connect_socket(instance)) {
        send_all(socket_.get(), ipc::format_hello(ipc::Hello{ipc::kProtocolVersion, "llmq-fault-client raw"}));
        std::vector<ipc::UniqueFd> fds;
        ipc::LineFramer framer(1u << 20);
        std::optional<std::string> line;
        std::array<char, 4096> buffer;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (!(line = framer.next_line())) {
            if (std::chrono::steady_clock::now() > deadline) die("no welcome within 10 s");
            pollfd p{socket_.get(), POLLIN, 0};
            ::poll(&p, 1, 100);
            auto n = ipc::receive_with_fds(socket_.get(), buffer.data(), buffer.size(), fds);
            if (!n) {
                if (n.error().code == ipc::ErrorCode::timeout) continue;
                die("receiving the welcome: " + n.error().message);
            }
            if (*n == 0) die("the daemon closed the connection during the handshake");
            framer.feed(buffer.data(), *n);
        }
        if (fds.size() != 2) die("the welcome carried " + std::to_string(fds.size()) + " descriptors: " + *line);
        struct stat st {};
        if (::fstat(fds[0].get(), &st) != 0) die("fstat of the region failed");
        size_ = static_cast<std::uint64_t>(st.st_size);
        void* base = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0].get(), 0);
        if (base == MAP_FAILED) die("mmap of the region failed");
        base_ = static_cast<std::byte*>(base);
        ipc::RegionHeader header;
        std::memcpy(&header, base_, sizeof header);
        auto layout = ipc::layout_from_header(header, size_);
        if (!layout) die("bad header: " + layout.error().message);
        layout_ = *layout;
        doorbell_ = ipc::UniqueFd(::dup(fds[1].get()));
        auto region = ipc::ClientRegion::attach(ipc::UniqueFd(::dup(fds[0].get())), ipc::UniqueFd(::dup(fds[1].get())));
        if (!region) die("attach: " + region.error().message);
        reader_ = std::move(*region);
    }

    ~RawSession() {
        if (base_ != nullptr) ::munmap(base_, size_);
    }

    const ipc::RegionLayout& layout() const { return layout_; }
    std::byte* base() { return base_; }
    std::byte* arena() { return base_ + layout_.arena_offset; }
    ipc::RequestDescriptor* slots() {
        return reinterpret_cast<ipc::RequestDescriptor*>(base_ + layout_.request_slots_offset);
    }
    ipc::RegionControl* control() { return reinterpret_cast<ipc::RegionControl*>(base_); }
    std::uint64_t head() const { return head_; }
    int socket_fd() const { return socket_.get(); }

    // The daemon's consumer index of the request ring, as it is in the region now.
    std::uint64_t request_tail() {
        return std::atomic_ref<std::uint64_t>(control()->request_tail.value).load(std::memory_order_acquire);
    }

    // Writes a descriptor into the next slot without publishing it.
    void stage(const ipc::RequestDescriptor& d) {
        std::memcpy(&slots()[head_ & (layout_.request_capacity - 1)], &d, sizeof d);
    }
    // Publishes staged slots up to head + n (release store), then rings the doorbell if asked.
    void publish(std::uint64_t n, bool ring = true) {
        head_ += n;
        std::atomic_ref<std::uint64_t>(control()->request_head.value).store(head_, std::memory_order_release);
        if (ring) this->ring();
    }
    // Stores an arbitrary head index (hostile), then rings.
    void publish_head(std::uint64_t value) {
        std::atomic_ref<std::uint64_t>(control()->request_head.value).store(value, std::memory_order_release);
        ring();
    }
    void ring() {
        const std::uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = ::write(doorbell_.get(), &one, sizeof one);
    }

    // The next event, waiting at most `timeout`; nullopt on timeout or when the response ring
    // is unreadable (sets broken()).
    std::optional<ipc::Event> next_event(std::chrono::milliseconds timeout) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto e = reader_->try_pop_event();
            if (!e) {
                broken_ = true;
                return std::nullopt;
            }
            if (*e) return std::move(**e);
            if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
            reader_->sleep_for_events(std::chrono::milliseconds(5));
        }
    }
    bool broken() const { return broken_; }

    // True once the daemon has closed the socket (lines it sent before are skipped).
    bool closed(std::chrono::milliseconds wait) {
        if (closed_) return true;
        pollfd p{socket_.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return false;
        std::array<char, 4096> buffer;
        for (;;) {
            const ssize_t n = ::recv(socket_.get(), buffer.data(), buffer.size(), MSG_DONTWAIT);
            if (n > 0) continue;
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
            closed_ = true;
            return true;
        }
    }

private:
    ipc::UniqueFd socket_;
    ipc::UniqueFd doorbell_;
    std::unique_ptr<ipc::ClientRegion> reader_;
    std::byte* base_ = nullptr;
    std::uint64_t size_ = 0;
    ipc::RegionLayout layout_;
    std::uint64_t head_ = 0;
    bool broken_ = false;
    bool closed_ = false;
};

}  // namespace llmq::integration
