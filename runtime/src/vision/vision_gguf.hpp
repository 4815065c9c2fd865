// What the vision model files (clip_model.cpp, mllama_vision.cpp) share: reading their size and
// colour keys, and handing tensors to a vision plugin (llmq_plugin.h's llmq_tensor): views of
// GGUF tensors for load_weights, and dense f32 host tensors for encode's pixels and embeddings.
// Private to runtime/src/vision.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "llmq/runtime/gguf.hpp"
#include "llmq_plugin.h"

namespace llmq {

// Model::from_file on the GGUF file at `path` (its errors, or GgufFile::open's).
template <class Model>
auto open_vision_model(const std::string& path) -> decltype(Model::from_file(nullptr)) {
    auto file = GgufFile::open(path);
    if (!file) return file.status();
    return Model::from_file(*file);
}

// A size key: a u32 in least .. 2^20, stored in *out.
struct GgufSizeKey {
    std::string key;
    int32_t* out;
    uint32_t least = 1;
};
// Read every key; errors name the file and the key (absent, of another type, out of range).
[[nodiscard]] Status read_sizes(const GgufFile& file, std::initializer_list<GgufSizeKey> keys);
// A ViT's shape: image_size a multiple of patch_size, dim of heads; invalid_argument naming the
// keys (prefix + "image_size", ...) and values otherwise.
[[nodiscard]] Status check_vit_shape(const GgufFile& file, const std::string& prefix, int32_t image_size,
                                     int32_t patch_size, int32_t dim, int32_t heads);
// `key`: three f32 (R, G, B), each > 0 when `positive` (a std), into out.
[[nodiscard]] Status read_rgb(const GgufFile& file, const std::string& key, bool positive, std::array<float, 3>& out);

// The keys every ViT's plugin metadata holds (llmq_plugin.h's vision contract); the caller
// adds the rest.
nlohmann::json vit_plugin_metadata(const char* architecture, int32_t image_size, int32_t patch_size, int32_t dim,
                                   int32_t ff, int32_t heads, float eps, int32_t layers, int32_t projection_dim);

// The ABI's view of a GGUF tensor: shape[0] outermost (GGUF lists the innermost first), byte
// strides, host memory of the file mapping (null data for a header-only file).
llmq_tensor plugin_tensor_view(const GgufTensor& t);

// The tensors a vision model hands its plugin, each checked against the shape its header
// implies as it is added.
class PluginTensorList {
public:
    explicit PluginTensorList(const GgufFile& file) : file_(file) {}
    // Add tensor `name`, whose GGUF shape (innermost first) must be `shape`. invalid_argument
    // naming the file and the tensor when it is missing or has another shape; unsupported for
    // a type llmq does not compute with.
    [[nodiscard]] Status need(const std::string& name, std::vector<int64_t> shape);
    // invalid_argument naming the first tensor without data in a file that has data.
    [[nodiscard]] Status check_data() const;

    std::vector<llmq_named_tensor> named;  // views valid while the file lives
    uint64_t bytes = 0;

private:
    const GgufFile& file_;
};

// A contiguous f32 CPU tensor over `data` with these dimensions, outermost first.
llmq_tensor dense_f32_tensor(void* data, std::initializer_list<int64_t> dims);

}  // namespace llmq
