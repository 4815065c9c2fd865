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
#include <map>

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
    return t == dtype::f32 || t == dtype::f16 || t == dtype::bf16 || t == dtype::q8_0 || t == dtype::q4_0 ||
           t == dtype::q4_k || t == dtype::q5_k || t == dtype::q6_k;
}

class CudaBackend final : public Backend {
public:
    explicit CudaBackend(CudaDevice& device) : device_(device), staging_(device), upload_(device) {}

    ~CudaBackend() override {
        cudaStreamSynchronize(device_.cuda_stream());
        for (auto& [key, g] : graphs_) free_graph(g);
    }

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
                               "; the CUDA backend takes f32, f16, bf16, q8_0, q4_0, q4_k, q5_k and q6_k "
                               "weights (llmq quantize can convert the model)");
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
        if (!ids || replaying()) return;
        check(kc::embedding_gather(table.dtype, table.data, table.stride, vocab_begin, table.rows, ids,
                                   static_cast<int64_t>(tokens.size()), dim, dtype::f32, out, stream()),
              "embedding_gather");
    }

    void rms_norm_rows(const float* x, const float* weight, float* y, int64_t rows, int64_t n, float eps) override {
        if (replaying()) return;
        check(kc::rms_norm(dtype::f32, x, weight, y, rows, n, eps, stream()), "rms_norm");
    }

    void rms_norm_gather(const float* x, std::span<const int32_t> rows, const float* weight, float* y, int64_t n,
                         float eps) override {
        const auto* ids = static_cast<const int32_t*>(stage(rows.data(), rows.size_bytes()));
        if (!ids || replaying()) return;
        const int64_t count = static_cast<int64_t>(rows.size());
        // The executor checked every row; the kernel's bound only guards against a bad id.
        check(kc::gather_rows(dtype::f32, x, n, INT64_MAX, ids, count, n, dtype::f32, y, stream()), "gather_rows");
        check(kc::rms_norm(dtype::f32, y, weight, y, count, n, eps, stream()), "rms_norm");
    }

    void add_bias_rows(float* x, const float* bias, int64_t rows, int64_t n) override {
        if (replaying()) return;
        check(kc::bias_add(dtype::f32, x, n, bias, rows, n, stream()), "bias_add");
    }

    void add(float* y, const float* x, int64_t n) override {
        if (replaying()) return;
        check(kc::add(dtype::f32, y, x, n, stream()), "add");
    }
    void scaled_add(float* y, const float* x, float scale, int64_t n) override {
        if (replaying()) return;
        check(kc::scaled_add(dtype::f32, y, x, scale, n, stream()), "scaled_add");
    }

    void rope(float* x, int64_t rows, int32_t heads, int32_t head_dim, std::span<const int32_t> positions,
              const RopeParams& p) override {
        const auto* pos = static_cast<const int32_t*>(stage(positions.data(), positions.size_bytes()));
        if (!pos || replaying()) return;
        check(kc::rope(dtype::f32, x, rows, heads, head_dim, pos, p.theta, p.freq_scale, p.neox, stream(),
                       p.freq_factors),
              "rope");
    }

    void swiglu(const float* gate, const float* up, float* out, int64_t n) override {
        if (replaying()) return;
        check(kc::swiglu(dtype::f32, gate, up, n, out, n, 1, n, stream()), "swiglu");
    }

    // Slots (block * block_size + offset) are computed here from the host's tables.
    void kv_write(const KvPools& pools, std::span<const int32_t> block_tables, int32_t max_blocks,
                  std::span<const int32_t> token_seq, std::span<const int32_t> positions, const float* k,
                  const float* v) override {
        const int64_t* slots = stage_slots(pools, block_tables, max_blocks, token_seq, positions);
        if (!slots || replaying()) return;
        check(kc::kv_write(dtype::f32, k, v, pools.dtype, pools.k, pools.v, slots, INT64_MAX,
                           static_cast<int64_t>(positions.size()), pools.row_values, stream()),
              "kv_write");
    }

    // ---- fused ops: one kernel each instead of two (three)

    void add_rms_norm(float* residual, const float* delta, const float* weight, float* normed, int64_t rows,
                      int64_t n, float eps) override {
        if (replaying()) return;
        check(kc::add_rms_norm(dtype::f32, residual, delta, weight, normed, rows, n, eps, stream()), "add_rms_norm");
    }

    void rope_kv_write(const RopeKvWrite& a) override {
        if (a.pools.row_values != static_cast<int64_t>(a.kv_heads) * a.head_dim) {
            keep(internal_error(device_.info().name + ": rope_kv_write: KV rows of " +
                                std::to_string(a.pools.row_values) + " values for " + std::to_string(a.kv_heads) +
                                " heads of " + std::to_string(a.head_dim)));
            return;
        }
        const auto* pos = static_cast<const int32_t*>(stage(a.positions.data(), a.positions.size_bytes()));
        if (!pos) return;
        const int64_t* slots = stage_slots(a.pools, a.block_tables, a.max_blocks, a.token_seq, a.positions);
        if (!slots || replaying()) return;
        kc::rope_kv_write_args k{};
        k.act = dtype::f32;
        k.q = a.q;
        k.k = a.k;
        k.v = a.v;
        k.kv_t = a.pools.dtype;
        k.k_cache = a.pools.k;
        k.v_cache = a.pools.v;
        k.positions = pos;
        k.slots = slots;
        k.num_slots = INT64_MAX;  // the caller checked every block id (kv_write's contract)
        k.tokens = a.rows;
        k.num_heads = a.q_heads;
        k.num_kv_heads = a.kv_heads;
        k.head_dim = a.head_dim;
        k.theta = a.rope.theta;
        k.freq_scale = a.rope.freq_scale;
        k.neox = a.rope.neox;
        k.freq_factors = a.rope.freq_factors;
        check(kc::rope_kv_write(k, stream()), "rope_kv_write");
    }

    void copy_rows_padded(float* dst, int64_t dst_cols, const float* src, int64_t src_cols, int64_t rows) override {
        if (rows <= 0 || replaying()) return;
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
        if (graph_mode_ == GraphMode::capture || graph_mode_ == GraphMode::replay) {
            // The warm-up of this shape grew the scratch; a step that would grow it now does
            // not match its recording.
            if (gemm_x_.bytes() < bytes) {
                graph_mismatch_ = "the GEMM input scratch is too small";
                return {x, dtype::f32};
            }
            if (graph_mode_ == GraphMode::capture)
                check(kc::convert(dtype::f32, x, to, gemm_x_.data(), rows * cols, stream()), "convert");
            return {gemm_x_.data(), to};
        }
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

    // ---- decode graphs ([cuda] graphs; docs/cuda.md "CUDA graphs")
    //
    // Per key: a warm-up step run as usual, which notes the sizes of what the step stages;
    // then a capture (cudaStreamBeginCapture on the device's stream, thread-local mode),
    // whose staged tables come from the graph's own pinned and device buffers laid out from
    // the warm-up's sizes (each H2D copy is a node of the graph, reading the pinned copy when
    // it is launched); then replays, whose calls write their host tables into that pinned
    // buffer and queue nothing before one cudaGraphLaunch. A graph is dropped (with every
    // other) when device memory was handed back since it was recorded: a pointer it holds may
    // now be another buffer's (a plugin's grown workspace, the staging ring's old chunks).

    bool graphs_supported() const override { return !graphs_off_; }

    GraphStep begin_graph_step(uint64_t key) override {
        graph_mismatch_.clear();
        graph_key_ = key;
        graph_stage_ = 0;
        if (graphs_off_) {
            graph_mode_ = GraphMode::none;
            return GraphStep::run;
        }
        if (!graphs_.empty() && device_.deallocations() != graphs_deallocations_) drop_graphs();
        if (auto it = graphs_.find(key); it != graphs_.end()) {
            graph_mode_ = GraphMode::replay;
            return GraphStep::replay;
        }
        auto warm = warm_layouts_.find(key);
        if (warm == warm_layouts_.end()) {
            warm_layouts_[key].clear();
            graph_mode_ = GraphMode::warm_up;
            return GraphStep::run;
        }
        Graph g;
        g.sizes = warm->second;
        uint64_t total = 0;
        for (uint64_t size : g.sizes) {
            g.offsets.push_back(total);
            total += (std::max<uint64_t>(size, 1) + 15) / 16 * 16;
        }
        auto buffer = allocate(std::max<uint64_t>(total, 16), 256, "decode graph inputs");
        if (!buffer) return graphs_failed("no device memory for its inputs: " + buffer.status().message());
        g.device = std::move(*buffer);
        void* pinned = nullptr;
        if (cudaError_t e = cudaMallocHost(&pinned, std::max<uint64_t>(total, 16)); e != cudaSuccess) {
            cudaGetLastError();
            return graphs_failed(std::string("cudaMallocHost: ") + cudaGetErrorString(e));
        }
        g.pinned = static_cast<uint8_t*>(pinned);
        if (cudaError_t e = cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal); e != cudaSuccess) {
            cudaGetLastError();
            cudaFreeHost(g.pinned);
            return graphs_failed(std::string("cudaStreamBeginCapture: ") + cudaGetErrorString(e));
        }
        capturing_ = std::move(g);
        capture_deallocations_ = device_.deallocations();
        graph_mode_ = GraphMode::capture;
        return GraphStep::capture;
    }

    Expected<bool> end_graph_step(bool complete) override {
        const GraphMode mode = graph_mode_;
        graph_mode_ = GraphMode::none;
        if (mode == GraphMode::none) return true;
        if (!complete) {
            // The caller stopped at an error: a recording of part of a step is no recording.
            if (mode == GraphMode::capture) {
                cudaGraph_t graph = nullptr;
                if (cudaStreamEndCapture(stream(), &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
                cudaGetLastError();
                free_graph(capturing_);
            }
            warm_layouts_.erase(graph_key_);
            return true;
        }
        if (mode == GraphMode::warm_up) return true;
        if (mode == GraphMode::capture) {
            cudaGraph_t graph = nullptr;
            const cudaError_t ended = cudaStreamEndCapture(stream(), &graph);
            std::string why = graph_mismatch_;
            if (why.empty() && ended != cudaSuccess) why = std::string("cudaStreamEndCapture: ") + cudaGetErrorString(ended);
            if (why.empty() && graph_stage_ != capturing_.sizes.size()) why = "the step staged fewer tables than its warm-up";
            if (why.empty() && device_.deallocations() != capture_deallocations_)
                why = "device memory was handed back during the capture";
            // A launch refused during the capture (kept in error_) is the capture's failure: the
            // step runs again as usual and meets it there if it is the launch's own.
            if (why.empty() && !error_.ok()) why = error_.message();
            cudaGraphExec_t exec = nullptr;
            if (why.empty()) {
                if (cudaError_t e = cudaGraphInstantiate(&exec, graph, 0); e != cudaSuccess)
                    why = std::string("cudaGraphInstantiate: ") + cudaGetErrorString(e);
            }
            if (graph) cudaGraphDestroy(graph);
            if (!why.empty()) {
                cudaGetLastError();
                error_ = Status();
                free_graph(capturing_);
                (void)graphs_failed("capturing a decode step failed: " + why);
                return false;
            }
            capturing_.exec = exec;
            auto [it, added] = graphs_.emplace(graph_key_, std::move(capturing_));
            capturing_ = Graph{};
            graphs_deallocations_ = device_.deallocations();
            log::info(device_.info().name + ": decode graph recorded for " + std::to_string(graph_key_ >> 32) +
                      " sequences, block tables " + std::to_string(graph_key_ & 0xffffffffu) + " wide (" +
                      std::to_string(graphs_.size()) + " recorded)");
            check(cudaGraphLaunch(it->second.exec, stream()), "cudaGraphLaunch");
            return true;
        }
        // replay
        auto it = graphs_.find(graph_key_);
        std::string why = graph_mismatch_;
        if (why.empty() && it == graphs_.end()) why = "no recording";
        if (why.empty() && graph_stage_ != it->second.sizes.size())
            why = "the step staged fewer tables than its recording";
        if (!why.empty()) {
            log::warn(device_.info().name + ": a decode step did not match its recorded graph (" + why +
                      "); dropped it, the step runs as usual");
            if (it != graphs_.end()) {
                free_graph(it->second);
                graphs_.erase(it);
            }
            warm_layouts_.erase(graph_key_);  // the next step of this shape warms up again
            return false;
        }
        check(cudaGraphLaunch(it->second.exec, stream()), "cudaGraphLaunch");
        return true;
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
            if (!staged || replaying()) return;  // the kept error says why
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
    // The cache slot of each token (block * block_size + offset, from its sequence's block
    // table on the host), staged for the kernels; null with the error kept.
    const int64_t* stage_slots(const KvPools& pools, std::span<const int32_t> block_tables, int32_t max_blocks,
                               std::span<const int32_t> token_seq, std::span<const int32_t> positions) {
        slots_.resize(positions.size());
        for (size_t t = 0; t < positions.size(); ++t) {
            const int32_t pos = positions[t];
            const size_t table = static_cast<size_t>(token_seq[t]) * max_blocks;
            const int64_t block = block_tables[table + pos / pools.block_size];
            slots_[t] = block * pools.block_size + pos % pools.block_size;
        }
        return static_cast<const int64_t*>(stage(slots_.data(), slots_.size() * sizeof(int64_t)));
    }
    bool replaying() const { return graph_mode_ == GraphMode::replay; }

    const void* stage(const void* host, uint64_t bytes) {
        if (graph_mode_ == GraphMode::capture || graph_mode_ == GraphMode::replay) return stage_for_graph(host, bytes);
        if (graph_mode_ == GraphMode::warm_up) warm_layouts_[graph_key_].push_back(bytes);
        std::string why;
        const void* p = staging_.stage(host, bytes, &why);
        if (!p) keep(out_of_memory(why));
        return p;
    }

    // A table staged in a graph step: the next entry of the layout (which must have the same
    // size), its host values into the graph's pinned buffer; captured: the copy to the
    // device queued (recorded). Null (with graph_mismatch_ set) when the step does not match.
    const void* stage_for_graph(const void* host, uint64_t bytes) {
        Graph* g = &capturing_;
        if (graph_mode_ == GraphMode::replay) {
            auto it = graphs_.find(graph_key_);
            if (it == graphs_.end()) {
                graph_mismatch_ = "no recording";
                return nullptr;
            }
            g = &it->second;
        }
        const size_t i = graph_stage_++;
        if (i >= g->sizes.size() || g->sizes[i] != bytes) {
            if (graph_mismatch_.empty())
                graph_mismatch_ = "table " + std::to_string(i) + " of " + std::to_string(bytes) + " bytes";
            return nullptr;
        }
        uint8_t* pinned = g->pinned + g->offsets[i];
        void* on_device = static_cast<uint8_t*>(g->device.data()) + g->offsets[i];
        if (bytes > 0) {
            std::memcpy(pinned, host, bytes);
            if (graph_mode_ == GraphMode::capture)
                check(cudaMemcpyAsync(on_device, pinned, bytes, cudaMemcpyHostToDevice, stream()),
                      "recording a table's copy");
        }
        return on_device;
    }

    struct Graph {
        cudaGraphExec_t exec = nullptr;
        std::vector<uint64_t> sizes, offsets;  // the staged tables, in call order
        uint8_t* pinned = nullptr;              // their host values (cudaMallocHost)
        DeviceBuffer device;                    // where the recorded copies put them
    };
    void free_graph(Graph& g) {
        if (g.exec) cudaGraphExecDestroy(g.exec);
        if (g.pinned) cudaFreeHost(g.pinned);
        g = Graph{};
    }
    // Every graph and warm-up goes (the stream may still run a launch: wait for it first).
    void drop_graphs() {
        cudaStreamSynchronize(stream());
        for (auto& [key, g] : graphs_) free_graph(g);
        graphs_.clear();
        warm_layouts_.clear();
    }
    GraphStep graphs_failed(const std::string& why) {
        log::warn(device_.info().name + ": CUDA graphs off for this device: " + why);
        graphs_off_ = true;
        graph_mode_ = GraphMode::none;
        drop_graphs();
        return GraphStep::run;
    }

    enum class GraphMode { none, warm_up, capture, replay };

    CudaDevice& device_;
    StagingRing staging_;
    WeightUpload upload_;
    std::list<DeviceBuffer> weights_;
    std::vector<std::pair<WeightSlice, WeightView>> placed_;
    DeviceBuffer gemm_x_;
    std::vector<int64_t> slots_;
    Status error_;
    bool upload_logged_ = false;
    GraphMode graph_mode_ = GraphMode::none;
    bool graphs_off_ = false;
    uint64_t graph_key_ = 0;
    size_t graph_stage_ = 0;
    std::string graph_mismatch_;
    Graph capturing_;
    std::map<uint64_t, Graph> graphs_;
    std::map<uint64_t, std::vector<uint64_t>> warm_layouts_;
    uint64_t graphs_deallocations_ = 0;   // device_.deallocations() when the graphs were valid
    uint64_t capture_deallocations_ = 0;  // ... when the capture began
};

}  // namespace

Expected<std::unique_ptr<Backend>> CudaDevice::create_backend() {
    return std::unique_ptr<Backend>(new CudaBackend(*this));
}

}  // namespace llmq
