#include "llmq/runtime/chat_template.hpp"

namespace llmq {

namespace {

std::string_view trim(std::string_view s) {
    constexpr std::string_view space = " \t\n\r\f\v";
    const size_t begin = s.find_first_not_of(space);
    if (begin == std::string_view::npos) return {};
    return s.substr(begin, s.find_last_not_of(space) - begin + 1);
}

// Llama 2 chat: a leading system message is folded into the first user turn; every user turn
// after the first starts a new sequence with <s>; assistant turns end with </s>.
std::string format_llama2(std::span<const ChatMessage> messages) {
    std::string out;
    std::string system;
    bool has_system = false;
    if (!messages.empty() && messages.front().role == "system") {
        system = messages.front().content;
        has_system = true;
        messages = messages.subspan(1);
    }
    auto user_turn = [&](std::string_view content) {
        std::string text;
        if (has_system) {
            text = "<<SYS>>\n" + system + "\n<</SYS>>\n\n";
            has_system = false;
        }
        text += content;
        if (!out.empty()) out += "<s>";
        out += "[INST] ";
        out += trim(text);
        out += " [/INST]";
    };
    for (const ChatMessage& m : messages) {
        if (m.role == "assistant") {
            out += " ";
            out += trim(m.content);
            out += " </s>";
        } else {
            user_turn(m.content);
        }
    }
    if (has_system) user_turn("");  // a conversation of only a system message
    return out;
}

std::string format_llama3(std::span<const ChatMessage> messages, bool add_generation_prompt) {
    std::string out;
    for (const ChatMessage& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n";
        out += trim(m.content);
        out += "<|eot_id|>";
    }
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
}

std::string format_chatml(std::span<const ChatMessage> messages, bool add_generation_prompt) {
    std::string out;
    for (const ChatMessage& m : messages) {
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    }
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
}

std::string plain_role(const std::string& role) {
    if (role == "system") return "System";
    if (role == "user") return "User";
    if (role == "assistant") return "Assistant";
    return role;
}

std::string format_plain(std::span<const ChatMessage> messages, bool add_generation_prompt) {
    std::string out;
    for (const ChatMessage& m : messages) {
        out += plain_role(m.role) + ": " + m.content + "\n";
    }
    if (add_generation_prompt) out += "Assistant:";
    return out;
}

}  // namespace

const char* chat_template_family_name(ChatTemplateFamily family) {
    switch (family) {
        case ChatTemplateFamily::llama2: return "llama2";
        case ChatTemplateFamily::llama3: return "llama3";
        case ChatTemplateFamily::chatml: return "chatml";
        case ChatTemplateFamily::plain: return "plain";
    }
    return "plain";
}

ChatTemplateFamily detect_chat_template(std::string_view source) {
    if (source.find("<|start_header_id|>") != std::string_view::npos) return ChatTemplateFamily::llama3;
    if (source.find("<|im_start|>") != std::string_view::npos) return ChatTemplateFamily::chatml;
    if (source.find("[INST]") != std::string_view::npos) return ChatTemplateFamily::llama2;
    return ChatTemplateFamily::plain;
}

std::string format_chat(ChatTemplateFamily family, std::span<const ChatMessage> messages,
                        bool add_generation_prompt) {
    switch (family) {
        case ChatTemplateFamily::llama2: return format_llama2(messages);
        case ChatTemplateFamily::llama3: return format_llama3(messages, add_generation_prompt);
        case ChatTemplateFamily::chatml: return format_chatml(messages, add_generation_prompt);
        case ChatTemplateFamily::plain: return format_plain(messages, add_generation_prompt);
    }
    return format_plain(messages, add_generation_prompt);
}

}  // namespace llmq
