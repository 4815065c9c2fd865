// validate(SamplingParams) refuses NaN, infinities, negative and absurd values, naming the field.
#include <doctest/doctest.h>

#include <functional>
#include <limits>

#include "llmq/runtime/sampler.hpp"

using llmq::SamplingParams;

namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

std::string message_for(const std::function<void(SamplingParams&)>& change) {
    SamplingParams p;
    change(p);
    llmq::Status status = llmq::validate(p);
    if (status.ok()) return "";
    CHECK(status.code() == llmq::status_code::invalid_argument);
    return status.message();
}

}  // namespace

TEST_CASE("the defaults and ordinary values are valid") {
    CHECK(llmq::validate(SamplingParams{}).ok());
    SamplingParams p;
    p.temperature = 0.0f;
    p.top_k = 0;
    p.top_p = 1.0f;
    p.min_p = 0.0f;
    p.repetition_penalty = 1.3f;
    p.presence_penalty = -2.0f;
    p.frequency_penalty = 2.0f;
    p.penalty_last_n = -1;
    p.logprobs = 20;
    p.stop = {"\n\n", "</s>", "\xe2\x80\x94"};
    CHECK(llmq::validate(p).ok());
}

TEST_CASE("each bad field is named with its value and the rule") {
    CHECK(message_for([](auto& p) { p.temperature = kNaN; }) ==
          "sampling parameter temperature = nan: must be a finite number between 0 and 100 (0 = "
          "greedy)");
    CHECK(message_for([](auto& p) { p.temperature = -0.5f; }) ==
          "sampling parameter temperature = -0.5: must be a finite number between 0 and 100 (0 = "
          "greedy)");
    CHECK(message_for([](auto& p) { p.temperature = kInf; }).find("temperature = inf") !=
          std::string::npos);
    CHECK(message_for([](auto& p) { p.top_k = -1; }) ==
          "sampling parameter top_k = -1: must be between 0 and 16777216 (0 = off)");
    CHECK(message_for([](auto& p) { p.top_p = 1.5f; }) ==
          "sampling parameter top_p = 1.5: must be a finite number between 0 and 1 (1 = off)");
    CHECK(message_for([](auto& p) { p.top_p = kNaN; }).find("top_p = nan") != std::string::npos);
    CHECK(message_for([](auto& p) { p.min_p = -0.1f; }) ==
          "sampling parameter min_p = -0.1: must be a finite number between 0 and 1 (0 = off)");
    CHECK(message_for([](auto& p) { p.repetition_penalty = 0.0f; }) ==
          "sampling parameter repetition_penalty = 0: must be a finite number greater than 0 and "
          "at most 100 (1 = off)");
    CHECK(message_for([](auto& p) { p.repetition_penalty = kNaN; })
              .find("repetition_penalty = nan") != std::string::npos);
    CHECK(message_for([](auto& p) { p.presence_penalty = -kInf; }) ==
          "sampling parameter presence_penalty = -inf: must be a finite number between -100 and "
          "100 (0 = off)");
    CHECK(message_for([](auto& p) { p.frequency_penalty = 101.0f; }) ==
          "sampling parameter frequency_penalty = 101: must be a finite number between -100 and "
          "100 (0 = off)");
    CHECK(message_for([](auto& p) { p.penalty_last_n = -2; }) ==
          "sampling parameter penalty_last_n = -2: must be between -1 and 16777216 (0 = off, -1 = "
          "every token given)");
    CHECK(message_for([](auto& p) { p.max_tokens = 0; }) ==
          "sampling parameter max_tokens = 0: must be between 1 and 16777216");
    CHECK(message_for([](auto& p) { p.max_tokens = -7; }).find("max_tokens = -7") !=
          std::string::npos);
    CHECK(message_for([](auto& p) { p.logprobs = 21; }) ==
          "sampling parameter logprobs = 21: must be between 0 and 20 (0 = off)");
    CHECK(message_for([](auto& p) { p.stop = std::vector<std::string>(17, "x"); }) ==
          "sampling parameter stop = 17 strings: must be at most 16 strings");
    CHECK(message_for([](auto& p) { p.stop = {"ok", ""}; }) ==
          "sampling parameter stop[1] = 0 bytes: must be 1 to 256 bytes");
    CHECK(message_for([](auto& p) { p.stop = {std::string(257, 'a')}; }) ==
          "sampling parameter stop[0] = 257 bytes: must be 1 to 256 bytes");
    CHECK(message_for([](auto& p) { p.stop = {"ok", "bad \xff byte"}; }) ==
          "sampling parameter stop[1] = (not shown): must be valid UTF-8");
}

TEST_CASE("stop strings must be well-formed UTF-8") {
    for (const char* bad : {"\xc3", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                            "\x80", "a\xe2\x82"}) {
        CAPTURE(bad);
        CHECK_FALSE(message_for([&](auto& p) { p.stop = {bad}; }).empty());
    }
    for (const char* good : {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf"}) {
        CAPTURE(good);
        CHECK(message_for([&](auto& p) { p.stop = {good}; }).empty());
    }
}
