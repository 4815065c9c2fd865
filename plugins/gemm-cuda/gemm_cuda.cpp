// gemm-cuda: the CUDA GEMM plugin, y = x · wᵀ on the device's stream (ABI 1.1 GPU contract).
//
//   f32/f16/bf16 weights: one cuBLASLt matmul (f32 accumulation). y[M,N] row-major is the
//     column-major N×M matrix w·xᵀ, so A = w (column-major K×N, transposed), B = x (K×M),
//     C = D = y (N×M); no copies. Each shape's descriptors and heuristic choice live in a
//     plan cache (gemm_plan_cache.hpp); the workspace comes from the host at init.
//   q8_0 weights, M <= 16 (decode): kernels::cuda::q8_0_gemv reads the blocks directly;
//     q4_0, q4_k, q5_k, q6_k weights likewise through kernels::cuda::block_quant_gemv.
//   block-quantized weights, larger M: tiles of weight rows are dequantized to x's type into
//     a buffer from the host, then multiplied by cuBLASLt into the tile's columns of y.
//
// Plugin TOML table ([plugins.gemm-cuda]):
//   workspace_mib = 32        cuBLASLt workspace (Hopper wants 32 MiB for its best kernels)
//   dequant_tile_mib = 64     buffer for dequantized weight tiles (larger M only)
//   plan_cache_size = 256     shapes whose plans are kept
//
// None of this has run on a GPU yet (docs/cuda.md).
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cinttypes>
#include <exception>
#include <new>
#include <string>

#include "../cuda-common/cuda_device.hpp"
#include "../cuda-common/plugin_config.hpp"
#include "gemm_cuda_arguments.hpp"
#include "llmq/kernels/cuda.hpp"
#include "llmq_plugin.h"

namespace {

namespace kc = llmq::kernels::cuda;
using llmq::cuda_plugin::fail;
using llmq::gemm_cuda::gemm_call;
using llmq::gemm_cuda::gemm_shape;

constexpr const char* plugin_name = "gemm-cuda";
constexpr const char* plugin_version = "1.0.0";

cudaDataType_t cuda_type(int32_t t) {
    switch (t) {
        case LLMQ_DTYPE_F16: return CUDA_R_16F;
        case LLMQ_DTYPE_BF16: return CUDA_R_16BF;
        default: return CUDA_R_32F;
    }
}

llmq::kernels::dtype kernel_type(int32_t t) { return static_cast<llmq::kernels::dtype>(t); }

// One shape's cuBLASLt objects and chosen algorithm; owns and destroys the descriptors.
struct lt_plan {
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo{};
    lt_plan() = default;
    lt_plan(lt_plan&& o) noexcept : desc(o.desc), a(o.a), b(o.b), c(o.c), algo(o.algo) {
        o.desc = nullptr;
        o.a = o.b = o.c = nullptr;
    }
    lt_plan& operator=(lt_plan&&) = delete;
    ~lt_plan() {
        if (c != nullptr) cublasLtMatrixLayoutDestroy(c);
        if (b != nullptr) cublasLtMatrixLayoutDestroy(b);
        if (a != nullptr) cublasLtMatrixLayoutDestroy(a);
        if (desc != nullptr) cublasLtMatmulDescDestroy(desc);
    }
};

struct instance {
    const llmq_host* host = nullptr;
    cudaStream_t stream = nullptr;
    cublasLtHandle_t lt = nullptr;
    void* workspace = nullptr;
    size_t workspace_bytes = size_t(32) << 20;
    void* dequant = nullptr;  // q8_0 tiles, grown on demand
    size_t dequant_bytes = 0;
    size_t dequant_limit = size_t(64) << 20;
    llmq::gemm_cuda::plan_cache<lt_plan> plans{256};

