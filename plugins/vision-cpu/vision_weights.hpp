// What the encoders of vision-cpu share: reading the host's named tensors into the plugin's
// model structs (checking each against the metadata's sizes), the linear layer, and running a
// linear layer with its columns spread over the device's cores. Private to the plugin.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq_plugin.h"

namespace llmq::vision_cpu {

// A linear layer: y[M, out] = x[M, in] · wᵀ + b.
struct linear {
    const void* w = nullptr;
    kernels::dtype wt = kernels::dtype::f32;
    int64_t ldw = 0, out = 0, in = 0;
    std::vector<float> bias;  // [out]; empty: none
};

// A table of rows kept in the file's dtype (a per-aspect-ratio embedding), widened on use.
struct row_table {
    const void* data = nullptr;
    kernels::dtype dt = kernels::dtype::f32;
    int64_t ld = 0, rows = 0, row_length = 0;  // ld in bytes
    // dst = row r widened to f32 (row_length values).
    void row(int64_t r, float* dst) const { values(r, 0, row_length, dst); }
    // dst = values [begin, begin + n) of row r, widened to f32.
    void values(int64_t r, int64_t begin, int64_t n, float* dst) const;
};

// The host's tensors by name. Each getter checks presence, CPU memory, dtype and size, and on
// failure writes a message naming the tensor into `error`, sets *status and returns false.
class weight_loader {
public:
    weight_loader(const llmq_named_tensor* tensors, size_t count, llmq_status* status, llmq_error* error);

    // A tensor of exactly n values, contiguous, f32/f16/bf16, widened to f32.
    bool vector(const std::string& name, int64_t n, std::vector<float>& out);
    // A one-value tensor (a gate).
    bool scalar(const std::string& name, float& out);
    // A [out][in] weight (rows may be strided; a patch embedding [D][3][p][p] is flattened to
    // [D][3 p p]) of any weight type, and with_bias: its [out] bias.
    bool linear_layer(const std::string& prefix, int64_t out_dim, int64_t in_dim, bool with_bias, linear& l);
    // A [rows][row_length] table of a dtype with single-value elements, kept where it is.
    bool table(const std::string& name, int64_t rows, int64_t row_length, row_table& t);

    // Formats are the literals of the callers, one %s or %lld per argument.
    template <class... A>
    bool refuse(llmq_status s, const char* format, const A&... a) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-security"
        if (error_ != nullptr) std::snprintf(error_->message, sizeof error_->message, format, arg(a)...);
#pragma GCC diagnostic pop
        *status_ = s;
        return false;
    }

private:
    static const char* arg(const std::string& v) { return v.c_str(); }
    template <class T>
    static long long arg(T v) {
        return static_cast<long long>(v);
    }
    const llmq_tensor* find(const std::string& name);

    std::unordered_map<std::string, const llmq_tensor*> by_name_;
    llmq_status* status_;
    llmq_error* error_;
};

// metadata[key] as an integer in 1..2^20, else -1.
int32_t positive(const nlohmann::json& metadata, const char* key);

// The sizes of every ViT's metadata (llmq_plugin.h's vision contract).
struct vit_sizes {
    int32_t image_size = 0, patch_size = 0, dim = 0, ff = 0, heads = 0, layers = 0, projection_dim = 0;
    float eps = 1e-5f;
    int32_t grid() const { return image_size / patch_size; }
    int32_t patches() const { return grid() * grid(); }
};
// Read image_size, patch_size, embedding_length, feed_forward_length, head_count, layers,
// projection_dim and layer_norm_epsilon; false (refused through L) when one is absent or < 1,
// or image_size is not a multiple of patch_size, embedding_length of head_count, or a head
// is wider than the attention kernel takes.
bool read_vit_sizes(const nlohmann::json& metadata, weight_loader& L, vit_sizes& out);

// The host's parallel_for over a lambda.
template <class F>
void parallel(const llmq_host& host, int64_t n, F&& f) {
    auto trampoline = [](void* arg, int64_t begin, int64_t end) { (*static_cast<F*>(arg))(begin, end); };
    host.parallel_for(host.host_context, n, trampoline, &f);
}

// y[M, out] = x[M, in] · wᵀ (+ bias), columns split over the cores; x rows ldx apart.
void apply(const llmq_host& host, kernels::isa isa, const linear& l, const float* x, int64_t M, float* y);

// LayerNorm (bias b, may be empty) and GELU (quick: x·σ(1.702x), else erf) over `rows` rows of
// n values, the rows split over the cores like the GEMMs' columns.
void layer_norm(const llmq_host& host, const float* x, const std::vector<float>& w, const std::vector<float>& b,
                float* y, int64_t rows, int64_t n, float eps);
void activation(const llmq_host& host, kernels::isa isa, bool quick, float* x, int64_t rows, int64_t n);

}  // namespace llmq::vision_cpu
