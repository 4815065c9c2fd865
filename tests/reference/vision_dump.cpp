// vision_dump CLIP.gguf IMAGE OUT: what llmq makes of one image with one projector file, for
// vision_reference_check.py: OUT.pixels (the preprocessed image, [3][S][S] f32) and OUT.embd
// (the projected embeddings, [patches][projection_dim] f32), raw little-endian floats.
// The encoder runs in the vision-cpu plugin on one CPU device, as llmqd runs it.
// For a Llama 3.2 Vision file (architecture mllama): OUT.pixels is [max_tiles][3][S][S],
// OUT.embd the cross-attention states [max_tiles][rows_per_tile][text dim], and OUT.info one
// line "aspect_ratio_id tiles_used tiles_high tiles_wide resized_width resized_height".
#include <cstdio>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>

#include "llmq/runtime/clip_preprocess.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/mllama_vision.hpp"
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

// Run `work` on the device's worker, as the engine runs an encoder.
Status on_worker(CpuDevice& device, const std::function<Status()>& work) {
    std::promise<Status> done;
    device.post([&] { done.set_value(work()); });
    return done.get_future().get();
}

int dump_mllama(std::shared_ptr<const GgufFile> file, const RgbImage& image, const std::string& out, CpuDevice& device,
                PluginInstance& vision) {
    auto model = MllamaVisionModel::from_file(std::move(file));
    if (!model) return fail(model.status().message());
    MllamaCanvas canvas;
    const std::vector<float> pixels = mllama_preprocess(image, (*model)->hparams(), &canvas);
    write(out + ".pixels", pixels.data(), pixels.size());
    MllamaImageFeatures features;
    Status s = on_worker(device, [&] { return (*model)->encode(image, vision, features); });
    if (!s.ok()) return fail(s.message());
    write(out + ".embd", features.rows.data(), features.rows.size());
    std::ofstream(out + ".info") << features.aspect_ratio_id << ' ' << features.tiles_used << ' '
                                 << features.grid.high << ' ' << features.grid.wide << ' ' << canvas.resized_width
                                 << ' ' << canvas.resized_height << '\n';
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) return fail("usage: vision_dump CLIP-or-MLLAMA.gguf IMAGE OUT");
    std::ifstream in(argv[2], std::ios::binary);
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto image = decode_image(bytes, {});
    if (!image) return fail(image.status().message());
    CpuDevice device(0, 2, {}, 1ull << 32);
    auto lib = PluginLibrary::load(plugin_path(default_plugin_dir(), "vision-cpu"), LLMQ_PLUGIN_KIND_VISION,
                                   LLMQ_BACKEND_CPU);
    if (!lib) return fail(lib.status().message());
    auto inst = PluginInstance::create(*lib, device, "");
    if (!inst) return fail(inst.status().message());
    auto file = GgufFile::open(argv[1]);
    if (!file) return fail(file.status().message());
    auto arch = (*file)->get_string_or("general.architecture", "");
    if (arch && *arch == "mllama") return dump_mllama(*file, *image, argv[3], device, **inst);
    auto model = ClipModel::from_file(*file);
    if (!model) return fail(model.status().message());
    auto enc = VisionEncoder::create(*model, (*model)->hparams().projection_dim, {});
    if (!enc) return fail(enc.status().message());
    const std::vector<float> pixels = clip_preprocess(*image, (*model)->hparams());
    write(std::string(argv[3]) + ".pixels", pixels.data(), pixels.size());
    std::vector<float> out(size_t((*enc)->tokens_per_image()) * size_t((*enc)->embedding_dim()));
    Status s = on_worker(device, [&] { return (*enc)->encode(*image, **inst, out.data()); });
    if (!s.ok()) return fail(s.message());
    write(std::string(argv[3]) + ".embd", out.data(), out.size());
    return 0;
}
