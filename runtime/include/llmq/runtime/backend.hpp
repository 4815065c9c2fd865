// The backend seam: everything the model code (ModelShard, the KV cache, the Executor) needs of
// a device, behind one object per device. Model code calls its Backend and never kernels::,
// memcpy or a CUDA API, so the same forward pass runs on CPU and GPU devices. CpuBackend
// (runtime/src/devices/cpu_backend.cpp) wraps the CPU kernels; a CudaBackend implements the
// same calls with CUDA kernels on the device's stream. Each device makes its own backend
// (Device::create_backend), so no code outside the devices asks what kind of device it runs
// on. docs/backend.md describes the seam.
//
// Memory spaces. "Device memory" is memory of the backend's device: what allocate() returns,
// what place_weight() / place_f32() return, the KV pools. Every float* / void* argument of an
// op below is device memory unless it is named host_*; every std::span<const int32_t> is HOST
// memory owned by the caller (token ids, positions, block tables, row lists: small per-step
// metadata the engine builds on the host), valid for the duration of the call only — a GPU
// backend copies what it needs into its own staging memory before the call returns. On a CPU
// backend device memory is host memory, and the two spaces coincide; model code must still
// never read or write device memory itself, only through the backend.
//
// Ordering. Ops are stream-ordered: a call queues work on the device (CPU: runs it before
// returning) and later ops, plugin calls (which run on the device's stream, llmq_host.stream)
// and communicator calls on this device see its results. The host sees results only after
// synchronize() or finish_host_output() return. Ops that find a device error do not return it:
// the first error since the last synchronize() is what synchronize() (and finish_host_output)
// return, as CUDA reports asynchronous failures.
//
// Threads. Ops, synchronize() and stage_indices() are called only from the device's worker
// thread (Device::post), one at a time. allocate(), place_weight(), place_f32() and the
// communicator factory are called while the model loads, from the loading thread, never at the
// same time as ops on the same backend.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "llmq/kernels/dtype.hpp"
#include "llmq/runtime/communicator.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/status.hpp"
#include "llmq_plugin.h"

namespace llmq {

class MpiWorld;

// Rows × cols of a weight in device memory (rows = outputs), row stride in bytes: what a GEMM
// plugin receives as w. Views of quantized types start and stride on whole blocks.
struct WeightView {
    const void* data = nullptr;
    kernels::dtype dtype = kernels::dtype::f32;
    int64_t rows = 0;
    int64_t cols = 0;
    int64_t stride = 0;
};

// The part of a GGUF weight one shard uses: rows [row_begin, row_end) (a column-parallel
// split, or a vocabulary range) and, of each row, values [col_begin, col_end) (a row-parallel
// split). GGUF's shape[0] is the row length (cols), the product of the others the rows.
struct WeightSlice {
    const GgufTensor* tensor = nullptr;
    int64_t row_begin = 0, row_end = 0;
    int64_t col_begin = 0, col_end = 0;
};

// Device memory from allocate(); freed when the buffer goes. Move-only.
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    DeviceBuffer(Device* device, void* data, uint64_t bytes) : device_(device), data_(data), bytes_(bytes) {}
    DeviceBuffer(DeviceBuffer&& other) noexcept { *this = std::move(other); }
    DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer();

    void* data() const { return data_; }
    float* floats() const { return static_cast<float*>(data_); }
    uint64_t bytes() const { return bytes_; }

private:
    Device* device_ = nullptr;
    void* data_ = nullptr;
    uint64_t bytes_ = 0;
};

// `bytes` of `device`'s memory as a DeviceBuffer, or out_of_memory naming `what`, the device
// and why (what Backend::allocate returns on every backend).
[[nodiscard]] Expected<DeviceBuffer> allocate_buffer(Device& device, uint64_t bytes, uint64_t alignment,
                                                     const std::string& what);

// Rotary embedding parameters (see kernels::rope): freq_i = freq_scale * pos * theta^(-2i/d);
// pairs (i, i + d/2) when neox, else (2i, 2i+1).
struct RopeParams {
    float theta = 10000.0f;
    float freq_scale = 1.0f;
    bool neox = false;
    // [head_dim / 2] per-pair divisors of the frequencies (GGUF's rope_freqs, Llama 3.1), in
    // the device's memory as place_f32 returns it; null: none.
    const float* freq_factors = nullptr;
};

// Where a KV write goes: one layer's K and V pools, each num_blocks blocks of
// [block_size][row_values] of dtype (f16 or f32), as llmq_attention_args describes them.
struct KvPools {
    void* k = nullptr;
    void* v = nullptr;
    kernels::dtype dtype = kernels::dtype::f16;
    int32_t block_size = 16;
    int64_t row_values = 0;  // kv_heads * head_dim
};

class Backend {
public:
    virtual ~Backend() = default;

    // The device this backend computes on (its worker, memory accounting, name).
    virtual Device& device() const = 0;
    // LLMQ_BACKEND_CPU or LLMQ_BACKEND_CUDA: which plugins serve this device (PluginChoice::name).
    virtual llmq_backend id() const = 0;

