// The gateway's pure parts: request parsing, UTF-8 joining of token pieces, Prometheus text.
#include <doctest/doctest.h>

#include "openai_request.hpp"
#include "openai_response.hpp"
#include "llmq/ipc/prometheus_text.hpp"

using namespace llmq::gateway;
using llmq::ipc::MetricsWriter;
using nlohmann::json;

namespace {
const ApiError* error_of(const ParsedRequest& r) { return std::get_if<ApiError>(&r); }
json chat(json extra) {
    json body{{"model", "m"}, {"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
    body.update(extra);
    return body;
}
}  // namespace

TEST_CASE("completion requests map onto the generate request") {
    const auto r = parse_completion_request(
        json{{"model", "m"}, {"prompt", "Hi"}, {"max_tokens", 7}, {"temperature", 0}, {"top_p", 0.5},
             {"seed", -1}, {"stop", json::array({"\n", "END"})}, {"logprobs", 0}},
        RequestLimits{});
    REQUIRE(std::holds_alternative<ApiRequest>(r));
    const auto& g = std::get<ApiRequest>(r).generate;
    CHECK(g.prompt_text == "Hi");
    CHECK(g.max_tokens == 7);
    CHECK(g.sampling.temperature == 0.0f);
    CHECK(g.sampling.top_p == 0.5f);
    CHECK(g.sampling.top_k == 0);
    CHECK(g.sampling.seed_set);
    CHECK(g.sampling.seed == UINT64_MAX);
    CHECK(g.stop == std::vector<std::string>{"\n", "END"});
    CHECK(g.logprobs);
    // OpenAI's default of 16 tokens for completions.
    const auto d = parse_completion_request(json{{"model", "m"}, {"prompt", "Hi"}}, RequestLimits{});
    CHECK(std::get<ApiRequest>(d).generate.max_tokens == 16);
}

TEST_CASE("each wrong field is a 400 naming it") {
    const RequestLimits limits{1000};
    const std::vector<std::pair<json, std::string>> cases = {
        {chat({{"max_tokens", 1001}}), "max_tokens"},
        {chat({{"max_tokens", 1e300}}), "max_tokens"},
        {chat({{"max_tokens", 3.0}}), "max_tokens"},
        {chat({{"max_tokens", json::parse("18446744073709551615")}}), "max_tokens"},
        {chat({{"temperature", "warm"}}), "temperature"},
        {chat({{"temperature", -0.1}}), "temperature"},
        {chat({{"top_p", 0}}), "top_p"},
        {chat({{"n", 3}}), "n"},
        {chat({{"stop", json::array({"a", "b", "c", "d", "e"})}}), "stop"},
        {chat({{"stop", ""}}), "stop"},
        {chat({{"stream", "yes"}}), "stream"},
        {chat({{"stream_options", {{"include_usage", true}}}}), "stream_options"},
        {chat({{"top_logprobs", 2}}), "top_logprobs"},
        {chat({{"logit_bias", {{"1", 5}}}}), "logit_bias"},
        {chat({{"messages", json::array({{{"role", "user"}}})}}), "messages[0].content"},
    };
    for (const auto& [body, param] : cases) {
        CAPTURE(body.dump());
        const auto r = parse_chat_request(body, limits);
        REQUIRE(error_of(r));
        CHECK(error_of(r)->status == 400);
        CHECK(error_of(r)->param == param);
        CHECK(error_of(r)->to_json()["error"]["message"].get<std::string>().find(param) != std::string::npos);
    }
}

TEST_CASE("bodies that are not JSON, or nest too deep, are refused before parsing deeper") {
    CHECK(std::holds_alternative<ApiError>(parse_json_body("{\"a\": ")));
    CHECK(std::holds_alternative<ApiError>(parse_json_body(std::string(100000, '['))));
    CHECK(std::holds_alternative<json>(parse_json_body("{\"a\": \"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}")));
}

TEST_CASE("UTF-8 split across token pieces is held back until it completes") {
    Utf8Joiner j;
    // "é" = C3 A9, "€" = E2 82 AC, split over pieces.
    CHECK(j.push("caf\xC3") == "caf");
    CHECK(j.push("\xA9 \xE2\x82") == "\xC3\xA9 ");
    CHECK(j.push("\xAC!") == "\xE2\x82\xAC!");
    CHECK(j.finish().empty());
    // Invalid bytes become U+FFFD; an unfinished tail at the end too.
    CHECK(j.push("a\xFF") == "a\xEF\xBF\xBD");
    CHECK(j.push("\xE2\x82") == "");
    CHECK(j.finish() == "\xEF\xBF\xBD");
    CHECK(valid_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // a surrogate
}

TEST_CASE("Prometheus text escapes label values and writes histograms with +Inf") {
    MetricsWriter w;
    w.family("x_total", "counter", "things");
    w.sample("x_total", {{"name", "a\"b\\c\nd"}}, 3);
    w.histogram("lat", json{{"buckets", json::array({json::array({0.5, 1}), json::array({1, 2})})}, {"sum", 1.25}, {"count", 3}});
    const std::string t = w.text();
    CHECK(t.find("x_total{name=\"a\\\"b\\\\c\\nd\"} 3\n") != std::string::npos);
    CHECK(t.find("lat_bucket{le=\"0.5\"} 1\n") != std::string::npos);
    CHECK(t.find("lat_bucket{le=\"1\"} 2\n") != std::string::npos);
    CHECK(t.find("lat_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
    CHECK(t.find("lat_sum 1.25\n") != std::string::npos);
}
