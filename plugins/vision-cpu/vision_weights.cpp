#include "vision_weights.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>

#include "llmq/kernels/vision.hpp"
#include "llmq_abi_dtypes.hpp"

namespace llmq::vision_cpu {

namespace k = llmq::kernels;

namespace {

int64_t values(const llmq_tensor& t) {
    int64_t n = 1;
    for (int d = 0; d < t.rank; ++d) n *= t.shape[d];
    return n;
}

}  // namespace

void row_table::values(int64_t r, int64_t begin, int64_t n, float* dst) const {
    const int64_t element = int64_t(k::dtype_info_of(dt).element_bytes());
    k::row_to_f32(dt, static_cast<const uint8_t*>(data) + r * ld + begin * element, dst, n);
}

weight_loader::weight_loader(const llmq_named_tensor* tensors, size_t count, llmq_status* status, llmq_error* error)
    : status_(status), error_(error) {
    for (size_t i = 0; i < count; ++i)
        if (tensors[i].name) by_name_[tensors[i].name] = &tensors[i].tensor;
}

const llmq_tensor* weight_loader::find(const std::string& name) {
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
        refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tensor %s is missing", name);
        return nullptr;
    }
    if (it->second->device_type != LLMQ_BACKEND_CPU || it->second->data == nullptr) {
        refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tensor %s is not in CPU memory", name);
        return nullptr;
    }
    return it->second;
}

bool weight_loader::vector(const std::string& name, int64_t n, std::vector<float>& out) {
    row_table t;
    if (!table(name, 1, n, t)) return false;
    out.resize(size_t(n));
    t.row(0, out.data());
    return true;
}

bool weight_loader::scalar(const std::string& name, float& out) {
    std::vector<float> v;
    if (!vector(name, 1, v)) return false;
    out = v[0];
    return true;
}

bool weight_loader::table(const std::string& name, int64_t rows, int64_t row_length, row_table& out) {
    const llmq_tensor* t = find(name);
    if (!t) return false;
    const k::dtype_info* info = llmq::abi::dtype_of(t->dtype);
    if (!info || info->block_values != 1 || !info->weight)
        return refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: tensor %s has dtype %lld; f32, f16 or bf16 expected", name,
                      t->dtype);
    if (values(*t) != rows * row_length)
        return refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tensor %s has %lld values, %lld expected", name,
                      values(*t), rows * row_length);
    // Contiguous: the innermost stride is the element size and each outer one the product.
    int64_t stride = int64_t(info->element_bytes());
    for (int d = t->rank - 1; d >= 0; --d) {
        if (t->shape[d] > 1 && t->strides[d] != stride)
            return refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: tensor %s is not contiguous", name);
        stride *= t->shape[d];
    }
    out.data = t->data;
    out.dt = info->id;
    out.ld = row_length * int64_t(info->element_bytes());
    out.rows = rows;
    out.row_length = row_length;
    return true;
}

bool weight_loader::linear_layer(const std::string& prefix, int64_t out_dim, int64_t in_dim, bool with_bias,
                                 linear& l) {
    const llmq_tensor* t = find(prefix + ".weight");
    if (!t) return false;
    const k::dtype_info* info = llmq::abi::dtype_of(t->dtype);
    if (!info || !info->weight)
        return refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: %s.weight has dtype %lld, not a weight type", prefix,
                      t->dtype);
    int64_t inner = 1;
    for (int d = 1; d < t->rank; ++d) inner *= t->shape[d];
    if (t->shape[0] != out_dim || inner != in_dim)
        return refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: %s.weight is [%lld][%lld], the metadata says [%lld][%lld]",
                      prefix, t->shape[0], inner, out_dim, in_dim);
    if (in_dim % info->block_values != 0)
        return refuse(LLMQ_STATUS_UNSUPPORTED, "vision-cpu: %s.weight rows of %lld values are not whole blocks", prefix,
                      in_dim);
    l.w = t->data;
    l.wt = info->id;
    l.ldw = t->strides[0];
    l.out = out_dim;
    l.in = in_dim;
    if (l.ldw < int64_t(k::row_bytes(l.wt, in_dim)))
        return refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: %s.weight row stride %lld is short", prefix, l.ldw);
    return !with_bias || vector(prefix + ".bias", out_dim, l.bias);
}

int32_t positive(const nlohmann::json& j, const char* key) {
    if (!j.contains(key) || !j[key].is_number_integer()) return -1;
    const int64_t v = j[key].get<int64_t>();
    return v >= 1 && v <= (1 << 20) ? int32_t(v) : -1;
}

bool read_vit_sizes(const nlohmann::json& meta, weight_loader& L, vit_sizes& hp) {
    hp.image_size = positive(meta, "image_size");
    hp.patch_size = positive(meta, "patch_size");
    hp.dim = positive(meta, "embedding_length");
    hp.ff = positive(meta, "feed_forward_length");
    hp.heads = positive(meta, "head_count");
    hp.layers = positive(meta, "layers");
    hp.projection_dim = positive(meta, "projection_dim");
    hp.eps = meta.value("layer_norm_epsilon", 1e-5f);
    for (int32_t v : {hp.image_size, hp.patch_size, hp.dim, hp.ff, hp.heads, hp.layers, hp.projection_dim})
        if (v < 1) return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT, "vision-cpu: metadata lacks a size or has one < 1");
    if (hp.image_size % hp.patch_size != 0 || hp.dim % hp.heads != 0 ||
        hp.dim / hp.heads > k::paged_attention_max_head_dim)
        return L.refuse(LLMQ_STATUS_INVALID_ARGUMENT,
                        "vision-cpu: image_size %lld must be a multiple of patch_size %lld, embedding_length of "
                        "head_count, head_dim at most 512",
                        hp.image_size, hp.patch_size);
    return true;
}

void apply(const llmq_host& host, k::isa isa, const linear& l, const float* x, int64_t M, float* y) {
    const int64_t grain = k::gemm_column_grain(M, l.out, l.in);
    parallel(host, (l.out + grain - 1) / grain, [&](int64_t b, int64_t e) {
        k::gemm(isa, x, M, l.in, l.in, l.w, l.wt, l.ldw, y, l.out, b * grain, std::min(e * grain, l.out));
    });
    if (!l.bias.empty()) k::add_bias_rows(y, l.bias.data(), M, l.out);
}

void layer_norm(const llmq_host& host, const float* x, const std::vector<float>& w, const std::vector<float>& b,
                float* y, int64_t rows, int64_t n, float eps) {
    parallel(host, rows, [&](int64_t begin, int64_t end) {
        k::layer_norm_rows(x + begin * n, w.data(), b.empty() ? nullptr : b.data(), y + begin * n, end - begin, n, eps);
    });
}

void activation(const llmq_host& host, k::isa isa, bool quick, float* x, int64_t rows, int64_t n) {
    parallel(host, rows, [&](int64_t begin, int64_t end) {
        if (quick) k::gelu_quick(x + begin * n, (end - begin) * n);
        else k::gelu_erf(isa, x + begin * n, (end - begin) * n);
    });
}

}  // namespace llmq::vision_cpu
