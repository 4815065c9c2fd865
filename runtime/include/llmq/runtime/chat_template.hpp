// Chat formatting for `llmq chat`: turns a conversation into the prompt text a model was
// trained on, for the common template families. The model file's `tokenizer.chat_template`
// (Jinja source) is only inspected for markers, never executed.
//
// The text returned spells control tokens ("<|eot_id|>", "</s><s>", ...): encode it with
// Tokenizer::encode(text, add_special = true, parse_special = true), which also adds the BOS
// token the templates start with (format_chat leaves the very first BOS out). Content that
// itself spells a control token is parsed as that token too; callers that take content from
// untrusted users should reject or escape such text first.
//
// Pure functions, any thread.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace llmq {

enum class ChatTemplateFamily {
    llama2,  // "<s>[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} </s>"
    llama3,  // "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
    chatml,  // "<|im_start|>{role}\n{content}<|im_end|>\n"
    plain,   // "User: {content}\nAssistant:" for templates llmq does not recognise
};

// "llama2", "llama3", "chatml", "plain".
const char* chat_template_family_name(ChatTemplateFamily family);

// The family whose markers the template contains: "<|start_header_id|>" → llama3,
// "<|im_start|>" → chatml, "[INST]" → llama2 (also Mistral's), anything else (including an
// empty template) → plain.
ChatTemplateFamily detect_chat_template(std::string_view jinja_source);

struct ChatMessage {
    std::string role;  // "system", "user", "assistant" (others are written as given)
    std::string content;
};

// The prompt text for `messages` in order. add_generation_prompt: end with the header that
// asks the model for the assistant's next turn (llama2 needs none: its user turn ends with
// "[/INST]"). As the families' reference templates do, llama2 and llama3 trim whitespace
// around each message's content; chatml and plain keep it.
std::string format_chat(ChatTemplateFamily family, std::span<const ChatMessage> messages,
                        bool add_generation_prompt);

}  // namespace llmq
