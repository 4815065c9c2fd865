// The CUDA backend: the seam's ops as CUDA kernels (llmq/kernels/cuda.hpp) on the device's
// stream. The residual stream stays f32 on the seam; GEMM inputs are rounded to the weight's
// 16-bit type (gemm_input), so F16 and BF16 models multiply on tensor cores with f32
// accumulation. Host spans go through the staging ring; weights are uploaded from the file
// mapping through pinned buffers. A failed launch or copy is kept and returned by the next
// synchronize() (or finish_host_output), as CUDA reports asynchronous errors.
#include <algorithm>
#include <climits>
#include <cstring>
#include <list>

#include "cuda_communicators.hpp"
#include "cuda_device.hpp"
#include "cuda_staging.hpp"
#include "llmq/kernels/cuda.hpp"
#include "llmq/runtime/backend.hpp"
#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/mpi_world.hpp"

namespace llmq {

namespace {

namespace kc = kernels::cuda;
using kernels::dtype;

// Weight types the CUDA plugins and the embedding kernel take.
bool cuda_weight_type(dtype t) {
    return t == dtype::f32 || t == dtype::f16 || t == dtype::bf16 || t == dtype::q8_0;
}

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(CudaDevice& device) : device_(device), staging_(device), upload_(device) {}

    ~CudaBackend() override { cudaStreamSynchronize(device_.cuda_stream()); }

    Device& device() const override { return device_; }
    llmq_backend id() const override { return LLMQ_BACKEND_CUDA; }

    Expected<DeviceBuffer> allocate(uint64_t bytes, uint64_t alignment, const std::string& what) override {
        return allocate_buffer(device_, bytes, alignment, what);
    }

    // Rows [r0, r1) of columns [c0, c1), packed (stride = the slice's row bytes). A slice
    // placed before (a tied embedding and LM head) is the same upload.
    Expected<WeightView> place_weight(const WeightSlice& s) override {
        const GgufTensor* t = s.tensor;
        for (const auto& [placed, view] : placed_)
            if (placed.tensor == t && placed.row_begin == s.row_begin && placed.row_end == s.row_end &&
                placed.col_begin == s.col_begin && placed.col_end == s.col_end)
                return view;
        if (!cuda_weight_type(t->dtype))
            return unsupported(device_.info().name + ": tensor " + t->name + " is " + kernels::dtype_name(t->dtype) +
                               "; the CUDA backend takes f32, f16, bf16 and q8_0 weights (llmq quantize can "
                               "convert the model)");
        WeightView w;
        w.dtype = t->dtype;
        w.rows = s.row_end - s.row_begin;
        w.cols = s.col_end - s.col_begin;
        w.stride = static_cast<int64_t>(kernels::row_bytes(t->dtype, w.cols));
        const uint64_t bytes = static_cast<uint64_t>(w.rows) * w.stride;
        auto buffer = allocate(bytes, 256, "weight " + t->name);
        if (!buffer) return buffer.status();
        const int64_t src_stride = static_cast<int64_t>(t->row_bytes());
        const uint8_t* src = t->data + s.row_begin * src_stride +
                             static_cast<int64_t>(kernels::row_bytes(t->dtype, s.col_begin));
        LLMQ_TRY(upload_.rows(buffer->data(), src, src_stride, w.rows, static_cast<uint64_t>(w.stride)));
        w.data = buffer->data();
        weights_.push_back(std::move(*buffer));
        placed_.emplace_back(s, w);
        return w;
    }

    Expected<const float*> place_f32(const GgufTensor* t, int64_t begin, int64_t count) override {
        if (t->dtype != dtype::f32)
            return unsupported(device_.info().name + ": tensor " + t->name + " is " + kernels::dtype_name(t->dtype) +
                               ", expected f32");
        const uint64_t bytes = static_cast<uint64_t>(std::max<int64_t>(count, 1)) * sizeof(float);
        auto buffer = allocate(bytes, 256, "tensor " + t->name);
        if (!buffer) return buffer.status();
        if (count > 0)
            LLMQ_TRY(upload_.rows(buffer->data(), t->data + begin * sizeof(float), 0, 1,
                                  static_cast<uint64_t>(count) * sizeof(float)));
        const float* p = buffer->floats();
        weights_.push_back(std::move(*buffer));
        return p;
    }

