// llmq-bench-engine: prefill and decode tokens/s of the in-process engine on a model shape
// given on the command line, each beside the machine's limit measured in the same run.
//
//   decode limit  = memory bandwidth / weight bytes one decode token reads
//                   (with S sequences per step: S times that, capped by the FLOP limit)
//   prefill limit = GEMM FLOP rate / FLOPs of the prompt (2 x matmul parameters per token,
//                   the LM head once, causal attention), in prompt tokens per second
//
// The limits are measured with as many threads as the engine's devices use. Also prints the
// memory plan per device, what each device allocated, and the process's resident memory after
// load and after generation. A benchmark prints figures; it never fails on them.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench_model.hpp"
#include "machine_limits.hpp"
#include "process_memory.hpp"
#include "llmq/kernels/gemm_units.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_runtime.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using namespace llmq;

double seconds_between(Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

// Records when the first and the last token of one request arrived.
class TimingSink final : public RequestSink {
public:
    void on_token(int32_t, std::string_view, float) override {
        const auto now = Clock::now();
        if (tokens_ == 0) first_ = now;
        last_ = now;
        ++tokens_;
    }
    void on_finish(const FinishInfo& info) override {
        info_ = info;
        done_ = true;
    }
    bool done() const { return done_; }
    int tokens() const { return tokens_; }
    Clock::time_point first() const { return first_; }
    Clock::time_point last() const { return last_; }
    const FinishInfo& info() const { return info_; }

private:
    bool done_ = false;
    int tokens_ = 0;
    Clock::time_point first_, last_;
    FinishInfo info_;
};

struct RunFigures {
    double prefill_tokens_per_s = 0;
    double decode_tokens_per_s = 0;
    double engine_prefill_tokens_per_s = 0;  // the engine's own timings (first sequence)
    double engine_decode_tokens_per_s = 0;
    int generated = 0;
};

// Prompt ids away from the control tokens at the start of the vocabulary, distinct per
// sequence so no two sequences are the same work.
std::vector<int32_t> prompt_tokens(int32_t count, int32_t sequence, int32_t n_vocab) {
    std::vector<int32_t> ids(static_cast<size_t>(count));
    const int32_t low = std::min<int32_t>(300, n_vocab / 2);
    uint32_t state = 2654435761u * static_cast<uint32_t>(sequence + 1);
    for (int32_t& id : ids) {
        state = state * 1664525u + 1013904223u;
        id = low + static_cast<int32_t>((state >> 8) % static_cast<uint32_t>(n_vocab - low));
    }
    return ids;
}

// One round: `sequences` requests of `prompt` tokens each, `decode` greedy tokens each,
// submitted together and stepped until all finish.
Expected<RunFigures> run_round(Engine& engine, int32_t sequences, int32_t prompt, int32_t decode,
                               int32_t n_vocab, int round) {
    std::vector<std::shared_ptr<TimingSink>> sinks;
    for (int32_t s = 0; s < sequences; ++s) {
        GenerateRequest r;
        r.prompt_tokens = prompt_tokens(prompt, s + 1000 * round, n_vocab);
        r.sampling.temperature = 0;
        r.sampling.max_tokens = decode;
        r.sampling.ignore_eos = true;
        sinks.push_back(std::make_shared<TimingSink>());
        auto id = engine.submit(std::move(r), sinks.back());
        if (!id) return id.status();
    }
    const auto start = Clock::now();
    for (;;) {
        bool all = true;
        for (const auto& s : sinks) all = all && s->done();
        if (all) break;
        engine.step();
    }
    RunFigures f;
    Clock::time_point prefilled = start, end = start;
    for (const auto& s : sinks) {
        if (s->info().reason == FinishReason::error)
            return internal_error("generation failed: " + s->info().error);
        prefilled = std::max(prefilled, s->first());
        end = std::max(end, s->last());
        f.generated += s->tokens();
    }
    f.prefill_tokens_per_s = double(prompt) * sequences / seconds_between(start, prefilled);
    if (decode > 1 && end > prefilled)
        f.decode_tokens_per_s = double(f.generated - sequences) / seconds_between(prefilled, end);
    f.engine_prefill_tokens_per_s = sinks[0]->info().timings.prefill_tokens_per_s;
    f.engine_decode_tokens_per_s = sinks[0]->info().timings.decode_tokens_per_s;
    return f;
}

std::string parallel_text(const std::optional<int>& v) { return v ? std::to_string(*v) : "auto"; }

}  // namespace

