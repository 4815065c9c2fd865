// The request decoder refuses each malformation with a defect that names the field: one case
// per defect, each built from a valid request with one thing broken.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "llmq/ipc/request_decoder.hpp"
#include "llmq/ipc/request_payload.hpp"

using namespace llmq::ipc;

namespace {

constexpr std::uint64_t kU64Max = std::numeric_limits<std::uint64_t>::max();

DecodeLimits limits() {
    DecodeLimits l;
    l.vocab_size = 32000;
    l.max_prompt_tokens = 4096;
    l.max_prompt_bytes = 1 << 16;
    l.max_new_tokens = 8192;
    return l;
}

GenerateRequest valid_request() {
    GenerateRequest r;
    r.prompt_text = "Once upon a time, über alles ✓";
    r.sampling.temperature = 0.7f;
    r.sampling.top_k = 50;
    r.sampling.top_p = 0.9f;
    r.sampling.min_p = 0.1f;
    r.sampling.repetition_penalty = 1.1f;
    r.sampling.presence_penalty = 0.5f;
    r.sampling.frequency_penalty = -0.5f;
    r.sampling.penalty_last_n = 128;
    r.sampling.seed = 1234567890123ull;
    r.sampling.seed_set = true;
    r.max_tokens = 100;
    r.ignore_eos = true;
    r.logprobs = true;
    r.stop = {"\n\n", "The End"};
    r.priority = -3;
    return r;
}

std::vector<std::byte> encode(const GenerateRequest& r) {
    std::vector<std::byte> out;
    REQUIRE(encode_generate_payload(r, out).ok());
    return out;
}

template <typename T>
void poke(std::vector<std::byte>& payload, std::size_t offset, T value) {
    REQUIRE(offset + sizeof(T) <= payload.size());
    std::memcpy(payload.data() + offset, &value, sizeof(T));
}

// An arena holding one payload at `offset`, and the descriptor that points at it.
struct Placed {
    std::vector<std::byte> arena = std::vector<std::byte>(1 << 16);
    RequestDescriptor descriptor{};
    ArenaView view() { return ArenaView{arena.data(), arena.size()}; }
};

Placed place(const std::vector<std::byte>& payload, std::uint64_t offset = 128) {
    Placed p;
    REQUIRE(offset + payload.size() <= p.arena.size());
    std::memcpy(p.arena.data() + offset, payload.data(), payload.size());
    p.descriptor.request_id = 42;
    p.descriptor.kind = static_cast<std::uint32_t>(RequestKind::generate);
    p.descriptor.payload_offset = offset;
    p.descriptor.payload_length = payload.size();
    return p;
}

PolledRequest decode(Placed& p, const DecodeLimits& l = limits()) { return decode_request(p.descriptor, p.view(), l); }

PolledRequest decode_payload(const std::vector<std::byte>& payload, const DecodeLimits& l = limits()) {
    Placed p = place(payload);
    return decode(p, l);
}

// The result is a defect for `field`, and its message names the field.
void check_defect(const PolledRequest& result, const std::string& field) {
    const auto* d = std::get_if<RequestDefect>(&result);
    REQUIRE_MESSAGE(d != nullptr, "expected a defect in " << field);
    CHECK(d->field == field);
    CHECK(d->message.find(field) != std::string::npos);
    CHECK(d->message.find("0x") == std::string::npos);  // no addresses
}

// Offsets of fields in the fixed part (request_payload.hpp).
constexpr std::size_t kVersion = 0, kFlags = 4, kTemperature = 8, kTopP = 12, kMinP = 16, kRepetition = 20,
                      kPresence = 24, kFrequency = 28, kTopK = 32, kPenaltyLastN = 36, kMaxTokens = 40,
                      kPriority = 44, kPromptLength = 56, kStopCount = 60;

}  // namespace

