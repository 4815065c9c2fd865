// ChatTemplate between the model's files and its tokenizer: which template a model uses,
// the variables its vocabulary implies, and the tokenization of a rendered prompt.
#include "llmq/runtime/chat_template.hpp"

#include <algorithm>
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

std::vector<int32_t> encode_chat_prompt(const Tokenizer& tokenizer, const ChatPrompt& prompt, int32_t image_token,
                                        size_t* images) {
    *images = 0;
    const std::string_view text = prompt.text;
    const bool marked = prompt.from_data.size() == text.size();
    auto from_data = [&](size_t at, size_t n) {
        return marked && std::all_of(prompt.from_data.begin() + static_cast<std::ptrdiff_t>(at),
                                     prompt.from_data.begin() + static_cast<std::ptrdiff_t>(at + n),
                                     [](uint8_t d) { return d != 0; });
    };
    std::vector<int32_t> ids;
    auto encode_piece = [&](size_t begin, size_t end) {
        if (begin == end) return;
        const std::span<const uint8_t> marks =
            marked ? std::span<const uint8_t>(prompt.from_data).subspan(begin, end - begin) : std::span<const uint8_t>();
        const std::vector<int32_t> piece = tokenizer.encode_marked(text.substr(begin, end - begin), marks);
        ids.insert(ids.end(), piece.begin(), piece.end());
    };
    size_t piece_start = 0;
    for (size_t at = text.find(chat_image_marker); at != std::string_view::npos;
         at = text.find(chat_image_marker, at + 1)) {
        if (!from_data(at, chat_image_marker.size())) continue;
        encode_piece(piece_start, at);
        ids.push_back(image_token);
        ++*images;
        piece_start = at + chat_image_marker.size();
        at = piece_start - 1;
    }
    encode_piece(piece_start, text.size());
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
