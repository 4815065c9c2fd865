// llmq tokenize, llmq inspect, llmq plan: commands that read a model file and load nothing
// else.
#include <map>
#include <memory>
#include <sstream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "progress_display.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/memory_planner.hpp"
#include "llmq/runtime/model_file.hpp"
#include "llmq/runtime/model_runtime.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq::cli {

Command add_tokenize(CLI::App& root) {
    struct Flags {
        std::string model, text;
        bool no_bos = false, json = false, special = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("tokenize", "Print the token ids of a text");
    app->add_option("--model,-m", f->model, "GGUF model or vocabulary file, or safetensors directory")->required();
    app->add_option("--text", f->text, "Text to tokenize")->required();
    app->add_flag("--no-bos", f->no_bos, "Do not prepend BOS");
    app->add_flag("--special", f->special, "Parse control tokens written in the text");
    app->add_flag("--json", f->json, "Print a JSON array");
    set_example(*app, "  llmq tokenize -m model.gguf --text \"Hello world\" --json");
    return [f]() -> int {
        GgufFile::Options opts;
        opts.require_data = false;
        auto file = open_model_file(f->model, opts);
        if (!file) return fail("tokenize", file.status().message());
        auto vocab = vocab_from_gguf(**file);
        if (!vocab) return fail("tokenize", vocab.status().message());
        auto tok = Tokenizer::create(std::move(*vocab));
        if (!tok) return fail("tokenize", tok.status().message());
        auto ids = (*tok)->encode(f->text, !f->no_bos, f->special);
        if (f->json) {
            print_line(nlohmann::json(ids).dump());
        } else {
            std::ostringstream o;
            for (size_t i = 0; i < ids.size(); ++i) o << (i ? " " : "") << ids[i];
            print_line(o.str());
        }
        return 0;
    };
}

namespace {

// What a user asks of a model file before its shapes: its name, its tokenizer, the special
// tokens (id and text) and the chat template, from the GGUF metadata.
nlohmann::json model_metadata(const GgufFile& g) {
    auto text = [&](const char* key) -> std::string {
        const GgufValue* v = g.find(key);
        return v && v->as_string() ? *v->as_string() : "";
    };
    nlohmann::json j;
    j["name"] = text("general.name");
    j["tokenizer"] = {{"model", text("tokenizer.ggml.model")}, {"pre", text("tokenizer.ggml.pre")}};
    const GgufValue* tokens = g.find("tokenizer.ggml.tokens");
    j["tokenizer"]["tokens"] = tokens ? tokens->array_size() : 0;
    nlohmann::json special = nlohmann::json::object();
    for (const char* role : {"bos", "eos", "eot", "eom", "unknown", "padding", "sep", "mask"}) {
        const GgufValue* id = g.find(std::string("tokenizer.ggml.") + role + "_token_id");
        if (!id || !id->as_u64()) continue;
        const uint64_t n = *id->as_u64();
        nlohmann::json t{{"id", n}};
        if (tokens && n < tokens->strings().size()) t["text"] = tokens->strings()[n];
        special[role] = t;
    }
    j["special_tokens"] = special;
    j["chat_template"] = text("tokenizer.chat_template");
    return j;
}

// A chat template in a few words: its length and the first line (templates are long).
std::string template_summary(const std::string& tpl) {
    if (tpl.empty()) return "none in the file (chat needs --chat-template or [model] chat_template)";
    std::string first = tpl.substr(0, tpl.find('\n'));
    if (first.size() > 72) first = first.substr(0, 69) + "...";
    return std::to_string(tpl.size()) + " characters: " + first + (tpl.find('\n') != std::string::npos ? " ..." : "");
}

}  // namespace

Command add_inspect(CLI::App& root) {
    struct Flags {
        std::string path;
        bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("inspect", "Show a model's architecture, shapes and types (GGUF file or safetensors directory)");
    app->add_option("path", f->path, "GGUF file or Hugging Face safetensors directory")->required();
    app->add_flag("--json", f->json, "Print JSON (the chat template in full)");
    set_example(*app, "  llmq inspect model.gguf\n  llmq inspect model.gguf --json\n  llmq inspect ./Llama-3.2-1B/");
    return [f]() -> int {
        GgufFile::Options opts;
        opts.require_data = false;
        auto file = open_model_file(f->path, opts);
        if (!file) return fail("inspect", file.status().message());
        const GgufFile& g = **file;
        std::map<std::string, std::pair<uint64_t, uint64_t>> by_type;  // type → count, bytes
        uint64_t total = 0;
        for (const auto& t : g.tensors()) {
            auto& e = by_type[ggml_type_name(t.ggml_type)];
            e.first += 1;
            e.second += t.size_bytes;
            total += t.size_bytes;
        }
        auto hp = read_llama_hparams(g);
        nlohmann::json j;
        j["path"] = g.path();
        j["format"] = g.format();
        if (g.format() == "GGUF") j["gguf_version"] = g.version();
        j["has_data"] = g.has_data();
        j["data_offset"] = g.data_offset();
        j["data_bytes"] = g.data_bytes();
        j["data_bytes_present"] = g.data_bytes_present();
        // Some tensor data but not all of it: a broken copy, not a header-only file.
        const bool truncated = !g.has_data() && g.data_bytes_present() > 0;
        j["truncated"] = truncated;
        const std::string cut = "truncated: " + std::to_string(g.data_bytes_present()) + " of " +
                                std::to_string(g.data_bytes()) + " bytes of tensor data present";
        j["metadata"] = model_metadata(g);
        j["tensor_count"] = g.tensors().size();
        j["tensor_bytes"] = total;
        for (const auto& [type, e] : by_type) j["types"][type] = {{"tensors", e.first}, {"bytes", e.second}};
        if (hp) {
            j["architecture"] = hp->arch;
            j["hparams"] = {{"vocab", hp->n_vocab}, {"dim", hp->n_embd}, {"layers", hp->n_layer},
                            {"heads", hp->n_head}, {"kv_heads", hp->n_head_kv}, {"ffn", hp->n_ff},
                            {"head_dim", hp->head_dim}, {"context", hp->n_ctx_train},
                            {"rms_eps", hp->rms_eps}, {"rope_theta", hp->rope_theta},
                            {"rope_freq_scale", hp->rope_freq_scale}};
            auto layout = load_llama_layout(g);
            if (layout) {
                j["parameters"] = layout->parameter_count();
                j["tied_output"] = layout->hp.tied_output;
            } else {
                j["layout_error"] = layout.status().message();
            }
        } else {
            j["hparams_error"] = hp.status().message();
        }
        if (f->json) {
            print_line(j.dump(2));
            return truncated ? fail("inspect", g.path() + ": " + cut) : 0;
        }
        std::ostringstream o;
        o << g.path() << (g.format() == "GGUF" ? ": GGUF v" + std::to_string(g.version()) : ": " + g.format() + " directory")
          << (g.has_data() ? "" : truncated ? " (" + cut + ")" : " (header only)") << "\n";
        const nlohmann::json& meta = j["metadata"];
        o << "name: " << (meta["name"].get<std::string>().empty() ? "(none)" : meta["name"].get<std::string>()) << "\n"
          << "tokenizer: " << meta["tokenizer"]["model"].get<std::string>()
          << (meta["tokenizer"]["pre"].get<std::string>().empty() ? "" : " (pre-tokenizer " + meta["tokenizer"]["pre"].get<std::string>() + ")")
          << ", " << meta["tokenizer"]["tokens"].get<uint64_t>() << " tokens\n";
        if (!meta["special_tokens"].empty()) {
            o << "special tokens:";
            for (const auto& [role, t] : meta["special_tokens"].items())
                o << " " << role << " " << t["id"].get<uint64_t>()
                  << (t.contains("text") ? " " + nlohmann::json(t["text"]).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) : "");
            o << "\n";
        }
        o << "chat template: " << template_summary(meta["chat_template"].get<std::string>()) << "\n";
        if (hp) {
            o << "architecture: " << hp->arch << "\n"
              << "  vocab " << hp->n_vocab << ", dim " << hp->n_embd << ", layers " << hp->n_layer
              << ", heads " << hp->n_head << ", kv heads " << hp->n_head_kv << ", ffn " << hp->n_ff
              << ", head dim " << hp->head_dim << ", context " << hp->n_ctx_train << "\n"
              << "  rms eps " << hp->rms_eps << ", rope theta " << hp->rope_theta
              << ", rope freq scale " << hp->rope_freq_scale << "\n";
            if (j.contains("parameters"))
                o << "  parameters " << j["parameters"].get<uint64_t>()
                  << (j["tied_output"].get<bool>() ? " (output tied to embedding)" : "") << "\n";
            else
                o << "  layout: " << j["layout_error"].get<std::string>() << "\n";
        } else {
            o << "architecture: " << hp.status().message() << "\n";
        }
        o << "tensors: " << g.tensors().size() << ", " << format_bytes(total) << "\n";
        for (const auto& [type, e] : by_type)
            o << "  " << type << ": " << e.first << " tensors, " << format_bytes(e.second) << "\n";
        print_text(o.str());
        return truncated ? fail("inspect", g.path() + ": " + cut + " (an interrupted download or copy?)") : 0;
    };
}

Command add_plan(CLI::App& root) {
    struct Flags {
        ModelFlags model;
        std::string devices;
        std::string vision;
        std::optional<int32_t> tensor, pipeline;
        bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand(
        "plan", "Show how a model would be split over devices and whether it fits (loads nothing)");
    add_model_flags(*app, f->model, "GGUF file (a header-only file is enough) or safetensors directory", false);
    app->add_option("--vision", f->vision, "LLaVA-style vision projector (mmproj) GGUF; counted on the first device");
    app->add_option("--devices", f->devices, "Devices to plan for, e.g. 4x80GiB (default: this host's)");
    app->add_option("--tensor", f->tensor, "Tensor-parallel size")->check(CLI::Range(1, 4096));
    app->add_option("--pipeline", f->pipeline, "Pipeline-parallel size")->check(CLI::Range(1, 4096));
    app->add_flag("--json", f->json, "Print JSON");
    set_example(*app, "  llmq plan -m llama70b.gguf --devices 4x80GiB\n"
                      "  llmq plan -m model.gguf -c 32768 --tensor 2 --json");
    return [f]() -> int {
        auto loaded = model_config(f->model);
        if (!loaded) return fail("plan", loaded.status().message());
        Config config = std::move(*loaded);
        if (config.model.path.empty()) return usage_error("plan", "no model: give --model PATH");
        if (f->tensor) config.parallel.tensor = *f->tensor;
        if (f->pipeline) config.parallel.pipeline = *f->pipeline;
        if (!f->vision.empty()) config.model.vision = f->vision;
        if (!config.model.vision.empty()) {
            GgufFile::Options header_only;
            header_only.require_data = false;
            auto vf = GgufFile::open(config.model.vision, header_only);
            if (!vf) return fail("plan", vf.status().message());
            if (auto clip = ClipModel::from_file(*vf); !clip) return fail("plan", clip.status().message());
        }
        ProgressDisplay progress(f->json);
        progress({"planning", "reading the header", 0, 3, false});
        GgufFile::Options opts;
        opts.require_data = false;
        auto file = open_model_file(config.model.path, opts);
        if (!file) return fail("plan", file.status().message());
        progress({"planning", "reading the model layout", 1, 3, false});
        auto layout = load_llama_layout(**file);
        if (!layout) return fail("plan", layout.status().message());
        std::vector<DeviceInfo> devices;
        if (!f->devices.empty()) {
            auto d = parse_device_list(f->devices);
            if (!d) return fail("plan", d.status().message());
            devices = *d;
        } else {
            devices = cpu_device_infos(cpu_device_options(config.devices));
        }
        progress({"planning", "splitting over the devices", 2, 3, false});
        auto plan = plan_memory(*layout, devices, planner_input(config));
        if (!plan) return fail("plan", plan.status().message());
        progress({"planning", "done", 3, 3, false});
        if (f->json) {
            nlohmann::json j = plan->to_json();
            j["model"] = config.model.path;
            j["parameters"] = layout->parameter_count();
            print_line(j.dump(2));
        } else {
            print_text(plan->to_text());
        }
        return plan->fits ? kExitOk : kExitRuntimeError;
    };
}

}  // namespace llmq::cli