TEST_CASE("a valid text request decodes to the same values") {
    const GenerateRequest in = valid_request();
    auto result = decode_payload(encode(in));
    const auto* d = std::get_if<DecodedRequest>(&result);
    REQUIRE(d != nullptr);
    CHECK(d->request_id == 42);
    CHECK(d->kind == RequestKind::generate);
    const GenerateRequest& g = d->generate;
    CHECK(g.prompt_text == in.prompt_text);
    CHECK_FALSE(g.prompt_is_tokens);
    CHECK(g.add_bos);
    CHECK(g.sampling.temperature == in.sampling.temperature);
    CHECK(g.sampling.top_k == 50);
    CHECK(g.sampling.top_p == in.sampling.top_p);
    CHECK(g.sampling.min_p == in.sampling.min_p);
    CHECK(g.sampling.repetition_penalty == in.sampling.repetition_penalty);
    CHECK(g.sampling.presence_penalty == in.sampling.presence_penalty);
    CHECK(g.sampling.frequency_penalty == in.sampling.frequency_penalty);
    CHECK(g.sampling.penalty_last_n == 128);
    CHECK(g.sampling.seed == 1234567890123ull);
    CHECK(g.sampling.seed_set);
    CHECK(g.max_tokens == 100);
    CHECK(g.ignore_eos);
    CHECK(g.logprobs);
    CHECK(g.stop == in.stop);
    CHECK(g.priority == -3);
}

TEST_CASE("a valid token request decodes to the same ids, at an unaligned offset") {
    GenerateRequest in = valid_request();
    in.prompt_is_tokens = true;
    in.prompt_tokens = {1, 15043, 3186, 31999, 0};
    in.stop.clear();
    Placed p = place(encode(in), 131);
    auto result = decode(p);
    const auto* d = std::get_if<DecodedRequest>(&result);
    REQUIRE(d != nullptr);
    CHECK(d->generate.prompt_is_tokens);
    CHECK(d->generate.prompt_tokens == in.prompt_tokens);
}

TEST_CASE("ping and cancel carry only their id") {
    Placed p;
    p.descriptor.request_id = 7;
    p.descriptor.kind = static_cast<std::uint32_t>(RequestKind::cancel);
    auto result = decode(p);
    REQUIRE(std::holds_alternative<DecodedRequest>(result));
    CHECK(std::get<DecodedRequest>(result).kind == RequestKind::cancel);
    CHECK(std::get<DecodedRequest>(result).request_id == 7);
    p.descriptor.kind = static_cast<std::uint32_t>(RequestKind::ping);
    result = decode(p);
    REQUIRE(std::holds_alternative<DecodedRequest>(result));
    CHECK(std::get<DecodedRequest>(result).kind == RequestKind::ping);
}

// ---- the descriptor ----------------------------------------------------------------------

TEST_CASE("request id 0 is refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.request_id = 0;
    check_defect(decode(p), "request_id");
}

TEST_CASE("unknown descriptor flags are refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.flags = 4;
    check_defect(decode(p), "flags");
}

TEST_CASE("an unknown request kind is refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.kind = 0;
    check_defect(decode(p), "kind");
    p.descriptor.kind = 0xdeadbeef;
    check_defect(decode(p), "kind");
}

TEST_CASE("a payload offset outside the arena is refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.payload_offset = p.arena.size() + 8;
    check_defect(decode(p), "payload_offset");
}

TEST_CASE("a payload offset at 2^64 - 32 whose end wraps is refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.payload_offset = kU64Max - 31;
    p.descriptor.payload_length = 64;  // offset + length wraps to 32
    check_defect(decode(p), "payload_offset");
}

TEST_CASE("a payload length of 2^64 - 32 is refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.payload_length = kU64Max - 31;
    check_defect(decode(p), "payload_length");
}

TEST_CASE("a payload running past the end of the arena is refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.payload_offset = p.arena.size() - 16;
    p.descriptor.payload_length = 64;
    check_defect(decode(p), "payload_length");
}

TEST_CASE("a payload longer than the configured limit is refused") {
    Placed p = place(encode(valid_request()));
    DecodeLimits l = limits();
    l.max_payload_bytes = 32;
    check_defect(decode(p, l), "payload_length");
}

