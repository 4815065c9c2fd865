// The gateway's pure parts: request parsing, UTF-8 joining of token pieces, Prometheus text.
#include <doctest/doctest.h>

#include "image_data_url.hpp"
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
             {"seed", -1}, {"stop", json::array({"\n", "END"})}, {"logprobs", 0}, {"ignore_eos", true}},
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
    CHECK(g.ignore_eos);
    // OpenAI's default of 16 tokens for completions.
    const auto d = parse_completion_request(json{{"model", "m"}, {"prompt", "Hi"}}, RequestLimits{});
    CHECK(std::get<ApiRequest>(d).generate.max_tokens == 16);
    CHECK(!std::get<ApiRequest>(d).generate.ignore_eos);
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
        {chat({{"ignore_eos", 1}}), "ignore_eos"},
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

TEST_CASE("base64 decodes the RFC 4648 test vectors and refuses what is not canonical base64") {
    const std::pair<const char*, const char*> vectors[] = {
        {"Zg==", "f"}, {"Zm8=", "fo"}, {"Zm9v", "foo"}, {"Zm9vYg==", "foob"}, {"Zm9vYmE=", "fooba"}, {"Zm9vYmFy", "foobar"}};
    for (const auto& [text, plain] : vectors) {
        auto out = decode_base64(text);
        REQUIRE(std::holds_alternative<std::vector<uint8_t>>(out));
        const auto& bytes = std::get<std::vector<uint8_t>>(out);
        CHECK(std::string(bytes.begin(), bytes.end()) == plain);
    }
    auto error = [](std::string_view text) {
        auto out = decode_base64(text);
        return std::holds_alternative<std::string>(out) ? std::get<std::string>(out) : std::string();
    };
    CHECK(error("").find("empty") != std::string::npos);
    CHECK(error("Zm9").find("multiple of 4") != std::string::npos);
    CHECK(error("Zm-v").find("character 2") != std::string::npos);
    CHECK(error("Z=9v").find("'=' before the end") != std::string::npos);
    CHECK(error("Zh==").find("bits set") != std::string::npos);  // 'h' leaves non-zero bits
    CHECK(error("Zm9v\nYmFy").find("multiple of 4") != std::string::npos);
}

TEST_CASE("image URLs: base64 PNG and JPEG data URLs are taken; http(s) is refused without fetching") {
    auto png = decode_image_data_url("data:image/png;base64,iVBORw==");
    REQUIRE(std::holds_alternative<std::vector<uint8_t>>(png));
    CHECK(std::get<std::vector<uint8_t>>(png) == std::vector<uint8_t>{0x89, 'P', 'N', 'G'});
    CHECK(std::holds_alternative<std::vector<uint8_t>>(decode_image_data_url("data:image/jpeg;base64,/9j/")));
    CHECK(std::holds_alternative<std::vector<uint8_t>>(decode_image_data_url("DATA:IMAGE/JPG;BASE64,/9j/")));
    auto error = [](std::string_view url) {
        auto out = decode_image_data_url(url);
        return std::holds_alternative<std::string>(out) ? std::get<std::string>(out) : std::string();
    };
    CHECK(error("https://example.com/cat.png").find("never fetches") != std::string::npos);
    CHECK(error("http://10.0.0.1/x.jpg").find("only data URLs") != std::string::npos);
    CHECK(error("file:///etc/passwd").find("data URL") != std::string::npos);
    CHECK(error("data:image/gif;base64,R0lG").find("image/png and image/jpeg") != std::string::npos);
    CHECK(error("data:image/png,rawbytes").find("base64") != std::string::npos);
    CHECK(error("data:image/png;base64").find("','") != std::string::npos);
    CHECK(error("data:image/png;base64,iVBO!w==").find("character 4") != std::string::npos);
}