    // ---- memory (loading thread)

    // `bytes` of device memory, counted against the device's capacity; `what` names the use
    // in the out-of-memory Status ("workspace", "KV cache").
    [[nodiscard]] virtual Expected<DeviceBuffer> allocate(uint64_t bytes, uint64_t alignment,
                                                          const std::string& what) = 0;
    // A weight slice in device memory, ready for the GEMM plugin. CPU: a view of the file
    // mapping (no copy; a row-parallel slice keeps the full row stride). GPU: an upload of the
    // slice into memory the backend owns until it is destroyed. The slice must start its
    // columns on a block boundary of the tensor's dtype.
    [[nodiscard]] virtual Expected<WeightView> place_weight(const WeightSlice& slice) = 0;
    // Values [begin, begin + count) of an F32 tensor (a norm weight, a bias) in device memory.
    [[nodiscard]] virtual Expected<const float*> place_f32(const GgufTensor* tensor, int64_t begin,
                                                           int64_t count) = 0;

    // ---- communicators (loading thread)

    // A group of `size` ranks in this process, rank r driven from the worker of the r-th
    // device of the group (all of this backend's kind): in-process on CPU, device memory or
    // NCCL on GPUs.
    virtual std::unique_ptr<CommunicatorGroup> local_group(int size) = 0;
    // With ranks in several processes: the whole world, and this process's end of a group of
    // the ranks that pass the same color, ordered by key (MPI on CPU; NCCL bootstrapped over
    // MPI on GPUs).
    [[nodiscard]] virtual Expected<std::unique_ptr<Communicator>> world_group(MpiWorld& world, int color,
                                                                              int key) = 0;
    virtual std::unique_ptr<Communicator> world(MpiWorld& world) = 0;

    // ---- element-wise ops (worker thread; stream-ordered)