    explicit instance(size_t cache_size) : plans(cache_size) {}
    ~instance() {
        if (dequant != nullptr) host->free(host->host_context, dequant);
        if (workspace != nullptr) host->free(host->host_context, workspace);
        if (lt != nullptr) cublasLtDestroy(lt);
    }
};

// ---- configuration

struct config {
    int64_t workspace_mib = 32;
    int64_t dequant_tile_mib = 64;
    int64_t plan_cache_size = 256;
};

llmq_status read_config(const char* text, config& out, llmq_error* error) {
    toml::table table;
    if (llmq_status s = llmq::cuda_plugin::parse_config(text, plugin_name, &table, error); s != LLMQ_OK) return s;
    for (const auto& [key, value] : table) {
        int64_t* field = nullptr;
        int64_t low = 0, high = 0;
        if (key == "workspace_mib") field = &out.workspace_mib, low = 0, high = 4096;
        else if (key == "dequant_tile_mib") field = &out.dequant_tile_mib, low = 1, high = 4096;
        else if (key == "plan_cache_size") field = &out.plan_cache_size, low = 1, high = 1 << 20;
        else
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                        "%s config: unknown key '%s' (known: workspace_mib, dequant_tile_mib, plan_cache_size)",
                        plugin_name, std::string(key.str()).c_str());
        const auto* number = value.as_integer();
        if (number == nullptr || number->get() < low || number->get() > high)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s config: %s must be an integer in [%" PRId64 ", %" PRId64 "]",
                        plugin_name, std::string(key.str()).c_str(), low, high);
        *field = number->get();
    }
    return LLMQ_OK;
}

llmq_status cuda_failed(llmq_error* error, const char* what, cudaError_t status) {
    return fail(error, status == cudaErrorMemoryAllocation ? LLMQ_STATUS_OUT_OF_MEMORY : LLMQ_STATUS_DEVICE_ERROR,
                "%s: %s: %s", what, cudaGetErrorName(status), cudaGetErrorString(status));
}
llmq_status lt_failed(llmq_error* error, const char* what, cublasStatus_t status) {
    return fail(error, status == CUBLAS_STATUS_ALLOC_FAILED ? LLMQ_STATUS_OUT_OF_MEMORY : LLMQ_STATUS_DEVICE_ERROR,
                "%s: cuBLASLt status %d", what, int(status));
}

// ---- lifecycle

llmq_status init(const llmq_host* host, void** out, llmq_error* error) {
    if (out == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: instance pointer is NULL", plugin_name);
    *out = nullptr;
    if (llmq_status s = llmq::cuda_plugin::check_host(host, plugin_name, error); s != LLMQ_OK) return s;
    config cfg;
    if (llmq_status s = read_config(host->config_toml, cfg, error); s != LLMQ_OK) return s;
    cudaDeviceProp props{};
    std::string device;
    if (llmq_status s = llmq::cuda_plugin::query_device(host, plugin_name, &props, &device, error); s != LLMQ_OK) return s;
    try {
        auto* self = new instance(size_t(cfg.plan_cache_size));
        self->host = host;
        self->stream = static_cast<cudaStream_t>(host->stream);
        self->workspace_bytes = size_t(cfg.workspace_mib) << 20;
        self->dequant_limit = size_t(cfg.dequant_tile_mib) << 20;
        if (cublasStatus_t st = cublasLtCreate(&self->lt); st != CUBLAS_STATUS_SUCCESS) {
            delete self;
            return lt_failed(error, "gemm-cuda init: cublasLtCreate", st);
        }
        if (self->workspace_bytes > 0) {
            self->workspace = host->alloc(host->host_context, self->workspace_bytes, LLMQ_PLUGIN_CUDA_ALLOC_ALIGNMENT);
            if (self->workspace == nullptr) {
                delete self;
                return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "%s init: no %" PRId64 " MiB workspace on cuda:%d",
                            plugin_name, cfg.workspace_mib, host->device_index);
            }
        }
        llmq::cuda_plugin::log_info(host, std::string(plugin_name) + " " + plugin_version + ": " + device + ", cuBLASLt " +
                                              std::to_string(cublasLtGetVersion()) + ", workspace " +
                                              std::to_string(cfg.workspace_mib) + " MiB");
        *out = self;
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "%s init: out of memory", plugin_name);
    } catch (const std::exception& e) {
        return fail(error, LLMQ_STATUS_INTERNAL, "%s init: %s", plugin_name, e.what());
    }
}

void shutdown(void* self) { delete static_cast<instance*>(self); }

// ---- cuBLASLt plans

template <typename T>
cublasStatus_t set_pref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a, T v) {
    return cublasLtMatmulPreferenceSetAttribute(p, a, &v, sizeof v);
}

