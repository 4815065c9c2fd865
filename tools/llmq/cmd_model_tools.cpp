// llmq tokenize, llmq inspect, llmq plan: commands that read a model file and load nothing
// else.
#include <map>
#include <memory>
#include <sstream>

#include "cli_common.hpp"
#include "commands.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/memory_planner.hpp"
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
    app->add_option("--model,-m", f->model, "GGUF model or vocabulary file")->required();
    app->add_option("--text", f->text, "Text to tokenize")->required();
    app->add_flag("--no-bos", f->no_bos, "Do not prepend BOS");
    app->add_flag("--special", f->special, "Parse control tokens written in the text");
    app->add_flag("--json", f->json, "Print a JSON array");
    return [f]() -> int {
        GgufFile::Options opts;
        opts.require_data = false;
        auto file = GgufFile::open(f->model, opts);
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

Command add_inspect(CLI::App& root) {
    struct Flags {
        std::string path;
        bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("inspect", "Show a GGUF model's architecture, shapes and types");
    app->add_option("path", f->path, "GGUF file")->required();
    app->add_flag("--json", f->json, "Print JSON");
    return [f]() -> int {
        GgufFile::Options opts;
        opts.require_data = false;
        auto file = GgufFile::open(f->path, opts);
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
        j["gguf_version"] = g.version();
        j["has_data"] = g.has_data();
        j["data_offset"] = g.data_offset();
        j["data_bytes"] = g.data_bytes();
        j["data_bytes_present"] = g.data_bytes_present();
        // Some tensor data but not all of it: a broken copy, not a header-only file.
        const bool truncated = !g.has_data() && g.data_bytes_present() > 0;
        j["truncated"] = truncated;
        const std::string cut = "truncated: " + std::to_string(g.data_bytes_present()) + " of " +
                                std::to_string(g.data_bytes()) + " bytes of tensor data present";
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
        o << g.path() << ": GGUF v" << g.version()
          << (g.has_data() ? "" : truncated ? " (" + cut + ")" : " (header only)") << "\n";
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
        std::string model, config, devices, vision;
        std::optional<int32_t> tensor, pipeline;
        bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand(
        "plan", "Show how a model would be split over devices and whether it fits (loads nothing)");
    app->add_option("--model,-m", f->model, "GGUF file (a header-only file is enough)");
    app->add_option("--vision", f->vision, "LLaVA-style vision projector (mmproj) GGUF; counted on the first device");
    app->add_option("--config,-c", f->config, "llmq TOML config file");
    app->add_option("--devices", f->devices, "Devices to plan for, e.g. 4x80GiB (default: this host's)");
    app->add_option("--tensor", f->tensor, "Tensor-parallel size")->check(CLI::Range(1, 4096));
    app->add_option("--pipeline", f->pipeline, "Pipeline-parallel size")->check(CLI::Range(1, 4096));
    app->add_flag("--json", f->json, "Print JSON");
    return [f]() -> int {
        Config config;
        if (!f->config.empty()) {
            auto c = load_config_file(f->config);
            if (!c) return fail("plan", c.status().message());
            config = *c;
        }
        if (!f->model.empty()) config.model.path = f->model;
        if (config.model.path.empty()) return fail("plan", "no model: give --model PATH");
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
        GgufFile::Options opts;
        opts.require_data = false;
        auto file = GgufFile::open(config.model.path, opts);
        if (!file) return fail("plan", file.status().message());
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
        auto plan = plan_memory(*layout, devices, planner_input(config));
        if (!plan) return fail("plan", plan.status().message());
        if (f->json) {
            nlohmann::json j = plan->to_json();
            j["model"] = config.model.path;
            j["parameters"] = layout->parameter_count();
            print_line(j.dump(2));
        } else {
            print_text(plan->to_text());
        }
        return plan->fits ? 0 : 2;
    };
}

}  // namespace llmq::cli
