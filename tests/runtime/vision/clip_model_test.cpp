// The clip projector file (ClipModel), the preprocessing, the prompt's image placement, and
// the vision-cpu plugin encoding through VisionEncoder. The numbers themselves are checked
// against an independent float64 PyTorch model in tests/reference (vision_reference_check).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <future>

#include "llmq/runtime/clip_preprocess.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/plugin_swap.hpp"
#include "llmq/runtime/tokenizer.hpp"
#include "llmq/runtime/vision_encoder.hpp"
#include "random_clip.hpp"
#include "random_llama.hpp"

using namespace llmq;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("llmq-clip-test-" + std::to_string(getpid()) + "-" + name)).string();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

RgbImage pattern(int32_t w, int32_t h, int seed) {
    RgbImage img;
    img.width = w;
    img.height = h;
    img.pixels.resize(size_t(w) * h * 3);
    for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t((i * 37 + size_t(seed) * 101 + i / 7) % 256);
    return img;
}

// Run f on the device's worker and wait (plugins are called there).
template <class F>
auto on_worker(Device& d, F f) {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto done = task->get_future();
    d.post([task] { (*task)(); });
    return done.get();
}

}  // namespace

TEST_CASE("clip_model_reads_a_projector_file_and_its_semantics") {
    RandomClipSpec spec;
    spec.layers = 3;
    const std::string path = temp_path("a.gguf");
    REQUIRE(write_random_clip(spec, path).ok());
    auto m = ClipModel::open(path);
    REQUIRE_MESSAGE(m, m.status().message());
    const ClipHParams& hp = (*m)->hparams();
    CHECK(hp.patches() == 4);
    CHECK(hp.block_count == 3);
    CHECK(hp.layers == 2);  // LLaVA's second-to-last layer
    CHECK(hp.quick_gelu);
    CHECK(hp.projection_dim == 64);
    CHECK(hp.mean[0] == doctest::Approx(0.48145466));
    // The last layer is not handed to the plugin: it does not run.
    for (const auto& t : (*m)->plugin_tensors()) CHECK_FALSE(contains(t.name, "v.blk.2."));
    CHECK((*m)->flops_per_image() > 0);

    spec.feature_layer = 3;
    REQUIRE(write_random_clip(spec, path).ok());
    CHECK((*ClipModel::open(path))->hparams().layers == 3);
    std::filesystem::remove(path);
}

TEST_CASE("clip_model_refuses_files_that_are_not_llava_projectors") {
    const std::string path = temp_path("bad.gguf");
    auto write = [&](auto edit) {
        RandomClipSpec spec;
        REQUIRE(write_random_clip(spec, path).ok());
        auto f = GgufFile::open(path);
        REQUIRE(f);
        GgufWriter w;
        for (const auto& [k, v] : (*f)->metadata()) w.add(k, v);
        for (const auto& t : (*f)->tensors())
            if (edit(w, t)) REQUIRE(w.add_tensor(t.name, t.ggml_type, t.shape, std::vector<uint8_t>(t.data, t.data + t.size_bytes)).ok());
        REQUIRE(w.write(path).ok());
        auto m = ClipModel::open(path);
        REQUIRE_FALSE(m);
        return m.status().message();
    };
    CHECK(contains(write([](GgufWriter&, const GgufTensor& t) { return t.name != "v.blk.1.attn_k.bias"; }),
                   "tensor v.blk.1.attn_k.bias is missing"));
    CHECK(contains(write([](GgufWriter& w, const GgufTensor&) {
                       w.set("clip.projector_type", GgufValue::string("ldp"));
                       return true;
                   }),
                   "clip.projector_type \"ldp\" is not implemented"));
    CHECK(contains(write([](GgufWriter& w, const GgufTensor&) {
                       w.set("general.architecture", GgufValue::string("llama"));
                       return true;
                   }),
                   "not a vision projector (mmproj) file"));
    CHECK(contains(write([](GgufWriter& w, const GgufTensor&) {
                       w.set("clip.vision.image_mean", GgufValue::array_f32(std::vector<float>{0.5f, 0.5f}));
                       return true;
                   }),
                   "image_mean has 2 values"));
    CHECK(contains(write([](GgufWriter& w, const GgufTensor&) {
                       w.set("clip.vision.patch_size", GgufValue::u32(5));
                       return true;
                   }),
                   "not a multiple of patch_size 5"));
    std::filesystem::remove(path);
}