TEST_CASE("cancel with a payload is refused") {
    Placed p = place(encode(valid_request()));
    p.descriptor.kind = static_cast<std::uint32_t>(RequestKind::cancel);
    check_defect(decode(p), "payload_length");
}

// ---- the fixed part ----------------------------------------------------------------------

TEST_CASE("a payload shorter than its fixed part is refused") {
    auto payload = encode(valid_request());
    payload.resize(40);
    check_defect(decode_payload(payload), "payload_length");
}

TEST_CASE("an unknown payload version is refused") {
    auto payload = encode(valid_request());
    poke<std::uint32_t>(payload, kVersion, 2);
    check_defect(decode_payload(payload), "payload_version");
}

TEST_CASE("unknown payload flags are refused") {
    auto payload = encode(valid_request());
    poke<std::uint32_t>(payload, kFlags, 1u << 30);
    check_defect(decode_payload(payload), "payload.flags");
}

TEST_CASE("a NaN temperature is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kTemperature, std::numeric_limits<float>::quiet_NaN());
    check_defect(decode_payload(payload), "sampling.temperature");
}

TEST_CASE("an infinite temperature is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kTemperature, std::numeric_limits<float>::infinity());
    check_defect(decode_payload(payload), "sampling.temperature");
}

TEST_CASE("a negative temperature is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kTemperature, -0.5f);
    check_defect(decode_payload(payload), "sampling.temperature");
}

TEST_CASE("an absurd temperature is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kTemperature, 1e30f);
    check_defect(decode_payload(payload), "sampling.temperature");
}

TEST_CASE("top_p above 1 is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kTopP, 1.5f);
    check_defect(decode_payload(payload), "sampling.top_p");
}

TEST_CASE("a negative min_p is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kMinP, -0.1f);
    check_defect(decode_payload(payload), "sampling.min_p");
}

TEST_CASE("a repetition penalty of 0 is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kRepetition, 0.0f);
    check_defect(decode_payload(payload), "sampling.repetition_penalty");
}

TEST_CASE("a NaN presence penalty is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kPresence, std::numeric_limits<float>::quiet_NaN());
    check_defect(decode_payload(payload), "sampling.presence_penalty");
}

TEST_CASE("a minus-infinite frequency penalty is refused") {
    auto payload = encode(valid_request());
    poke<float>(payload, kFrequency, -std::numeric_limits<float>::infinity());
    check_defect(decode_payload(payload), "sampling.frequency_penalty");
}

TEST_CASE("a negative top_k is refused") {
    auto payload = encode(valid_request());
    poke<std::int32_t>(payload, kTopK, -1);
    check_defect(decode_payload(payload), "sampling.top_k");
}

TEST_CASE("penalty_last_n below -1 is refused") {
    auto payload = encode(valid_request());
    poke<std::int32_t>(payload, kPenaltyLastN, -2);
    check_defect(decode_payload(payload), "sampling.penalty_last_n");
}

TEST_CASE("a negative max_tokens is refused") {
    auto payload = encode(valid_request());
    poke<std::int32_t>(payload, kMaxTokens, -1);
    check_defect(decode_payload(payload), "max_tokens");
}

TEST_CASE("max_tokens above the daemon's limit is refused") {
    auto payload = encode(valid_request());
    poke<std::int32_t>(payload, kMaxTokens, 8193);
    check_defect(decode_payload(payload), "max_tokens");
}

TEST_CASE("a priority outside -1000..1000 is refused") {
    auto payload = encode(valid_request());
    poke<std::int32_t>(payload, kPriority, std::numeric_limits<std::int32_t>::min());
    check_defect(decode_payload(payload), "priority");
}

// ---- the prompt --------------------------------------------------------------------------

TEST_CASE("a prompt with an invalid UTF-8 byte is refused") {
    GenerateRequest r = valid_request();
    r.prompt_text = "abc\xff";
    check_defect(decode_payload(encode(r)), "prompt");
}

