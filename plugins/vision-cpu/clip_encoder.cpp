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

namespace {

struct loader {
    std::unordered_map<std::string, const llmq_tensor*> by_name;
    llmq_status* status;
    llmq_error* error;

    static const char* arg(const std::string& v) { return v.c_str(); }
    template <class T>
    static long long arg(T v) {
        return static_cast<long long>(v);
    }
    // Formats are the literals below, one %s and %lld per argument.
    template <class... A>
    bool refuse(llmq_status s, const char* format, const A&... a) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-security"
        if (error != nullptr) std::snprintf(error->message, sizeof error->message, format, arg(a)...);
#pragma GCC diagnostic pop
        *status = s;
        return false;
    }
    const llmq_tensor* find(const std::string& name) {
        auto it = by_name.find(name);
        if (it == by_name.end()) {
            refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tensor %s is missing", name);
            return nullptr;
        }
        if (it->second->device_type != LLMQ_BACKEND_CPU || it->second->data == nullptr) {
            refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tensor %s is not in CPU memory", name);
            return nullptr;
        }
        return it->second;
    }
    static int64_t values(const llmq_tensor& t) {
        int64_t n = 1;
        for (int d = 0; d < t.rank; ++d) n *= t.shape[d];
        return n;
    }
    // A tensor of exactly n values, contiguous, widened to f32.
    bool vector(const std::string& name, int64_t n, std::vector<float>& out) {
        const llmq_tensor* t = find(name);
        if (!t) return false;
        const k::dtype_info* info = llmq::abi::dtype_of(t->dtype);
        if (!info || info->block_values != 1 || !info->weight)
            return refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: tensor %s has dtype %lld; f32, f16 or bf16 expected",
                          name, t->dtype);
        if (values(*t) != n)
            return refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tensor %s has %lld values, %lld expected", name,
                          values(*t), n);
        out.resize(size_t(n));
        k::row_to_f32(info->id, t->data, out.data(), n);
        return true;
    }
    // A [out][in] weight (rows may be strided) and its optional [out] bias.
    bool linear_layer(const std::string& prefix, int64_t out_dim, int64_t in_dim, bool with_bias, linear& l) {
        const llmq_tensor* t = find(prefix + ".weight");
        if (!t) return false;
        const k::dtype_info* info = llmq::abi::dtype_of(t->dtype);
        if (!info || !info->weight)
            return refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: %s.weight has dtype %lld, not a weight type", prefix,
                          t->dtype);
        // A patch embedding arrives as [D][3][p][p]: flatten all but the outermost dimension.
        int64_t inner = 1;
        for (int d = 1; d < t->rank; ++d) inner *= t->shape[d];
        if (t->shape[0] != out_dim || inner != in_dim)
            return refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: %s.weight is [%lld][%lld], the metadata says [%lld][%lld]",
                          prefix, t->shape[0], inner, out_dim, in_dim);
        if (in_dim % info->block_values != 0)
            return refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: %s.weight rows of %lld values are not whole blocks",
                          prefix, in_dim);
        l.w = t->data;
        l.wt = info->id;
        l.ldw = t->strides[0];
        l.out = out_dim;
        l.in = in_dim;
        if (l.ldw < int64_t(k::row_bytes(l.wt, in_dim)))
            return refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: %s.weight row stride %lld is short", prefix, l.ldw);
        return !with_bias || vector(prefix + ".bias", out_dim, l.bias);
    }
};

int32_t positive(const nlohmann::json& j, const char* key) {
    if (!j.contains(key) || !j[key].is_number_integer()) return -1;
    const int64_t v = j[key].get<int64_t>();
    return v >= 1 && v <= (1 << 20) ? int32_t(v) : -1;
}

}  // namespace

bool load_clip(const llmq_named_tensor* tensors, size_t count, const char* metadata_json, clip_model& m,
               llmq_status* status, llmq_error* error) {
    loader L{{}, status, error};
    for (size_t i = 0; i < count; ++i)
        if (tensors[i].name) L.by_name[tensors[i].name] = &tensors[i].tensor;
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
    hp.image_size = positive(meta, "image_size");
    hp.patch_size = positive(meta, "patch_size");
    hp.dim = positive(meta, "embedding_length");
    hp.ff = positive(meta, "feed_forward_length");
    hp.heads = positive(meta, "head_count");
    hp.layers = positive(meta, "layers");
    hp.projection_dim = positive(meta, "projection_dim");
    hp.quick_gelu = act == "quick_gelu";
    hp.eps = meta.value("layer_norm_epsilon", 1e-5f);
    for (int32_t v : {hp.image_size, hp.patch_size, hp.dim, hp.ff, hp.heads, hp.layers, hp.projection_dim})
        if (v < 1) return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: metadata lacks a size or has one < 1");
    if (hp.image_size % hp.patch_size != 0 || hp.dim % hp.heads != 0 ||
        hp.dim / hp.heads > k::paged_attention_max_head_dim || hp.patches() > (1 << 16))
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT,
                        "vision-cpu: image_size %lld must be a multiple of patch_size %lld, embedding_length of "
                        "head_count, head_dim at most 512, patches at most 65536",
                        hp.image_size, hp.patch_size);
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

namespace {

// The host's parallel_for over a lambda.
template <class F>
void parallel(const llmq_host& host, int64_t n, F&& f) {
    auto trampoline = [](void* arg, int64_t begin, int64_t end) { (*static_cast<F*>(arg))(begin, end); };
    host.parallel_for(host.host_context, n, trampoline, &f);
}

// y[M, out] = x[M, in] · wᵀ (+ bias), columns split over the cores.
void apply(const llmq_host& host, k::isa isa, const linear& l, const float* x, int64_t M, float* y) {
    const int64_t grain = k::gemm_column_grain(M, l.out, l.in);
    parallel(host, (l.out + grain - 1) / grain, [&](int64_t b, int64_t e) {
        k::gemm(isa, x, M, l.in, l.in, l.w, l.wt, l.ldw, y, l.out, b * grain, std::min(e * grain, l.out));
    });
    if (!l.bias.empty()) k::add_bias_rows(y, l.bias.data(), M, l.out);
}

}  // namespace

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
        k::layer_norm_rows(x, L.ln1_w.data(), L.ln1_b.data(), h, T, D, hp.eps);
        apply(host, isa, L.q, h, T, q);
        apply(host, isa, L.k, h, T, kk);
        apply(host, isa, L.v, h, T, v);
        parallel(host, T * hp.heads, [&](int64_t b, int64_t e) {
            k::bidirectional_attention(isa, q, kk, v, att, int32_t(T), hp.heads, int32_t(hd), scale, indices, b, e);
        });
        apply(host, isa, L.o, att, T, o);
        k::add_inplace(x, o, T * D);
        k::layer_norm_rows(x, L.ln2_w.data(), L.ln2_b.data(), h, T, D, hp.eps);
        apply(host, isa, L.fc1, h, T, f);
        if (hp.quick_gelu) k::gelu_quick(f, T * F);
        else k::gelu_erf(f, T * F);
        apply(host, isa, L.fc2, f, T, o);
        k::add_inplace(x, o, T * D);
    }
    // ---- the projector on the patch rows (the class row is dropped)
    apply(host, isa, m.mm0, x + D, P, proj);
    k::gelu_erf(proj, P * hp.projection_dim);
    apply(host, isa, m.mm2, proj, P, out);
}

}  // namespace llmq::vision_cpu
