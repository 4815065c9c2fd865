// Control lines: framing with a length limit, the depth pre-scan, field checks, and what the
// daemon does with a 1 MiB line (error reply, connection closed) and a 10 000-deep one (error
// reply, connection kept).
#include <doctest/doctest.h>

#include "echo_daemon.hpp"
#include "llmq/ipc/control_line.hpp"
#include "raw_connection.hpp"

using namespace llmq::ipc;
using namespace llmq::ipc::testing;
using namespace std::chrono_literals;

namespace {

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

nlohmann::json parse_reply(const std::optional<std::string>& line) {
    REQUIRE(line.has_value());
    return nlohmann::json::parse(*line);
}

}  // namespace

TEST_CASE("the framer splits lines across feeds and drops a carriage return") {
    LineFramer f(100);
    f.feed("ab", 2);
    CHECK_FALSE(f.next_line().has_value());
    f.feed("c\r\nde\nf", 7);
    CHECK(f.next_line() == "abc");
    CHECK(f.next_line() == "de");
    CHECK_FALSE(f.next_line().has_value());
    f.feed("\n", 1);
    CHECK(f.next_line() == "f");
    CHECK_FALSE(f.overflowed());
}

TEST_CASE("the framer refuses a line past its limit without buffering it") {
    LineFramer f(1024);
    const std::string chunk(4096, 'x');
    for (int i = 0; i < 256; ++i) f.feed(chunk.data(), chunk.size());  // 1 MiB, no newline
    CHECK(f.overflowed());
    CHECK(f.buffered() == 0);
    CHECK_FALSE(f.next_line().has_value());
}

TEST_CASE("the framer refuses an over-long line even when its newline came in the same feed") {
    LineFramer f(8);
    const std::string text = "short\n0123456789abcdef\nlater\n";
    f.feed(text.data(), text.size());
    CHECK(f.next_line() == "short");
    CHECK_FALSE(f.next_line().has_value());
    CHECK(f.overflowed());
}

TEST_CASE("the depth pre-scan counts objects and arrays, not brackets inside strings") {
    CHECK(json_depth_within(nested(32), 32));
    CHECK_FALSE(json_depth_within(nested(33), 32));
    CHECK_FALSE(json_depth_within(nested(10000), 32));
    CHECK(json_depth_within("{\"a\":\"[[[[[[[[[[[[[[\\\"[[[[[\"}", 2));
    CHECK(json_depth_within("{\"a\":{\"b\":[1,{}]}}", 4));
    CHECK_FALSE(json_depth_within("{\"a\":{\"b\":[1,{}]}}", 3));
}

TEST_CASE("parse_control_line refuses long, deep, broken and non-object lines") {
    ControlLimits limits;
    auto too_long = parse_control_line(std::string(limits.max_line_bytes + 1, ' '), limits);
    REQUIRE_FALSE(too_long.ok());
    CHECK(too_long.error().message.find("longer than") != std::string::npos);
    auto too_deep = parse_control_line(nested(10000), limits);
    REQUIRE_FALSE(too_deep.ok());
    CHECK(too_deep.error().message.find("nested deeper than 32") != std::string::npos);
    auto broken = parse_control_line("{\"id\": 1,", limits);
    REQUIRE_FALSE(broken.ok());
    CHECK(broken.error().message.find("not valid JSON") != std::string::npos);
    CHECK_FALSE(parse_control_line("[1,2]", limits).ok());
    CHECK_FALSE(parse_control_line("{\"s\":\"\xff\"}", limits).ok());  // invalid UTF-8
    auto huge = parse_control_line("{\"n\":4E864}", limits);  // found by fuzz_control_line
    REQUIRE_FALSE(huge.ok());
    CHECK(huge.error().message.find("out of range") != std::string::npos);
    CHECK(parse_control_line("{\"id\":1,\"command\":\"status\"}", limits).ok());
}

