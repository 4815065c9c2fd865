// llmq-bench-vision: images/s through a LLaVA-style encoder (CLIP tower + MLP projector in the
// vision-cpu plugin, preprocessing included) on one CPU device, beside the encoder's FLOP count
// and the f32 GEMM rate measured in the same run with the same threads. The default shape is
// ViT-B/16 at 224 px (12 layers, 11 run) with a 2048-wide projector, F16 weights. With
// --mllama: Llama 3.2 Vision's tiled encoder instead (MllamaVisionModel: all max_tiles tiles,
// both encoders and mm.0) of the shape the same flags give, F16 weights; its first-token run
// is a random mllama file holding a text model as wide as mm.0's output (--text-layers, the
// cross-attention layers at --text-cross-layers) and that encoder, with "<|image|>" in the
// prompt: decoded, tiled, encoded, the image K/V of the cross layers computed, prefilled.
// Its FLOPs beside it: the encoder's, the self-attention layers' as below, and the cross
// layers' (q, o and the MLP per prompt row; K and V once over the image's rows; attention of
// every prompt row over every image row, padded tiles included, an upper bound).
//
// Then the time to first token with one image: a random text model as wide as the projector
// (--text-layers of TinyLlama's width by default) with the projector as its [model] vision,
// in the in-process engine on the same device shape; one request whose prompt holds a PNG
// (decoded, preprocessed, encoded, its rows and the text prefilled, one token sampled), from
// submit to its first token. Beside it: the encoder's and the prefill's FLOPs, the time the
// GEMM rate of this run needs for them, and the ratio.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>
#include <optional>

#include "bench_model.hpp"
#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/mllama_vision.hpp"
#include "llmq/runtime/model_runtime.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/vision_encoder.hpp"
#include "random_clip.hpp"
#include "random_mllama_vision.hpp"

using namespace llmq;

namespace {

using Clock = std::chrono::steady_clock;

uint32_t crc32(const uint8_t* p, size_t n, uint32_t crc = 0) {
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) {
        crc ^= p[i];
        for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

// An 8-bit RGB PNG of `image`, its zlib stream made of stored (uncompressed) deflate blocks:
// what a client would send, without a compressor in the benchmark.
std::vector<uint8_t> png_of(const RgbImage& image) {
    std::vector<uint8_t> raw;
    const size_t row = size_t(image.width) * 3;
    for (int32_t y = 0; y < image.height; ++y) {
        raw.push_back(0);  // filter: none
        raw.insert(raw.end(), image.pixels.begin() + std::ptrdiff_t(y * row), image.pixels.begin() + std::ptrdiff_t((y + 1) * row));
    }
    std::vector<uint8_t> z{0x78, 0x01};
    for (size_t at = 0; at < raw.size();) {
        const size_t n = std::min<size_t>(65535, raw.size() - at);
        z.push_back(at + n == raw.size() ? 1 : 0);
        z.push_back(uint8_t(n));
        z.push_back(uint8_t(n >> 8));
        z.push_back(uint8_t(~n));
        z.push_back(uint8_t(~n >> 8));
        z.insert(z.end(), raw.begin() + std::ptrdiff_t(at), raw.begin() + std::ptrdiff_t(at + n));
        at += n;
    }
    uint32_t a = 1, b = 0;
    for (uint8_t v : raw) {
        a = (a + v) % 65521;
        b = (b + a) % 65521;
    }
    const uint32_t adler = (b << 16) | a;
    for (int k = 3; k >= 0; --k) z.push_back(uint8_t(adler >> (8 * k)));
    std::vector<uint8_t> out{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    auto be32 = [&](uint32_t v) {
        for (int k = 3; k >= 0; --k) out.push_back(uint8_t(v >> (8 * k)));
    };
    auto chunk = [&](const char* type, const std::vector<uint8_t>& data) {
        be32(uint32_t(data.size()));
        const size_t start = out.size();
        out.insert(out.end(), type, type + 4);
        out.insert(out.end(), data.begin(), data.end());
        be32(crc32(out.data() + start, out.size() - start));
    };
    std::vector<uint8_t> ihdr;
    for (uint32_t v : {uint32_t(image.width), uint32_t(image.height)})
        for (int k = 3; k >= 0; --k) ihdr.push_back(uint8_t(v >> (8 * k)));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});
    chunk("IHDR", ihdr);
    chunk("IDAT", z);
    chunk("IEND", {});
    return out;
}

class FirstTokenSink final : public RequestSink {
public:
    void on_token(int32_t, std::string_view, float) override {
        if (!first_) first_ = Clock::now();
    }
    void on_finish(const FinishInfo& info) override {
        info_ = info;
        done_ = true;
    }
    bool done() const { return done_; }
    std::optional<Clock::time_point> first() const { return first_; }
    const FinishInfo& info() const { return info_; }

private:
    bool done_ = false;
    std::optional<Clock::time_point> first_;
    FinishInfo info_;
};

}  // namespace

