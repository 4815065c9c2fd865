// llmq-bench-vision: images/s through a LLaVA-style encoder (CLIP tower + MLP projector in the
// vision-cpu plugin, preprocessing included) on one CPU device, beside the encoder's FLOP count
// and the f32 GEMM rate measured in the same run with the same threads. The default shape is
// ViT-B/16 at 224 px (12 layers, 11 run) with a 2048-wide projector, F16 weights.
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <future>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/vision_encoder.hpp"
#include "random_clip.hpp"

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
    CLI11_PARSE(app, argc, argv);

    const std::string path = (std::filesystem::temp_directory_path() /
                              ("llmq-bench-vision-" + std::to_string(getpid()) + ".gguf")).string();
    auto fail = [&](const Status& s) {
        std::fprintf(stderr, "llmq-bench-vision: %s\n", s.message().c_str());
        std::filesystem::remove(path);
        return 1;
    };
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

    RgbImage image;
    image.width = 640;
    image.height = 480;
    image.pixels.resize(size_t(image.width) * image.height * 3);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = uint8_t((i * 2654435761u) >> 24);
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
    std::filesystem::remove(path);
    return 0;
}
