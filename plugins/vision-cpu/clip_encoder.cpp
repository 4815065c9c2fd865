#include "clip_encoder.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>

#include "llmq/kernels/vision.hpp"
#include "llmq_abi_dtypes.hpp"
#include "llmq_plugin_checks.hpp"

namespace llmq::vision_cpu {

namespace k = llmq::kernels;
using llmq::plugin_checks::fail;

bool load_clip(const llmq_named_tensor* tensors, size_t count, const char* metadata_json, clip_model& m,
               llmq_status* status, llmq_error* error) {
    weight_loader L(tensors, count, status, error);
    nlohmann::json meta = nlohmann::json::parse(metadata_json ? metadata_json : "", nullptr, false);
    if (!meta.is_object())
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: metadata is not a JSON object");
    const std::string arch = meta.value("architecture", "");
    if (arch != "clip")
        return L.refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: architecture \"%s\" is not implemented (clip is)", arch);
    const std::string projector = meta.value("projector", "");
    if (projector != "mlp")
        return L.refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: projector \"%s\" is not implemented (mlp is)", projector);
    const std::string act = meta.value("activation", "");
    if (act != "gelu" && act != "quick_gelu")
        return L.refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: activation \"%s\" is not gelu or quick_gelu", act);
    clip_hparams& hp = m.hp;
    hp.quick_gelu = act == "quick_gelu";
    if (!read_vit_sizes(meta, L, hp)) return false;
    if (hp.patches() > (1 << 16))
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: %lld patches; at most 65536", hp.patches());
    const int64_t D = hp.dim, P = hp.patches();
    if (!L.linear_layer("v.patch_embd", D, 3ll * hp.patch_size * hp.patch_size, false, m.patch)) return false;
    if (!L.vector("v.class_embd", D, m.class_embd)) return false;
    if (!L.vector("v.position_embd.weight", (P + 1) * D, m.position_embd)) return false;
    if (!L.vector("v.pre_ln.weight", D, m.pre_ln_w) || !L.vector("v.pre_ln.bias", D, m.pre_ln_b)) return false;
    m.layers.assign(size_t(hp.layers), {});
    for (int32_t l = 0; l < hp.layers; ++l) {
        const std::string b = "v.blk." + std::to_string(l);
        clip_layer& c = m.layers[size_t(l)];
        if (!L.vector(b + ".ln1.weight", D, c.ln1_w) || !L.vector(b + ".ln1.bias", D, c.ln1_b) ||
            !L.vector(b + ".ln2.weight", D, c.ln2_w) || !L.vector(b + ".ln2.bias", D, c.ln2_b) ||
            !L.linear_layer(b + ".attn_q", D, D, true, c.q) || !L.linear_layer(b + ".attn_k", D, D, true, c.k) ||
            !L.linear_layer(b + ".attn_v", D, D, true, c.v) || !L.linear_layer(b + ".attn_out", D, D, true, c.o) ||
            !L.linear_layer(b + ".ffn_down", hp.ff, D, true, c.fc1) || !L.linear_layer(b + ".ffn_up", D, hp.ff, true, c.fc2))
            return false;
    }
    if (!L.linear_layer("mm.0", hp.projection_dim, D, true, m.mm0)) return false;
    if (!L.linear_layer("mm.2", hp.projection_dim, hp.projection_dim, true, m.mm2)) return false;
    return true;
}

void encode_clip(const clip_model& m, const llmq_host& host, k::isa isa, const float* pixels, float* out,
                 std::vector<float>& scratch) {
    const clip_hparams& hp = m.hp;
    const int64_t P = hp.patches(), T = P + 1, D = hp.dim, F = hp.ff, hd = D / hp.heads;
    const int64_t K = 3ll * hp.patch_size * hp.patch_size;
    // Scratch: x, h, q, k, v, attention out, o [T][D]; f [T][F]; im2col [P][K]; indices.
    const size_t need = size_t(7 * T * D + T * F + P * K + k::bidirectional_attention_index_ints(int32_t(T)) +
                               P * hp.projection_dim);
    if (scratch.size() < need) scratch.resize(need);
    float* x = scratch.data();
    float *h = x + T * D, *q = h + T * D, *kk = q + T * D, *v = kk + T * D, *att = v + T * D, *o = att + T * D;
    float* f = o + T * D;
    float* cols = f + T * F;
    float* proj = cols + P * K;
    auto* indices = reinterpret_cast<int32_t*>(proj + P * hp.projection_dim);

    // ---- embeddings: row 0 the class token, rows 1.. the patches; then positions, pre-LN
    parallel(host, P, [&](int64_t b, int64_t e) {
        k::patch_embedding(isa, pixels, 3, hp.image_size, hp.image_size, hp.patch_size, m.patch.w, m.patch.wt,
                           m.patch.ldw, D, x + D, cols + b * K, b, e);
    });
    std::copy(m.class_embd.begin(), m.class_embd.end(), x);
    k::add_inplace(x, m.position_embd.data(), T * D);
    k::layer_norm_rows(x, m.pre_ln_w.data(), m.pre_ln_b.data(), x, T, D, hp.eps);

    k::bidirectional_attention_indices(int32_t(T), nullptr, indices);
    const float scale = 1.0f / std::sqrt(float(hd));
    for (const clip_layer& L : m.layers) {
        layer_norm(host, x, L.ln1_w, L.ln1_b, h, T, D, hp.eps);
        apply(host, isa, L.q, h, T, q);
        apply(host, isa, L.k, h, T, kk);
        apply(host, isa, L.v, h, T, v);
        parallel(host, T * hp.heads, [&](int64_t b, int64_t e) {
            k::bidirectional_attention(isa, q, kk, v, att, int32_t(T), hp.heads, int32_t(hd), scale, indices, b, e);
        });
        apply(host, isa, L.o, att, T, o);
        k::add_inplace(x, o, T * D);
        layer_norm(host, x, L.ln2_w, L.ln2_b, h, T, D, hp.eps);
        apply(host, isa, L.fc1, h, T, f);
        activation(host, isa, hp.quick_gelu, f, T, F);
        apply(host, isa, L.fc2, f, T, o);
        k::add_inplace(x, o, T * D);
    }
    // ---- the projector on the patch rows (the class row is dropped)
    apply(host, isa, m.mm0, x + D, P, proj);
    activation(host, isa, false, proj, P, hp.projection_dim);
    apply(host, isa, m.mm2, proj, P, out);
}

}  // namespace llmq::vision_cpu
