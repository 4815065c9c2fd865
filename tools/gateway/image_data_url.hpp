// Images in OpenAI chat content: the `image_url` part's URL, which llmq-gateway takes only as
// a data URL (RFC 2397) of base64 PNG or JPEG bytes. It never fetches http(s) URLs: a gateway
// that fetched would let any API caller make this host open connections anywhere (SSRF), and
// would block a request on a stranger's server.
//
// Pure functions, any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace llmq::gateway {

// The bytes of a base64 text (RFC 4648 section 4: the standard alphabet, '=' padding to a
// multiple of 4 characters; no line breaks, no URL-safe alphabet). On failure the string says
// where and why ("character 17 ('-') is not base64").
std::variant<std::vector<uint8_t>, std::string> decode_base64(std::string_view text);

// The image bytes of "data:image/png;base64,..." or "data:image/jpeg;base64,..." (also
// image/jpg). Anything else is an error saying what is taken; an http(s) URL's error says the
// gateway does not fetch.
std::variant<std::vector<uint8_t>, std::string> decode_image_data_url(std::string_view url);

}  // namespace llmq::gateway
