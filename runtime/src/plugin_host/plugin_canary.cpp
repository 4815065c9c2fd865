// The canary's inputs, the calls and the comparison; see plugin_canary.hpp.
#include "llmq/runtime/plugin_canary.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <future>
#include <limits>
#include <numeric>

#include "llmq/kernels/cpu.hpp"
#include "llmq_abi_dtypes.hpp"

namespace llmq {

namespace {

namespace k = llmq::kernels;

constexpr int64_t max_canary_weight_values = int64_t(1) << 22;

// splitmix64: a fixed, portable stream, so a canary is the same run after run.
class Random {
public:
    explicit Random(uint64_t seed) : s_(seed) {}
    uint64_t next() {
        uint64_t z = (s_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    float uniform(float lo, float hi) {  // [lo, hi)
        return lo + (hi - lo) * static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
    }

private:
    uint64_t s_;
};

const char* dtype_label(int32_t t) { return k::dtype_name(t); }

std::string fmt(double v) {
    char b[32];
    std::snprintf(b, sizeof b, "%.3g", v);
    return b;
}

// Weights [N, K] of `dtype`, values ~ U(-1, 1) (Q8_0: scales ~ U(0.005, 0.02), q ~ U(-127, 127)).
std::vector<uint8_t> make_weights(int32_t dtype, int64_t N, int64_t K, Random& r) {
    const auto t = static_cast<k::dtype>(dtype);
    const size_t row = k::row_bytes(t, K);
    std::vector<uint8_t> w(row * static_cast<size_t>(N));
    std::vector<float> values(static_cast<size_t>(K));
    for (int64_t n = 0; n < N; ++n) {
        uint8_t* dst = w.data() + row * static_cast<size_t>(n);
        if (t == k::dtype::q8_0) {
            for (int64_t b = 0; b < K / k::q8_0_block_values; ++b) {
                uint8_t* block = dst + b * k::q8_0_block_bytes;
                const uint16_t d = k::fp32_to_fp16(r.uniform(0.005f, 0.02f));
                std::memcpy(block, &d, 2);
                for (int i = 0; i < k::q8_0_block_values; ++i)
                    block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(r.uniform(-127.0f, 128.0f)));
            }
            continue;
        }
        for (auto& v : values) v = r.uniform(-1.0f, 1.0f);
        k::row_from_f32(t, values.data(), dst, K);
    }
    return w;
}

llmq_tensor matrix(void* data, int32_t dtype, int64_t rows, int64_t cols, int64_t row_stride,
                   int64_t element_stride) {
    llmq_tensor t{};
    t.data = data;
    t.dtype = dtype;
    t.rank = 2;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.strides[0] = row_stride;
    t.strides[1] = element_stride;
    t.device_type = LLMQ_BACKEND_CPU;
    return t;
}

// The comparison of one case. `what` names the case for the message.
Status compare(const std::vector<float>& got, const std::vector<float>* want, double tolerance,
               const std::string& what, const std::string& tolerance_name) {
    size_t bad = got.size();
    for (size_t i = 0; i < got.size(); ++i) {
        const bool want_finite = !want || std::isfinite((*want)[i]);
        if (want_finite && !std::isfinite(got[i])) {
            bad = i;
            break;
        }
    }
    if (bad != got.size())
        return corrupt("canary " + what + ": output " + std::to_string(bad) + " is " +
                       fmt(got[bad]) + " (not finite, or never written)" +
                       (want ? "; the current plugin gives " + fmt((*want)[bad]) : std::string()));
    if (!want) return {};
    double scale = 0, worst = 0;
    size_t at = 0;
    for (size_t i = 0; i < got.size(); ++i) {
        if (!std::isfinite((*want)[i])) continue;
        scale = std::max(scale, std::fabs(static_cast<double>((*want)[i])));
        const double d = std::fabs(static_cast<double>(got[i]) - (*want)[i]);
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    const double relative = worst / std::max(scale, 1e-30);
    if (relative > tolerance)
        return corrupt("canary " + what + ": output " + std::to_string(at) + " is " + fmt(got[at]) +
                       ", the current plugin gives " + fmt((*want)[at]) + "; largest difference " +
                       fmt(worst) + " is " + fmt(relative) + " of the largest output (" + fmt(scale) +
                       "), over " + tolerance_name + " = " + fmt(tolerance) +
                       "; the new plugin computes something else");
    return {};
}

std::string tolerance_key(int32_t dtype) {
    return std::string("[plugins] tolerance_") + dtype_label(dtype);
}

// N trimmed to keep the weight under max_canary_weight_values, with the real remainder mod 64.
int64_t trimmed_rows(int64_t N, int64_t K) {
    if (K <= 0 || N * K <= max_canary_weight_values) return N;
    int64_t rows = std::max<int64_t>(max_canary_weight_values / K, 64);
    rows = rows / 64 * 64 + N % 64;
    return std::min(rows, N);
}

}  // namespace

double CanaryTolerances::for_dtype(int32_t dtype) const {
    switch (dtype) {
        case LLMQ_DTYPE_F16: return f16;
        case LLMQ_DTYPE_BF16: return bf16;
        case LLMQ_DTYPE_Q8_0: return q8_0;
        default: {
            // The other block types: their GEMMs round x to int8 per 32 values as a Q8_0 dot
            // product would, so two correct plugins may differ as much.
            const k::dtype_info* d = abi::dtype_of(dtype);
            return d != nullptr && d->is_quantized() ? q8_0 : f32;
        }
    }
}

CanaryShapes canary_shapes_for_model(const LlamaLayout& layout, int32_t tensor, int32_t block_size,
                                     int32_t kv_dtype) {
    CanaryShapes shapes;
    const int32_t t = std::max(tensor, 1);
    if (!layout.layers.empty()) {
        const LlamaLayerTensors& l = layout.layers[0];
        // column-parallel weights split their rows (N), row-parallel ones their inputs (K).
        auto add = [&](const GgufTensor* w, const char* name, bool row_parallel) {
            if (!w || w->shape.size() < 2 || !w->supported()) return;
            GemmCanaryCase c;
            c.what = std::string("blk.0.") + name;
            c.K = w->shape[0] / (row_parallel ? t : 1);
            c.N = w->shape[1] / (row_parallel ? 1 : t);
            c.w_dtype = abi::dtype_id(w->dtype);
            if (c.K % k::dtype_info_of(w->dtype).block_values != 0) return;
            if (c.K <= 0 || c.N <= 0) return;
            c.N = trimmed_rows(c.N, c.K);
            shapes.gemm.push_back(std::move(c));
        };
        add(l.wq, "attn_q", false);
        add(l.wk, "attn_k", false);
        add(l.ffn_up, "ffn_up", false);
        add(l.ffn_down, "ffn_down", true);
    }
    const auto& hp = layout.hp;
    if (hp.n_head > 0 && hp.head_dim > 0) {
        AttentionCanaryCase a;
        a.num_heads = static_cast<int32_t>(hp.n_head) / t;
        a.num_kv_heads = std::max<int32_t>(static_cast<int32_t>(hp.n_head_kv) / t, 1);
        a.head_dim = static_cast<int32_t>(hp.head_dim);
        a.block_size = block_size;
        a.kv_dtype = kv_dtype;
        if (a.num_heads > 0) shapes.attention.push_back(a);
    }
    return shapes;
}

CanaryShapes default_canary_shapes() {
    CanaryShapes s;
    s.gemm = {{"f32 weights", 96, 67, LLMQ_DTYPE_F32, {1, 7}},
              {"f16 weights", 96, 67, LLMQ_DTYPE_F16, {1, 7}},
              {"bf16 weights", 96, 67, LLMQ_DTYPE_BF16, {1, 7}},
              {"q8_0 weights", 96, 67, LLMQ_DTYPE_Q8_0, {1, 7}}};
    s.attention = {{4, 2, 32, 16, LLMQ_DTYPE_F16}, {4, 4, 16, 8, LLMQ_DTYPE_F32}};
    return s;
}

nlohmann::json canary_shapes_to_json(const CanaryShapes& shapes) {
    nlohmann::json j = {{"gemm", nlohmann::json::array()}, {"attention", nlohmann::json::array()}};
    for (const auto& c : shapes.gemm)
        j["gemm"].push_back({{"what", c.what}, {"K", c.K}, {"N", c.N}, {"w_dtype", c.w_dtype}, {"M", c.M}});
    for (const auto& a : shapes.attention)
        j["attention"].push_back({{"num_heads", a.num_heads}, {"num_kv_heads", a.num_kv_heads},
                                  {"head_dim", a.head_dim}, {"block_size", a.block_size},
                                  {"kv_dtype", a.kv_dtype}});
    return j;
}

Expected<CanaryShapes> canary_shapes_from_json(const nlohmann::json& j) {
    CanaryShapes s;
    // Every number a probe takes from its request is bounded before it sizes a buffer.
    auto integer = [](const nlohmann::json& o, const char* key, int64_t lo, int64_t hi,
                      int64_t* out) -> Status {
        if (!o.is_object() || !o.contains(key) || !o[key].is_number_integer())
            return invalid_argument(std::string("canary shapes: ") + key + " must be an integer");
        const int64_t v = o[key].get<int64_t>();
        if (v < lo || v > hi)
            return invalid_argument(std::string("canary shapes: ") + key + " = " + std::to_string(v) +
                                    " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
        *out = v;
        return {};
    };
    if (!j.is_object() || !j.value("gemm", nlohmann::json()).is_array() ||
        !j.value("attention", nlohmann::json()).is_array())
        return invalid_argument("canary shapes: expected {\"gemm\": [...], \"attention\": [...]}");
    for (const auto& o : j["gemm"]) {
        GemmCanaryCase c;
        int64_t dtype = 0;
        LLMQ_TRY(integer(o, "K", 1, int64_t(1) << 20, &c.K));
        LLMQ_TRY(integer(o, "N", 1, int64_t(1) << 24, &c.N));
        LLMQ_TRY(integer(o, "w_dtype", 0, k::dtype_count - 1, &dtype));
        c.w_dtype = static_cast<int32_t>(dtype);
        const k::dtype_info& wt = *abi::dtype_of(c.w_dtype);
        if (!wt.weight)
            return invalid_argument(std::string("canary shapes: w_dtype ") + wt.name + " is not a weight type (" +
                                    k::weight_dtype_names() + ")");
        if (c.K * c.N > 4 * max_canary_weight_values)
            return invalid_argument("canary shapes: a gemm weight of " + std::to_string(c.K * c.N) +
                                    " values is too large");
        if (c.K % wt.block_values != 0)
            return invalid_argument(std::string("canary shapes: ") + wt.name + " K must be a multiple of " +
                                    std::to_string(wt.block_values));
        c.what = o.value("what", std::string("gemm"));
        c.M.clear();
        if (!o.contains("M") || !o["M"].is_array() || o["M"].empty() || o["M"].size() > 8)
            return invalid_argument("canary shapes: M must be a list of 1 to 8 integers");
        for (const auto& m : o["M"]) {
            if (!m.is_number_integer() || m.get<int64_t>() < 1 || m.get<int64_t>() > 512)
                return invalid_argument("canary shapes: each M must be an integer in [1, 512]");
            c.M.push_back(m.get<int64_t>());
        }
        s.gemm.push_back(std::move(c));
    }
    for (const auto& o : j["attention"]) {
        AttentionCanaryCase a;
        int64_t v = 0;
        LLMQ_TRY(integer(o, "num_heads", 1, 1024, &v));
        a.num_heads = static_cast<int32_t>(v);
        LLMQ_TRY(integer(o, "num_kv_heads", 1, 1024, &v));
        a.num_kv_heads = static_cast<int32_t>(v);
        LLMQ_TRY(integer(o, "head_dim", 1, 1024, &v));
        a.head_dim = static_cast<int32_t>(v);
        LLMQ_TRY(integer(o, "block_size", 1, 1024, &v));
        a.block_size = static_cast<int32_t>(v);
        LLMQ_TRY(integer(o, "kv_dtype", 0, 1, &v));
        a.kv_dtype = static_cast<int32_t>(v);
        if (a.num_heads % a.num_kv_heads != 0)
            return invalid_argument("canary shapes: num_heads must be a multiple of num_kv_heads");
        s.attention.push_back(a);
    }
    return s;
}

struct CanaryRun::GemmInput {
    std::string what;
    int64_t M = 0, K = 0, N = 0;
    int32_t w_dtype = 0;
    std::shared_ptr<const std::vector<uint8_t>> w;  // shared by the M values of one weight
    std::vector<float> x;
};

struct CanaryRun::AttentionInput {
    std::string what;
    AttentionCanaryCase shape;
    std::vector<int32_t> query_start, context, tables;
    int32_t num_seqs = 0, max_blocks = 0, num_blocks = 0;
    std::vector<uint8_t> k_cache, v_cache;
    std::vector<float> q;
};

struct CanaryRun::VisionInput {
    std::string what;
    std::vector<std::string> names;
    std::vector<std::vector<float>> values;
    std::vector<llmq_named_tensor> tensors;
    std::string metadata;
    std::vector<float> pixels;
    int32_t image_size = 0, patches = 0, projection_dim = 0;
};

Expected<CanaryRun> CanaryRun::prepare(int32_t kind, const CanaryShapes& shapes,
                                       const CanaryTolerances& tolerances) {
    CanaryRun run;
    run.kind_ = kind;
    run.tolerances_ = tolerances;
    try {
        if (kind == LLMQ_PLUGIN_KIND_GEMM) {
            uint64_t seed = 1;
            for (const auto& c : shapes.gemm) {
                Random r(0x6c6c6d71ull * ++seed);
                auto w = std::make_shared<const std::vector<uint8_t>>(make_weights(c.w_dtype, c.N, c.K, r));
                for (int64_t M : c.M) {
                    auto in = std::make_shared<GemmInput>();
                    in->M = M;
                    in->K = c.K;
                    in->N = c.N;
                    in->w_dtype = c.w_dtype;
                    in->w = w;
                    in->x.resize(static_cast<size_t>(M * c.K));
                    for (auto& v : in->x) v = r.uniform(-1.0f, 1.0f);
                    in->what = "gemm " + c.what + " [M=" + std::to_string(M) + ", K=" + std::to_string(c.K) +
                               ", N=" + std::to_string(c.N) + ", " + dtype_label(c.w_dtype) + "]";
                    run.gemm_.push_back(std::move(in));
                }
            }
            return run;
        }
        if (kind == LLMQ_PLUGIN_KIND_ATTENTION) {
            uint64_t seed = 7;
            for (const auto& c : shapes.attention) {
                Random r(0x61747471ull * ++seed);
                auto in = std::make_shared<AttentionInput>();
                in->shape = c;
                const int32_t bs = c.block_size;
                // A prefill, a decode whose context spans three blocks and a chunked prefill.
                const std::vector<int32_t> new_tokens = {7, 1, 5};
                in->context = {7, 2 * bs + 5, bs + 3};
                in->num_seqs = 3;
                in->query_start = {0};
                int32_t used_blocks = 0;
                for (int32_t s = 0; s < in->num_seqs; ++s) {
                    in->query_start.push_back(in->query_start.back() + new_tokens[s]);
                    const int32_t blocks = (in->context[s] + bs - 1) / bs;
                    in->max_blocks = std::max(in->max_blocks, blocks);
                    used_blocks += blocks;
                }
                in->num_blocks = used_blocks + 2;
                std::vector<int32_t> ids(static_cast<size_t>(in->num_blocks));
                std::iota(ids.begin(), ids.end(), 0);
                for (size_t i = ids.size() - 1; i > 0; --i) std::swap(ids[i], ids[r.next() % (i + 1)]);
                in->tables.assign(static_cast<size_t>(in->num_seqs * in->max_blocks), 0);
                for (int32_t s = 0, next = 0; s < in->num_seqs; ++s)
                    for (int32_t b = 0; b < (in->context[s] + bs - 1) / bs; ++b)
                        in->tables[s * in->max_blocks + b] = ids[next++];
                const int64_t cache_values = int64_t(in->num_blocks) * bs * c.num_kv_heads * c.head_dim;
                const auto kv_t = static_cast<k::dtype>(c.kv_dtype);
                std::vector<float> values(static_cast<size_t>(cache_values));
                in->k_cache.resize(k::row_bytes(kv_t, cache_values));
                in->v_cache.resize(in->k_cache.size());
                for (auto& v : values) v = r.uniform(-1.0f, 1.0f);
                k::row_from_f32(kv_t, values.data(), in->k_cache.data(), cache_values);
                for (auto& v : values) v = r.uniform(-1.0f, 1.0f);
                k::row_from_f32(kv_t, values.data(), in->v_cache.data(), cache_values);
                in->q.resize(static_cast<size_t>(in->query_start.back() * int64_t(c.num_heads) * c.head_dim));
                for (auto& v : in->q) v = r.uniform(-2.0f, 2.0f);
                in->what = "attention [heads=" + std::to_string(c.num_heads) + ", kv_heads=" +
                           std::to_string(c.num_kv_heads) + ", head_dim=" + std::to_string(c.head_dim) +
                           ", block_size=" + std::to_string(bs) + ", kv " + dtype_label(c.kv_dtype) + "]";
                run.attention_.push_back(std::move(in));
            }
            return run;
        }
    } catch (const std::bad_alloc&) {
        return out_of_memory("canary: no memory for the probe inputs");
    }
        if (kind == LLMQ_PLUGIN_KIND_VISION) {
            constexpr int32_t I = 28, p = 14, D = 32, F = 64, H = 2, L = 2, N = 48, P = (I / p) * (I / p);
            auto in = std::make_shared<VisionInput>();
            Random r(0x76697369ull);
            auto add = [&](const std::string& name, std::vector<int64_t> shape, float mean, float spread) {
                int64_t n = 1;
                for (int64_t d : shape) n *= d;
                std::vector<float> v(static_cast<size_t>(n));
                for (auto& x : v) x = mean + r.uniform(-spread, spread);
                llmq_tensor t{};
                t.dtype = LLMQ_DTYPE_F32;
                t.rank = static_cast<int32_t>(shape.size());
                t.device_type = LLMQ_BACKEND_CPU;
                int64_t stride = 4;
                for (int d = 0; d < LLMQ_TENSOR_MAX_RANK; ++d) t.shape[d] = 1;
                for (int d = t.rank - 1; d >= 0; --d) {
                    t.shape[d] = shape[static_cast<size_t>(d)];
                    t.strides[d] = stride;
                    stride *= t.shape[d];
                }
                in->names.push_back(name);
                in->values.push_back(std::move(v));
                in->tensors.push_back({nullptr, t});
            };
            auto linear = [&](const std::string& prefix, int64_t out, int64_t inputs) {
                add(prefix + ".weight", {out, inputs}, 0.0f, std::sqrt(3.0f / float(inputs)));
                add(prefix + ".bias", {out}, 0.0f, 0.05f);
            };
            add("v.patch_embd.weight", {D, 3, p, p}, 0.0f, std::sqrt(3.0f / (3 * p * p)));
            add("v.class_embd", {D}, 0.0f, 0.5f);
            add("v.position_embd.weight", {P + 1, D}, 0.0f, 0.2f);
            add("v.pre_ln.weight", {D}, 1.0f, 0.1f);
            add("v.pre_ln.bias", {D}, 0.0f, 0.05f);
            for (int32_t l = 0; l < L; ++l) {
                const std::string b = "v.blk." + std::to_string(l) + ".";
                for (const char* n : {"ln1", "ln2"}) {
                    add(b + n + ".weight", {D}, 1.0f, 0.1f);
                    add(b + n + ".bias", {D}, 0.0f, 0.05f);
                }
                for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_out"}) linear(b + n, D, D);
                linear(b + "ffn_down", F, D);
                linear(b + "ffn_up", D, F);
            }
            linear("mm.0", N, D);
            linear("mm.2", N, N);
            for (size_t i = 0; i < in->tensors.size(); ++i) {
                in->tensors[i].name = in->names[i].c_str();
                in->tensors[i].tensor.data = in->values[i].data();
            }
            in->metadata = nlohmann::json{{"architecture", "clip"}, {"image_size", I}, {"patch_size", p},
                                          {"embedding_length", D}, {"feed_forward_length", F}, {"head_count", H},
                                          {"layer_norm_epsilon", 1e-5}, {"layers", L}, {"activation", "quick_gelu"},
                                          {"class_token", true}, {"drop_class_token", true}, {"projector", "mlp"},
                                          {"projection_dim", N}}
                               .dump();
            in->pixels.resize(3 * I * I);
            for (auto& x : in->pixels) x = r.uniform(-1.8f, 2.1f);
            in->image_size = I;
            in->patches = P;
            in->projection_dim = N;
            in->what = "vision clip [image 28/14, dim 32, 2 layers, projection 48, f32]";
            run.vision_ = std::move(in);
            return run;
        }
    return unsupported(std::string("canary: no canary for ") + plugin_kind_name(kind) + " plugins");
}

size_t CanaryRun::cases() const {
    if (kind_ == LLMQ_PLUGIN_KIND_VISION) return vision_ ? 1 : 0;
    return kind_ == LLMQ_PLUGIN_KIND_GEMM ? gemm_.size() : attention_.size();
}

Status CanaryRun::run_case(size_t index, PluginInstance& candidate, PluginInstance* reference) const {
    if (index >= cases()) return invalid_argument("canary: no case " + std::to_string(index));
    std::vector<float> got, want;
    if (kind_ == LLMQ_PLUGIN_KIND_GEMM) {
        const GemmInput& c = *gemm_[index];
        const k::dtype_info& wt = *abi::dtype_of(c.w_dtype);  // validated where the case was made
        const int64_t w_row = static_cast<int64_t>(k::row_bytes(wt.id, c.K));
        const int64_t w_element = wt.element_bytes();
        auto run = [&](PluginInstance& p, std::vector<float>& y) -> Status {
            y.assign(static_cast<size_t>(c.M * c.N), std::numeric_limits<float>::quiet_NaN());
            llmq_matmul_args a{};
            a.struct_size = sizeof a;
            a.x = matrix(const_cast<float*>(c.x.data()), LLMQ_DTYPE_F32, c.M, c.K, c.K * 4, 4);
            a.w = matrix(const_cast<uint8_t*>(c.w->data()), c.w_dtype, c.N, c.K, w_row, w_element);
            a.y = matrix(y.data(), LLMQ_DTYPE_F32, c.M, c.N, c.N * 4, 4);
            return p.matmul(a).with_context("canary " + c.what);
        };
        LLMQ_TRY(run(candidate, got));
        if (reference) LLMQ_TRY(run(*reference, want));
        return compare(got, reference ? &want : nullptr, tolerances_.for_dtype(c.w_dtype), c.what,
                       tolerance_key(c.w_dtype));
    }
    if (kind_ == LLMQ_PLUGIN_KIND_VISION) {
        const VisionInput& c = *vision_;
        auto run = [&](PluginInstance& p, std::vector<float>& out) -> Status {
            LLMQ_TRY(p.vision_load_weights(&c, c.tensors, c.metadata).with_context("canary " + c.what));
            out.assign(static_cast<size_t>(c.patches) * c.projection_dim, std::numeric_limits<float>::quiet_NaN());
            llmq_vision_args a{};
            a.struct_size = sizeof a;
            a.pixels = matrix(const_cast<float*>(c.pixels.data()), LLMQ_DTYPE_F32, 3, int64_t(c.image_size) * c.image_size,
                              int64_t(c.image_size) * c.image_size * 4, 4);
            a.pixels.rank = 3;
            a.pixels.shape[1] = a.pixels.shape[2] = c.image_size;
            a.pixels.strides[1] = int64_t(c.image_size) * 4;
            a.pixels.strides[2] = 4;
            a.embeddings = matrix(out.data(), LLMQ_DTYPE_F32, c.patches, c.projection_dim, int64_t(c.projection_dim) * 4, 4);
            return p.encode(a).with_context("canary " + c.what);
        };
        LLMQ_TRY(run(candidate, got));
        if (reference) LLMQ_TRY(run(*reference, want));
        return compare(got, reference ? &want : nullptr, tolerances_.for_dtype(LLMQ_DTYPE_F32), c.what,
                       tolerance_key(LLMQ_DTYPE_F32));
    }
    const AttentionInput& c = *attention_[index];
    const AttentionCanaryCase& sh = c.shape;
    const int32_t num_tokens = c.query_start.back();
    const int64_t row = int64_t(sh.num_heads) * sh.head_dim;
    auto run = [&](PluginInstance& p, std::vector<float>& out) -> Status {
        out.assign(c.q.size(), std::numeric_limits<float>::quiet_NaN());
        llmq_attention_args a{};
        a.struct_size = sizeof a;
        a.q = matrix(const_cast<float*>(c.q.data()), LLMQ_DTYPE_F32, num_tokens, row, row * 4, 4);
        a.q.rank = 3;
        a.q.shape[1] = sh.num_heads;
        a.q.shape[2] = sh.head_dim;
        a.q.strides[1] = int64_t(sh.head_dim) * 4;
        a.q.strides[2] = 4;
        a.out = a.q;
        a.out.data = out.data();
        a.k_cache = c.k_cache.data();
        a.v_cache = c.v_cache.data();
        a.query_start = c.query_start.data();
        a.context_len = c.context.data();
        a.block_tables = c.tables.data();
        a.kv_dtype = sh.kv_dtype;
        a.num_seqs = c.num_seqs;
        a.num_tokens = num_tokens;
        a.num_heads = sh.num_heads;
        a.num_kv_heads = sh.num_kv_heads;
        a.head_dim = sh.head_dim;
        a.block_size = sh.block_size;
        a.max_blocks_per_seq = c.max_blocks;
        a.num_blocks = c.num_blocks;
        a.scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
        return p.attention(a).with_context("canary " + c.what);
    };
    LLMQ_TRY(run(candidate, got));
    if (reference) LLMQ_TRY(run(*reference, want));
    return compare(got, reference ? &want : nullptr, tolerances_.for_dtype(sh.kv_dtype), c.what,
                   tolerance_key(sh.kv_dtype));
}

Status run_canary(int32_t kind, PluginInstance& candidate, PluginInstance* reference,
                  const CanaryShapes& shapes, const CanaryTolerances& tolerances) {
    auto run = CanaryRun::prepare(kind, shapes, tolerances);
    if (!run) return run.status();
    for (size_t i = 0; i < run->cases(); ++i) LLMQ_TRY(run->run_case(i, candidate, reference));
    return {};
}

Status run_canary_on_device(Device& device, int32_t kind, PluginInstance& candidate,
                            PluginInstance* reference, const CanaryShapes& shapes,
                            const CanaryTolerances& tolerances) {
    auto run = CanaryRun::prepare(kind, shapes, tolerances);
    if (!run) return run.status();
    for (size_t i = 0; i < run->cases(); ++i) {
        std::promise<Status> done;
        auto result = done.get_future();
        device.post([&] { done.set_value(run->run_case(i, candidate, reference)); });
        LLMQ_TRY(result.get());
    }
    return {};
}

}  // namespace llmq
