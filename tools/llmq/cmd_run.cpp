// llmq run: load a model in this process and stream a generation to stdout.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

#include "cli_common.hpp"
#include "commands.hpp"
#include "progress_display.hpp"
#include "image_files.hpp"
#include "llmq/runtime/chat_template.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_runtime.hpp"
#include "llmq/runtime/vision_encoder.hpp"

namespace llmq::cli {

namespace {

// The user's message of `run --chat` with images: each <image> in the text becomes an image
// part where it sits, or, with no <image>, the images go before the text (as `llmq chat`
// sends them). Empty error when it worked.
std::string mark_images(const std::string& text, size_t images, std::string* content) {
    const std::string marker = default_image_marker;
    size_t markers = 0;
    for (size_t at = text.find(marker); at != std::string::npos; at = text.find(marker, at + marker.size())) ++markers;
    if (markers == 0) {
        content->clear();
        for (size_t i = 0; i < images; ++i) content->append(chat_image_marker);
        content->append(text);
        return "";
    }
    if (markers != images)
        return "--prompt: " + std::to_string(markers) + " " + marker + " marker(s) for " + std::to_string(images) +
               " image(s); mark every image or none (then they go before the text)";
    *content = text;
    for (size_t at; (at = content->find(marker)) != std::string::npos;) content->replace(at, marker.size(), chat_image_marker);
    return "";
}

struct RunFlags {
    ModelFlags model;
    std::string prompt;
    std::vector<int32_t> prompt_tokens;
    bool json = false;
    bool no_bos = false;
    std::string logits_out;
    std::string log_level = "warn";
    bool chat = false;
    std::string system;
    std::string chat_template;
    std::string vision;               // --vision MMPROJ
    std::vector<std::string> images;  // --image PATH (repeatable)
    SamplingFlags sampling;
};

const nlohmann::json::error_handler_t kReplace = nlohmann::json::error_handler_t::replace;

// Streams text (or JSON Lines) to stdout as tokens come.
class StdoutSink final : public RequestSink {
public:
    StdoutSink(bool json, std::string logits_out) : json_(json), logits_out_(std::move(logits_out)) {}
    bool wants_logits() const override { return !logits_out_.empty() && !logits_written_; }
    void on_logits(std::span<const float> logits) override {
        std::ofstream out(logits_out_, std::ios::binary);
        out.write(reinterpret_cast<const char*>(logits.data()),
                  static_cast<std::streamsize>(logits.size() * sizeof(float)));
        logits_written_ = true;
    }
    void on_token(int32_t token, std::string_view text, float logprob) override {
        if (json_) {
            if (token < 0) return;  // held-back text at the end arrives in the final object
            print_line(token_json(token, std::string(text), std::isnan(logprob) ? std::nullopt : std::optional<float>(logprob)).dump(-1, ' ', false, kReplace));
        } else {
            print_text(std::string(text));
        }
    }
    void on_finish(const FinishInfo& info) override {
        info_ = info;
        done_ = true;
    }
    bool done() const { return done_; }
    const FinishInfo& info() const { return info_; }

private:
    bool json_;
    std::string logits_out_;
    bool logits_written_ = false;
    bool done_ = false;
    FinishInfo info_;
};

}  // namespace

nlohmann::json finish_json(const FinishInfo& info) {
    nlohmann::json j;
    j["prompt_tokens"] = info.prompt_tokens;
    j["tokens"] = info.tokens;
    j["text"] = info.text;
    j["finish_reason"] = finish_reason_name(info.reason);
    if (!info.error.empty()) j["error"] = info.error;
    j["timings"] = {{"queue_ms", info.timings.queue_ms},
                    {"prefill_ms", info.timings.prefill_ms},
                    {"decode_ms", info.timings.decode_ms},
                    {"prefill_tokens_per_s", info.timings.prefill_tokens_per_s},
                    {"decode_tokens_per_s", info.timings.decode_tokens_per_s}};
    return j;
}

SamplingParams to_params(const SamplingFlags& f) {
    SamplingParams p;
    p.max_tokens = f.max_tokens;
    p.temperature = f.temperature;
    p.top_k = f.top_k;
    p.top_p = f.top_p;
    p.min_p = f.min_p;
    p.repetition_penalty = f.repeat_penalty;
    p.presence_penalty = f.presence_penalty;
    p.frequency_penalty = f.frequency_penalty;
    p.seed = resolve_seed(f.seed);
    p.seed_set = true;
    p.stop = f.stop;
    p.ignore_eos = f.ignore_eos;
    return p;
}

Command add_run(CLI::App& root) {
    auto flags = std::make_shared<RunFlags>();
    CLI::App* app = root.add_subcommand("run", "Generate text in this process (no daemon)");
    add_model_flags(*app, flags->model, "GGUF model file (overrides [model] path)", true);
    app->add_option("--prompt,-p", flags->prompt, "Prompt text");
    app->add_option("--prompt-tokens", flags->prompt_tokens, "Prompt as token ids (instead of text; -1: where an --image goes)")
        ->delimiter(',');
    app->add_flag("--json", flags->json, "JSON Lines: one object per token, then a summary");
    app->add_flag("--no-bos", flags->no_bos, "Do not prepend the BOS token");
    app->add_option("--logits-out", flags->logits_out,
                    "Write the logits of the prompt's last position (f32, raw) to this file");
    app->add_flag("--chat", flags->chat,
                  "The prompt is a user's message: render it with the chat template (the model's, "
                  "[model] chat_template or --chat-template)");
    app->add_option("--system", flags->system, "System message before the prompt (with --chat)");
    app->add_option("--chat-template", flags->chat_template,
                    "Jinja chat template file instead of the model's (implies --chat)");
    app->add_option("--vision", flags->vision,
                    "LLaVA-style vision projector GGUF (mmproj) paired with the model (overrides [model] vision)");
    app->add_option("--image", flags->images,
                    "PNG or JPEG image (repeatable): at each <image> in the prompt (an mllama model's "
                    "<|image|> without --chat), else before the text; at each -1 of --prompt-tokens");
    app->add_option("--log-level", flags->log_level, "error|warn|info|debug")->capture_default_str();
    add_sampling_flags(*app, flags->sampling);
    set_example(*app, "  llmq run -m model.gguf -p \"Once upon a time\" -n 64 --temp 0.7 --seed 1\n"
                      "  llmq run -m model.gguf --chat --system \"Be brief.\" -p \"Hi\"");
    return [flags]() -> int {
        log::level lvl;
        if (!log::parse_level(flags->log_level, &lvl)) return usage_error("run", "--log-level: unknown level " + flags->log_level);
        log::set_level(lvl);
        auto loaded = model_config(flags->model);
        if (!loaded) return fail("run", loaded.status().message());
        Config config = std::move(*loaded);
        if (!flags->vision.empty()) config.model.vision = flags->vision;
        if (!flags->chat_template.empty()) {
            config.model.chat_template = flags->chat_template;
            flags->chat = true;
        }
        if (flags->chat && !flags->prompt_tokens.empty())
            return usage_error("run", "--chat renders text: give --prompt TEXT, not --prompt-tokens");
        if (config.model.path.empty()) return usage_error("run", "no model: give --model PATH or [model] path");
        if (flags->prompt.empty() && flags->prompt_tokens.empty())
            return usage_error("run", "no prompt: give --prompt TEXT or --prompt-tokens IDS");
        ProgressDisplay progress(flags->json);
        auto rt = ModelRuntime::load(config, nullptr, progress.callback());
        if (!rt) return fail("run", rt.status().message());
        if (!flags->images.empty() && !(*rt)->takes_images())
            return fail("run", "--image needs a vision model: give --vision MMPROJ or [model] vision, or an mllama "
                               "(Llama 3.2 Vision) file with its vision part");
        GenerateRequest req;
        req.prompt = flags->prompt;
        req.prompt_tokens = flags->prompt_tokens;
        if (std::string error; !read_image_files(flags->images, config.ipc.max_image_bytes, req.images, error))
            return fail("run", error);
        if (flags->chat) {
            const auto& tpl = (*rt)->chat_template();
            if (!tpl) return fail("run", tpl.status().message());
            std::vector<ChatMessage> messages;
            if (!flags->system.empty()) messages.push_back({"system", flags->system});
            messages.push_back({"user", flags->prompt});
            if (!req.images.empty()) {
                if (std::string error = mark_images(flags->prompt, req.images.size(), &messages.back().content); !error.empty())
                    return fail("run", error);
            }
            const Tokenizer& tok = (*rt)->tokenizer();
            auto prompt = (*tpl)->render(messages, chat_render_options(tok, true));
            if (!prompt) return fail("run", prompt.status().message());
            req.prompt.clear();
            if (req.images.empty()) {
                req.prompt_tokens = encode_chat_prompt(tok, *prompt);
            } else {
                // Each image part is one image_prompt_token where it sits; the engine puts the
                // image there (a projector's rows, or mllama's <|image|>).
                size_t placed = 0;
                req.prompt_tokens = encode_chat_prompt(tok, *prompt, image_prompt_token, &placed);
                if (placed != req.images.size())
                    return fail("run", "the chat template rendered " + std::to_string(placed) + " of the message's " +
                                           std::to_string(req.images.size()) +
                                           " image(s) (it drops or repeats message content)");
            }
            if (flags->no_bos && !req.prompt_tokens.empty() && req.prompt_tokens.front() == tok.bos())
                req.prompt_tokens.erase(req.prompt_tokens.begin());
        }
        req.add_bos = !flags->no_bos;
        req.sampling = to_params(flags->sampling);
        auto sink = std::make_shared<StdoutSink>(flags->json, flags->logits_out);
        Engine& engine = (*rt)->engine();
        auto id = engine.submit(std::move(req), sink);
        if (!id) return fail("run", id.status().message());
        while (!sink->done()) engine.step();
        const FinishInfo& info = sink->info();
        if (flags->json) {
            print_line(finish_json(info).dump(-1, ' ', false, kReplace));
        } else {
            print_text("\n");
            std::fputs((stats_line(info.prompt_tokens.size(), info.timings.prefill_tokens_per_s, info.tokens.size(),
                                   info.timings.decode_tokens_per_s, finish_reason_name(info.reason)) + "\n").c_str(),
                       stderr);
        }
        if (info.reason == FinishReason::error) return fail("run", info.error);
        return 0;
    };
}

}  // namespace llmq::cli
