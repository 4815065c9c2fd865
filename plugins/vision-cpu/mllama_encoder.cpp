#include "mllama_encoder.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "llmq/kernels/vision.hpp"

namespace llmq::vision_cpu {

namespace k = llmq::kernels;

bool load_mllama(const llmq_named_tensor* tensors, size_t count, const char* metadata_json, mllama_model& m,
                 llmq_status* status, llmq_error* error) {
    weight_loader L(tensors, count, status, error);
    nlohmann::json meta = nlohmann::json::parse(metadata_json ? metadata_json : "", nullptr, false);
    if (!meta.is_object()) return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: metadata is not a JSON object");
    const std::string act = meta.value("activation", ""), projector = meta.value("projector", "");
    if (act != "gelu" || projector != "linear")
        return L.refuse(LLMQ_STATUS_UNSUPPORTED,
                        "vision-cpu: mllama with activation \"%s\" and projector \"%s\" is not implemented (gelu, linear is)",
                        act, projector);
    mllama_hparams& hp = m.hp;
    if (!read_vit_sizes(meta, L, hp)) return false;
    hp.max_tiles = positive(meta, "max_num_tiles");
    hp.aspect_ratio_rows = positive(meta, "aspect_ratio_rows");
    if (hp.max_tiles < 1 || hp.aspect_ratio_rows < 1)
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: mllama metadata lacks max_num_tiles or aspect_ratio_rows");
    const auto& global = meta["global_layers"];
    hp.global_layers = global.is_number_integer() ? global.get<int32_t>() : -1;
    const auto& inter = meta["intermediate_layers"];
    const auto& grids = meta["tile_grids"];
    if (hp.global_layers < 0 || !inter.is_array() || inter.empty() || !grids.is_array() || grids.empty())
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT,
                        "vision-cpu: mllama metadata needs global_layers, intermediate_layers and tile_grids");
    for (const auto& i : inter) {
        if (!i.is_number_integer() || i.get<int64_t>() < 0 || i.get<int64_t>() > hp.layers)
            return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: an intermediate layer is not in 0..%lld", hp.layers);
        hp.intermediate.push_back(i.get<int32_t>());
    }
    for (const auto& g : grids) {
        if (!g.is_array() || g.size() != 2 || !g[0].is_number_integer() || !g[1].is_number_integer())
            return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tile_grids holds something not [high, wide]");
        const int64_t tiles = g[0].get<int64_t>() * g[1].get<int64_t>();
        if (tiles < 1 || tiles > hp.max_tiles)
            return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: a tile grid has %lld tiles, not 1..%lld", tiles,
                            hp.max_tiles);
        hp.grid_tiles.push_back(int32_t(tiles));
    }
    if (int64_t(hp.grid_tiles.size()) >= hp.aspect_ratio_rows)
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: %lld tile grids but %lld aspect-ratio rows",
                        int64_t(hp.grid_tiles.size()), hp.aspect_ratio_rows);
    if (int64_t(hp.max_tiles) * hp.padded_rows_per_tile() > (1 << 16))
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: %lld tiles of %lld rows; at most 65536 rows",
                        hp.max_tiles, hp.padded_rows_per_tile());
    const int64_t D = hp.dim, F = hp.ff, T = hp.max_tiles, Pp = hp.rows_per_tile(), R = hp.aspect_ratio_rows;
    if (!L.linear_layer("v.patch_embd", D, 3ll * hp.patch_size * hp.patch_size, false, m.patch) ||
        !L.vector("v.class_embd", D, m.class_embd) || !L.vector("v.position_embd.weight", Pp * D, m.position_embd) ||
        !L.scalar("v.position_embd.gate", m.position_gate) ||
        !L.table("v.tile_position_embd.weight", R, T * Pp * D, m.tile_position_embd) ||
        !L.scalar("v.tile_position_embd.gate", m.tile_position_gate) ||
        !L.table("v.pre_tile_position_embd.weight", R, T * D, m.pre_tile_embd) ||
        !L.scalar("v.pre_tile_position_embd.gate", m.pre_tile_gate) ||
        !L.table("v.post_tile_position_embd.weight", R, T * D, m.post_tile_embd) ||
        !L.scalar("v.post_tile_position_embd.gate", m.post_tile_gate) || !L.vector("v.pre_ln.weight", D, m.pre_ln_w) ||
        !L.vector("v.pre_ln.bias", D, m.pre_ln_b) || !L.vector("v.post_ln.weight", D, m.post_ln_w) ||
        !L.vector("v.post_ln.bias", D, m.post_ln_b))
        return false;
    auto layer = [&](const std::string& b, bool gated, mllama_layer& c) {
        return L.vector(b + "attn_norm.weight", D, c.ln1_w) && L.vector(b + "attn_norm.bias", D, c.ln1_b) &&
               L.vector(b + "ffn_norm.weight", D, c.ln2_w) && L.vector(b + "ffn_norm.bias", D, c.ln2_b) &&
               L.linear_layer(b + "attn_q", D, D, false, c.q) && L.linear_layer(b + "attn_k", D, D, false, c.k) &&
               L.linear_layer(b + "attn_v", D, D, false, c.v) && L.linear_layer(b + "attn_output", D, D, false, c.o) &&
               L.linear_layer(b + "ffn_up", F, D, true, c.fc1) && L.linear_layer(b + "ffn_down", D, F, true, c.fc2) &&
               (!gated || (L.scalar(b + "attn_gate", c.attn_gate) && L.scalar(b + "ffn_gate", c.ffn_gate)));
    };
    m.layers.assign(size_t(hp.layers), {});
    for (int32_t l = 0; l < hp.layers; ++l)
        if (!layer("v.blk." + std::to_string(l) + ".", false, m.layers[size_t(l)])) return false;
    m.global_layers.assign(size_t(hp.global_layers), {});
    for (int32_t l = 0; l < hp.global_layers; ++l)
        if (!layer("v.global.blk." + std::to_string(l) + ".", true, m.global_layers[size_t(l)])) return false;
    return L.linear_layer("mm.0", hp.projection_dim, hp.feature_dim(), true, m.mm0);
}

