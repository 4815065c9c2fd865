// llmq-make-model: writes a GGUF Llama model with random weights (see random_llama.hpp).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>

#include "import_manifest.hpp"
#include "llmq/runtime/weight_mix.hpp"
#include "random_clip.hpp"
#include "random_llama.hpp"
#include "random_mllama_vision.hpp"

int main(int argc, char** argv) {
    llmq::RandomLlamaSpec spec;
    std::string out;
    std::string dtype = "f32";
    CLI::App app{"Write a GGUF Llama model with deterministic random weights (for tests, "
                 "benchmarks and planning)."};
    app.add_option("--out", out, "output GGUF path")->required();
    app.add_option("--arch", spec.arch, "architecture name in the metadata")
        ->check(CLI::IsMember({"llama", "mistral", "qwen2", "mllama"}))
        ->capture_default_str();
    app.add_option("--name", spec.name, "general.name")->capture_default_str();
    app.add_option("--dim", spec.dim, "hidden size (embedding length)")->capture_default_str();
    app.add_option("--layers", spec.layers, "number of transformer blocks")->capture_default_str();
    app.add_option("--heads", spec.heads, "attention heads")->capture_default_str();
    app.add_option("--kv-heads", spec.kv_heads, "key/value heads (grouped-query attention)")
        ->capture_default_str();
    app.add_option("--ffn", spec.ffn, "feed-forward hidden size")->capture_default_str();
    auto* vocab = app.add_option("--vocab", spec.vocab,
                                 "synthetic vocabulary size (default 512; at least 260)");
    app.add_option("--vocab-from", spec.vocab_from,
                   "copy the tokenizer.* keys of this GGUF (e.g. a vocab-only file)")
        ->check(CLI::ExistingFile)
        ->excludes(vocab);
    app.add_option("--context", spec.context, "training context length")->capture_default_str();
    app.add_option("--dtype", dtype,
                   "weight dtype, or a mix as llama.cpp's Q4_K_M / Q5_K_M (norms are always f32): " +
                       llmq::weight_mix_names())
        ->check([](const std::string& name) {
            return llmq::find_weight_mix(name) ? std::string() : "not one of " + llmq::weight_mix_names();
        })
        ->capture_default_str();
    app.add_flag("--tied", spec.tied, "no output.weight: the LM head is token_embd");
    app.add_flag("--qkv-bias", spec.qkv_bias, "add attn_q/k/v biases (Qwen2 style)");
    app.add_flag("--header-only", spec.header_only,
                 "write metadata and the tensor table only (for `llmq plan`)");
    app.add_option("--seed", spec.seed, "random seed")->capture_default_str();
    app.add_option("--rope-theta", spec.rope_theta, "RoPE frequency base")->capture_default_str();
    app.add_option("--rms-eps", spec.rms_eps, "RMSNorm epsilon")->capture_default_str();
    std::string manifest;
    app.add_option("--import", manifest,
                   "write trained weights instead of random ones: a JSON manifest and its "
                   "float32 blob (tools/train-demo/train_demo.py); only --dtype and --out apply")
        ->check(CLI::ExistingFile);
    app.add_flag("--rope-freqs", spec.rope_freqs,
                 "write rope_freqs.weight with Llama 3.1's long-context factors (Llama 3.1/3.2 style)");
    app.add_option("--sliding-window", spec.sliding_window,
                   "write <arch>.attention.sliding_window (Mistral style); 0 = none")
        ->capture_default_str();
    llmq::RandomClipSpec clip;
    bool make_clip = false;
    app.add_flag("--clip", make_clip,
                 "write a LLaVA-1.5-style vision projector (GGUF architecture clip, an mmproj file) instead: "
                 "--dim, --layers, --heads, --ffn, --dtype (f32/f16/bf16), --seed, --name and --header-only "
                 "describe its vision tower");
    app.add_option("--image-size", clip.image_size, "--clip: input image side in pixels")->capture_default_str();
    app.add_option("--patch-size", clip.patch_size, "--clip: patch side in pixels")->capture_default_str();
    app.add_option("--projection-dim", clip.projection_dim,
                   "--clip: the projector's output size (the text model's --dim)")->capture_default_str();
    app.add_flag("--gelu", clip.gelu, "--clip: GELU in the encoder (default: quick-GELU, OpenAI CLIP's)");
    app.add_option("--feature-layer", clip.feature_layer,
                   "--clip: write clip.vision.feature_layer (default: absent, the second-to-last layer)");
    app.add_flag("--patch-f16", clip.patch_f16, "--clip: patch embedding in F16 (as converted files have it)");
    app.add_option("--cross-layers", spec.cross_layers,
                   "--arch mllama: the cross-attention layers (Llama 3.2 Vision), e.g. --cross-layers 1,3")
        ->delimiter(',');
    std::string preset;
    app.add_option("--mllama-preset", preset,
                   "a header-only Llama-3.2-Vision text model of the real shape: 11b or 90b "
                   "(sets --arch mllama, the sizes, the cross layers, --rope-freqs and --header-only)")
        ->check(CLI::IsMember({"11b", "90b"}));
    bool vision_tower = false;
    app.add_flag("--vision-tower", vision_tower,
                 "--arch mllama: add the vision part (v.* and mm.0 tensors, mllama.vision.* keys) to the text model, "
                 "shaped by --vision-dim, --vision-layers, --vision-heads, --vision-ffn, --global-layers, --max-tiles, "
                 "--intermediate-layers, --image-size and --patch-size; its projection is --dim");
    llmq::RandomMllamaVisionSpec tower;
    app.add_option("--vision-dim", tower.dim, "--vision-tower: the encoder's width")->capture_default_str();
    app.add_option("--vision-layers", tower.layers, "--vision-tower: local encoder layers")->capture_default_str();
    app.add_option("--vision-heads", tower.heads, "--vision-tower: encoder heads")->capture_default_str();
    app.add_option("--vision-ffn", tower.ffn, "--vision-tower: encoder MLP size")->capture_default_str();
    llmq::RandomMllamaVisionSpec mllama_vision;
    bool make_mllama_vision = false;
    app.add_flag("--mllama-vision", make_mllama_vision,
                 "write only the vision part of a Llama 3.2 Vision file (architecture mllama: mllama.vision.* keys, "
                 "v.* and mm.0 tensors) instead: --dim, --layers (local), --heads, --ffn, --dtype (f32/f16/bf16), "
                 "--seed, --header-only, --image-size (the tile), --patch-size and --projection-dim describe it");
    app.add_option("--global-layers", mllama_vision.global_layers, "--mllama-vision: gated global layers")
        ->capture_default_str();
    app.add_option("--max-tiles", mllama_vision.max_tiles, "--mllama-vision: max_num_tiles")->capture_default_str();
    app.add_option("--intermediate-layers", mllama_vision.intermediate_layers,
                   "--mllama-vision: local hidden states fed to the projector (indices, 0 = the input)")
        ->delimiter(',')
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);
    if (!preset.empty()) {
        llmq::mllama_text_preset(preset, &spec);
        if (dtype == "f32") dtype = "bf16";  // as the published checkpoints are
        vision_tower = true;
        tower = llmq::mllama_vision_preset();
        mllama_vision = tower;
        clip.image_size = tower.image_size;
        clip.patch_size = tower.patch_size;
    }
    if (vision_tower) {
        if (spec.arch != "mllama") {
            std::fprintf(stderr, "llmq-make-model: --vision-tower goes with --arch mllama\n");
            return 2;
        }
        tower.global_layers = mllama_vision.global_layers;
        tower.max_tiles = mllama_vision.max_tiles;
        tower.intermediate_layers = mllama_vision.intermediate_layers;
        tower.image_size = clip.image_size;
        tower.patch_size = clip.patch_size;
        tower.projection_dim = spec.dim;
        tower.seed = spec.seed + 1;
        tower.header_only = spec.header_only;
        tower.dtype = llmq::find_weight_mix(dtype)->base;
        spec.vision = tower;
    }
    auto report = [&](const llmq::Status& s) {
        if (!s.ok()) {
            std::fprintf(stderr, "llmq-make-model: %s\n", s.to_string().c_str());
            return 1;
        }
        std::fprintf(stderr, "llmq-make-model: wrote %s\n", out.c_str());
        return 0;
    };
    if (make_mllama_vision) {
        auto& v = mllama_vision;
        v.dim = spec.dim;
        v.layers = spec.layers;
        v.heads = spec.heads;
        v.ffn = spec.ffn;
        v.seed = spec.seed;
        v.header_only = spec.header_only;
        v.image_size = clip.image_size;
        v.patch_size = clip.patch_size;
        v.projection_dim = clip.projection_dim;
        v.dtype = llmq::find_weight_mix(dtype)->base;
        return report(llmq::write_random_mllama_vision(v, out));
    }
    if (make_clip) {
        clip.dim = spec.dim;
        clip.layers = spec.layers;
        clip.heads = spec.heads;
        clip.ffn = spec.ffn;
        clip.seed = spec.seed;
        clip.header_only = spec.header_only;
        if (spec.name != llmq::RandomLlamaSpec{}.name) clip.name = spec.name;
        const auto* mix = llmq::find_weight_mix(dtype);
        clip.dtype = mix->base;
        return report(llmq::write_random_clip(clip, out));
    }

    spec.mix = dtype;
    spec.dtype = llmq::find_weight_mix(dtype)->base;

    auto start = std::chrono::steady_clock::now();
    llmq::Status s = manifest.empty() ? llmq::write_random_llama(spec, out)
                                      : llmq::import_manifest(manifest, spec.dtype, out);
    if (!s.ok()) {
        std::fprintf(stderr, "llmq-make-model: %s\n", s.to_string().c_str());
        return 1;
    }
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::fprintf(stderr, "llmq-make-model: wrote %s in %.2f s\n", out.c_str(), seconds);
    return 0;
}
