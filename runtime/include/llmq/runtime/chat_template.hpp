// Chat templates: turning a conversation into the prompt a model was trained on, by rendering
// the Jinja template the model file carries in `tokenizer.chat_template` (or one given with
// --chat-template / [model] chat_template).
//
// The renderer is a Jinja subset of our own, enough for the published templates of Llama 2,
// Llama 3.x, Mistral, Qwen2.5, ChatML, Gemma and Phi-3: text, {{ }}, {% if/elif/else %},
// {% for %} (loop.index/index0/first/last/length/revindex, else, inline if, break/continue),
// {% set %} (also ns.attr and block form), {% macro %}, comments, "-" whitespace control and
// Hugging Face's trim_blocks/lstrip_blocks; literals, lists, dicts, attributes, indexing,
// slicing, calls, filters (trim, length, count, tojson, upper, lower, capitalize, title,
// default, first, last, join, replace, string, int, float, list, items, reverse, unique,
// select, reject, selectattr, rejectattr, map, indent, safe, abs), tests (defined, undefined, none, string,
// number, integer, float, mapping, iterable, sequence, boolean, true, false, even, odd,
// divisibleby, equalto, sameas), string methods (strip, lstrip, rstrip, startswith,
// endswith, split, replace, upper, lower, title, capitalize, find, count, join), dict
// methods (items, keys, values, get), list.append, and the globals raise_exception(),
// namespace(), range() and strftime_now(format) (Llama 3.2's date line; C strftime, local time).
//
// What the model reads as control tokens: the rendered prompt remembers, byte by byte,
// whether it came from the template's own literals (markup) or from the data the template
// was given (message text). encode_chat_prompt() turns only markup into control tokens, so
// a user who types "<|eot_id|>" sends text, not the end of a turn.
//
// Ownership and threads: a ChatTemplate owns its parsed form, is immutable after parse() and
// may render from any number of threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "llmq/runtime/status.hpp"

namespace llmq {

class Tokenizer;

struct ChatMessage {
    std::string role;  // "system", "user", "assistant", "tool", ... (passed to the template)
    std::string content;
};

struct ChatRenderOptions {
    // End with the header that asks the model for the assistant's next turn.
    bool add_generation_prompt = true;
    std::string bos_token;  // the template's bos_token / eos_token variables (markup)
    std::string eos_token;
    // The moment strftime_now(format) formats (in local time, as transformers' datetime.now()),
    // in seconds since 1970; -1 means the time of the call. Tests pin it.
    int64_t now = -1;
};

struct ChatPrompt {
    std::string text;
    // One per byte of text: 1 where the byte came from the data (message text), 0 where it
    // came from the template's markup.
    std::vector<uint8_t> from_data;
};

class ChatTemplate {
public:
    // Parses Jinja source. `origin` names where it came from in errors ("the model file's
    // tokenizer.chat_template", a file name). Errors: invalid_argument
    // "<origin>: chat template line N: <what was expected, what was found>".
    [[nodiscard]] static Expected<std::shared_ptr<const ChatTemplate>> parse(std::string_view source,
                                                                             std::string origin);
    // The template for a model whose file carries none: "User: ...\nAssistant:" lines.
    static std::shared_ptr<const ChatTemplate> plain();

    // Renders `messages`. Errors: invalid_argument naming the origin and the template line
    // (an undefined value used, a type error, raise_exception's message, output or loop
    // limits exceeded).
    [[nodiscard]] Expected<ChatPrompt> render(std::span<const ChatMessage> messages,
                                              const ChatRenderOptions& options) const;

    const std::string& origin() const { return origin_; }
    ~ChatTemplate();

    struct Parsed;

private:
    ChatTemplate() = default;
    std::unique_ptr<Parsed> parsed_;
    std::string origin_;
};

// The template a model uses: `override_source` when not empty (from --chat-template or
// [model] chat_template, named `override_origin`), else the tokenizer's chat_template, else
// plain().
[[nodiscard]] Expected<std::shared_ptr<const ChatTemplate>> select_chat_template(
    const Tokenizer& tokenizer, std::string_view override_source, std::string override_origin);

// The options a tokenizer's vocabulary implies (bos_token, eos_token spelled as its tokens).
ChatRenderOptions chat_render_options(const Tokenizer& tokenizer, bool add_generation_prompt);

// Token ids of a rendered prompt: control tokens only where the markup spells them, the
// message text tokenized with specials off. Adds the BOS token first when the vocabulary
// asks for one and the prompt does not already start with it.
std::vector<int32_t> encode_chat_prompt(const Tokenizer& tokenizer, const ChatPrompt& prompt);

// What an image part of a message stands for while the template renders: bytes that no
// message text can hold (0xFF is never part of UTF-8, and message text is checked to be UTF-8),
// so only an image part makes it.
inline constexpr std::string_view chat_image_marker = "\xff" "image" "\xff";

// encode_chat_prompt for a prompt whose messages held image parts: each chat_image_marker that
// came from the data becomes one `image_token` id (the text either side tokenized on its own,
// as LLaVA tokenizes the chunks around "<image>"). *images receives how many there were.
std::vector<int32_t> encode_chat_prompt(const Tokenizer& tokenizer, const ChatPrompt& prompt, int32_t image_token,
                                        size_t* images);

// Reads a template file for --chat-template / [model] chat_template. Errors name the path.
[[nodiscard]] Expected<std::string> read_chat_template_file(const std::string& path);

}  // namespace llmq
