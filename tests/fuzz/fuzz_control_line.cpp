// libFuzzer target: the control-line path the daemon runs on every byte a client sends on the
// socket (ipc/src/control_line.cpp, ipc/src/handshake.cpp): framing with a length limit, the
// depth pre-scan, JSON parsing, request fields, hello and welcome parsing, and the replies.
// A crash, an exception escaping, a sanitizer report or a violated promise is a finding.
#include <cstdint>
#include <string>

#include "llmq/ipc/control_line.hpp"
#include "llmq/ipc/handshake.hpp"

using namespace llmq::ipc;

namespace {

void check(bool promise) {
    if (!promise) __builtin_trap();
}

std::uint32_t depth_of(const nlohmann::json& j) {
    std::uint32_t deepest = 0;
    if (j.is_structured()) {
        for (const auto& child : j) deepest = std::max(deepest, depth_of(child));
        return deepest + 1;
    }
    return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    ControlLimits limits;
    limits.max_line_bytes = 4096;
    limits.max_depth = 16;
    LineFramer framer(limits.max_line_bytes);
    // Feed in uneven chunks, as reads would deliver them.
    std::size_t at = 0;
    while (at < size) {
        const std::size_t chunk = std::min<std::size_t>(size - at, 1 + data[at] % 97);
        framer.feed(reinterpret_cast<const char*>(data + at), chunk);
        at += chunk;
        while (auto line = framer.next_line()) {
            check(line->size() <= limits.max_line_bytes);
            auto message = parse_control_line(*line, limits);
            if (!message) {
                check(!message.error().message.empty());
                check(!format_control_error(std::nullopt, message.error()).empty());
                continue;
            }
            check(message->is_object());
            check(depth_of(*message) <= limits.max_depth);
            auto request = parse_control_request(*message);
            if (request) {
                check(!request->command.empty() && request->command.size() <= 64);
                check(request->args.is_object());
                // A reply echoing anything from the request must still be one valid line.
                const std::string reply = format_control_result(request->id, request->args);
                check(reply.back() == '\n');
                check(parse_control_line(reply.substr(0, reply.size() - 1), ControlLimits{1u << 20, 64}).ok());
            } else {
                (void)control_message_id(*message);
            }
            (void)parse_hello(*message);
            (void)parse_welcome(*message);
        }
        if (framer.overflowed()) break;
    }
    return 0;
}
