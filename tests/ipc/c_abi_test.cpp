// The C ABI over a real daemon: connect, submit, stream events, ping, control, cancel, and
// errors as objects with codes and messages.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "echo_daemon.hpp"
#include "llmq/llmq_client.h"

using namespace llmq::ipc::testing;

namespace {

struct Connected {
    llmq_client* client = nullptr;
    ~Connected() { llmq_client_close(client); }
};

void require_ok(llmq_client_error* error) {
    const std::string message = llmq_client_error_message(error);
    const llmq_client_status code = llmq_client_error_code(error);
    llmq_client_error_delete(error);
    REQUIRE_MESSAGE(code == LLMQ_CLIENT_OK, llmq_client_status_name(code) << ": " << message);
}

}  // namespace

TEST_CASE("a C caller connects, streams a request and reads its final event") {
    TempDir tmp;
    const std::string dir = (tmp.path() / "run").string();
    EchoDaemon daemon(tmp.path() / "run");
    llmq_connect_options options = LLMQ_CONNECT_OPTIONS_INIT;
    options.dir = dir.c_str();
    options.client_name = "c abi test";
    Connected c;
    require_ok(llmq_client_connect(&options, &c.client));

    const char* stops[] = {"never"};
    llmq_generate_request request = LLMQ_GENERATE_REQUEST_INIT;
    request.prompt = "C!";
    request.prompt_length = 2;
    request.stop = stops;
    request.stop_count = 1;
    request.flags |= LLMQ_REQUEST_SEED_SET;
    request.seed = 7;
    uint64_t id = 0;
    require_ok(llmq_client_submit(c.client, &request, &id));
    CHECK(id == 1);

    std::string text;
    llmq_event event = LLMQ_EVENT_INIT;
    for (;;) {
        require_ok(llmq_client_next_event(c.client, 3000, &event));
        CHECK(event.request_id == id);
        if (event.kind == LLMQ_EVENT_FINAL) break;
        REQUIRE(event.kind == LLMQ_EVENT_TOKEN);
        CHECK(event.text[event.text_length] == '\0');
        text.append(event.text, event.text_length);
    }
    CHECK(text == "C!");
    CHECK(event.code == LLMQ_FINISH_EOS);
    CHECK(event.prompt_tokens == 2);
    CHECK(event.decode_us == 3);

    uint64_t rtt = 0;
    require_ok(llmq_client_ping(c.client, 3000, &rtt));
    CHECK(rtt > 0);

    char* status = nullptr;
    require_ok(llmq_client_control(c.client, "status", nullptr, 3000, &status));
    REQUIRE(status != nullptr);
    CHECK(std::string(status) == "{\"connections\":1}");
    llmq_client_string_free(status);

    require_ok(llmq_client_cancel(c.client, id));
    require_ok(llmq_client_next_event(c.client, 3000, &event));
    CHECK(event.kind == LLMQ_EVENT_FINAL);
    CHECK(event.code == LLMQ_FINISH_CANCELLED);
}

TEST_CASE("C callers get errors as objects with a code and a message") {
    TempDir tmp;
    const std::string dir = (tmp.path() / "run").string();
    EchoDaemon daemon(tmp.path() / "run");
    llmq_connect_options options = LLMQ_CONNECT_OPTIONS_INIT;
    options.dir = dir.c_str();
    Connected c;
    require_ok(llmq_client_connect(&options, &c.client));

    llmq_event event = LLMQ_EVENT_INIT;
    llmq_client_error* error = llmq_client_next_event(c.client, 10, &event);
    CHECK(llmq_client_error_code(error) == LLMQ_CLIENT_ERR_TIMEOUT);
    llmq_client_error_delete(error);

    error = llmq_client_control(c.client, "fail", "{}", 3000, nullptr);
    CHECK(llmq_client_error_code(error) == LLMQ_CLIENT_ERR_INVALID_ARGUMENT);
    CHECK(std::string(llmq_client_error_message(error)) == "asked to fail");
    llmq_client_error_delete(error);

    error = llmq_client_control(c.client, "echo", "[not an object", 3000, nullptr);
    CHECK(llmq_client_error_code(error) == LLMQ_CLIENT_ERR_INVALID_ARGUMENT);
    llmq_client_error_delete(error);

    llmq_generate_request request = LLMQ_GENERATE_REQUEST_INIT;
    request.prompt = "x";
    request.prompt_length = 1;
    request.temperature = NAN;
    uint64_t id = 0;
    require_ok(llmq_client_submit(c.client, &request, &id));
    require_ok(llmq_client_next_event(c.client, 3000, &event));
    CHECK(event.kind == LLMQ_EVENT_ERROR);
    CHECK(event.code == LLMQ_EVENT_ERROR_INVALID_REQUEST);
    CHECK(std::string(event.text).find("sampling.temperature") != std::string::npos);

    request.struct_size = 0;
    error = llmq_client_submit(c.client, &request, &id);
    CHECK(llmq_client_error_code(error) == LLMQ_CLIENT_ERR_INVALID_ARGUMENT);
    llmq_client_error_delete(error);

    error = llmq_client_cancel(c.client, 999);
    CHECK(llmq_client_error_code(error) == LLMQ_CLIENT_ERR_INVALID_ARGUMENT);
    llmq_client_error_delete(error);
}

TEST_CASE("an older caller's shorter structs are read up to their struct_size") {
    TempDir tmp;
    const std::string dir = (tmp.path() / "run").string();
    EchoDaemon daemon(tmp.path() / "run");
    llmq_connect_options options = LLMQ_CONNECT_OPTIONS_INIT;
    options.dir = dir.c_str();
    Connected c;
    require_ok(llmq_client_connect(&options, &c.client));

    // A caller whose event struct ends before the timings: they must stay untouched.
    llmq_event event;
    std::memset(&event, 0xab, sizeof event);
    event.struct_size = offsetof(llmq_event, prompt_tokens);
    llmq_generate_request request = LLMQ_GENERATE_REQUEST_INIT;
    request.prompt = "z";
    request.prompt_length = 1;
    uint64_t id = 0;
    require_ok(llmq_client_submit(c.client, &request, &id));
    require_ok(llmq_client_next_event(c.client, 3000, &event));
    CHECK(event.kind == LLMQ_EVENT_TOKEN);
    CHECK(event.struct_size == offsetof(llmq_event, prompt_tokens));
    CHECK(event.prompt_tokens == 0xabababab);
}