int main(int argc, char** argv) {
    bench::ModelChoice model_choice;
    int32_t prompt = 128, decode = 128, sequences = 1;
    int cpu = 1, threads_per_device = 0, repeat = 3, limit_repeats = 2;
    std::optional<int> tensor, pipeline;
    bool no_limits = false, bf16_dot = false;
    CLI::App app{"llmq-bench-engine: prefill and decode tokens/s of the in-process engine, each "
                 "beside the machine's limit measured in the same run."};
    bench::add_model_options(app, model_choice);
    app.add_option("--prompt-tokens", prompt, "prefill length")->check(CLI::Range(1, 1 << 16))->capture_default_str();
    app.add_option("--decode-tokens", decode, "tokens generated per sequence")->check(CLI::Range(1, 1 << 16))->capture_default_str();
    app.add_option("--sequences", sequences, "sequences run together (batched decode)")->check(CLI::Range(1, 4096))->capture_default_str();
    app.add_option("--cpu", cpu, "CPU devices ([devices] cpu)")->check(CLI::Range(1, 1024))->capture_default_str();
    app.add_option("--threads-per-device", threads_per_device, "[devices] cpu_threads_per_device; 0 = cores / devices")
        ->check(CLI::Range(0, 1024))->capture_default_str();
    app.add_option("--tensor", tensor, "[parallel] tensor (default auto)")->check(CLI::Range(1, 1024));
    app.add_option("--pipeline", pipeline, "[parallel] pipeline (default auto)")->check(CLI::Range(1, 1024));
    app.add_option("--repeat", repeat, "measured rounds; the best is printed")->check(CLI::Range(1, 100))->capture_default_str();
    app.add_option("--limit-repeats", limit_repeats, "repetitions of each machine-limit probe")->check(CLI::Range(1, 20))->capture_default_str();
    app.add_flag("--bf16-dot", bf16_dot,
                 "[plugins.gemm-cpu] bf16_dot_products = true: bf16 weights run vdpbf16ps on x rounded to bf16");
    app.add_flag("--no-limits", no_limits, "skip the machine-limit probes (for profiling the engine alone)");
    CLI11_PARSE(app, argc, argv);
    log::set_level(log::level::warn);

    auto model = bench::BenchModel::prepare(model_choice);
    if (!model) {
        std::fprintf(stderr, "llmq-bench-engine: %s\n", model.status().message().c_str());
        return 1;
    }
    auto cost = bench::token_cost(model->path());
    if (!cost) {
        std::fprintf(stderr, "llmq-bench-engine: %s\n", cost.status().message().c_str());
        return 1;
    }

    Config config;
    config.model.path = model->path();
    const int32_t context = (prompt + decode + 15) / 16 * 16;
    config.model.context_length = static_cast<uint32_t>(context);
    config.devices.cpu = cpu;
    config.devices.cpu_threads_per_device = threads_per_device;
    config.parallel.tensor = tensor;
    config.parallel.pipeline = pipeline;
    config.scheduler.max_running_sequences = sequences;
    config.scheduler.max_tokens_per_step = std::max(512, prompt * sequences);
    config.scheduler.prefill_chunk = prompt;  // the whole prompt in one step
    config.scheduler.max_new_tokens = std::max(decode, 8);
    if (bf16_dot) config.plugins.tables["gemm-cpu"] = "bf16_dot_products = true\n";
    if (Status s = validate_config(config); !s.ok()) {
        std::fprintf(stderr, "llmq-bench-engine: %s\n", s.message().c_str());
        return 1;
    }

    const bench::ProcessMemory before_load = bench::ProcessMemory::now();
    auto runtime = ModelRuntime::load(config);
    if (!runtime) {
        std::fprintf(stderr, "llmq-bench-engine: %s\n", runtime.status().message().c_str());
        return 1;
    }
    ModelRuntime& rt = **runtime;
    const bench::ProcessMemory after_load = bench::ProcessMemory::now();
    const MemoryPlan& plan = rt.plan();
    int threads = 0;
    for (int32_t i = 0; i < plan.parallel.devices(); ++i) threads += rt.devices()[static_cast<size_t>(i)]->info().threads;

    std::printf("llmq-bench-engine\n");
    std::printf("model     %s%s: dim %u, layers %u, heads %u, head_dim %u, vocab %u, weights %s\n",
                model->path().c_str(), model->temporary() ? " (made for this run, removed at exit)" : "",
                cost->n_embd, cost->n_layer, cost->n_head, cost->head_dim, cost->n_vocab,
                cost->weight_dtype.c_str());
    std::printf("          %s of weights in the file; a decode token reads %s; %.3f G matmul parameters per token\n",
                bench::format_bytes(cost->file_weight_bytes).c_str(),
                bench::format_bytes(cost->decode_weight_bytes).c_str(), double(cost->layer_matmul_params) / 1e9);
    std::printf("split     %d CPU device(s), tensor %d (asked %s) x pipeline %d (asked %s), %d thread(s) in all, "
                "loaded in %.2f s\n",
                cpu, plan.parallel.tensor, parallel_text(tensor).c_str(), plan.parallel.pipeline,
                parallel_text(pipeline).c_str(), threads, rt.load_seconds());
    std::printf("run       %d sequence(s) x (%d prompt + %d decode tokens), greedy, best of %d rounds after a warm-up\n",
                sequences, prompt, decode, repeat);
    std::printf("\nper device (planned by the memory planner; allocated = what the device counts now)\n");
    std::printf("  %-10s %5s %4s %9s %12s %12s %12s %12s\n", "device", "stage", "rank", "layers", "weights",
                "kv cache", "workspace", "allocated");
    for (size_t i = 0; i < plan.devices.size(); ++i) {
        const DevicePlan& d = plan.devices[i];
        const uint64_t allocated = i < rt.devices().size() ? rt.devices()[i]->memory_used() : 0;
        std::printf("  %-10s %5d %4d %4d-%-4d %12s %12s %12s %12s\n", d.device.c_str(), d.stage, d.rank,
                    d.layer_begin, d.layer_end, bench::format_bytes(d.weights).c_str(),
                    bench::format_bytes(d.kv).c_str(), bench::format_bytes(d.workspace).c_str(),
                    bench::format_bytes(allocated).c_str());
    }
    std::printf("process   before load: %s\n", before_load.to_text().c_str());
    std::printf("          after load:  %s\n", after_load.to_text().c_str());
    std::fflush(stdout);

    // Limits before and after the rounds, the better of each kept.
    bench::MachineLimits limits;
    if (!no_limits) limits = bench::MachineLimits::measure(std::max(threads, 1), limit_repeats);

    Engine& engine = rt.engine();
    const int32_t n_vocab = static_cast<int32_t>(cost->n_vocab);
    if (auto warm = run_round(engine, 1, std::min<int32_t>(prompt, 16), std::min<int32_t>(decode, 4), n_vocab, 99);
        !warm) {
        std::fprintf(stderr, "llmq-bench-engine: warm-up: %s\n", warm.status().message().c_str());
        return 1;
    }
    RunFigures best;
    std::printf("\nrounds (tokens/s)   prefill   decode   [engine's own timings: prefill, decode]\n");
    for (int r = 0; r < repeat; ++r) {
        auto f = run_round(engine, sequences, prompt, decode, n_vocab, r);
        if (!f) {
            std::fprintf(stderr, "llmq-bench-engine: %s\n", f.status().message().c_str());
            return 1;
        }
        std::printf("  round %-2d       %9.1f %8.2f   [%.1f, %.2f]\n", r + 1, f->prefill_tokens_per_s,
                    f->decode_tokens_per_s, f->engine_prefill_tokens_per_s, f->engine_decode_tokens_per_s);
        std::fflush(stdout);
        best.prefill_tokens_per_s = std::max(best.prefill_tokens_per_s, f->prefill_tokens_per_s);
        best.decode_tokens_per_s = std::max(best.decode_tokens_per_s, f->decode_tokens_per_s);
    }
    const bench::ProcessMemory after_generation = bench::ProcessMemory::now();

    std::printf("\nprocess   after generation: %s\n", after_generation.to_text().c_str());
    if (no_limits) {
        std::printf("prefill %.1f tokens/s, decode %.2f tokens/s (limits not measured: --no-limits)\n",
                    best.prefill_tokens_per_s, best.decode_tokens_per_s);
        return 0;
    }
    limits.keep_best(bench::MachineLimits::measure(std::max(threads, 1), limit_repeats));
    const double decode_bandwidth_limit = limits.bandwidth_gbs * 1e9 / double(cost->decode_weight_bytes);
    const double decode_flop_limit = limits.gemm_gflops * 1e9 / (2.0 * double(cost->layer_matmul_params + cost->lm_head_params));
    const double decode_limit = std::min(decode_bandwidth_limit * sequences, decode_flop_limit);
    const double prefill_seconds_at_gemm = cost->prefill_flops(prompt) / (limits.gemm_gflops * 1e9);
    const double prefill_seconds_at_fma = cost->prefill_flops(prompt) / (limits.fma_peak_gflops * 1e9);
    const double prefill_limit = double(prompt) / prefill_seconds_at_gemm;
    const double prefill_fma_limit = double(prompt) / prefill_seconds_at_fma;

    std::printf("machine   %s (best of before and after the rounds)\n", limits.to_text().c_str());
    std::printf("\n%-8s %12s %14s %7s   %s\n", "", "tokens/s", "limit", "ratio", "limit from");
    std::printf("%-8s %12.1f %14.1f %7.3f   f32 GEMM rate / (%.2f GFLOP per %d-token prompt)\n", "prefill",
                best.prefill_tokens_per_s, prefill_limit, best.prefill_tokens_per_s / prefill_limit,
                cost->prefill_flops(prompt) / 1e9, prompt);
    std::printf("%-8s %12s %14.1f %7.3f   FMA peak, same FLOPs\n", "", "", prefill_fma_limit,
                best.prefill_tokens_per_s / prefill_fma_limit);
    // The peak of the unit the prefill GEMMs run on (the kernels' choice for this weight type and
    // prompt length), the same FLOPs.
    const char* unit = "FMA";
    double unit_peak = limits.fma_peak_gflops;
    if (cost->weight_dtype == "bf16" && bf16_dot && limits.bf16_dot_peak_gflops > 0) {
        unit = "vdpbf16ps";
        unit_peak = limits.bf16_dot_peak_gflops;
    } else if (cost->weight_dtype == "q8_0" && kernels::gemm_quantizes_x(limits.isa, kernels::dtype::q8_0, prompt, cost->n_embd) &&
               limits.int8_dot_peak_gops > 0) {
        unit = "vpdpbusd";
        unit_peak = limits.int8_dot_peak_gops;
    }
    const double prefill_unit_limit = double(prompt) / (cost->prefill_flops(prompt) / (unit_peak * 1e9));
    std::printf("%-8s %12s %14.1f %7.3f   peak of the unit in use (%s, %.1f G/s), same FLOPs\n", "", "",
                prefill_unit_limit, best.prefill_tokens_per_s / prefill_unit_limit, unit, unit_peak);
    std::printf("%-8s %12.2f %14.2f %7.3f   %s\n", "decode", best.decode_tokens_per_s, decode_limit,
                best.decode_tokens_per_s / decode_limit,
                sequences == 1 ? "memory bandwidth / weight bytes per token"
                               : "min(sequences x bandwidth / weight bytes, GEMM rate / 2 x params)");
    if (sequences > 1)
        std::printf("%-8s %12s %14.2f %7.3f   one sequence's bandwidth limit (weights read once per step)\n", "",
                    "", decode_bandwidth_limit, best.decode_tokens_per_s / decode_bandwidth_limit);
    std::printf("          (KV cache adds %s per position read each decode token: %.2f%% of the weights at position %d)\n",
                bench::format_bytes(cost->kv_bytes_per_position).c_str(),
                100.0 * double(cost->kv_bytes_per_position) * (prompt + decode) / double(cost->decode_weight_bytes),
                prompt + decode);
    if (cost->decode_weight_bytes < 2 * limits.last_level_cache_bytes)
        std::printf("NOTE: the weights are smaller than twice the last-level cache: decode reads them from cache, "
                    "and the memory-bandwidth limit does not bound it\n");
    if (sequences == 1)
        std::printf("decode at %s half of the bandwidth limit (%.1f%%)\n",
                    best.decode_tokens_per_s >= 0.5 * decode_limit ? "or above" : "BELOW",
                    100.0 * best.decode_tokens_per_s / decode_limit);
    return 0;
}