int64_t mllama_scratch_floats(const mllama_hparams& hp) {
    const int64_t T = hp.max_tiles, N = T * hp.padded_rows_per_tile(), D = hp.dim, P = hp.patches();
    const int64_t K = 3ll * hp.patch_size * hp.patch_size, rows = T * hp.rows_per_tile();
    // x, h, q, k, v, attention out, o [N][D]; f [N][F]; im2col [T P][K]; the kept states
    // [K'][N][D]; the projector's input [rows][D (1 + K')]; one embedding row [T D]; the
    // attention's tables and key lengths (int32, one float each).
    return 7 * N * D + N * hp.ff + T * P * K + int64_t(hp.intermediate.size()) * N * D + rows * hp.feature_dim() +
           T * D + k::bidirectional_attention_index_ints(int32_t(N)) + N;
}

namespace {

// y += s * x: the global layers' gated residuals, the gates already through tanh.
void add_scaled(float* y, const float* x, float s, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] += s * x[i];
}

// The buffers of one encoder layer over N rows.
struct layer_buffers {
    float *h, *q, *k, *v, *att, *o, *f;
    const int32_t* indices;
};

void run_layer(const mllama_layer& L, bool gated, const mllama_hparams& hp, const llmq_host& host, k::isa isa,
               float* x, int64_t N, const layer_buffers& b) {
    const int64_t D = hp.dim, hd = D / hp.heads;
    const float scale = 1.0f / std::sqrt(float(hd));
    layer_norm(host, x, L.ln1_w, L.ln1_b, b.h, N, D, hp.eps);
    apply(host, isa, L.q, b.h, N, b.q);
    apply(host, isa, L.k, b.h, N, b.k);
    apply(host, isa, L.v, b.h, N, b.v);
    parallel(host, N * hp.heads, [&](int64_t begin, int64_t end) {
        k::bidirectional_attention(isa, b.q, b.k, b.v, b.att, int32_t(N), hp.heads, int32_t(hd), scale, b.indices,
                                   begin, end);
    });
    apply(host, isa, L.o, b.att, N, b.o);
    if (gated) add_scaled(x, b.o, L.attn_gate, N * D);
    else k::add_inplace(x, b.o, N * D);
    layer_norm(host, x, L.ln2_w, L.ln2_b, b.h, N, D, hp.eps);
    apply(host, isa, L.fc1, b.h, N, b.f);
    activation(host, isa, false, b.f, N, hp.ff);
    apply(host, isa, L.fc2, b.f, N, b.o);
    if (gated) add_scaled(x, b.o, L.ffn_gate, N * D);
    else k::add_inplace(x, b.o, N * D);
}

}  // namespace

