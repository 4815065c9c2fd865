// llmq quantize IN OUT TYPE: converts the weights of a GGUF model to a block type (or a mix
// such as q4_k_m) with llmq's own quantizer; 1-D tensors and norms become F32, metadata is
// copied (general.file_type updated). A weight whose rows are not whole blocks of its target
// type falls back to q8_0 (rows of 32) or keeps its type, and the command says so.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "cli_common.hpp"
#include "commands.hpp"
#include "progress_display.hpp"
#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "llmq/runtime/weight_mix.hpp"

namespace llmq::cli {
namespace {

bool is_matrix_weight(const GgufTensor& t) {
    return t.shape.size() >= 2 && t.name.find("norm") == std::string::npos;
}

int64_t layer_count(const GgufFile& g) {
    int64_t layers = 0;
    for (const auto& t : g.tensors())
        if (t.name.rfind("blk.", 0) == 0) layers = std::max<int64_t>(layers, std::atoll(t.name.c_str() + 4) + 1);
    return layers;
}

}  // namespace

Command add_quantize(CLI::App& root) {
    struct Flags {
        std::string in, out, type;
        bool json = false;
    };
    auto f = std::make_shared<Flags>();
    CLI::App* app = root.add_subcommand("quantize", "Convert a GGUF model's weights to another type (" +
                                                        weight_mix_names() + ")");
    app->add_option("IN", f->in, "GGUF model (F32, F16, BF16 or any type llmq reads)")->required();
    app->add_option("OUT", f->out, "GGUF file to write")->required();
    app->add_option("TYPE", f->type, "weight type or mix: " + weight_mix_names())->required();
    app->add_flag("--json", f->json, "Progress as JSON lines on stderr; the result as JSON on stdout");
    set_example(*app, "  llmq quantize model-f16.gguf model-q4_k_m.gguf q4_k_m");
    return [f]() -> int {
        const WeightMix* mix = find_weight_mix(f->type);
        if (mix == nullptr) return usage_error("quantize", "TYPE '" + f->type + "' is not one of " + weight_mix_names());
        auto file = GgufFile::open(f->in);
        if (!file) return fail("quantize", file.status().message());
        const GgufFile& g = **file;
        GgufWriter::Options options;
        options.alignment = g.alignment();
        options.fill_threads = host_online_cores();  // rows convert independently
        GgufWriter w(options);
        for (const auto& [key, value] : g.metadata()) w.add(key, value);
        w.set("general.file_type", GgufValue::u32(mix->file_type));
        const int64_t layers = layer_count(g);
        // Progress counts the bytes of the source tensors as their rows are converted.
        struct Progress {
            explicit Progress(bool json) : display(json) {}
            ProgressDisplay display;
            std::mutex lock;
            uint64_t converted = 0;
        };
        auto progress = std::make_shared<Progress>(f->json);
        uint64_t total = 0;
        for (const GgufTensor& t : g.tensors()) total += t.size_bytes;
        const bool tied = g.tensor("output.weight") == nullptr;
        for (const GgufTensor& t : g.tensors()) {
            kernels::dtype target = kernels::dtype::f32;
            if (is_matrix_weight(t)) {
                target = weight_mix_dtype(*mix, t.name, layers, tied);
                if (t.row_length() % kernels::dtype_info_of(target).block_values != 0) {
                    const kernels::dtype fallback = t.row_length() % 32 == 0 ? kernels::dtype::q8_0 : t.dtype;
                    std::fprintf(stderr, "%s\n", ("llmq quantize: " + t.name + ": rows of " + std::to_string(t.row_length()) +
                                " values are not whole " + kernels::dtype_name(target) + " blocks; writing " +
                                kernels::dtype_name(fallback)).c_str());
                    target = fallback;
                }
            }
            const kernels::dtype source = t.dtype;
            const int64_t n = t.row_length();
            const uint8_t* data = t.data;
            const size_t src_row = t.row_bytes();
            const std::string name = t.name;
            // Called from several threads at once, for different rows.
            GgufWriter::RowFill fill = [=](int64_t r, uint8_t* dst) {
                thread_local std::vector<float> row;
                row.resize(static_cast<size_t>(n));
                kernels::row_to_f32(source, data + static_cast<size_t>(r) * src_row, row.data(), n);
                kernels::row_from_f32(target, row.data(), dst, n);
                std::lock_guard<std::mutex> hold(progress->lock);
                progress->converted += src_row;
                progress->display({"quantizing", name, progress->converted, total, true});
            };
            Status s = w.add_tensor(t.name, *dtype_to_ggml_type(target), t.shape, std::move(fill));
            if (!s.ok()) return fail("quantize", t.name + ": " + s.message());
        }
        Status s = w.write(f->out);
        if (!s.ok()) return fail("quantize", s.message());
        if (progress->converted < total) progress->display({"quantizing", "", total, total, true});  // empty tensors
        std::error_code ec;
        const uint64_t bytes = std::filesystem::file_size(f->out, ec);
        if (f->json)
            print_line(nlohmann::json{{"out", f->out}, {"type", mix->name}, {"bytes", ec ? 0 : bytes}}.dump());
        else
            print_line("llmq quantize: wrote " + f->out + " (" + mix->name + ", " + format_bytes(ec ? 0 : bytes) +
                       ")");
        return kExitOk;
    };
}

}  // namespace llmq::cli