namespace {

// Submit to first token of one request of `prompt` with the PNG, one token sampled greedily:
// the fastest of `repeat` runs after a warm-up (weights widened, scratch grown); the prompt's
// length in tokens into *prompt_tokens.
Expected<double> fastest_first_token(Engine& engine, const std::string& prompt, const std::vector<uint8_t>& png,
                                     int repeat, int32_t* prompt_tokens) {
    double best = 0;
    for (int r = 0; r <= repeat; ++r) {
        GenerateRequest req;
        req.prompt = prompt;
        req.images = {png};
        req.sampling.temperature = 0;
        req.sampling.max_tokens = 1;
        auto sink = std::make_shared<FirstTokenSink>();
        const auto submitted = Clock::now();
        auto id = engine.submit(std::move(req), sink);
        if (!id) return id.status();
        while (!sink->done()) engine.step();
        if (sink->info().reason == FinishReason::error) return internal_error("first-token run: " + sink->info().error);
        if (!sink->first()) return internal_error("first-token run: no token came");
        const double seconds = std::chrono::duration<double>(*sink->first() - submitted).count();
        *prompt_tokens = static_cast<int32_t>(sink->info().prompt_tokens.size());
        if (r > 0 && (best == 0 || seconds < best)) best = seconds;
    }
    return best;
}

// The first-token run (see the file comment). Prints its lines; errors name what failed.
Status time_to_first_token(const std::string& clip_path, bench::ModelChoice text, const RandomClipSpec& clip,
                           int threads, const RgbImage& image, int repeat, double gemm_gflops) {
    text.shape.dim = clip.projection_dim;
    text.shape.name = "llmq-bench-vision-text";
    auto model = bench::BenchModel::prepare(text);
    if (!model) return model.status().with_context("text model");
    auto cost = bench::token_cost(model->path());
    if (!cost) return cost.status();
    const std::vector<uint8_t> png = png_of(image);
    const std::string prompt = "USER: <image>\nWhat is in the picture? ASSISTANT:";
    const int32_t image_tokens = (clip.image_size / clip.patch_size) * (clip.image_size / clip.patch_size);

    Config config;
    config.model.path = model->path();
    config.model.vision = clip_path;
    config.model.context_length = static_cast<uint32_t>((image_tokens + 64 + 15) / 16 * 16);
    config.devices.cpu = 1;
    config.devices.cpu_threads_per_device = threads;
    config.scheduler.max_tokens_per_step = std::max(512, image_tokens + 64);
    config.scheduler.prefill_chunk = image_tokens + 64;  // the whole prompt in one step
    config.ipc.max_image_bytes = std::max<uint64_t>(config.ipc.max_image_bytes, png.size());
    LLMQ_TRY(validate_config(config));
    auto runtime = ModelRuntime::load(config);
    if (!runtime) return runtime.status();
    Engine& engine = (*runtime)->engine();

    int32_t prompt_tokens = 0;
    auto fastest = fastest_first_token(engine, prompt, png, repeat, &prompt_tokens);
    if (!fastest) return fastest.status();
    const double best = *fastest;
    const double encoder_flops = (*runtime)->vision()->model().flops_per_image();
    const double prefill_flops = cost->prefill_flops(prompt_tokens);
    const double bound = (encoder_flops + prefill_flops) / (gemm_gflops * 1e9);
    std::printf("time to first token with one image: text model dim %u, %u layers, ffn %s, vocab %u, %s weights; "
                "prompt %d tokens (%d of them the image's)\n",
                cost->n_embd, cost->n_layer, std::to_string(text.shape.ffn).c_str(), cost->n_vocab,
                cost->weight_dtype.c_str(), prompt_tokens, image_tokens);
    std::printf("  %.1f ms from submit to the first token (640x480 PNG of %zu bytes: decoded, preprocessed, encoded, "
                "prefilled; best of %d after a warm-up)\n",
                best * 1000, png.size(), repeat);
    std::printf("  %.2f GFLOP encoder + %.2f GFLOP prefill = %.2f GFLOP, %.1f ms at the %.1f GFLOP/s GEMM rate of this "
                "run: %.2f of the GEMM rate\n",
                encoder_flops / 1e9, prefill_flops / 1e9, (encoder_flops + prefill_flops) / 1e9, bound * 1000,
                gemm_gflops, bound / best);
    return {};
}

}  // namespace

