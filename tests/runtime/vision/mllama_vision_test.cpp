// Llama 3.2 Vision's vision side: the tile grids and canvas (HF's rules on hand-worked sizes),
// the preprocessing's layout, MllamaVisionModel's reading and refusals of the converter's GGUF
// layout, and the vision-cpu plugin encoding through it. The numbers themselves are checked
// against a float64 PyTorch model in tests/reference (mllama_vision_reference_check.py).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <future>

#include "llmq/runtime/device.hpp"
#include "llmq/runtime/gguf_writer.hpp"
#include "llmq/runtime/mllama_vision.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "random_mllama_vision.hpp"

using namespace llmq;

namespace {

std::string temp_path(const std::string& name) {
    return (std::filesystem::temp_directory_path() / ("llmq-mllama-test-" + std::to_string(getpid()) + "-" + name))
        .string();
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

RgbImage flat(int32_t w, int32_t h, uint8_t v) {
    RgbImage img;
    img.width = w;
    img.height = h;
    img.pixels.assign(size_t(w) * size_t(h) * 3, v);
    return img;
}

RgbImage pattern(int32_t w, int32_t h, int seed) {
    RgbImage img = flat(w, h, 0);
    for (size_t i = 0; i < img.pixels.size(); ++i) img.pixels[i] = uint8_t((i * 37 + size_t(seed) * 101 + i / 7) % 256);
    return img;
}

template <class F>
auto on_worker(Device& d, F f) {
    auto task = std::make_shared<std::packaged_task<decltype(f())()>>(std::move(f));
    auto done = task->get_future();
    d.post([task] { (*task)(); });
    return done.get();
}

}  // namespace

TEST_CASE("mllama_tile_grids_and_canvas_follow_hf_image_processing_mllama") {
    const auto grids = mllama_tile_grids(4);
    REQUIRE(grids.size() == 8);
    const int32_t want[8][2] = {{1, 1}, {1, 2}, {1, 3}, {1, 4}, {2, 1}, {2, 2}, {3, 1}, {4, 1}};
    for (size_t i = 0; i < 8; ++i) {
        CHECK(grids[i].high == want[i][0]);
        CHECK(grids[i].wide == want[i][1]);
    }
    CHECK(mllama_tile_grids(2).size() == 3);
    struct Case {
        int32_t w, h, high, wide, id, rw, rh;
    } cases[] = {
        {560, 560, 1, 1, 1, 560, 560},     // exact
        {1120, 560, 1, 2, 2, 1120, 560},   // scale 1 on 1x2, 1x3, 1x4: the least area
        {560, 1680, 3, 1, 7, 560, 1680},   // tall: 3 tiles high is id 7 (Ollama's numbering differs)
        {100, 50, 1, 1, 1, 560, 280},      // upscaled: the smallest upscale, then fit
        {3000, 1000, 1, 3, 3, 1680, 560},  // every canvas shrinks it: the largest downscale
        {800, 600, 2, 2, 6, 800, 600},     // 2x2 is the only upscale (1.4); it fits unresized
    };
    for (const Case& c : cases) {
        CAPTURE(c.w);
        CAPTURE(c.h);
        const MllamaCanvas m = mllama_canvas(c.w, c.h, 4, 560);
        CHECK(m.grid.high == c.high);
        CHECK(m.grid.wide == c.wide);
        CHECK(m.aspect_ratio_id == c.id);
        CHECK(m.resized_width == c.rw);
        CHECK(m.resized_height == c.rh);
    }
}

TEST_CASE("mllama_preprocess_pads_with_black_tiles_row_major_and_zero_tiles") {
    MllamaVisionHParams hp;
    hp.image_size = 4;
    hp.max_tiles = 4;
    hp.mean = {0.5f, 0.25f, 0.0f};
    hp.std = {0.5f, 0.25f, 1.0f};
    // 7 x 3: grid 1x2 (upscale 4/3 on 1x2, 1x3 and 1x4; the least area), kept at 7 x 3.
    MllamaCanvas c;
    const std::vector<float> px = mllama_preprocess(flat(7, 3, 200), hp, &c);
    REQUIRE(c.grid.high == 1);
    REQUIRE(c.grid.wide == 2);
    REQUIRE(c.resized_width == 7);
    REQUIRE(c.resized_height == 3);
    REQUIRE(px.size() == 4 * 3 * 16);
    auto at = [&](int tile, int ch, int y, int x) { return px[size_t(((tile * 3 + ch) * 4 + y) * 4 + x)]; };
    const float v = (float(200 * (1.0 / 255.0)) - 0.5f) / 0.5f, black = (0.0f - 0.25f) / 0.25f;
    CHECK(at(0, 0, 0, 0) == v);
    CHECK(at(1, 0, 2, 2) == v);       // canvas x 6, y 2: the image
    CHECK(at(1, 1, 2, 3) == black);   // canvas x 7: padding, black normalised
    CHECK(at(0, 1, 3, 0) == black);   // canvas y 3: padding
    CHECK(at(2, 0, 0, 0) == 0.0f);    // tiles past the grid are zeros
    CHECK(at(3, 2, 3, 3) == 0.0f);
}

TEST_CASE("mllama_vision_model_reads_the_converters_layout_and_names_what_is_wrong") {
    RandomMllamaVisionSpec spec;
    const std::string path = temp_path("a.gguf");
    REQUIRE(write_random_mllama_vision(spec, path).ok());
    auto m = MllamaVisionModel::open(path);
    REQUIRE_MESSAGE(m, m.status().message());
    const MllamaVisionHParams& hp = (*m)->hparams();
    CHECK(hp.rows_per_tile() == 17);
    CHECK(hp.padded_rows_per_tile() == 24);
    CHECK(hp.aspect_ratio_rows == 9);
    CHECK(hp.feature_dim() == 96);
    CHECK(hp.projection_dim == 64);
    CHECK(hp.mean[0] == doctest::Approx(0.48145466));
    CHECK((*m)->flops_per_image() > 0);
    CHECK((*m)->activation_bytes() > 0);
    CHECK(contains((*m)->plugin_metadata(), "\"architecture\":\"mllama\""));

    auto refused = [&](auto edit) {
        REQUIRE(write_random_mllama_vision(spec, path).ok());
        auto f = GgufFile::open(path);
        REQUIRE(f);
        GgufWriter w;
        for (const auto& [k, v] : (*f)->metadata()) w.add(k, v);
        for (const auto& t : (*f)->tensors())
            if (edit(w, t))
                REQUIRE(w.add_tensor(t.name, t.ggml_type, t.shape, std::vector<uint8_t>(t.data, t.data + t.size_bytes))
                            .ok());
        REQUIRE(w.write(path).ok());
        auto r = MllamaVisionModel::open(path);
        REQUIRE_FALSE(r);
        return r.status().message();
    };
    CHECK(contains(refused([](GgufWriter&, const GgufTensor& t) { return t.name != "v.global.blk.1.ffn_gate"; }),
                   "tensor v.global.blk.1.ffn_gate is missing"));
    CHECK(contains(refused([](GgufWriter&, const GgufTensor& t) { return t.name != "v.blk.2.ffn_up.weight"; }),
                   "tensor v.blk.2.ffn_up.weight is missing"));
    CHECK(contains(refused([](GgufWriter& w, const GgufTensor&) {
                       w.set("mllama.vision.feed_forward_length", GgufValue::u32(65));
                       return true;
                   }),
                   "tensor v.blk.0.ffn_up.weight is [32, 64], the header implies [32, 65]"));
    CHECK(contains(refused([](GgufWriter& w, const GgufTensor&) {
                       w.set("mllama.vision.intermediate_layers_indices", GgufValue::array_i32(std::vector<int32_t>{1, 5}));
                       return true;
                   }),
                   "intermediate_layers_indices holds 5, not in 0..4"));
    CHECK(contains(refused([](GgufWriter& w, const GgufTensor&) {
                       w.set("mllama.vision.max_num_tiles", GgufValue::u32(2));
                       return true;
                   }),
                   "tensor v.tile_position_embd.weight is"));
    CHECK(contains(refused([](GgufWriter& w, const GgufTensor&) {
                       w.set("general.architecture", GgufValue::string("llama"));
                       return true;
                   }),
                   "not a Llama 3.2 Vision file"));
    CHECK(contains(refused([](GgufWriter& w, const GgufTensor&) {
                       w.set("mllama.vision.patch_size", GgufValue::u32(5));
                       return true;
                   }),
                   "mllama.vision.image_size 28 is not a multiple of patch_size 5"));
    // A key that is absent is named.
    REQUIRE(write_random_mllama_vision(spec, path).ok());
    {
        auto f = GgufFile::open(path);
        REQUIRE(f);
        GgufWriter w;
        for (const auto& [k, v] : (*f)->metadata())
            if (k != "mllama.vision.global.block_count") w.add(k, v);
        for (const auto& t : (*f)->tensors())
            REQUIRE(w.add_tensor(t.name, t.ggml_type, t.shape, std::vector<uint8_t>(t.data, t.data + t.size_bytes)).ok());
        REQUIRE(w.write(path).ok());
        auto r = MllamaVisionModel::open(path);
        REQUIRE_FALSE(r);
        CHECK(contains(r.status().message(), "mllama.vision.global.block_count"));
    }
    std::filesystem::remove(path);
}

TEST_CASE("vision_cpu_plugin_encodes_an_mllama_image_into_cross_attention_states") {
    RandomMllamaVisionSpec spec;
    const std::string path = temp_path("e.gguf");
    REQUIRE(write_random_mllama_vision(spec, path).ok());
    auto model = MllamaVisionModel::open(path);
    REQUIRE(model);
    CpuDevice device(0, 2, {}, 1ull << 30);
    auto lib = PluginLibrary::load(plugin_path(default_plugin_dir(), "vision-cpu"), LLMQ_PLUGIN_KIND_VISION,
                                   LLMQ_BACKEND_CPU);
    REQUIRE_MESSAGE(lib, lib.status().message());
    auto inst = PluginInstance::create(*lib, device, "");
    REQUIRE(inst);
    MllamaImageFeatures a, b, c;
    REQUIRE(on_worker(device, [&] { return (*model)->encode(pattern(61, 23, 1), **inst, a); }).ok());
    REQUIRE(on_worker(device, [&] { return (*model)->encode(pattern(61, 23, 1), **inst, b); }).ok());
    REQUIRE(on_worker(device, [&] { return (*model)->encode(pattern(61, 23, 2), **inst, c); }).ok());
    CHECK(a.max_tiles == 4);
    CHECK(a.tiles_used == 3);
    CHECK(a.aspect_ratio_id == 3);
    CHECK(a.rows_per_tile == 17);
    CHECK(a.dim == 64);
    REQUIRE(a.rows.size() == size_t(4 * 17 * 64));
    for (float x : a.rows) REQUIRE(std::isfinite(x));
    CHECK(a.rows == b.rows);
    CHECK(a.rows != c.rows);
    // The plugin refuses metadata and tensors that do not make an mllama encoder, naming them.
    auto load = [&](const std::string& metadata, std::vector<llmq_named_tensor> tensors) {
        static int key;
        ++key;
        return on_worker(device, [&] { return (*inst)->vision_load_weights(&key, tensors, metadata); }).message();
    };
    std::string meta = (*model)->plugin_metadata();
    const auto all = (*model)->plugin_tensors();
    CHECK(contains(load(meta.replace(meta.find("\"tile_grids\""), 12, "\"tile_gridz\""), all),
                   "needs global_layers, intermediate_layers and tile_grids"));
    std::vector<llmq_named_tensor> without_gate;
    for (const auto& t : all)
        if (std::string(t.name) != "v.global.blk.0.attn_gate") without_gate.push_back(t);
    CHECK(contains(load((*model)->plugin_metadata(), without_gate), "tensor v.global.blk.0.attn_gate is missing"));
    // A sliver that would resize to no rows is refused before the plugin sees it.
    MllamaImageFeatures thin;
    Status t = on_worker(device, [&] { return (*model)->encode(pattern(2000, 1, 3), **inst, thin); });
    CHECK(contains(t.message(), "2000x1 is too thin"));
    // An aspect-ratio id outside the model's grids is the plugin's error, named.
    llmq_vision_args bad{};
    bad.struct_size = sizeof bad;
    bad.variant = 9;
    Status s = on_worker(device, [&] { return (*inst)->encode(bad); });
    CHECK(contains(s.message(), "aspect-ratio id (variant) 9 is not in 1..8"));
    std::filesystem::remove(path);
}

TEST_CASE("mllama_vision_model_reads_an_11b_shaped_header_only_file_for_the_planner") {
    // Llama-3.2-11B-Vision's vision tower: 560/14 tiles, 1280 wide, 32 + 8 layers, 4 tiles.
    RandomMllamaVisionSpec spec;
    spec.image_size = 560;
    spec.patch_size = 14;
    spec.dim = 1280;
    spec.ffn = 5120;
    spec.heads = 16;
    spec.layers = 32;
    spec.global_layers = 8;
    spec.intermediate_layers = {3, 7, 15, 23, 30};
    spec.projection_dim = 4096;
    spec.dtype = kernels::dtype::bf16;
    spec.header_only = true;
    const std::string path = temp_path("11b.gguf");
    REQUIRE(write_random_mllama_vision(spec, path).ok());
    GgufFile::Options options;
    options.require_data = false;
    auto file = GgufFile::open(path, options);
    REQUIRE_MESSAGE(file, file.status().message());
    auto m = MllamaVisionModel::from_file(*file);
    REQUIRE_MESSAGE(m, m.status().message());
    const MllamaVisionHParams& hp = (*m)->hparams();
    CHECK(hp.rows_per_tile() == 1601);
    CHECK(hp.padded_rows_per_tile() == 1608);
    CHECK(hp.feature_dim() == 7680);
    // The vision tower and projector of the 11B model hold about 0.9 B parameters (BF16).
    CHECK((*m)->weight_bytes() > 1'600'000'000ull);
    CHECK((*m)->weight_bytes() < 2'000'000'000ull);
    // 40 layers over 4 x 1608 rows and the projector: about 19 TFLOP per image.
    CHECK((*m)->flops_per_image() == doctest::Approx(19.0e12).epsilon(0.02));
    CHECK((*m)->activation_bytes() > 500'000'000ull);
    std::filesystem::remove(path);
}