TEST_CASE("chat content parts: text and image_url parts in order, each bad part a 400 naming it") {
    const json parts = json::array({{{"type", "text"}, {"text", "Look: "}},
                                    {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,iVBORw=="}}}},
                                    {{"type", "text"}, {"text", " and "}},
                                    {{"type", "image_url"}, {"image_url", {{"url", "data:image/jpeg;base64,/9j/"}, {"detail", "low"}}}}});
    auto r = parse_chat_request(chat({{"messages", json::array({{{"role", "user"}, {"content", parts}}})}}), RequestLimits{});
    REQUIRE(std::holds_alternative<ApiRequest>(r));
    const ApiRequest& a = std::get<ApiRequest>(r);
    REQUIRE(a.generate.images.size() == 2);
    CHECK(a.generate.images[0] == std::vector<uint8_t>{0x89, 'P', 'N', 'G'});
    CHECK(a.generate.images[1] == std::vector<uint8_t>{0xFF, 0xD8, 0xFF});
    const json expected = json::array({{{"type", "text"}, {"text", "Look: "}}, {{"type", "image"}},
                                       {{"type", "text"}, {"text", " and "}}, {{"type", "image"}}});
    CHECK(a.messages[0]["content"] == expected);
    // Text parts alone stay one string.
    auto text = parse_chat_request(
        chat({{"messages", json::array({{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "a"}},
                                                                                     {{"type", "text"}, {"text", "b"}}})}}})}}),
        RequestLimits{});
    REQUIRE(std::holds_alternative<ApiRequest>(text));
    CHECK(std::get<ApiRequest>(text).messages[0]["content"] == "ab");
    CHECK(std::get<ApiRequest>(text).generate.images.empty());

    auto refused = [](json content, const char* role = "user") {
        auto p = parse_chat_request(chat({{"messages", json::array({{{"role", role}, {"content", content}}})}}), RequestLimits{});
        const ApiError* e = error_of(p);
        return e ? e->param + " | " + e->message : std::string();
    };
    const json http = json::array({{{"type", "image_url"}, {"image_url", {{"url", "https://x.org/a.png"}}}}});
    CHECK(refused(http).find("messages[0].content[0].image_url.url | ") == 0);
    CHECK(refused(http).find("never fetches") != std::string::npos);
    const json bad64 = json::array({{{"type", "text"}, {"text", "x"}},
                                    {{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,@@@@"}}}}});
    CHECK(refused(bad64).find("messages[0].content[1].image_url.url") == 0);
    CHECK(refused(json::array({{{"type", "image_url"}, {"image_url", {{"url", 5}}}}})).find("messages[0].content[0].image_url.url") == 0);
    CHECK(refused(json::array({{{"type", "input_audio"}}})).find("messages[0].content[0].type") == 0);
    CHECK(refused(json::array({{{"type", "text"}, {"text", 3}}})).find("messages[0].content[0].text") == 0);
    const json image = json::array({{{"type", "image_url"}, {"image_url", {{"url", "data:image/png;base64,iVBORw=="}}}}});
    CHECK(refused(image, "assistant").find("user messages only") != std::string::npos);
}

TEST_CASE("a chat request's images are held to llmqd's own limits from its status") {
    llmq::ipc::GenerateRequest g;
    g.images = {std::vector<uint8_t>(100, 1), std::vector<uint8_t>(60, 2)};
    const json text_only{{"model", {{"name", "m"}, {"vision", nullptr}}}};
    REQUIRE(image_refusal(text_only, g));
    CHECK(image_refusal(text_only, g)->message.find("takes no images") != std::string::npos);
    json seeing{{"model", {{"name", "m"}, {"vision", {{"max_images", 2}, {"max_image_bytes", 160}}}}}};
    CHECK_FALSE(image_refusal(seeing, g));
    seeing["model"]["vision"]["max_images"] = 1;
    CHECK(image_refusal(seeing, g)->message.find("[ipc] max_images") != std::string::npos);
    seeing["model"]["vision"]["max_images"] = 2;
    seeing["model"]["vision"]["max_image_bytes"] = 159;
    CHECK(image_refusal(seeing, g)->message.find("[ipc] max_image_bytes") != std::string::npos);
    g.images.clear();
    CHECK_FALSE(image_refusal(text_only, g));
}