    // out[t] = row tokens[t] - vocab_begin of table, widened to f32 (dim values), for the tokens
    // in [vocab_begin, vocab_begin + table.rows); zeros for the others (another tensor rank's).
    virtual void embedding_gather(const WeightView& table, int64_t vocab_begin,
                                  std::span<const int32_t> tokens, float* out, int64_t dim) = 0;
    // y = x / sqrt(mean(x²) + eps) * weight, per row of n values; y may equal x.
    virtual void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n,
                               float eps) = 0;
    // y row r = rms_norm(x row rows[r]): the rows that want logits, gathered.
    virtual void rms_norm_gather(const float* x, std::span<const int32_t> rows, const float* weight,
                                 float* y, int64_t n, float eps) = 0;
    // x row r += bias for each of `rows` rows of n values (Q/K/V biases).
    virtual void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n) = 0;
    // y += x over n values (residual adds).
    virtual void add(float* y, const float* x, int64_t n) = 0;
    // y += scale * x over n values (mllama's tanh-gated residuals: scale = tanh(gate)).
    virtual void scaled_add(float* y, const float* x, float scale, int64_t n) = 0;
    // RoPE in place on `rows` rows of [heads][head_dim], row t at positions[t].
    virtual void rope(float* x, int64_t rows, int32_t heads, int32_t head_dim,
                      std::span<const int32_t> positions, const RopeParams& params) = 0;
    // out = silu(gate) * up over n values; out may equal gate.
    virtual void swiglu(const float* gate, const float* up, float* out, int64_t n) = 0;
    // The KV-cache write: row t of k and v (row_values f32 each, contiguous rows) goes to
    // position positions[t] of sequence token_seq[t], whose block table is
    // block_tables[token_seq[t] * max_blocks ...]. The caller checked every position is
    // covered by its table and every block id is < num_blocks.
    virtual void kv_write(const KvPools& pools, std::span<const int32_t> block_tables, int32_t max_blocks,
                          std::span<const int32_t> token_seq, std::span<const int32_t> positions,
                          const float* k, const float* v) = 0;
    // dst row r = src row r (src_cols values) followed by dst_cols - src_cols zeros
    // (a tensor rank's logits padded for the all-gather).
    virtual void copy_rows_padded(float* dst, int64_t dst_cols, const float* src, int64_t src_cols,
                                  int64_t rows) = 0;
    // dst row rows[i] (cols values, rows cols apart) = the host row host_rows[i]: image
    // embeddings placed over the token embeddings of their positions. The host rows stay valid
    // until the next synchronize() returns.
    virtual void copy_rows_from_host(float* dst, int64_t cols, std::span<const int32_t> rows,
                                     const float* const* host_rows) = 0;

    // ---- fused ops (worker thread; stream-ordered). A backend with fused kernels overrides
    // them; the defaults make the separate calls above in this order, so a backend without
    // them (the CPU backend) computes exactly what the separate calls do.

    // residual += delta over rows × n values (a residual add), then normed = the RMSNorm of
    // each updated row (the next block's input norm): add, then rms_norm_rows.
    virtual void add_rms_norm(float* residual, const float* delta, const float* weight, float* normed,
                              int64_t rows, int64_t n, float eps) {
        add(residual, delta, rows * n);
        rms_norm_rows(residual, weight, normed, rows, n, eps);
    }
    // RoPE on q ([rows][q_heads][head_dim]) and k ([rows][kv_heads][head_dim]) at positions,
    // then the KV-cache write of k and v (pools.row_values = kv_heads * head_dim), as rope,
    // rope, kv_write. q is rotated in place; k only has to reach the cache rotated, so what k
    // holds after the call is unspecified (a fused kernel rotates it on its way).
    struct RopeKvWrite {
        float* q = nullptr;
        int32_t q_heads = 0;
        float* k = nullptr;
        const float* v = nullptr;
        int32_t kv_heads = 0;
        int32_t head_dim = 0;
        int64_t rows = 0;
        std::span<const int32_t> positions;
        RopeParams rope;
        KvPools pools;
        std::span<const int32_t> block_tables;
        int32_t max_blocks = 0;
        std::span<const int32_t> token_seq;
    };
    virtual void rope_kv_write(const RopeKvWrite& a) {
        rope(a.q, a.rows, a.q_heads, a.head_dim, a.positions, a.rope);
        rope(a.k, a.rows, a.kv_heads, a.head_dim, a.positions, a.rope);
        kv_write(a.pools, a.block_tables, a.max_blocks, a.token_seq, a.positions, a.k, a.v);
    }

    // x (rows × cols f32) as the GEMM plugin of this device should receive it for a weight of
    // type `weight`: CPU: x itself (the CPU plugins take f32 x with any weight); CUDA: x
    // rounded to f16 for f16 weights, to bf16 for bf16 and block-quantized weights, in the backend's
    // scratch (valid until the next gemm_input), f32 x for f32 weights. The plugin accumulates
    // in f32 and writes f32 y either way.
    struct GemmInput {
        const void* data = nullptr;
        kernels::dtype dtype = kernels::dtype::f32;
    };
    virtual GemmInput gemm_input(const float* x, int64_t rows, int64_t cols, kernels::dtype weight) {
        (void)rows, (void)cols, (void)weight;
        return {x, kernels::dtype::f32};
    }

    // ---- decode graphs (worker thread): a backend that can record a step's device work once
    // and replay it (CUDA graphs) overrides these; the defaults say it cannot.
    //
    // A graph step is begin_graph_step(key), the step's ops, then end_graph_step(). The key
    // names the step's shape (decode_graph_batch.hpp): steps of one key make the same calls
    // with the same sizes and the same device pointers, only the host spans' values differ.
    // begin_graph_step says how the caller makes the step's calls:
    //   run     - as usual (the backend may note what they stage, as a warm-up for the key);
    //   capture - as usual; the backend records the work instead of running it;
    //   replay  - every backend call (element-wise ops, stage_indices, gemm_input) as usual,
    //             but no plugin or communicator call: the backend only puts the calls' host
    //             inputs where the recording reads them and queues nothing.
    // No synchronize(), host output or communicator call between the two. end_graph_step(
    // complete) with complete = every call of the step was made and succeeded runs what was
    // recorded (capture, replay) and returns true: the step's results are in device memory as
    // if its ops had run. false: nothing ran (a capture failed, or a replay's calls did not
    // match its recording; the backend logged why, dropped the graph and, after a failed
    // capture, captures no more): make the step's calls again, as usual. With complete =
    // false (the caller stopped at an error) nothing recorded is run or kept.
    enum class GraphStep { run, capture, replay };
    virtual bool graphs_supported() const { return false; }
    virtual GraphStep begin_graph_step(uint64_t key) {
        (void)key;
        return GraphStep::run;
    }
    [[nodiscard]] virtual Expected<bool> end_graph_step(bool complete) {
        (void)complete;
        return true;
    }

    // ---- to and from the host (worker thread)

    // An index table (block tables, query starts, context lengths) where the device's plugins
    // read it: CPU: host.data() itself; GPU: a copy in staging memory. Valid for every op and
    // plugin call queued before the next synchronize() returns.
    virtual const int32_t* stage_indices(std::span<const int32_t> host) = 0;
    // Where a kernel should write `floats` results that the host wants at host_out: host_out
    // itself where device memory is host memory (CPU), else device_scratch (at least that
    // size). Then finish_host_output(host_out, target, floats) puts them there and waits.
    virtual float* host_output_target(float* host_out, float* device_scratch) = 0;
    [[nodiscard]] virtual Status finish_host_output(float* host_out, const float* target, size_t floats) = 0;
    // host_dst row r (host_stride floats apart) = src row r (src_stride apart), cols values
    // each; returns when the host has them (the gathered logits of several tensor ranks).
    [[nodiscard]] virtual Status copy_rows_to_host(float* host_dst, int64_t host_stride, const float* src,
                                                   int64_t src_stride, int64_t rows, int64_t cols) = 0;
    // Wait for everything queued; the first device error since the last call, if any.
    [[nodiscard]] virtual Status synchronize() = 0;
};

}  // namespace llmq
