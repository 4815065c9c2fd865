// ChatTemplate between the model's files and its tokenizer: which template a model uses,
// the variables its vocabulary implies, and the tokenization of a rendered prompt.
#include "llmq/runtime/chat_template.hpp"

#include <fstream>
#include <sstream>

#include "llmq/runtime/tokenizer.hpp"

namespace llmq {

Expected<std::shared_ptr<const ChatTemplate>> select_chat_template(const Tokenizer& tokenizer,
                                                                   std::string_view override_source,
                                                                   std::string override_origin) {
    if (!override_source.empty()) return ChatTemplate::parse(override_source, std::move(override_origin));
    const std::string& own = tokenizer.vocab().chat_template;
    if (own.empty()) return ChatTemplate::plain();
    return ChatTemplate::parse(own, "the model file's tokenizer.chat_template");
}

ChatRenderOptions chat_render_options(const Tokenizer& tokenizer, bool add_generation_prompt) {
    ChatRenderOptions o;
    o.add_generation_prompt = add_generation_prompt;
    o.bos_token = tokenizer.token_text(tokenizer.bos());
    o.eos_token = tokenizer.token_text(tokenizer.eos());
    return o;
}

std::vector<int32_t> encode_chat_prompt(const Tokenizer& tokenizer, const ChatPrompt& prompt) {
    std::vector<int32_t> ids = tokenizer.encode_marked(prompt.text, prompt.from_data);
    const int32_t bos = tokenizer.bos();
    if (tokenizer.vocab().add_bos && bos >= 0 && (ids.empty() || ids.front() != bos)) ids.insert(ids.begin(), bos);
    return ids;
}

Expected<std::string> read_chat_template_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return not_found("chat template file " + path + " cannot be opened");
    std::ostringstream s;
    s << in.rdbuf();
    std::string text = s.str();
    if (text.size() > (1u << 20)) return invalid_argument("chat template file " + path + " is larger than 1 MiB");
    if (text.empty()) return invalid_argument("chat template file " + path + " is empty");
    return text;
}

}  // namespace llmq
