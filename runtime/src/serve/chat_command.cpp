#include "llmq/runtime/chat_command.hpp"

#include <optional>

#include "llmq/ipc/generate_request.hpp"
#include "llmq/ipc/listener.hpp"
#include "llmq/ipc/request_decoder.hpp"
#include "llmq/runtime/chat_template.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/model_runtime.hpp"
#include "llmq/runtime/vision_encoder.hpp"

namespace llmq {

namespace {

constexpr size_t max_messages = 4096;

ipc::Result<nlohmann::json> bad(const std::string& why) {
    return ipc::make_error(ipc::ErrorCode::invalid_argument, "chat_template: " + why);
}

bool utf8(const std::string& s) { return ipc::is_valid_utf8(s.data(), s.size()); }

static_assert(ipc::kImagePromptToken == image_prompt_token, "the protocol's image mark is the engine's");

// A content array of {"type": "text", "text"} and {"type": "image"} parts as one string, each
// image as chat_image_marker. Returns the error, if any.
std::optional<std::string> join_parts(const nlohmann::json& parts, const std::string& where, bool vision,
                                      std::string* content, size_t* images) {
    for (size_t j = 0; j < parts.size(); ++j) {
        const auto& part = parts[j];
        const std::string at = where + "[" + std::to_string(j) + "]";
        const std::string type = part.is_object() && part.contains("type") && part["type"].is_string()
                                     ? part["type"].get<std::string>()
                                     : "";
        if (type == "text") {
            if (!part.contains("text") || !part["text"].is_string()) return at + ".text must be a string";
            const std::string& text = part["text"].get_ref<const std::string&>();
            if (!utf8(text)) return at + ".text is not valid UTF-8";
            *content += text;
        } else if (type == "image") {
            if (!vision)
                return at + " is an image, but the model has no vision projector ([model] vision = MMPROJ) nor an mllama vision part";
            *content += chat_image_marker;
            ++*images;
        } else {
            return at + " must be {\"type\": \"text\", \"text\": string} or {\"type\": \"image\"}";
        }
    }
    return std::nullopt;
}

}  // namespace

void register_chat_command(ipc::Listener& listener, const ModelRuntime& runtime, const Config& config) {
    const uint64_t max_bytes = config.ipc.max_prompt_bytes;
    listener.add_command("chat_template", [&runtime, max_bytes](ipc::Connection&, const nlohmann::json& args)
                                              -> ipc::Result<nlohmann::json> {
        if (!args.is_object()) return bad("args must be an object");
        std::shared_ptr<const ChatTemplate> tpl;
        if (args.contains("template")) {
            const auto& t = args["template"];
            if (!t.is_string()) return bad("args.template must be a string (Jinja source)");
            const std::string& src = t.get_ref<const std::string&>();
            if (src.empty() || src.size() > max_bytes || !utf8(src))
                return bad("args.template is empty, longer than " + std::to_string(max_bytes) +
                           " bytes or not valid UTF-8");
            auto parsed = ChatTemplate::parse(src, "the client's template");
            if (!parsed) return bad(parsed.status().message());
            tpl = *parsed;
        } else if (runtime.chat_template()) {
            tpl = *runtime.chat_template();
        } else if (!args.contains("messages")) {
            return nlohmann::json{{"origin", "the model file's tokenizer.chat_template"},
                                  {"error", runtime.chat_template().status().message()}};
        } else {
            return bad(runtime.chat_template().status().message());
        }
        nlohmann::json reply{{"origin", tpl->origin()}};
        if (!args.contains("messages")) return reply;

        const auto& ms = args["messages"];
        if (!ms.is_array() || ms.size() > max_messages)
            return bad("args.messages must be an array of at most " + std::to_string(max_messages) + " messages");
        std::vector<ChatMessage> messages;
        uint64_t bytes = 0;
        size_t images = 0;
        // LLaVA-style: each image part becomes the projector's rows at its mark; mllama: the mark
        // becomes <|image|> and the rows go to cross-attention (several images a conversation).
        const bool vision = runtime.vision() != nullptr || runtime.mllama_vision();
        for (size_t i = 0; i < ms.size(); ++i) {
            const auto& m = ms[i];
            const std::string where = "args.messages[" + std::to_string(i) + "]";
            if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
                !(m["content"].is_string() || m["content"].is_array()))
                return bad(where + " must be {\"role\": string, \"content\": string or array of parts}");
            ChatMessage cm{m["role"].get<std::string>(), ""};
            if (m["content"].is_string()) {
                cm.content = m["content"].get<std::string>();
            } else if (auto error = join_parts(m["content"], where + ".content", vision, &cm.content, &images)) {
                return bad(*error);
            }
            bytes += cm.role.size() + cm.content.size();
            if (bytes > max_bytes) return bad("args.messages hold more than " + std::to_string(max_bytes) + " bytes");
            // Parts were checked one by one (the image marker is not UTF-8 on purpose).
            if (!utf8(cm.role) || (m["content"].is_string() && !utf8(cm.content)))
                return bad(where + " is not valid UTF-8");
            messages.push_back(std::move(cm));
        }
        bool add_generation_prompt = true;
        if (args.contains("add_generation_prompt")) {
            if (!args["add_generation_prompt"].is_boolean()) return bad("args.add_generation_prompt must be a boolean");
            add_generation_prompt = args["add_generation_prompt"].get<bool>();
        }
        auto prompt = tpl->render(messages, chat_render_options(runtime.tokenizer(), add_generation_prompt));
        if (!prompt) return bad(prompt.status().message());
        if (prompt->text.size() > max_bytes) return bad("the rendered prompt is longer than " + std::to_string(max_bytes) + " bytes");
        if (images == 0) {
            reply["tokens"] = encode_chat_prompt(runtime.tokenizer(), *prompt);
        } else {
            size_t placed = 0;
            reply["tokens"] = encode_chat_prompt(runtime.tokenizer(), *prompt, ipc::kImagePromptToken, &placed);
            if (placed != images)
                return bad("the template rendered " + std::to_string(placed) + " of the messages' " +
                           std::to_string(images) + " image parts (it drops or repeats message content)");
            reply["images"] = images;
        }
        // The text as a person reads it: each image as the model's marker (the raw marker
        // bytes are not UTF-8, so they could not travel as JSON).
        for (size_t at; (at = prompt->text.find(chat_image_marker)) != std::string::npos;)
            prompt->text.replace(at, chat_image_marker.size(), default_image_marker);
        reply["text"] = std::move(prompt->text);
        return reply;
    });
}

}  // namespace llmq