TEST_CASE("clip_preprocess_pads_to_square_resizes_and_normalises") {
    // Padding: a 4 x 2 image centred on a 4 x 4 canvas of the background colour.
    RgbImage wide = pattern(4, 2, 1);
    RgbImage sq = pad_to_square(wide, {122, 116, 104});
    REQUIRE(sq.width == 4);
    REQUIRE(sq.height == 4);
    CHECK(sq.at(0, 0, 0) == 122);
    CHECK(sq.at(3, 3, 2) == 104);
    CHECK(sq.at(2, 1, 1) == wide.at(2, 0, 1));
    RgbImage tall = pad_to_square(pattern(1, 3, 2), {1, 2, 3});
    CHECK(tall.at(0, 1, 0) == 1);
    CHECK(tall.at(1, 1, 0) == pattern(1, 3, 2).at(0, 1, 0));
    // A flat image stays flat through the resize, up or down; sizes are the ones asked for.
    RgbImage flat = pattern(9, 9, 3);
    for (auto& v : flat.pixels) v = 77;
    for (int32_t side : {3, 9, 20}) {
        RgbImage r = resize_bicubic(flat, side, side);
        REQUIRE(r.width == side);
        for (uint8_t v : r.pixels) CHECK(v == 77);
    }
    ClipHParams hp;
    hp.image_size = 6;
    hp.mean = {0.5f, 0.25f, 0.0f};
    hp.std = {0.5f, 0.25f, 1.0f};
    auto px = clip_preprocess(flat, hp);
    REQUIRE(px.size() == 3 * 36);
    CHECK(px[0] == doctest::Approx((77 / 255.0 - 0.5) / 0.5));
    CHECK(px[36 + 5] == doctest::Approx((77 / 255.0 - 0.25) / 0.25));
    CHECK(px[72 + 35] == doctest::Approx(77 / 255.0));
}

TEST_CASE("vision_encoder_places_images_where_the_prompt_marks_them") {
    RandomClipSpec spec;
    const std::string path = temp_path("p.gguf");
    REQUIRE(write_random_clip(spec, path).ok());
    auto enc = VisionEncoder::create(*ClipModel::open(path), 64, {});
    REQUIRE(enc);
    // A tokenizer from a random Llama's synthetic vocabulary.
    RandomLlamaSpec llama;
    const std::string llama_path = temp_path("t.gguf");
    REQUIRE(write_random_llama(llama, llama_path).ok());
    auto vocab = vocab_from_gguf(**GgufFile::open(llama_path));
    REQUIRE(vocab);
    auto tok = Tokenizer::create(*vocab);
    REQUIRE(tok);
    const int32_t n = (*enc)->tokens_per_image(), bos = (*tok)->bos();
    const auto text = (*tok)->encode("hello world", false, false);
    // No marker: BOS, the image, then the text.
    auto p = (*enc)->place_images(**tok, "hello world", 1, true, false);
    REQUIRE(p);
    REQUIRE(p->image_start == std::vector<int32_t>{1});
    REQUIRE(p->tokens.size() == 1 + size_t(n) + text.size());
    CHECK(p->tokens[0] == bos);
    CHECK(std::equal(text.begin(), text.end(), p->tokens.begin() + 1 + n));
    // Two markers, two images, in place.
    auto q = (*enc)->place_images(**tok, "a<image>b<image>", 2, true, false);
    REQUIRE(q);
    REQUIRE(q->image_start.size() == 2);
    CHECK(q->image_start[1] - q->image_start[0] >= n);
    CHECK(size_t(q->image_start[1] + n) == q->tokens.size());
    auto r = (*enc)->place_images(**tok, "one <image> here", 2, true, false);
    REQUIRE_FALSE(r);
    CHECK(contains(r.status().message(), "1 <image> marker(s) for 2 image(s)"));
    std::filesystem::remove(llama_path);
    std::filesystem::remove(path);
}

