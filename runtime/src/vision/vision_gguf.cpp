#include "vision_gguf.hpp"

#include "llmq_abi_dtypes.hpp"

namespace llmq {

llmq_tensor plugin_tensor_view(const GgufTensor& t) {
    llmq_tensor x{};
    x.data = const_cast<uint8_t*>(t.data);
    x.rank = static_cast<int32_t>(t.shape.size());
    x.dtype = abi::dtype_id(t.dtype);
    x.device_type = LLMQ_BACKEND_CPU;
    const auto& info = kernels::dtype_info_of(t.dtype);
    int64_t stride = static_cast<int64_t>(t.row_bytes());
    for (int32_t d = 0; d < LLMQ_TENSOR_MAX_RANK; ++d) {
        x.shape[d] = 1;
        x.strides[d] = 0;
    }
    for (int32_t d = x.rank - 1, g = 0; d >= 0; --d, ++g) {
        x.shape[d] = t.shape[static_cast<size_t>(g)];
        if (g == 0) {
            x.strides[d] = info.element_bytes();  // 0 for block-quantized rows
        } else {
            x.strides[d] = stride;
            stride *= x.shape[d];
        }
    }
    return x;
}

Status read_sizes(const GgufFile& file, std::initializer_list<GgufSizeKey> keys) {
    for (const GgufSizeKey& s : keys) {
        auto v = file.get_u32(s.key);
        if (!v) return v.status().with_context(file.path());
        if (*v < s.least || *v > (1u << 20))
            return invalid_argument(file.path() + ": " + s.key + " = " + std::to_string(*v) + " is out of range");
        *s.out = static_cast<int32_t>(*v);
    }
    return {};
}

Status check_vit_shape(const GgufFile& file, const std::string& prefix, int32_t image_size, int32_t patch_size,
                       int32_t dim, int32_t heads) {
    if (image_size % patch_size != 0)
        return invalid_argument(file.path() + ": " + prefix + "image_size " + std::to_string(image_size) +
                                " is not a multiple of patch_size " + std::to_string(patch_size));
    if (dim % heads != 0)
        return invalid_argument(file.path() + ": " + prefix + "embedding_length " + std::to_string(dim) +
                                " is not a multiple of head_count " + std::to_string(heads));
    return {};
}

Status read_rgb(const GgufFile& file, const std::string& key, bool positive, std::array<float, 3>& out) {
    auto v = file.get_f32_array(key);
    if (!v) return v.status().with_context(file.path());
    if (v->size() != 3)
        return invalid_argument(file.path() + ": " + key + " has " + std::to_string(v->size()) +
                                " values, not 3 (R, G, B)");
    for (size_t c = 0; c < 3; ++c) {
        if (positive && !((*v)[c] > 0)) return invalid_argument(file.path() + ": " + key + " has a value that is not > 0");
        out[c] = (*v)[c];
    }
    return {};
}

nlohmann::json vit_plugin_metadata(const char* architecture, int32_t image_size, int32_t patch_size, int32_t dim,
                                   int32_t ff, int32_t heads, float eps, int32_t layers, int32_t projection_dim) {
    return {{"architecture", architecture}, {"image_size", image_size},     {"patch_size", patch_size},
            {"embedding_length", dim},      {"feed_forward_length", ff},    {"head_count", heads},
            {"layer_norm_epsilon", eps},    {"layers", layers},             {"projection_dim", projection_dim}};
}

Status PluginTensorList::need(const std::string& name, std::vector<int64_t> shape) {
    const GgufTensor* t = file_.tensor(name);
    if (!t) return invalid_argument(file_.path() + ": tensor " + name + " is missing");
    if (t->shape != shape) {
        GgufTensor want;
        want.shape = std::move(shape);
        return invalid_argument(file_.path() + ": tensor " + name + " is " + t->shape_string() +
                                ", the header implies " + want.shape_string());
    }
    if (!t->supported()) return unsupported(file_.path() + ": tensor " + name + " has type " + ggml_type_name(t->ggml_type));
    named.push_back({t->name.c_str(), plugin_tensor_view(*t)});
    bytes += t->size_bytes;
    return {};
}

Status PluginTensorList::check_data() const {
    if (file_.has_data())
        for (const auto& t : named)
            if (!t.tensor.data) return invalid_argument(file_.path() + ": tensor " + t.name + " has no data");
    return {};
}

llmq_tensor dense_f32_tensor(void* data, std::initializer_list<int64_t> dims) {
    llmq_tensor t{};
    t.data = data;
    t.dtype = LLMQ_DTYPE_F32;
    t.rank = static_cast<int32_t>(dims.size());
    t.device_type = LLMQ_BACKEND_CPU;
    int64_t stride = 4;
    for (int d = LLMQ_TENSOR_MAX_RANK - 1; d >= 0; --d) t.shape[d] = 1;
    for (int d = t.rank - 1; d >= 0; --d) {
        t.shape[d] = dims.begin()[d];
        t.strides[d] = stride;
        stride *= t.shape[d];
    }
    return t;
}

}  // namespace llmq