TEST_CASE("parse_control_request names the wrong field") {
    auto field_error = [](const char* text) {
        auto r = parse_control_request(nlohmann::json::parse(text));
        REQUIRE_FALSE(r.ok());
        return r.error().message;
    };
    CHECK(field_error("{\"command\":\"status\"}").find("\"id\" is missing") != std::string::npos);
    CHECK(field_error("{\"id\":-1,\"command\":\"status\"}").find("\"id\"") != std::string::npos);
    CHECK(field_error("{\"id\":1.5,\"command\":\"status\"}").find("\"id\"") != std::string::npos);
    CHECK(field_error("{\"id\":1}").find("\"command\" is missing") != std::string::npos);
    CHECK(field_error("{\"id\":1,\"command\":\"\"}").find("\"command\"") != std::string::npos);
    CHECK(field_error("{\"id\":1,\"command\":\"St atus\"}").find("\"command\"") != std::string::npos);
    CHECK(field_error("{\"id\":1,\"command\":\"status\",\"args\":[1]}").find("\"args\"") != std::string::npos);
    CHECK(field_error("{\"id\":1,\"command\":\"status\",\"extra\":0}").find("unknown key \"extra\"") != std::string::npos);
    auto ok = parse_control_request(nlohmann::json::parse("{\"id\":7,\"command\":\"plugins.list\",\"args\":{\"x\":1}}"));
    REQUIRE(ok.ok());
    CHECK(ok->id == 7);
    CHECK(ok->command == "plugins.list");
    CHECK(ok->args["x"] == 1);
}

TEST_CASE("a 1 MiB control line gets an error reply and the connection is closed") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    RawConnection raw(daemon.listener().socket_path());
    REQUIRE(raw.hello().has_value());
    raw.send(std::string(1u << 20, 'x') + "\n");  // the daemon may close before it has all of it
    const auto reply = parse_reply(raw.read_line());
    CHECK(reply["ok"] == false);
    CHECK(reply["id"].is_null());
    CHECK(reply["error"]["code"] == "invalid_argument");
    CHECK(reply["error"]["message"].get<std::string>().find("longer than 65536 bytes") != std::string::npos);
    CHECK(raw.closed_within(2000ms));
    const auto deadline = std::chrono::steady_clock::now() + 1s;
    while (daemon.disconnects == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
    CHECK(daemon.disconnects == 1);
}

TEST_CASE("a control line nested 10 000 deep gets an error reply and the connection is kept") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    RawConnection raw(daemon.listener().socket_path());
    REQUIRE(raw.hello().has_value());
    std::string deep = "{\"id\":5,\"command\":\"echo\",\"args\":{\"x\":" + nested(10000) + "}}\n";
    REQUIRE(raw.send(deep));
    auto reply = parse_reply(raw.read_line());
    CHECK(reply["ok"] == false);
    CHECK(reply["error"]["message"].get<std::string>().find("nested deeper than") != std::string::npos);

    REQUIRE(raw.send("{\"id\":6,\"command\":\"echo\",\"args\":{\"fine\":true}}\n"));
    reply = parse_reply(raw.read_line());
    CHECK(reply["id"] == 6);
    CHECK(reply["ok"] == true);
    CHECK(reply["result"]["fine"] == true);
}

TEST_CASE("malformed control lines get error replies with the id when one was readable") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    RawConnection raw(daemon.listener().socket_path());
    REQUIRE(raw.hello().has_value());
    REQUIRE(raw.send("not json\n"));
    auto reply = parse_reply(raw.read_line());
    CHECK(reply["id"].is_null());
    CHECK(reply["ok"] == false);
    REQUIRE(raw.send("{\"id\":9,\"command\":7}\n"));
    reply = parse_reply(raw.read_line());
    CHECK(reply["id"] == 9);
    CHECK(reply["error"]["message"].get<std::string>().find("\"command\"") != std::string::npos);
    REQUIRE(raw.send("{\"id\":10,\"command\":\"status\"}\n"));
    reply = parse_reply(raw.read_line());
    CHECK(reply["ok"] == true);
}

TEST_CASE("a first line that is not a hello is refused and closed") {
    TempDir tmp;
    EchoDaemon daemon(tmp.path() / "run");
    RawConnection raw(daemon.listener().socket_path());
    REQUIRE(raw.send("{\"id\":1,\"command\":\"status\"}\n"));
    auto reply = parse_reply(raw.read_line());
    CHECK(reply["type"] == "refused");
    CHECK(raw.closed_within(2000ms));
}