    std::unique_ptr<CommunicatorGroup> local_group(int size) override {
        const CudaDeviceSpec& spec = device_.spec();
        const bool whole_gpus = spec.logical_count == 1;
        if (spec.communicator == CudaCommunicator::nccl ||
            (spec.communicator == CudaCommunicator::automatic && whole_gpus && size > 1 && nccl_built()))
            return make_nccl_group(size);
        return make_device_memory_group(size);
    }
    Expected<std::unique_ptr<Communicator>> world_group(MpiWorld&, int, int) override {
        return unsupported(device_.info().name +
                           ": CUDA devices across MPI ranks need NCCL bootstrapped over MPI, which is not "
                           "built yet; run one llmqd for all the GPUs of the host");
    }
    std::unique_ptr<Communicator> world(MpiWorld& world) override { return world.world(); }

    // ---- element-wise ops

    void embedding_gather(const WeightView& table, int64_t vocab_begin, std::span<const int32_t> tokens, float* out,
                          int64_t dim) override {
        const auto* ids = static_cast<const int32_t*>(stage(tokens.data(), tokens.size_bytes()));
        if (!ids) return;
        check(kc::embedding_gather(table.dtype, table.data, table.stride, vocab_begin, table.rows, ids,
                                   static_cast<int64_t>(tokens.size()), dim, dtype::f32, out, stream()),
              "embedding_gather");
    }

    void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n, float eps) override {
        check(kc::rms_norm(dtype::f32, x, weight, y, rows, n, eps, stream()), "rms_norm");
    }

    void rms_norm_gather(const float* x, std::span<const int32_t> rows, const float* weight, float* y, int64_t n,
                         float eps) override {
        const auto* ids = static_cast<const int32_t*>(stage(rows.data(), rows.size_bytes()));
        if (!ids) return;
        const int64_t count = static_cast<int64_t>(rows.size());
        // The executor checked every row; the kernel's bound only guards against a bad id.
        check(kc::gather_rows(dtype::f32, x, n, INT64_MAX, ids, count, n, dtype::f32, y, stream()), "gather_rows");
        check(kc::rms_norm(dtype::f32, y, weight, y, count, n, eps, stream()), "rms_norm");
    }

