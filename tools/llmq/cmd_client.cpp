// Commands that talk to a running llmqd: generate, status, chat.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>

#include "cli_common.hpp"
#include "image_files.hpp"
#include "commands.hpp"
#include "line_editor.hpp"
#include "llmq/ipc/client.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/chat_template.hpp"

namespace llmq::cli {

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
void on_sigint(int) { g_interrupted = 1; }

const nlohmann::json::error_handler_t kReplace = nlohmann::json::error_handler_t::replace;

struct ClientFlags {
    std::string instance = "default";
    double timeout_s = 600;
};

void add_client_flags(CLI::App& app, ClientFlags& f) {
    app.add_option("--instance", f.instance, "llmqd instance name ($LLMQ_IPC_DIR or the default folder)")
        ->capture_default_str();
}

ipc::Result<std::unique_ptr<ipc::Client>> connect(const ClientFlags& f, const std::string& name) {
    ipc::ConnectOptions o;
    o.instance = f.instance;
    o.client_name = name;
    return ipc::Client::connect(o);
}

const char* finish_name(ipc::FinishReason r) {
    switch (r) {
        case ipc::FinishReason::eos:
        case ipc::FinishReason::stop_string: return "stop";
        case ipc::FinishReason::length: return "length";
        case ipc::FinishReason::cancelled: return "cancelled";
    }
    return "stop";
}

ipc::GenerateRequest to_ipc(const SamplingFlags& f) {
    ipc::GenerateRequest r;
    r.sampling.temperature = f.temperature;
    r.sampling.top_k = f.top_k;
    r.sampling.top_p = f.top_p;
    r.sampling.min_p = f.min_p;
    r.sampling.repetition_penalty = f.repeat_penalty;
    r.sampling.presence_penalty = f.presence_penalty;
    r.sampling.frequency_penalty = f.frequency_penalty;
    if (f.seed >= 0) {  // -1: the daemon picks a random seed
        r.sampling.seed = static_cast<uint64_t>(f.seed);
        r.sampling.seed_set = true;
    }
    r.max_tokens = f.max_tokens;
    r.ignore_eos = f.ignore_eos;
    r.stop = f.stop;
    return r;
}

struct StreamResult {
    std::vector<int32_t> tokens;
    std::string text;
    std::optional<ipc::Event> final_event;
    std::optional<ipc::Event> error_event;
};

// Read one request's events to its end, printing as they come. Ctrl-C cancels it.
ipc::Result<StreamResult> stream(ipc::Client& client, uint64_t id, bool json, bool print) {
    StreamResult out;
    bool cancel_sent = false;
    for (;;) {
        if (g_interrupted && !cancel_sent) {
            (void)client.cancel(id);
            cancel_sent = true;
        }
        auto e = client.next_event(std::chrono::milliseconds(100));
        if (!e) {
            if (e.error().code == ipc::ErrorCode::timeout) continue;
            return e.error();
        }
        if (e->request_id != id) continue;
        switch (e->kind) {
            case ipc::EventKind::token:
                out.text += e->text;
                if (e->token_id >= 0) out.tokens.push_back(e->token_id);
                if (!print) break;
                if (json) {
                    if (e->token_id >= 0)
                        print_line(token_json(e->token_id, e->text,
                                              e->has_logprob ? std::optional<float>(e->logprob) : std::nullopt)
                                       .dump(-1, ' ', false, kReplace));
                } else {
                    print_text(e->text);
                }
                break;
            case ipc::EventKind::final:
                out.final_event = *e;
                return out;
            case ipc::EventKind::error:
                out.error_event = *e;
                return out;
            default:
                break;
        }
    }
}

// Prefill and decode rates of a final event, as `llmq run` computes them.
struct Rates {
    double prefill_tokens_per_s = 0, decode_tokens_per_s = 0;
};
Rates rates_of(const ipc::Event& f) {
    const double prefill_s = f.prefill_us / 1e6, decode_s = f.decode_us / 1e6;
    return {prefill_s > 0 ? f.prompt_tokens / prefill_s : 0.0,
            decode_s > 0 && f.generated_tokens > 1 ? (f.generated_tokens - 1) / decode_s : 0.0};
}

nlohmann::json final_json(const StreamResult& r, const std::vector<int32_t>& prompt_tokens) {
    nlohmann::json j;
    j["prompt_tokens"] = prompt_tokens;
    j["tokens"] = r.tokens;
    j["text"] = r.text;
    if (r.error_event) {
        j["finish_reason"] = "error";
        j["error"] = r.error_event->text;
        j["error_code"] = ipc::event_error_name(r.error_event->error_code());
        return j;
    }
    const ipc::Event& f = *r.final_event;
    j["finish_reason"] = finish_name(f.finish_reason());
    const Rates rates = rates_of(f);
    j["timings"] = {{"queue_ms", f.queued_us / 1e3},
                    {"prefill_ms", f.prefill_us / 1e3},
                    {"decode_ms", f.decode_us / 1e3},
                    {"prefill_tokens_per_s", rates.prefill_tokens_per_s},
                    {"decode_tokens_per_s", rates.decode_tokens_per_s}};
    return j;
}

std::string tokens_per_s_text(double rate) {
    char text[32];
    std::snprintf(text, sizeof text, "%.1f tok/s", rate);
    return text;
}

}  // namespace