TEST_CASE("a prompt with an overlong UTF-8 encoding is refused") {
    GenerateRequest r = valid_request();
    r.prompt_text = "a\xc0\xaf";
    check_defect(decode_payload(encode(r)), "prompt");
    r.prompt_text = "a\xe0\x80\xaf";
    check_defect(decode_payload(encode(r)), "prompt");
}

TEST_CASE("a prompt with a UTF-16 surrogate is refused") {
    GenerateRequest r = valid_request();
    r.prompt_text = "a\xed\xa0\x80";
    check_defect(decode_payload(encode(r)), "prompt");
}

TEST_CASE("a prompt cut in the middle of a UTF-8 sequence is refused") {
    GenerateRequest r = valid_request();
    r.prompt_text = "caf\xc3";
    check_defect(decode_payload(encode(r)), "prompt");
}

TEST_CASE("an empty prompt without BOS is refused") {
    GenerateRequest r = valid_request();
    r.prompt_text.clear();
    r.add_bos = false;
    check_defect(decode_payload(encode(r)), "prompt");
    r.add_bos = true;
    CHECK(std::holds_alternative<DecodedRequest>(decode_payload(encode(r))));
}

TEST_CASE("a prompt length past the end of the payload is refused") {
    auto payload = encode(valid_request());
    poke<std::uint32_t>(payload, kPromptLength, 0xffffffffu);
    DecodeLimits l = limits();
    l.max_prompt_bytes = 0xffffffffu;
    check_defect(decode_payload(payload, l), "prompt_length");
}

TEST_CASE("a text prompt above the byte limit is refused") {
    DecodeLimits l = limits();
    l.max_prompt_bytes = 8;
    check_defect(decode_payload(encode(valid_request()), l), "prompt_length");
}

TEST_CASE("a token id outside the vocabulary is refused") {
    GenerateRequest r = valid_request();
    r.prompt_is_tokens = true;
    r.prompt_tokens = {1, 2, 32000};
    check_defect(decode_payload(encode(r)), "prompt_tokens[2]");
}

TEST_CASE("a negative token id is refused") {
    GenerateRequest r = valid_request();
    r.prompt_is_tokens = true;
    r.prompt_tokens = {-5};
    check_defect(decode_payload(encode(r)), "prompt_tokens[0]");
}

TEST_CASE("token prompts are refused while no model gives a vocabulary") {
    GenerateRequest r = valid_request();
    r.prompt_is_tokens = true;
    r.prompt_tokens = {1};
    DecodeLimits l = limits();
    l.vocab_size = 0;
    check_defect(decode_payload(encode(r), l), "prompt_tokens");
}

TEST_CASE("an empty token prompt is refused") {
    GenerateRequest r = valid_request();
    r.prompt_is_tokens = true;
    r.prompt_tokens.clear();
    check_defect(decode_payload(encode(r)), "prompt_length");
}

TEST_CASE("a token prompt above the token limit is refused") {
    GenerateRequest r = valid_request();
    r.prompt_is_tokens = true;
    r.prompt_tokens.assign(4097, 1);
    check_defect(decode_payload(encode(r)), "prompt_length");
}

TEST_CASE("a token count larger than the bytes that follow is refused") {
    GenerateRequest r = valid_request();
    r.prompt_is_tokens = true;
    r.prompt_tokens = {1, 2, 3};
    r.stop.clear();
    auto payload = encode(r);
    poke<std::uint32_t>(payload, kPromptLength, 1000);
    check_defect(decode_payload(payload), "prompt_length");
}

// ---- stop strings and the end --------------------------------------------------------------

TEST_CASE("more than 8 stop strings are refused") {
    GenerateRequest r = valid_request();
    r.stop.assign(9, "x");
    check_defect(decode_payload(encode(r)), "stop_count");
}

TEST_CASE("an empty stop string is refused") {
    GenerateRequest r = valid_request();
    r.stop = {"ok", ""};
    check_defect(decode_payload(encode(r)), "stop[1]");
}

TEST_CASE("a stop string longer than 256 bytes is refused") {
    GenerateRequest r = valid_request();
    r.stop = {std::string(257, 'a')};
    check_defect(decode_payload(encode(r)), "stop[0]");
}

