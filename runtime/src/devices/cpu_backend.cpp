// The CPU backend: the seam's ops as calls of the CPU kernels, on the device's worker thread,
// exactly as the model code made them before the seam. Device memory is host memory, so
// weights are views of the file mapping, index tables are the host's own, and "copies to the
// host" are memcpy or nothing. Ops run before they return and cannot fail.
#include <algorithm>
#include <cstring>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/backend.hpp"
#include "llmq/runtime/mpi_world.hpp"

namespace llmq {

namespace {

class CpuBackend final : public Backend {
public:
    explicit CpuBackend(Device& device) : device_(device) {}

    Device& device() const override { return device_; }
    llmq_backend id() const override { return LLMQ_BACKEND_CPU; }

    Expected<DeviceBuffer> allocate(uint64_t bytes, uint64_t alignment, const std::string& what) override {
        return allocate_buffer(device_, bytes, alignment, what);
    }

    // Compute straight from the mapping: rows [r0, r1) are a run of rows; columns [c0, c1) an
    // offset into each row with the full row stride (whole blocks for quantized types).
    Expected<WeightView> place_weight(const WeightSlice& s) override {
        const GgufTensor* t = s.tensor;
        WeightView w;
        w.dtype = t->dtype;
        w.stride = static_cast<int64_t>(t->row_bytes());
        w.rows = s.row_end - s.row_begin;
        w.cols = s.col_end - s.col_begin;
        w.data = t->data + s.row_begin * w.stride +
                 static_cast<int64_t>(kernels::row_bytes(t->dtype, s.col_begin));
        return w;
    }

    Expected<const float*> place_f32(const GgufTensor* t, int64_t begin, int64_t) override {
        return reinterpret_cast<const float*>(t->data) + begin;
    }

    std::unique_ptr<CommunicatorGroup> local_group(int size) override {
        return std::make_unique<InProcessGroup>(size);
    }
    Expected<std::unique_ptr<Communicator>> world_group(MpiWorld& world, int color, int key) override {
        return world.split(color, key);
    }
    std::unique_ptr<Communicator> world(MpiWorld& world) override { return world.world(); }

    void embedding_gather(const WeightView& table, int64_t vocab_begin, std::span<const int32_t> tokens,
                          float* out, int64_t dim) override {
        for (size_t t = 0; t < tokens.size(); ++t) {
            const int64_t tok = tokens[t];
            float* row = out + static_cast<int64_t>(t) * dim;
            if (tok >= vocab_begin && tok < vocab_begin + table.rows)
                kernels::embedding_row(table.dtype, table.data, table.stride, tok - vocab_begin, row, dim);
            else
                std::memset(row, 0, dim * sizeof(float));
        }
    }

    void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                       float eps) override {
        kernels::rms_norm_rows(x, weight, y, rows, n, eps);
    }

    void rms_norm_gather(const float* x, std::span<const int32_t> rows, const float* weight, float* y,
                         int64_t n, float eps) override {
        for (size_t r = 0; r < rows.size(); ++r) {
            const int64_t from = static_cast<int64_t>(rows[r]) * n, to = static_cast<int64_t>(r) * n;
            kernels::rms_norm(x + from, weight, y + to, n, eps);
        }
    }

    void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n) override {
        for (int64_t r = 0; r < rows; ++r) kernels::add_inplace(x + r * n, bias, n);
    }

    void add(float* y, const float* x, int64_t n) override { kernels::add_inplace(y, x, n); }
    void scaled_add(float* y, const float* x, float scale, int64_t n) override {
        for (int64_t i = 0; i < n; ++i) y[i] += scale * x[i];
    }

    void rope(float* x, int64_t rows, int32_t heads, int32_t head_dim, std::span<const int32_t> positions,
              const RopeParams& p) override {
        const int64_t row = int64_t(heads) * head_dim;
        for (int64_t t = 0; t < rows; ++t)
            kernels::rope(x + t * row, heads, head_dim, positions[t], p.theta, p.freq_scale, p.neox,
                          p.freq_factors);
    }

    void swiglu(const float* gate, const float* up, float* out, int64_t n) override {
        kernels::swiglu(gate, up, out, n);
    }

    void kv_write(const KvPools& pools, std::span<const int32_t> block_tables, int32_t max_blocks,
                  std::span<const int32_t> token_seq, std::span<const int32_t> positions, const float* k,
                  const float* v) override {
        const int64_t n = pools.row_values;
        const uint64_t row_bytes = kernels::row_bytes(pools.dtype, n);
        for (size_t t = 0; t < positions.size(); ++t) {
            const int32_t pos = positions[t];
            const size_t table = static_cast<size_t>(token_seq[t]) * max_blocks;
            const int32_t block = block_tables[table + pos / pools.block_size];
            const uint64_t at =
                (static_cast<uint64_t>(block) * pools.block_size + pos % pools.block_size) * row_bytes;
            const int64_t src = static_cast<int64_t>(t) * n;
            kernels::row_from_f32(pools.dtype, k + src, static_cast<uint8_t*>(pools.k) + at, n);
            kernels::row_from_f32(pools.dtype, v + src, static_cast<uint8_t*>(pools.v) + at, n);
        }
    }

    void copy_rows_padded(float* dst, int64_t dst_cols, const float* src, int64_t src_cols,
                          int64_t rows) override {
        for (int64_t r = 0; r < rows; ++r) {
            std::memcpy(dst + r * dst_cols, src + r * src_cols, src_cols * sizeof(float));
            std::fill(dst + r * dst_cols + src_cols, dst + (r + 1) * dst_cols, 0.0f);
        }
    }

    void copy_rows_from_host(float* dst, int64_t cols, std::span<const int32_t> rows,
                             const float* const* host_rows) override {
        for (size_t i = 0; i < rows.size(); ++i)
            std::memcpy(dst + rows[i] * cols, host_rows[i], static_cast<size_t>(cols) * sizeof(float));
    }

    const int32_t* stage_indices(std::span<const int32_t> host) override { return host.data(); }

    float* host_output_target(float* host_out, float*) override { return host_out; }
    Status finish_host_output(float*, const float*, size_t) override { return {}; }

    Status copy_rows_to_host(float* host_dst, int64_t host_stride, const float* src, int64_t src_stride,
                             int64_t rows, int64_t cols) override {
        for (int64_t r = 0; r < rows; ++r)
            std::memcpy(host_dst + r * host_stride, src + r * src_stride, cols * sizeof(float));
        return {};
    }

    Status synchronize() override { return {}; }

private:
    Device& device_;
};

}  // namespace

Expected<std::unique_ptr<Backend>> CpuDevice::create_backend() {
    return std::unique_ptr<Backend>(new CpuBackend(*this));
}

}  // namespace llmq