// The plan for `g` (A = w-like K×N matrix of g.w_type, B = x, C = y), made and cached on a miss.
llmq_status find_plan(instance& self, const gemm_shape& g, lt_plan** out, llmq_error* error) {
    if ((*out = self.plans.find(g)) != nullptr) return LLMQ_OK;
    lt_plan plan;
    cublasStatus_t st = cublasLtMatmulDescCreate(&plan.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
    const cublasOperation_t transpose = CUBLAS_OP_T, none = CUBLAS_OP_N;
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose);
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasLtMatmulDescSetAttribute(plan.desc, CUBLASLT_MATMUL_DESC_TRANSB, &none, sizeof none);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&plan.a, cuda_type(g.w_type), uint64_t(g.K), uint64_t(g.N), g.ldw);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&plan.b, cuda_type(g.x_type), uint64_t(g.K), uint64_t(g.M), g.ldx);
    if (st == CUBLAS_STATUS_SUCCESS) st = cublasLtMatrixLayoutCreate(&plan.c, cuda_type(g.y_type), uint64_t(g.N), uint64_t(g.M), g.ldy);
    if (st != CUBLAS_STATUS_SUCCESS) return lt_failed(error, "matmul: creating cuBLASLt descriptors", st);

    cublasLtMatmulPreference_t pref = nullptr;
    st = cublasLtMatmulPreferenceCreate(&pref);
    if (st != CUBLAS_STATUS_SUCCESS) return lt_failed(error, "matmul: cublasLtMatmulPreferenceCreate", st);
    set_pref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(self.workspace_bytes));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, uint32_t(g.w_alignment));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, uint32_t(g.x_alignment));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, uint32_t(g.y_alignment));
    set_pref(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, uint32_t(g.y_alignment));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    st = cublasLtMatmulAlgoGetHeuristic(self.lt, plan.desc, plan.a, plan.b, plan.c, plan.c, pref, 1, &result, &found);
    cublasLtMatmulPreferenceDestroy(pref);
    if (st != CUBLAS_STATUS_SUCCESS || found == 0)
        return fail(error, LLMQ_STATUS_UNSUPPORTED,
                    "matmul: cuBLASLt has no algorithm for M=%" PRId64 " N=%" PRId64 " K=%" PRId64
                    " (%s x %s -> %s, alignments %u/%u/%u; status %d)",
                    g.M, g.N, g.K, llmq::cuda_plugin::dtype_label(g.x_type), llmq::cuda_plugin::dtype_label(g.w_type),
                    llmq::cuda_plugin::dtype_label(g.y_type), g.x_alignment, g.w_alignment, g.y_alignment, int(st));
    plan.algo = result.algo;
    *out = &self.plans.insert(g, std::move(plan));
    return LLMQ_OK;
}

llmq_status run_lt(instance& self, const gemm_shape& g, const void* a, const void* b, void* c, llmq_error* error) {
    lt_plan* plan = nullptr;
    if (llmq_status s = find_plan(self, g, &plan, error); s != LLMQ_OK) return s;
    const float one = 1.0f, zero = 0.0f;
    const cublasStatus_t st = cublasLtMatmul(self.lt, plan->desc, &one, a, plan->a, b, plan->b, &zero, c, plan->c, c,
                                             plan->c, &plan->algo, self.workspace, self.workspace_bytes, self.stream);
    if (st != CUBLAS_STATUS_SUCCESS) return lt_failed(error, "matmul: cublasLtMatmul", st);
    return LLMQ_OK;
}

// Block-quantized weights with M above the GEMV's rows: dequantize `tile` rows of w at a time.
llmq_status run_dequantized_tiles(instance& self, const gemm_call& call, llmq_error* error) {
    const gemm_shape& g = call.shape;
    const int64_t element = llmq::cuda_plugin::element_bytes(g.x_type);
    const int64_t row_bytes = g.K * element;
    int64_t tile = int64_t(self.dequant_limit) / row_bytes / 128 * 128;
    if (tile < 128) tile = 128;
    if (tile > g.N) tile = g.N;
    const size_t needed = size_t(tile * row_bytes);
    if (self.dequant_bytes < needed) {
        void* grown = self.host->alloc(self.host->host_context, needed, LLMQ_PLUGIN_CUDA_ALLOC_ALIGNMENT);
        if (grown == nullptr)
            return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "matmul: no %zu-byte buffer for dequantized %s tiles",
                        needed, llmq::cuda_plugin::dtype_label(g.w_type));
        if (self.dequant != nullptr) self.host->free(self.host->host_context, self.dequant);
        self.dequant = grown;
        self.dequant_bytes = needed;
    }
    const int64_t ye = llmq::cuda_plugin::element_bytes(g.y_type);
    for (int64_t n0 = 0; n0 < g.N; n0 += tile) {
        const int64_t rows = g.N - n0 < tile ? g.N - n0 : tile;
        const auto* w_rows = static_cast<const uint8_t*>(call.w) + n0 * call.ldw_bytes;
        const cudaError_t e =
            g.w_type == LLMQ_DTYPE_Q8_0
                ? kc::q8_0_dequantize(w_rows, call.ldw_bytes, rows, g.K, kernel_type(g.x_type), self.dequant, g.K,
                                      self.stream)
                : kc::block_quant_dequantize(kernel_type(g.w_type), w_rows, call.ldw_bytes, rows, g.K,
                                             kernel_type(g.x_type), self.dequant, g.K, self.stream);
        if (e != cudaSuccess) return cuda_failed(error, "matmul: dequantize launch", e);
        gemm_shape part = g;
        part.N = rows;
        part.w_type = g.x_type;
        part.ldw = g.K;
        part.w_alignment = llmq::cuda_plugin::alignment_of(uintptr_t(row_bytes));
        void* y_cols = static_cast<uint8_t*>(call.y) + n0 * ye;
        const uint32_t ya = llmq::cuda_plugin::alignment_of(reinterpret_cast<uintptr_t>(y_cols));
        part.y_alignment = ya < g.y_alignment ? ya : g.y_alignment;
        if (llmq_status s = run_lt(self, part, self.dequant, call.x, y_cols, error); s != LLMQ_OK) return s;
    }
    return LLMQ_OK;
}

