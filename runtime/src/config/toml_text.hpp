// Writing values as TOML text: for print_config's output and for quoting what a user wrote in
// error messages. Private to runtime/src/config.
#pragma once

#include <string>
#include <string_view>

#include <toml++/toml.h>

namespace llmq::config_detail {

// A basic string with every character that needs it escaped: "a\"b\\c\n" -> "\"a\\\"b\\\\c\\n\"".
std::string toml_string_literal(std::string_view text);

// The shortest text that reads back as the same double, always a TOML float ("1.0", "1e-05").
std::string toml_float_literal(double value);

// A node as the user could have written it, cut to about 80 characters for messages.
std::string node_text(const toml::node& node);

}  // namespace llmq::config_detail
