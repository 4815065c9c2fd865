// llmq-bench-vision: images/s through a LLaVA-style encoder (CLIP tower + MLP projector in the
// vision-cpu plugin, preprocessing included) on one CPU device, beside the encoder's FLOP count
// and the f32 GEMM rate measured in the same run with the same threads. The default shape is
// ViT-B/16 at 224 px (12 layers, 11 run) with a 2048-wide projector, F16 weights. With
// --mllama: Llama 3.2 Vision's tiled encoder (MllamaVisionModel, all max_tiles tiles, both
// encoders and mm.0) of the shape the same flags give, F16 weights.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <memory>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/vision_encoder.hpp"
#include "llmq/runtime/mllama_vision.hpp"
#include "random_clip.hpp"
#include "random_mllama_vision.hpp"

using namespace llmq;

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
    int threads = 2, images = 3;
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
    RandomMllamaVisionSpec mllama;
    bool use_mllama = false;
    app.add_flag("--mllama", use_mllama, "Llama 3.2 Vision's tiled encoder instead (the sizes above describe it)");
    app.add_option("--global-layers", mllama.global_layers, "--mllama: gated global layers")->capture_default_str();
    app.add_option("--max-tiles", mllama.max_tiles, "--mllama: tiles per image")->capture_default_str();
    app.add_option("--intermediate-layers", mllama.intermediate_layers, "--mllama: hidden states fed to mm.0")
        ->delimiter(',')
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    const std::string path = (std::filesystem::temp_directory_path() /
                              ("llmq-bench-vision-" + std::to_string(getpid()) + ".gguf")).string();
    auto fail = [&](const Status& s) {
        std::fprintf(stderr, "llmq-bench-vision: %s\n", s.message().c_str());
        std::filesystem::remove(path);
        return 1;
    };
    CpuDevice device(0, threads, {}, 0);
    auto lib = PluginLibrary::load(plugin_path(default_plugin_dir(), "vision-cpu"), LLMQ_PLUGIN_KIND_VISION,
                                   LLMQ_BACKEND_CPU);
    if (!lib) return fail(lib.status());
    auto inst = PluginInstance::create(*lib, device, "");
    if (!inst) return fail(inst.status());
    RgbImage image;
    image.width = 640;
    image.height = 480;
    image.pixels.resize(size_t(image.width) * image.height * 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t((i * 2654435761u) >> 24);
    // The encoder under test, its FLOPs per image and a line describing it.
    std::function<Status()> encode_one;
    double flops = 0;
    char shape[256];
    std::vector<float> out;
    std::shared_ptr<const ClipModel> clip;
    std::shared_ptr<const MllamaVisionModel> tiled;
    std::unique_ptr<VisionEncoder> enc;
    MllamaImageFeatures features;
    if (use_mllama) {
        mllama.image_size = spec.image_size;
        mllama.patch_size = spec.patch_size;
        mllama.dim = spec.dim;
        mllama.ffn = spec.ffn;
        mllama.heads = spec.heads;
        mllama.layers = spec.layers;
        mllama.projection_dim = spec.projection_dim;
        mllama.dtype = kernels::dtype::f16;
        if (Status s = write_random_mllama_vision(mllama, path); !s.ok()) return fail(s);
        auto m = MllamaVisionModel::open(path);
        if (!m) return fail(m.status());
        tiled = *m;
        const auto& hp = tiled->hparams();
        flops = tiled->flops_per_image();
        std::snprintf(shape, sizeof shape,
                      "mllama vision encoder: %d tiles of %dx%d/%d, dim %d, %d local + %d global layers, %zu "
                      "intermediate, projector %d, F16 weights",
                      hp.max_tiles, hp.image_size, hp.image_size, hp.patch_size, hp.dim, hp.layers, hp.global_layers,
                      hp.intermediate_layers.size(), hp.projection_dim);
        encode_one = [&] { return tiled->encode(image, **inst, features); };
    } else {
        if (Status s = write_random_clip(spec, path); !s.ok()) return fail(s);
        auto m = ClipModel::open(path);
        if (!m) return fail(m.status());
        clip = *m;
        auto e = VisionEncoder::create(clip, spec.projection_dim, {});
        if (!e) return fail(e.status());
        enc = std::move(*e);
        const auto& hp = clip->hparams();
        flops = clip->flops_per_image();
        std::snprintf(shape, sizeof shape, "vision encoder: %dx%d/%d, dim %d, %d of %d layers, projector %d, F16 weights",
                      hp.image_size, hp.image_size, hp.patch_size, hp.dim, hp.layers, hp.block_count,
                      hp.projection_dim);
        out.resize(size_t(enc->tokens_per_image()) * size_t(enc->embedding_dim()));
        encode_one = [&] { return enc->encode(image, **inst, out.data()); };
    }
    auto encode = [&] {
        std::promise<Status> done;
        device.post([&] { done.set_value(encode_one()); });
        return done.get_future().get();
    };
    if (Status s = encode(); !s.ok()) return fail(s);  // warm-up: weights widened, scratch grown
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < images; ++i)
        if (Status s = encode(); !s.ok()) return fail(s);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double achieved = flops * images / seconds / 1e9;
    const double gemm = kernels::measure_gemm_gflops(kernels::best_isa(), threads);
    std::printf("%s, %d thread(s), ISA %s\n", shape, threads, kernels::isa_name(kernels::best_isa()));
    std::printf("  %.3f images/s (%.1f ms per 640x480 image, preprocessing included), %.2f GFLOP per image\n",
                images / seconds, seconds * 1000 / images, flops / 1e9);
    std::printf("  %.1f GFLOP/s achieved vs %.1f GFLOP/s f32 GEMM measured in this run: %.2f of the GEMM rate\n",
                achieved, gemm, achieved / gemm);
    std::filesystem::remove(path);
    return 0;
}