// ---- the call

llmq_status matmul(void* raw, const llmq_matmul_args* a, llmq_error* error) {
    auto* self = static_cast<instance*>(raw);
    if (self == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: instance is NULL");
    gemm_call call;
    if (llmq_status s = llmq::gemm_cuda::check_matmul(a, self->host->device_index, &call, error); s != LLMQ_OK) return s;
    const gemm_shape& g = call.shape;
    if (g.M == 0 || g.N == 0) return LLMQ_OK;
    try {
        if (g.K == 0) {  // empty sums: zero bits are 0.0 in every activation type
            const size_t ye = size_t(llmq::cuda_plugin::element_bytes(g.y_type));
            if (cudaError_t e = cudaMemset2DAsync(call.y, size_t(g.ldy) * ye, 0, size_t(g.N) * ye, size_t(g.M), self->stream);
                e != cudaSuccess)
                return cuda_failed(error, "matmul: cudaMemset2DAsync", e);
            return LLMQ_OK;
        }
        if (g.w_type == LLMQ_DTYPE_Q8_0 && g.M <= kc::q8_0_gemv_max_rows) {
            if (cudaError_t e = kc::q8_0_gemv(kernel_type(g.x_type), call.x, g.M, g.K, g.ldx, call.w, call.ldw_bytes, g.N,
                                              kernel_type(g.y_type), call.y, g.ldy, self->stream);
                e != cudaSuccess)
                return cuda_failed(error, "matmul: q8_0 GEMV launch", e);
            return LLMQ_OK;
        }
        if (g.w_type != LLMQ_DTYPE_Q8_0 && llmq::gemm_cuda::quantized_weight(g.w_type) &&
            g.M <= kc::block_quant_gemv_max_rows) {
            if (cudaError_t e = kc::block_quant_gemv(kernel_type(g.w_type), kernel_type(g.x_type), call.x, g.M, g.K, g.ldx,
                                                     call.w, call.ldw_bytes, g.N, kernel_type(g.y_type), call.y, g.ldy,
                                                     self->stream);
                e != cudaSuccess)
                return cuda_failed(error, "matmul: block-quantized GEMV launch", e);
            return LLMQ_OK;
        }
        if (llmq::gemm_cuda::quantized_weight(g.w_type)) return run_dequantized_tiles(*self, call, error);
        return run_lt(*self, g, call.w, call.x, call.y, error);
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "matmul: out of host memory for a cuBLASLt plan");
    }
}

const llmq_gemm_ops gemm_ops = {sizeof(llmq_gemm_ops), 0, matmul};

const llmq_plugin_descriptor descriptor = {
    sizeof(llmq_plugin_descriptor),
    LLMQ_PLUGIN_ABI_VERSION,
    LLMQ_PLUGIN_KIND_GEMM,
    LLMQ_BACKEND_CUDA,
    plugin_name,
    plugin_version,
    init,
    shutdown,
    &gemm_ops,
    nullptr,
    nullptr,
};

}  // namespace

extern "C" LLMQ_PLUGIN_EXPORT const llmq_plugin_descriptor* llmq_plugin_entry(void) { return &descriptor; }
