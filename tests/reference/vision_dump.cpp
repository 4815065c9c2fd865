// vision_dump CLIP.gguf IMAGE OUT: what llmq makes of one image with one projector file, for
// vision_reference_check.py: OUT.pixels (the preprocessed image, [3][S][S] f32) and OUT.embd
// (the projected embeddings, [patches][projection_dim] f32), raw little-endian floats.
// The encoder runs in the vision-cpu plugin on one CPU device, as llmqd runs it.
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>

#include "llmq/runtime/clip_preprocess.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/vision_encoder.hpp"

using namespace llmq;

namespace {
int fail(const std::string& m) {
    std::fprintf(stderr, "vision_dump: %s\n", m.c_str());
    return 1;
}
void write(const std::string& path, const float* p, size_t n) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(p), std::streamsize(n * sizeof(float)));
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) return fail("usage: vision_dump CLIP.gguf IMAGE OUT");
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto image = decode_image(bytes, {});
    if (!image) return fail(image.status().message());
    auto model = ClipModel::open(argv[1]);
    if (!model) return fail(model.status().message());
    auto enc = VisionEncoder::create(*model, (*model)->hparams().projection_dim, {});
    if (!enc) return fail(enc.status().message());
    const std::vector<float> pixels = clip_preprocess(*image, (*model)->hparams());
    write(std::string(argv[3]) + ".pixels", pixels.data(), pixels.size());
    CpuDevice device(0, 2, {}, 1ull << 32);
    auto lib = PluginLibrary::load(plugin_path(default_plugin_dir(), "vision-cpu"), LLMQ_PLUGIN_KIND_VISION,
                                   LLMQ_BACKEND_CPU);
    if (!lib) return fail(lib.status().message());
    auto inst = PluginInstance::create(*lib, device, "");
    if (!inst) return fail(inst.status().message());
    std::vector<float> out(size_t((*enc)->tokens_per_image()) * size_t((*enc)->embedding_dim()));
    std::promise<Status> done;
    device.post([&] { done.set_value((*enc)->encode(*image, **inst, out.data())); });
    Status s = done.get_future().get();
    if (!s.ok()) return fail(s.message());
    write(std::string(argv[3]) + ".embd", out.data(), out.size());
    return 0;
}