namespace {

// --mllama's first-token run (see the file comment).
Status mllama_time_to_first_token(RandomMllamaVisionSpec tower, bench::ModelChoice text,
                                  const std::vector<uint32_t>& cross_layers, int threads, const RgbImage& image,
                                  int repeat, double gemm_gflops, const std::string& path) {
    RandomLlamaSpec spec = text.shape;
    spec.arch = "mllama";
    spec.name = "llmq-bench-vision-mllama";
    spec.dim = tower.projection_dim;
    spec.dtype = kernels::dtype::f16;
    spec.context = 256;
    spec.rope_freqs = true;
    spec.cross_layers = cross_layers;
    tower.seed = spec.seed + 1;
    spec.vision = tower;
    LLMQ_TRY(write_random_llama(spec, path));
    const std::vector<uint8_t> png = png_of(image);

    Config config;
    config.model.path = path;
    config.model.context_length = 256;
    config.devices.cpu = 1;
    config.devices.cpu_threads_per_device = threads;
    config.ipc.max_image_bytes = std::max<uint64_t>(config.ipc.max_image_bytes, png.size());
    LLMQ_TRY(validate_config(config));
    auto runtime = ModelRuntime::load(config);
    if (!runtime) return runtime.status();
    Engine& engine = (*runtime)->engine();

    int32_t prompt_tokens = 0;
    auto fastest = fastest_first_token(engine, "<|image|>What is in the picture?", png, repeat, &prompt_tokens);
    if (!fastest) return fastest.status();
    const double best = *fastest;
    const LlamaLayout& l = (*runtime)->layout();
    const double p = prompt_tokens, rows = static_cast<double>(l.vision.rows_per_image);
    const double attention_width = static_cast<double>(l.hp.n_head) * l.hp.head_dim;
    double prefill = 2.0 * static_cast<double>(l.output->elements());  // the LM head, last row only
    size_t crossed = 0;
    for (const LlamaLayerTensors& t : l.layers) {
        const double per_row = static_cast<double>(t.wq->elements() + t.wo->elements() + t.ffn_gate->elements() +
                                                   t.ffn_up->elements() + t.ffn_down->elements());
        const double kv = static_cast<double>(t.wk->elements() + t.wv->elements());
        if (t.cross) {
            ++crossed;
            prefill += 2.0 * per_row * p + 2.0 * kv * rows + 4.0 * attention_width * p * rows;
        } else {
            prefill += 2.0 * (per_row + kv) * p + 4.0 * attention_width * (p * (p + 1) / 2);
        }
    }
    const double encoder = (*runtime)->mllama_vision()->flops_per_image();
    const double bound = (encoder + prefill) / (gemm_gflops * 1e9);
    std::printf("time to first token with one image (mllama): text model dim %u, %u layers (%zu cross-attention), "
                "ffn %u, vocab %u, F16 weights; prompt %d tokens, the image %lld cross-attention rows\n",
                l.hp.n_embd, l.hp.n_layer, crossed, l.hp.n_ff, l.hp.n_vocab, prompt_tokens, static_cast<long long>(rows));
    std::printf("  %.1f ms from submit to the first token (640x480 PNG of %zu bytes: decoded, tiled, encoded, image "
                "K/V, prefilled; best of %d after a warm-up)\n",
                best * 1000, png.size(), repeat);
    std::printf("  %.2f GFLOP encoder + %.3f GFLOP text = %.2f GFLOP, %.1f ms at the %.1f GFLOP/s GEMM rate of this "
                "run: %.2f of the GEMM rate\n",
                encoder / 1e9, prefill / 1e9, (encoder + prefill) / 1e9, bound * 1000, gemm_gflops, bound / best);
    return {};
}

// The image every encode takes: 640 x 480 of hashed bytes.
RgbImage bench_image() {
    RgbImage image;
    image.width = 640;
    image.height = 480;
    image.pixels.resize(size_t(image.width) * image.height * 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t((i * 2654435761u) >> 24);
    return image;
}

// --mllama: images/s through the tiled encoder of `spec`, its FLOPs and the GEMM rate.
Status bench_mllama(const RandomMllamaVisionSpec& spec, int threads, int images, const std::string& path,
                    double* gemm_rate) {
    LLMQ_TRY(write_random_mllama_vision(spec, path));
    auto model = MllamaVisionModel::open(path);
    if (!model) return model.status();
    CpuDevice device(0, threads, {}, 0);
    auto lib = PluginLibrary::load(plugin_path(default_plugin_dir(), "vision-cpu"), LLMQ_PLUGIN_KIND_VISION,
                                   LLMQ_BACKEND_CPU);
    if (!lib) return lib.status();
    auto inst = PluginInstance::create(*lib, device, "");
    if (!inst) return inst.status();
    const RgbImage image = bench_image();
    MllamaImageFeatures features;
    auto encode = [&] {
        std::promise<Status> done;
        device.post([&] { done.set_value((*model)->encode(image, **inst, features)); });
        return done.get_future().get();
    };
    LLMQ_TRY(encode());  // warm-up: weights widened, scratch grown
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < images; ++i) LLMQ_TRY(encode());
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double flops = (*model)->flops_per_image();
    const double achieved = flops * images / seconds / 1e9;
    const double gemm = kernels::measure_gemm_gflops(kernels::best_isa(), threads);
    const auto& hp = (*model)->hparams();
    std::printf("mllama vision encoder: %d tiles of %dx%d/%d, dim %d, %d local + %d global layers, %zu intermediate, "
                "projector %d, F16 weights, %d thread(s), ISA %s\n",
                hp.max_tiles, hp.image_size, hp.image_size, hp.patch_size, hp.dim, hp.layers, hp.global_layers,
                hp.intermediate_layers.size(), hp.projection_dim, threads, kernels::isa_name(kernels::best_isa()));
    std::printf("  %.3f images/s (%.1f ms per 640x480 image, %dx%d canvas, preprocessing included), %.2f GFLOP per "
                "image\n",
                images / seconds, seconds * 1000 / images, features.grid.wide, features.grid.high, flops / 1e9);
    std::printf("  %.1f GFLOP/s achieved vs %.1f GFLOP/s f32 GEMM measured in this run: %.2f of the GEMM rate\n",
                achieved, gemm, achieved / gemm);
    std::fflush(stdout);
    *gemm_rate = gemm;
    return {};
}

}  // namespace