Command add_generate(CLI::App& root) {
    struct Flags {
        ClientFlags client;
        std::string prompt;
        std::vector<int32_t> prompt_tokens;
        std::vector<std::string> images;
        bool json = false, no_bos = false;
        SamplingFlags sampling;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("generate", "Generate text through a running llmqd (shared memory)");
    app->add_option("--prompt,-p", f->prompt, "Prompt text");
    app->add_option("--prompt-tokens", f->prompt_tokens, "Prompt as token ids (-1: where an --image goes)")
        ->delimiter(',');
    app->add_option("--image", f->images,
                    "PNG or JPEG image for a vision model (repeatable): at each <image> in the prompt, else first "
                    "(with --prompt-tokens: at each -1)");
    app->add_flag("--json", f->json, "JSON Lines: one object per token, then a summary");
    app->add_flag("--no-bos", f->no_bos, "Do not prepend the BOS token");
    add_client_flags(*app, f->client);
    add_sampling_flags(*app, f->sampling);
    set_example(*app, "  llmq generate -p \"Once upon a time\" -n 64 --temp 0.7\n"
                      "  llmq generate --instance gpu -p \"Hello\" --json");
    return [f]() -> int {
        if (f->prompt.empty() && f->prompt_tokens.empty())
            return usage_error("generate", "no prompt: give --prompt TEXT or --prompt-tokens IDS");
        auto client = connect(f->client, "llmq generate");
        if (!client) return fail("generate", client.error().message);
        std::signal(SIGINT, on_sigint);
        ipc::GenerateRequest req = to_ipc(f->sampling);
        std::vector<int32_t> prompt_tokens = f->prompt_tokens;
        // The daemon checks the images and their limits ([ipc] max_images, max_image_bytes).
        if (std::string error; !read_image_files(f->images, 0, req.images, error)) return fail("generate", error);
        if (!f->prompt_tokens.empty()) {
            req.prompt_is_tokens = true;  // with images: a -1 where each goes
            req.prompt_tokens = f->prompt_tokens;
        } else {
            req.prompt_text = f->prompt;
            req.add_bos = !f->no_bos;
            if (f->json) {  // the summary names the prompt's ids, as `llmq run --json` does
                auto t = (*client)->control("tokenize", {{"text", f->prompt}, {"add_bos", !f->no_bos}},
                                            std::chrono::seconds(30));
                if (!t) return fail("generate", t.error().message);
                prompt_tokens = (*t)["tokens"].get<std::vector<int32_t>>();
            }
        }
        auto id = (*client)->submit(req);
        if (!id) return fail("generate", id.error().message);
        auto r = stream(**client, *id, f->json, true);
        if (!r) return fail("generate", r.error().message);
        if (f->json) {
            print_line(final_json(*r, prompt_tokens).dump(-1, ' ', false, kReplace));
        } else {
            print_text("\n");
            if (r->final_event) {
                const ipc::Event& e = *r->final_event;
                const Rates rates = rates_of(e);
                std::fputs((stats_line(e.prompt_tokens, rates.prefill_tokens_per_s, e.generated_tokens,
                                       rates.decode_tokens_per_s, finish_name(e.finish_reason())) + "\n").c_str(),
                           stderr);
            }
        }
        if (r->error_event) return fail("generate", std::string(ipc::event_error_name(r->error_event->error_code())) + ": " + r->error_event->text);
        return r->final_event->finish_reason() == ipc::FinishReason::cancelled ? kExitInterrupted : kExitOk;
    };
}

Command add_status(CLI::App& root) {
    struct Flags {
        ClientFlags client;
        bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("status", "Show what a running llmqd is doing");
    app->add_flag("--json", f->json, "Print JSON");
    add_client_flags(*app, f->client);
    set_example(*app, "  llmq status\n  llmq status --instance gpu --json");
    return [f]() -> int {
        auto client = connect(f->client, "llmq status");
        if (!client) return fail("status", client.error().message);
        auto s = (*client)->control("status", nlohmann::json::object(), std::chrono::seconds(10));
        if (!s) return fail("status", s.error().message);
        const nlohmann::json& j = *s;
        if (f->json) {
            print_line(j.dump(2));
            return 0;
        }
        std::ostringstream o;
        o << "llmqd pid " << j["pid"] << ", instance " << j["instance"].get<std::string>()
          << (j["draining"].get<bool>() ? " (draining)" : "") << ", up " << duration_text(j["uptime_s"].get<double>()) << "\n";
        o << "model: " << j["model"]["name"].get<std::string>() << " (" << j["model"]["architecture"].get<std::string>()
          << ", " << j["model"]["layers"] << " layers, context " << j["model"]["context_length"] << ")\n";
        if (j["model"].contains("vision") && j["model"]["vision"].is_object()) {
            const auto& v = j["model"]["vision"];
            o << "vision: " << v["tokens_per_image"] << " positions an image, up to " << v["max_images"]
              << " images and " << format_bytes(v["max_image_bytes"].get<uint64_t>()) << " a request\n";
        }
        o << "plan: tensor " << j["plan"]["tensor"] << " x pipeline " << j["plan"]["pipeline"] << "\n";
        for (const auto& d : j["plan"]["devices"])
            o << "  " << d["device"].get<std::string>() << ": layers " << d["layers"][0] << "-"
              << (d["layers"][1].get<int>() - 1) << ", weights " << format_bytes(d["weight_bytes"].get<uint64_t>())
              << ", kv " << format_bytes(d["kv_bytes"].get<uint64_t>()) << "\n";
        if (j.contains("cpu_kernels")) {
            const auto& k = j["cpu_kernels"];
            o << "cpu kernels: " << k["isa"].get<std::string>() << " (" << k["weights"].get<std::string>()
              << " weights: decode " << k["gemm_decode"].get<std::string>() << ", prefill "
              << k["gemm_prefill"].get<std::string>() << ")\n";
        }
        for (const auto& p : j["plugins"])
            o << "plugin " << p["kind"].get<std::string>() << ": " << p["name"].get<std::string>() << " "
              << p["version"].get<std::string>() << " (" << p["calls"] << " calls, " << p["errors"] << " errors)\n";
        o << "clients: " << j["clients"];
        if (j.value("other_users_clients", 0) > 0) o << " (" << j["other_users_clients"] << " of other users)";
        o << "; requests running " << j["requests"]["running"] << ", queued "
          << j["requests"]["queued"] << "; KV blocks used " << j["kv_blocks"]["used"] << " of "
          << j["kv_blocks"]["total"] << "; " << tokens_per_s_text(j["tokens_per_s"].get<double>()) << "\n";
        print_text(o.str());
        return 0;
    };
}

namespace {

constexpr const char* kChatHelp =
    "  /help           this list\n"
    "  /system [TEXT]  set the system message (empty: none); it starts a new conversation\n"
    "  /clear          forget the conversation (the system message stays)\n"
    "  /image PATH     attach a PNG or JPEG to your next message (vision models; repeatable)\n"
    "  /bye            leave (so does Ctrl-D)\n"
    "  Ctrl-C          cancel the reply being written\n";

void say(const std::string& text) {
    std::fputs(text.c_str(), stderr);
    std::fflush(stderr);
}

// The chat template the daemon will use, in words, for the greeting.
std::string template_origin(ipc::Client& client, const std::string& file) {
    if (!file.empty()) return file + " (--chat-template)";
    auto t = client.control("chat_template", nlohmann::json::object(), std::chrono::seconds(10));
    if (!t) return "unknown (" + t.error().message + ")";
    std::string origin = t->value("origin", "unknown");
    if (t->contains("error")) origin += " — " + (*t)["error"].get<std::string>();
    return origin;
}

}  // namespace

Command add_chat(CLI::App& root) {
    struct Flags {
        ClientFlags client;
        std::string system;
        std::string chat_template;
        std::vector<std::string> images;
        SamplingFlags sampling;
    };
    auto f = std::make_shared<Flags>();
    f->sampling.max_tokens = 512;
    CLI::App* app = root.add_subcommand("chat", "Hold a conversation with a running llmqd (line editing, history, /help)");
    app->add_option("--system", f->system, "System prompt");
    app->add_option("--chat-template", f->chat_template,
                    "Jinja chat template file to use instead of the model's tokenizer.chat_template");
    app->add_option("--image", f->images,
                    "PNG or JPEG for a vision model (repeatable): goes with your first message; /image PATH "
                    "attaches one to the next");
    add_client_flags(*app, f->client);
    add_sampling_flags(*app, f->sampling);
    set_example(*app, "  llmq chat --system \"Answer in one sentence.\"\n"
                      "  llmq chat --chat-template chatml.jinja --temp 0.2\n"
                      "  llmq chat --image photo.jpg      (then ask about it)\n\n"
                      "In the session:\n" + std::string(kChatHelp));
    return [f]() -> int {
        std::string source;
        if (!f->chat_template.empty()) {
            auto text = read_chat_template_file(f->chat_template);
            if (!text) return fail("chat", text.status().message());
            // Parse here too, so a broken file is reported before the first turn.
            auto parsed = ChatTemplate::parse(*text, f->chat_template);
            if (!parsed) return fail("chat", parsed.status().message());
            source = std::move(*text);
        }
        auto client = connect(f->client, "llmq chat");
        if (!client) return fail("chat", client.error().message);
        // Without SA_RESTART, so that Ctrl-C interrupts a read at the prompt.
        struct sigaction action {};
        action.sa_handler = on_sigint;
        sigemptyset(&action.sa_mask);
        sigaction(SIGINT, &action, nullptr);
        LineEditor editor(&g_interrupted, default_history_file());
        say("llmq chat on instance " + f->client.instance + ", chat template: " +
            template_origin(**client, f->chat_template) + "\n/help lists the commands; /bye or Ctrl-D leaves.\n");
        std::string system = f->system;
        std::vector<ipc::ChatTurn> turns;
        // The conversation's images in turn order (each request sends them all, as it sends
        // every turn), and those waiting for the next message.
        std::vector<std::vector<uint8_t>> images, pending;
        if (std::string error; !read_image_files(f->images, 0, pending, error)) return fail("chat", error);
        if (!pending.empty())
            say("(" + std::to_string(pending.size()) + " image(s) will go with your first message)\n");
        std::string line;
        for (;;) {
            const LineEditor::Result read = editor.read(">>> ", &line);
            if (read == LineEditor::Result::end_of_input) {
                if (editor.editing()) say("\n");
                break;
            }
            if (read == LineEditor::Result::interrupted) {
                say("\n(Ctrl-C cancels a reply; to leave, type /bye or press Ctrl-D)\n");
                continue;
            }
            const size_t first = line.find_first_not_of(" \t\r");
            if (first == std::string::npos) continue;
            line = line.substr(first, line.find_last_not_of(" \t\r") - first + 1);
            if (line[0] == '/') {
                const std::string command = line.substr(0, line.find(' '));
                const std::string rest = command.size() < line.size() ? line.substr(command.size() + 1) : "";
                if (command == "/bye" || command == "/exit" || command == "/quit") break;
                if (command == "/help" || command == "/?") {
                    say(kChatHelp);
                } else if (command == "/clear") {
                    turns.clear();
                    images.clear();
                    pending.clear();
                    say("(conversation cleared)\n");
                } else if (command == "/image") {
                    // The daemon checks the image itself when the message goes.
                    if (rest.empty()) {
                        say("/image needs a file: /image PATH\n");
                    } else if (std::string error; !read_image_files({rest}, 0, pending, error)) {
                        say("(" + error + ")\n");
                    } else {
                        say("(image " + rest + " will go with your next message)\n");
                    }
                } else if (command == "/system") {
                    system = rest;
                    turns.clear();
                    images.clear();
                    say(system.empty() ? "(no system message; new conversation)\n"
                                       : "(system message set; new conversation)\n");
                } else {
                    const std::string near = closest_name(command, {"/help", "/system", "/clear", "/image", "/bye"});
                    say("unknown command " + command + (near.empty() ? "" : " (did you mean " + near + "?)") +
                        "; /help lists them\n");
                }
                continue;
            }
            std::vector<ipc::ChatTurn> conversation;
            if (!system.empty()) conversation.push_back({"system", system});
            conversation.insert(conversation.end(), turns.begin(), turns.end());
            const ipc::ChatTurn asked{"user", line, static_cast<uint32_t>(pending.size())};
            conversation.push_back(asked);
            // The daemon renders the template and tokenizes: only the template's markup
            // becomes control tokens, the typed line stays text; each image is a mark.
            auto rendered = (*client)->render_chat(conversation, true, source, std::chrono::seconds(30));
            if (!rendered && !pending.empty()) {  // e.g. a model without vision: this message only
                say("(error: " + rendered.error().message + "; the image(s) were dropped)\n");
                pending.clear();
                continue;
            }
            if (!rendered) return fail("chat", rendered.error().message);
            ipc::GenerateRequest req = to_ipc(f->sampling);
            req.prompt_is_tokens = true;
            req.prompt_tokens = std::move(rendered->tokens);
            req.images = images;
            req.images.insert(req.images.end(), pending.begin(), pending.end());
            g_interrupted = 0;
            auto id = (*client)->submit(req);
            if (!id && id.error().code == ipc::ErrorCode::invalid_argument) {  // e.g. images too large
                say("(error: " + id.error().message + (pending.empty() ? "" : "; the new image(s) were dropped") + ")\n");
                pending.clear();
                continue;
            }
            if (!id) return fail("chat", id.error().message);
            auto r = stream(**client, *id, false, true);
            if (!r) return fail("chat", r.error().message);
            print_text("\n");
            if (r->error_event) {  // this reply failed; the session goes on
                say("(error: " + r->error_event->text + (pending.empty() ? "" : "; the new image(s) were dropped") +
                    ")\n");
                pending.clear();
                continue;
            }
            if (r->final_event && r->final_event->finish_reason() == ipc::FinishReason::cancelled)
                say("(reply cancelled)\n");
            g_interrupted = 0;
            images.insert(images.end(), std::make_move_iterator(pending.begin()), std::make_move_iterator(pending.end()));
            pending.clear();
            turns.push_back(asked);
            turns.push_back({"assistant", r->text});
        }
        return kExitOk;
    };
}

}  // namespace llmq::cli