TEST_CASE("a stop string with invalid UTF-8 is refused") {
    GenerateRequest r = valid_request();
    r.stop = {"\x80"};
    check_defect(decode_payload(encode(r)), "stop[0]");
}

TEST_CASE("a stop count past the end of the payload is refused") {
    auto payload = encode(valid_request());
    poke<std::uint32_t>(payload, kStopCount, 3);
    check_defect(decode_payload(payload), "stop[2]");
}

TEST_CASE("a stop string length past the end of the payload is refused") {
    GenerateRequest r = valid_request();
    r.stop = {"abc"};
    auto payload = encode(r);
    poke<std::uint32_t>(payload, payload.size() - 7, 200);
    check_defect(decode_payload(payload), "stop[0]");
}

TEST_CASE("bytes after the last stop string are refused") {
    auto payload = encode(valid_request());
    payload.push_back(std::byte{0});
    check_defect(decode_payload(payload), "payload_length");
}

TEST_CASE("is_valid_utf8 accepts every well-formed length and reports the first bad byte") {
    const std::string good = "a\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf";
    CHECK(is_valid_utf8(good.data(), good.size()));
    std::size_t bad = 0;
    const std::string beyond = "ab\xf4\x90\x80\x80";  // U+110000
    CHECK_FALSE(is_valid_utf8(beyond.data(), beyond.size(), &bad));
    CHECK(bad == 2);
}

TEST_CASE("images travel after the stop strings and decode byte for byte within the limits") {
    GenerateRequest in = valid_request();
    in.images = {{0x89, 'P', 'N', 'G', 1, 2, 3}, {0xFF, 0xD8, 0xFF, 9}};
    DecodeLimits l = limits();
    l.max_images = 2;
    l.max_image_bytes = 11;
    auto result = decode_payload(encode(in), l);
    const auto* d = std::get_if<DecodedRequest>(&result);
    REQUIRE(d != nullptr);
    CHECK(d->generate.images == in.images);
    CHECK(d->generate.stop == in.stop);
    // A payload without images reads as before (protocol 1 clients).
    GenerateRequest plain = valid_request();
    auto old = decode_payload(encode(plain), l);
    REQUIRE(std::get_if<DecodedRequest>(&old) != nullptr);
    CHECK(std::get_if<DecodedRequest>(&old)->generate.images.empty());
    // Refusals name the field and the limit.
    l.max_image_bytes = 10;
    check_defect(decode_payload(encode(in), l), "images[1]");
    l.max_image_bytes = 11;
    l.max_images = 1;
    check_defect(decode_payload(encode(in), l), "image_count");
    check_defect(decode_payload(encode(in), limits()), "images");  // a daemon without a vision model
    // A cut image: its length says more than the payload holds.
    std::vector<std::byte> cut = encode(in);
    cut.resize(cut.size() - 2);
    l.max_images = 2;
    check_defect(decode_payload(cut, l), "images[1]");
}

TEST_CASE("a token prompt carries images at its image marks, one mark per image") {
    GenerateRequest in = valid_request();
    in.prompt_is_tokens = true;
    in.prompt_tokens = {1, kImagePromptToken, 15, 16, kImagePromptToken, 17};
    in.images = {{0x89, 'P', 'N', 'G', 1}, {0xFF, 0xD8, 0xFF, 9}};
    DecodeLimits l = limits();
    l.max_images = 2;
    l.max_image_bytes = 100;
    auto result = decode_payload(encode(in), l);
    const auto* d = std::get_if<DecodedRequest>(&result);
    REQUIRE(d != nullptr);
    CHECK(d->generate.prompt_tokens == in.prompt_tokens);
    CHECK(d->generate.images == in.images);
    // Marks and images must agree in number.
    in.prompt_tokens = {1, kImagePromptToken, 15};
    check_defect(decode_payload(encode(in), l), "prompt_tokens");
    // Without images a mark is an invalid id like any negative one.
    GenerateRequest plain = in;
    plain.images.clear();
    check_defect(decode_payload(encode(plain), l), "prompt_tokens[1]");
}