int main(int argc, char** argv) {
    RandomClipSpec spec;
    spec.image_size = 224;
    spec.patch_size = 16;
    spec.dim = 768;
    spec.ffn = 3072;
    spec.heads = 12;
    spec.layers = 12;
    spec.projection_dim = 2048;
    spec.dtype = kernels::dtype::f16;
    spec.patch_f16 = true;
    int threads = 2, images = 3, ttft_repeat = 2;
    bench::ModelChoice text;
    text.shape.dim = 0;  // the projector's width
    text.shape.layers = 2;
    text.shape.heads = 32;
    text.shape.kv_heads = 4;
    text.shape.ffn = 5632;
    text.shape.vocab = 32000;
    CLI::App app{"images/s through a LLaVA-style encoder beside its FLOPs and the GEMM rate of the same run"};
    app.add_option("--threads", threads, "cores of the CPU device")->capture_default_str();
    app.add_option("--images", images, "images to encode (after one warm-up)")->capture_default_str();
    app.add_option("--image-size", spec.image_size)->capture_default_str();
    app.add_option("--patch-size", spec.patch_size)->capture_default_str();
    app.add_option("--dim", spec.dim)->capture_default_str();
    app.add_option("--ffn", spec.ffn)->capture_default_str();
    app.add_option("--heads", spec.heads)->capture_default_str();
    app.add_option("--layers", spec.layers)->capture_default_str();
    app.add_option("--projection-dim", spec.projection_dim)->capture_default_str();
    app.add_option("--text-layers", text.shape.layers, "layers of the text model of the first-token run")
        ->capture_default_str();
    app.add_option("--text-heads", text.shape.heads)->capture_default_str();
    app.add_option("--text-kv-heads", text.shape.kv_heads)->capture_default_str();
    app.add_option("--text-ffn", text.shape.ffn)->capture_default_str();
    app.add_option("--text-vocab", text.shape.vocab)->capture_default_str();
    app.add_option("--ttft-repeat", ttft_repeat, "first-token runs after a warm-up (the best is printed); 0 = skip")
        ->capture_default_str();
    RandomMllamaVisionSpec mllama;
    bool use_mllama = false;
    app.add_flag("--mllama", use_mllama, "Llama 3.2 Vision's tiled encoder instead (the sizes above describe it)");
    app.add_option("--global-layers", mllama.global_layers, "--mllama: gated global layers")->capture_default_str();
    app.add_option("--max-tiles", mllama.max_tiles, "--mllama: tiles per image")->capture_default_str();
    app.add_option("--intermediate-layers", mllama.intermediate_layers, "--mllama: hidden states fed to mm.0")
        ->delimiter(',')
        ->capture_default_str();
    std::vector<uint32_t> cross_layers = {1};
    app.add_option("--text-cross-layers", cross_layers,
                   "--mllama: the text model's cross-attention layers (Llama 3.2 11B: 3,8,...,38 of 40)")
        ->delimiter(',')
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    log::set_level(log::level::warn);

    const std::string path = (std::filesystem::temp_directory_path() /
                              ("llmq-bench-vision-" + std::to_string(getpid()) + ".gguf")).string();
    auto fail = [&](const Status& s) {
        std::fprintf(stderr, "llmq-bench-vision: %s\n", s.message().c_str());
        std::filesystem::remove(path);
        return 1;
    };
    if (use_mllama) {
        mllama.image_size = spec.image_size;
        mllama.patch_size = spec.patch_size;
        mllama.dim = spec.dim;
        mllama.ffn = spec.ffn;
        mllama.heads = spec.heads;
        mllama.layers = spec.layers;
        mllama.projection_dim = spec.projection_dim;
        mllama.dtype = kernels::dtype::f16;
        double gemm = 0;
        if (Status s = bench_mllama(mllama, threads, images, path, &gemm); !s.ok()) return fail(s);
        if (ttft_repeat > 0) {
            if (Status s = mllama_time_to_first_token(mllama, text, cross_layers, threads, bench_image(), ttft_repeat,
                                                      gemm, path);
                !s.ok())
                return fail(s);
        }
        std::filesystem::remove(path);
        return 0;
    }
    if (Status s = write_random_clip(spec, path); !s.ok()) return fail(s);
    auto model = ClipModel::open(path);
    if (!model) return fail(model.status());
    auto enc = VisionEncoder::create(*model, spec.projection_dim, {});
    if (!enc) return fail(enc.status());
    CpuDevice device(0, threads, {}, 0);
    auto lib = PluginLibrary::load(plugin_path(default_plugin_dir(), "vision-cpu"), LLMQ_PLUGIN_KIND_VISION,
                                   LLMQ_BACKEND_CPU);
    if (!lib) return fail(lib.status());
    auto inst = PluginInstance::create(*lib, device, "");
    if (!inst) return fail(inst.status());

    const RgbImage image = bench_image();
    std::vector<float> out(size_t((*enc)->tokens_per_image()) * size_t((*enc)->embedding_dim()));
    auto encode = [&] {
        std::promise<Status> done;
        device.post([&] { done.set_value((*enc)->encode(image, **inst, out.data())); });
        return done.get_future().get();
    };
    if (Status s = encode(); !s.ok()) return fail(s);  // warm-up: weights widened, scratch grown
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < images; ++i)
        if (Status s = encode(); !s.ok()) return fail(s);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double flops = (*model)->flops_per_image();
    const double achieved = flops * images / seconds / 1e9;
    const double gemm = kernels::measure_gemm_gflops(kernels::best_isa(), threads);
    const auto& hp = (*model)->hparams();
    std::printf("vision encoder: %dx%d/%d, dim %d, %d of %d layers, projector %d, F16 weights, %d thread(s), ISA %s\n",
                hp.image_size, hp.image_size, hp.patch_size, hp.dim, hp.layers, hp.block_count, hp.projection_dim,
                threads, kernels::isa_name(kernels::best_isa()));
    std::printf("  %.3f images/s (%.1f ms per 640x480 image, preprocessing included), %.2f GFLOP per image\n",
                images / seconds, seconds * 1000 / images, flops / 1e9);
    std::printf("  %.1f GFLOP/s achieved vs %.1f GFLOP/s f32 GEMM measured in this run: %.2f of the GEMM rate\n",
                achieved, gemm, achieved / gemm);
    std::fflush(stdout);
    if (ttft_repeat > 0) {
        if (Status s = time_to_first_token(path, text, spec, threads, image, ttft_repeat, gemm); !s.ok()) return fail(s);
    }
    std::filesystem::remove(path);
    return 0;
}
