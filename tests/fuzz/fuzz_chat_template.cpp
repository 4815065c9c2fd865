// libFuzzer target: the chat-template interpreter (runtime/src/tokenizer/jinja_*.cpp), which
// llmqd runs on templates a client sends (chat_template {"template": ...}). The input up to
// its first NUL byte is the template, the rest is the text of every message. A crash, a hang
// past the render limits, a sanitizer report or a broken promise (the origin mask has one
// entry per byte; a parsed template renders the same twice) is a finding.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "llmq/runtime/chat_template.hpp"

namespace {

void check(bool promise) {
    if (!promise) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const size_t nul = input.find('\0');
    const std::string_view source = input.substr(0, nul);
    const std::string text = nul == std::string_view::npos ? "hi" : std::string(input.substr(nul + 1));
    auto tpl = llmq::ChatTemplate::parse(source, "fuzz");
    if (!tpl) {
        check(!tpl.status().message().empty());
        return 0;
    }
    const std::vector<llmq::ChatMessage> messages = {{"system", text}, {"user", text}, {"assistant", text}};
    llmq::ChatRenderOptions options;
    options.bos_token = "<s>";
    options.eos_token = "</s>";
    auto first = (*tpl)->render(messages, options);
    auto second = (*tpl)->render(messages, options);
    check(first.ok() == second.ok());
    if (first) {
        check(first->from_data.size() == first->text.size());
        check(first->text == second->text);
    } else {
        check(first.status().message() == second.status().message());
    }
    return 0;
}
