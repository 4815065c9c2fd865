// Chat template detection and formatting for the llama2, llama3, chatml and plain families.
#include <doctest/doctest.h>

#include "llmq/runtime/chat_template.hpp"
#include "vocab_fixture.hpp"

using llmq::ChatMessage;
using llmq::ChatTemplateFamily;
using llmq::detect_chat_template;
using llmq::format_chat;

namespace {

const std::vector<ChatMessage> conversation = {
    {"system", "Be brief."},
    {"user", "Hi"},
    {"assistant", "Hello!"},
    {"user", "Thanks"},
};

}  // namespace

TEST_CASE("templates are recognised by their markers") {
    // Abridged from the templates these model families ship in tokenizer.chat_template.
    CHECK(detect_chat_template("{% for message in messages %}{% if message['role'] == 'user' %}"
                               "{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}"
                               "{% endif %}{% endfor %}") == ChatTemplateFamily::llama2);
    CHECK(detect_chat_template("{{ '<|start_header_id|>' + message['role'] + "
                               "'<|end_header_id|>\\n\\n' + message['content'] | trim + "
                               "'<|eot_id|>' }}") == ChatTemplateFamily::llama3);
    CHECK(detect_chat_template("{% for message in messages %}{{'<|im_start|>' + message['role'] "
                               "+ '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
                               "{% endfor %}") == ChatTemplateFamily::chatml);
    CHECK(detect_chat_template("") == ChatTemplateFamily::plain);
    CHECK(detect_chat_template("{{ '<start_of_turn>' + role }}") == ChatTemplateFamily::plain);
    CHECK(std::string(llmq::chat_template_family_name(ChatTemplateFamily::chatml)) == "chatml");
}

TEST_CASE("llama2 folds the system prompt into the first turn and separates turns with </s><s>") {
    CHECK(format_chat(ChatTemplateFamily::llama2, conversation, true) ==
          "[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Thanks [/INST]");
    const std::vector<ChatMessage> one = {{"user", "  Hi there \n"}};
    CHECK(format_chat(ChatTemplateFamily::llama2, one, true) == "[INST] Hi there [/INST]");
}

TEST_CASE("llama3 writes a header per message and the assistant header as generation prompt") {
    CHECK(format_chat(ChatTemplateFamily::llama3, conversation, true) ==
          "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
          "<|start_header_id|>user<|end_header_id|>\n\nThanks<|eot_id|>"
          "<|start_header_id|>assistant<|end_header_id|>\n\n");
    const std::vector<ChatMessage> one = {{"user", "Hi"}};
    CHECK(format_chat(ChatTemplateFamily::llama3, one, false) ==
          "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>");
}

TEST_CASE("chatml wraps each message in <|im_start|> ... <|im_end|>") {
    CHECK(format_chat(ChatTemplateFamily::chatml, conversation, true) ==
          "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
          "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nThanks<|im_end|>\n"
          "<|im_start|>assistant\n");
}

TEST_CASE("plain is User:/Assistant: lines") {
    CHECK(format_chat(ChatTemplateFamily::plain, conversation, true) ==
          "System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: Thanks\nAssistant:");
    CHECK(format_chat(ChatTemplateFamily::plain, conversation, false) ==
          "System: Be brief.\nUser: Hi\nAssistant: Hello!\nUser: Thanks\n");
}

TEST_CASE("a formatted Llama 2 conversation tokenizes with BOS and the </s><s> separators") {
    auto tok = llmq::test::load_shared_tokenizer("llama-spm.gguf");
    if (!tok) return;
    const std::string prompt = format_chat(ChatTemplateFamily::llama2, conversation, true);
    // sentencepiece's ids for the two text fragments, with <s>=1 and </s>=2 between them.
    const std::vector<int32_t> want = {
        1,     518,   25580, 29962, 3532,  14816, 29903, 6778, 13,    3629,  11473, 29889,
        13,    29966, 829,   14816, 29903, 6778,  13,    13,   18567, 518,   29914, 25580,
        29962, 15043, 29991, 29871, 2,     1,     518,   25580, 29962, 1834,  518,   29914,
        25580, 29962};
    CHECK(tok->encode(prompt, true, true) == want);
}