TEST_CASE("vision_cpu_plugin_encodes_an_image_through_the_vision_encoder") {
    RandomClipSpec spec;
    const std::string path = temp_path("e.gguf");
    REQUIRE(write_random_clip(spec, path).ok());
    auto model = ClipModel::open(path);
    REQUIRE(model);
    auto enc = VisionEncoder::create(*model, 64, {});
    REQUIRE(enc);
    CHECK_FALSE(VisionEncoder::create(*model, 48, {}));
    CpuDevice device(0, 2, {}, 1ull << 30);
    auto lib = PluginLibrary::load(plugin_path(default_plugin_dir(), "vision-cpu"), LLMQ_PLUGIN_KIND_VISION,
                                   LLMQ_BACKEND_CPU);
    REQUIRE_MESSAGE(lib, lib.status().message());
    auto inst = PluginInstance::create(*lib, device, "");
    REQUIRE(inst);
    const size_t n = size_t((*enc)->tokens_per_image()) * size_t((*enc)->embedding_dim());
    std::vector<float> a(n, NAN), b(n, NAN), c(n, NAN);
    REQUIRE(on_worker(device, [&] { return (*enc)->encode(pattern(40, 20, 1), **inst, a.data()); }).ok());
    REQUIRE(on_worker(device, [&] { return (*enc)->encode(pattern(40, 20, 1), **inst, b.data()); }).ok());
    REQUIRE(on_worker(device, [&] { return (*enc)->encode(pattern(40, 20, 2), **inst, c.data()); }).ok());
    for (float x : a) REQUIRE(std::isfinite(x));
    CHECK(a == b);
    CHECK(a != c);
    // A wrong pixel tensor is the plugin's error, named.
    llmq_vision_args bad{};
    bad.struct_size = sizeof bad;
    bad.pixels.rank = 3;
    bad.pixels.dtype = LLMQ_DTYPE_F32;
    bad.pixels.device_type = LLMQ_BACKEND_CPU;
    bad.pixels.data = a.data();
    Status s = on_worker(device, [&] { return (*inst)->encode(bad); });
    CHECK(contains(s.message(), "encode: pixels.shape[2] is 0, the model needs 28"));
    std::filesystem::remove(path);
}

TEST_CASE("vision_plugin_swaps_while_loaded_and_the_new_instance_encodes_the_model") {
    RandomClipSpec spec;
    const std::string path = temp_path("s.gguf");
    REQUIRE(write_random_clip(spec, path).ok());
    auto enc = VisionEncoder::create(*ClipModel::open(path), 64, {});
    REQUIRE(enc);
    CpuDevice device(0, 2, {}, 1ull << 30);
    PluginChoice choice;
    choice.dir = default_plugin_dir();
    choice.vision = "vision-cpu";
    auto host = PluginHost::create(choice, {&device});
    REQUIRE_MESSAGE(host, host.status().message());
    const size_t n = size_t((*enc)->tokens_per_image()) * size_t((*enc)->embedding_dim());
    auto encode_now = [&](std::vector<float>& out) {
        out.assign(n, NAN);
        auto set = (*host)->snapshot();
        PluginInstance* vision = set->of(LLMQ_PLUGIN_KIND_VISION, 0).get();
        REQUIRE(vision);
        return on_worker(device, [&] { return (*enc)->encode(pattern(30, 30, 4), *vision, out.data()); });
    };
    std::vector<float> before, after;
    REQUIRE(encode_now(before).ok());
    SwapPolicy policy;
    policy.probe = false;
    PluginSwapper swapper(**host, policy);
    SwapReport r = swapper.swap(LLMQ_PLUGIN_KIND_VISION, "vision-cpu", "test");
    REQUIRE_MESSAGE(r.swapped, r.message);
    CHECK(r.stage_ms("canary") >= 0);
    // The new instance took the canary's weights first; its first image reloads the model's.
    REQUIRE(encode_now(after).ok());
    CHECK(after == before);
    std::filesystem::remove(path);
}