    void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n) override {
        check(kc::bias_add(dtype::f32, x, n, bias, rows, n, stream()), "bias_add");
    }

    void add(float* y, const float* x, int64_t n) override { check(kc::add(dtype::f32, y, x, n, stream()), "add"); }
    void scaled_add(float* y, const float* x, float scale, int64_t n) override {
        check(kc::scaled_add(dtype::f32, y, x, scale, n, stream()), "scaled_add");
    }

    void rope(float* x, int64_t rows, int32_t heads, int32_t head_dim, std::span<const int32_t> positions,
              const RopeParams& p) override {
        const auto* pos = static_cast<const int32_t*>(stage(positions.data(), positions.size_bytes()));
        if (!pos) return;
        check(kc::rope(dtype::f32, x, rows, heads, head_dim, pos, p.theta, p.freq_scale, p.neox, stream(),
                       p.freq_factors),
              "rope");
    }

    void swiglu(const float* gate, const float* up, float* out, int64_t n) override {
        check(kc::swiglu(dtype::f32, gate, up, n, out, n, 1, n, stream()), "swiglu");
    }

    // Slots (block * block_size + offset) are computed here from the host's tables.
    void kv_write(const KvPools& pools, std::span<const int32_t> block_tables, int32_t max_blocks,
                  std::span<const int32_t> token_seq, std::span<const int32_t> positions, const float* k,
                  const float* v) override {
        slots_.resize(positions.size());
        for (size_t t = 0; t < positions.size(); ++t) {
            const int32_t pos = positions[t];
            const size_t table = static_cast<size_t>(token_seq[t]) * max_blocks;
            const int64_t block = block_tables[table + pos / pools.block_size];
            slots_[t] = block * pools.block_size + pos % pools.block_size;
        }
        const auto* slots = static_cast<const int64_t*>(stage(slots_.data(), slots_.size() * sizeof(int64_t)));
        if (!slots) return;
        check(kc::kv_write(dtype::f32, k, v, pools.dtype, pools.k, pools.v, slots, INT64_MAX,
                           static_cast<int64_t>(positions.size()), pools.row_values, stream()),
              "kv_write");
    }

    void copy_rows_padded(float* dst, int64_t dst_cols, const float* src, int64_t src_cols, int64_t rows) override {
        if (rows <= 0) return;
        if (dst_cols > src_cols)
            check(cudaMemset2DAsync(dst + src_cols, dst_cols * sizeof(float), 0, (dst_cols - src_cols) * sizeof(float),
                                    rows, stream()),
                  "cudaMemset2DAsync");
        check(cudaMemcpy2DAsync(dst, dst_cols * sizeof(float), src, src_cols * sizeof(float), src_cols * sizeof(float),
                                rows, cudaMemcpyDeviceToDevice, stream()),
              "cudaMemcpy2DAsync");
    }

    GemmInput gemm_input(const float* x, int64_t rows, int64_t cols, dtype weight) override {
        if (weight == dtype::f32) return {x, dtype::f32};
        const dtype to = weight == dtype::f16 ? dtype::f16 : dtype::bf16;
        const uint64_t bytes = static_cast<uint64_t>(rows) * cols * 2;
        if (gemm_x_.bytes() < bytes) {
            auto grown = allocate(std::max<uint64_t>(bytes, gemm_x_.bytes() * 2), 256, "GEMM input scratch");
            if (!grown) {
                keep(grown.status());
                return {x, dtype::f32};  // the plugin refuses the mix; the kept error says why
            }
            gemm_x_ = std::move(*grown);
        }
        check(kc::convert(dtype::f32, x, to, gemm_x_.data(), rows * cols, stream()), "convert");
        return {gemm_x_.data(), to};
    }

    // ---- to and from the host

    const int32_t* stage_indices(std::span<const int32_t> host) override {
        return static_cast<const int32_t*>(stage(host.data(), host.size_bytes()));
    }

    // Image embeddings over their token rows: each host row staged, then copied into place.
    void copy_rows_from_host(float* dst, int64_t cols, std::span<const int32_t> rows,
                             const float* const* host_rows) override {
        const uint64_t bytes = static_cast<uint64_t>(cols) * sizeof(float);
        for (size_t i = 0; i < rows.size(); ++i) {
            const void* staged = stage(host_rows[i], bytes);
            if (!staged) return;  // the kept error says why
            check(cudaMemcpyAsync(dst + static_cast<int64_t>(rows[i]) * cols, staged, bytes, cudaMemcpyDeviceToDevice,
                                  stream()),
                  "copying image embeddings to the device");
        }
    }

    float* host_output_target(float*, float* device_scratch) override { return device_scratch; }

    Status finish_host_output(float* host_out, const float* target, size_t floats) override {
        check(cudaMemcpyAsync(host_out, target, floats * sizeof(float), cudaMemcpyDeviceToHost, stream()),
              "copying logits to the host");
        return synchronize();
    }

    Status copy_rows_to_host(float* host_dst, int64_t host_stride, const float* src, int64_t src_stride, int64_t rows,
                             int64_t cols) override {
        if (rows > 0 && cols > 0)
            check(cudaMemcpy2DAsync(host_dst, host_stride * sizeof(float), src, src_stride * sizeof(float),
                                    cols * sizeof(float), rows, cudaMemcpyDeviceToHost, stream()),
                  "copying logit rows to the host");
        return synchronize();
    }

    Status synchronize() override {
        if (!upload_logged_ && upload_.uploaded() > 0) {
            log::info(device_.info().name + ": " + format_bytes(upload_.uploaded()) + " of weights uploaded");
            upload_logged_ = true;
        }
        if (cudaError_t e = cudaStreamSynchronize(stream()); e != cudaSuccess) check(e, "cudaStreamSynchronize");
        staging_.reset();
        Status s = std::move(error_);
        error_ = Status();
        return s;
    }

private:
    cudaStream_t stream() const { return device_.cuda_stream(); }

    void keep(Status s) {
        if (error_.ok() && !s.ok()) error_ = std::move(s);
    }
    void check(cudaError_t e, const char* what) {
        if (e == cudaSuccess) return;
        keep(unavailable(device_.info().name + ": " + what + ": " + cudaGetErrorName(e) + " (" +
                         cudaGetErrorString(e) + ")"));
    }
    const void* stage(const void* host, uint64_t bytes) {
        std::string why;
        const void* p = staging_.stage(host, bytes, &why);
        if (!p) keep(out_of_memory(why));
        return p;
    }

    CudaDevice& device_;
    StagingRing staging_;
    WeightUpload upload_;
    std::list<DeviceBuffer> weights_;
    std::vector<std::pair<WeightSlice, WeightView>> placed_;
    DeviceBuffer gemm_x_;
    std::vector<int64_t> slots_;
    Status error_;
    bool upload_logged_ = false;
};

}  // namespace

Expected<std::unique_ptr<Backend>> CudaDevice::create_backend() {
    return std::unique_ptr<Backend>(new CudaBackend(*this));
}

}  // namespace llmq