void encode_mllama(const mllama_model& m, const llmq_host& host, k::isa isa, const float* pixels, int32_t id,
                   float* out, std::vector<float>& scratch) {
    const mllama_hparams& hp = m.hp;
    const int64_t T = hp.max_tiles, P = hp.patches(), Pp = hp.rows_per_tile(), Tp = hp.padded_rows_per_tile();
    const int64_t N = T * Tp, D = hp.dim, S = hp.image_size, K = 3ll * hp.patch_size * hp.patch_size;
    const int64_t used = hp.grid_tiles[size_t(id - 1)], real = used * Pp, kept = int64_t(hp.intermediate.size());
    const int64_t Df = hp.feature_dim();
    if (int64_t(scratch.size()) < mllama_scratch_floats(hp)) scratch.resize(size_t(mllama_scratch_floats(hp)));
    float* x = scratch.data();
    layer_buffers b{};
    b.h = x + N * D;
    b.q = b.h + N * D;
    b.k = b.q + N * D;
    b.v = b.k + N * D;
    b.att = b.v + N * D;
    b.o = b.att + N * D;
    b.f = b.o + N * D;
    float* cols = b.f + N * hp.ff;
    float* states = cols + T * P * K;
    float* features = states + kept * N * D;
    float* row = features + T * Pp * Df;
    auto* key_len = reinterpret_cast<int32_t*>(row + T * D);
    auto* indices = key_len + N;
    b.indices = indices;

    // Rows are kept in attention order: the real rows (tiles < used, rows < Pp) first, tile by
    // tile, then every padding row in tile order. HF's mask then is a key-length prefix: real
    // queries see all N keys, padding queries the `real` first. Every other op is per row, so
    // the order only matters where a row's tile is asked: at(t, r) says where row r of tile t is.
    auto at = [&](int64_t t, int64_t r) -> int64_t {
        if (t < used && r < Pp) return t * Pp + r;
        const int64_t pad_before = t < used ? t * (Tp - Pp) : used * (Tp - Pp) + (t - used) * Tp;
        return real + pad_before + (t < used ? r - Pp : r);
    };
    for (int64_t i = 0; i < N; ++i) key_len[i] = int32_t(i < real ? N : real);
    k::bidirectional_attention_indices(int32_t(N), key_len, indices);

    // ---- embeddings. A tile's rows 0 .. Pp - 1 are contiguous from at(t, 0) in this order.
    std::fill(x, x + N * D, 0.0f);
    parallel(host, T * P, [&](int64_t begin, int64_t end) {
        for (int64_t t = begin / P; t * P < end; ++t) {
            const int64_t lo = std::max(begin - t * P, int64_t(0)), hi = std::min(end - t * P, P);
            k::patch_embedding(isa, pixels + t * 3 * S * S, 3, int32_t(S), int32_t(S), hp.patch_size, m.patch.w,
                               m.patch.wt, m.patch.ldw, D, x + at(t, 1) * D, cols + (t * P + lo) * K, lo, hi);
        }
    });
    m.pre_tile_embd.row(id, row);
    for (int64_t t = 0; t < T; ++t) {
        float* tile = x + at(t, 0) * D;
        for (int64_t r = 1; r < Pp; ++r) add_scaled(tile + r * D, row + t * D, m.pre_tile_gate, D);
        std::copy(m.class_embd.begin(), m.class_embd.end(), tile);
        for (int64_t r = 0; r < Pp; ++r) {
            add_scaled(tile + r * D, m.position_embd.data() + r * D, m.position_gate, D);
            m.tile_position_embd.values(id, (t * Pp + r) * D, D, b.h);
            add_scaled(tile + r * D, b.h, m.tile_position_gate, D);
        }
        // LayerNorm with nn.LayerNorm's default epsilon (HF's layernorm_pre); the padding
        // rows stay zero, as F.pad after it leaves them.
        k::layer_norm_rows(tile, m.pre_ln_w.data(), m.pre_ln_b.data(), tile, Pp, D, 1e-5f);
    }

    // ---- the local encoder, keeping the inputs of the intermediate layers
    auto keep = [&](int32_t layer) {
        for (int64_t s = 0; s < kept; ++s)
            if (hp.intermediate[size_t(s)] == layer) std::copy(x, x + N * D, states + s * N * D);
    };
    for (int32_t l = 0; l < hp.layers; ++l) {
        keep(l);
        run_layer(m.layers[size_t(l)], false, hp, host, isa, x, N, b);
    }
    keep(hp.layers);

    // ---- the global encoder
    layer_norm(host, x, m.post_ln_w, m.post_ln_b, x, N, D, 1e-5f);
    m.post_tile_embd.row(id, row);
    for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < Tp; ++r) add_scaled(x + at(t, r) * D, row + t * D, m.post_tile_gate, D);
    for (const mllama_layer& L : m.global_layers) run_layer(L, true, hp, host, isa, x, N, b);

    // ---- the projector on the real rows of every tile, in tile order
    for (int64_t t = 0; t < T; ++t)
        for (int64_t r = 0; r < Pp; ++r) {
            const int64_t src = at(t, r);
            float* f = features + (t * Pp + r) * Df;
            std::copy(x + src * D, x + (src + 1) * D, f);
            for (int64_t s = 0; s < kept; ++s) {
                const float* state = states + (s * N + src) * D;
                for (int64_t d = 0; d < D; ++d) f[D + d * kept + s] = state[d];
            }
        }
    apply(host, isa, m.mm0, features, T * Pp, out);
}

}  // namespace llmq::vision_cpu
