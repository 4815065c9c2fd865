// gemm-cpu: the CPU GEMM plugin. Wraps llmq::kernels::gemm behind the plugin ABI.
//
// init picks the instruction set once (the best this CPU runs, or `isa = "..."` from the
// plugin's TOML table) and logs it. matmul checks every field of its arguments, then splits
// the output columns into grains of gemm_column_grain() columns and hands them to the host's
// parallel_for; each range it gets back is one kernel call, so every thread reads its own
// weight rows once for all M rows.
//
// Plugin TOML table ([plugins.gemm-cpu]):
//   isa = "scalar" | "avx2" | "avx512" | "avx512_bf16"   force an ISA (refused if the CPU
//                                                        lacks it)
//   bf16_dot_products = false   bf16 weights: round x to bf16 and use vdpbf16ps (faster on
//                               CPUs with a fast BF16 unit: here 1.9 x the FMA peak, prefill
//                               from 96 rows on outer-product panels; ~1e-3 relative error,
//                               logits move by up to ~2e-2), see kernels::gemm_bf16_dot
#include <cinttypes>
#include <cstdint>
#include <cstdarg>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <toml++/toml.h>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq_abi_dtypes.hpp"
#include "llmq_plugin.h"
#include "llmq_plugin_checks.hpp"

namespace {

namespace k = llmq::kernels;

constexpr const char* plugin_name = "gemm-cpu";
constexpr const char* plugin_version = "1.0.0";

struct instance {
    const llmq_host* host = nullptr;
    k::isa isa = k::isa::scalar;
    bool bf16_dot = false;
    std::vector<uint16_t> x_bf16;  // x rounded to bf16 for bf16_dot (one caller at a time)
};

using llmq::plugin_checks::fail;

const char* dtype_label(int32_t t) { return k::dtype_name(t); }

// ---- configuration

llmq_status read_config(const char* text, instance& self, llmq_error* error) {
    if (text == nullptr || *text == '\0') return LLMQ_OK;
    toml::table table;
    try {
        table = toml::parse(std::string_view(text));
    } catch (const toml::parse_error& e) {
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s config: line %u: %s", plugin_name,
                    unsigned(e.source().begin.line), std::string(e.description()).c_str());
    }
    for (const auto& [key, value] : table) {
        if (key == "isa") {
            const auto* name = value.as_string();
            k::isa chosen;
            if (name == nullptr || !k::parse_isa(name->get().c_str(), &chosen))
                return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                            "%s config: isa must be one of \"scalar\", \"avx2\", \"avx512\", "
                            "\"avx512_bf16\"", plugin_name);
            if (!k::isa_supported(chosen))
                return fail(error, LLMQ_STATUS_UNSUPPORTED,
                            "%s config: isa = \"%s\" is not available on this CPU (best: %s); "
                            "remove the key or choose a lower ISA", plugin_name,
                            k::isa_name(chosen), k::isa_name(k::best_isa()));
            self.isa = chosen;
        } else if (key == "bf16_dot_products") {
            const auto* flag = value.as_boolean();
            if (flag == nullptr)
                return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                            "%s config: bf16_dot_products must be true or false", plugin_name);
            self.bf16_dot = flag->get();
        } else {
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                        "%s config: unknown key '%s' (known: isa, bf16_dot_products)", plugin_name,
                        std::string(key.str()).c_str());
        }
    }
    return LLMQ_OK;
}

// ---- lifecycle

llmq_status init(const llmq_host* host, void** out, llmq_error* error) {
    if (out == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: instance pointer is NULL", plugin_name);
    *out = nullptr;
    if (host == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host table is NULL", plugin_name);
    if (host->struct_size < sizeof(llmq_host))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host.struct_size is %u, this plugin needs %zu",
                    plugin_name, host->struct_size, sizeof(llmq_host));
    if (LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version) != LLMQ_PLUGIN_ABI_MAJOR)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: host ABI major %u, plugin ABI major %u", plugin_name,
                    LLMQ_PLUGIN_ABI_VERSION_MAJOR(host->abi_version), LLMQ_PLUGIN_ABI_MAJOR);
    if (host->log == nullptr || host->parallel_for == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s init: host.log and host.parallel_for must be set",
                    plugin_name);
    if (host->device_type != LLMQ_BACKEND_CPU)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "%s init: device_type %d is not a CPU device", plugin_name,
                    host->device_type);
    try {
        auto* self = new instance;
        self->host = host;
        self->isa = k::best_isa();
        if (llmq_status status = read_config(host->config_toml, *self, error); status != LLMQ_OK) {
            delete self;
            return status;
        }
        char line[160];
        std::snprintf(line, sizeof line, "%s %s: ISA %s (best on this CPU: %s), bf16 dot products %s", plugin_name,
                      plugin_version, k::isa_name(self->isa), k::isa_name(k::best_isa()),
                      self->bf16_dot ? "on" : "off");
        host->log(host->host_context, LLMQ_LOG_INFO, line);
        *out = self;
        return LLMQ_OK;
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "%s init: out of memory", plugin_name);
    } catch (const std::exception& e) {
        return fail(error, LLMQ_STATUS_INTERNAL, "%s init: %s", plugin_name, e.what());
    }
}

void shutdown(void* self) { delete static_cast<instance*>(self); }

// ---- argument checks

// A rank-2 CPU tensor; `name` names it in messages.
llmq_status check_matrix(const llmq_tensor& t, const char* name, llmq_error* error) {
    if (t.device_type != LLMQ_BACKEND_CPU)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "matmul: %s.device_type is %d, %s takes CPU tensors only", name,
                    t.device_type, plugin_name);
    return llmq::plugin_checks::check_matrix_layout(t, "matmul", name, error);
}

// Rows of `row_bytes` bytes, elements `element` bytes apart (0 for Q8_0), rows stride[0] apart.
llmq_status check_rows(const llmq_tensor& t, const char* name, int64_t element, int64_t row_bytes,
                       llmq_error* error) {
    if (t.strides[1] != element)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "matmul: %s.strides[1] is %" PRId64 ", rows of %s must be contiguous (stride %" PRId64 ")", name,
                    t.strides[1], dtype_label(t.dtype), element);
    const int64_t unit = element > 0 ? element : 1;
    if (reinterpret_cast<uintptr_t>(t.data) % uint64_t(unit) != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: %s.data is not aligned to its %" PRId64 "-byte elements",
                    name, unit);
    if (t.shape[0] > 1 && (t.strides[0] < row_bytes || t.strides[0] % unit != 0))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "matmul: %s.strides[0] is %" PRId64 ", a row needs %" PRId64 " bytes (and a multiple of %" PRId64 ")",
                    name, t.strides[0], row_bytes, unit);
    return LLMQ_OK;
}

llmq_status check_matmul(const llmq_matmul_args* a, llmq_error* error) {
    if (a == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: args is NULL");
    if (a->struct_size < sizeof(llmq_matmul_args))
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: args.struct_size is %u, expected at least %zu",
                    a->struct_size, sizeof(llmq_matmul_args));
    llmq_status s;
    if ((s = check_matrix(a->x, "x", error)) != LLMQ_OK) return s;
    if ((s = check_matrix(a->w, "w", error)) != LLMQ_OK) return s;
    if ((s = check_matrix(a->y, "y", error)) != LLMQ_OK) return s;
    if (a->x.dtype != LLMQ_DTYPE_F32)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "matmul: x.dtype is %s, %s takes f32 activations",
                    dtype_label(a->x.dtype), plugin_name);
    if (a->y.dtype != LLMQ_DTYPE_F32)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "matmul: y.dtype is %s, %s writes f32", dtype_label(a->y.dtype),
                    plugin_name);
    const k::dtype_info* wt = llmq::abi::dtype_of(a->w.dtype);
    if (wt == nullptr)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: w.dtype %d is not an llmq_dtype", a->w.dtype);
    if (!wt->weight)
        return fail(error, LLMQ_STATUS_UNSUPPORTED, "matmul: w.dtype %s is not a weight type (%s)", wt->name,
                    k::weight_dtype_names().c_str());
    const int64_t element = wt->element_bytes();  // 0 for block-quantized rows
    const int64_t K = a->x.shape[1], N = a->w.shape[0];
    if (llmq_status s = llmq::plugin_checks::check_matmul_shapes(*a, error); s != LLMQ_OK) return s;
    if (K % wt->block_values != 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "matmul: w is %s with K = %" PRId64 ", not a multiple of %d (its block)", wt->name, K,
                    wt->block_values);
    if ((s = check_rows(a->x, "x", 4, K * 4, error)) != LLMQ_OK) return s;
    if ((s = check_rows(a->y, "y", 4, N * 4, error)) != LLMQ_OK) return s;
    const int64_t w_row = static_cast<int64_t>(k::row_bytes(wt->id, K));
    if ((s = check_rows(a->w, "w", element, w_row, error)) != LLMQ_OK) return s;
    return LLMQ_OK;
}

// ---- the call

struct matmul_job {
    const instance* self;
    const float* x;
    const uint16_t* x_bf16;  // non-NULL: bf16 dot products
    int64_t M, K, N, ldx, ldw, ldy, grain;
    const void* w;
    k::dtype wt;
    float* y;
};

void run_columns(void* arg, int64_t begin, int64_t end) {
    const auto& job = *static_cast<const matmul_job*>(arg);
    const int64_t n_begin = begin * job.grain;
    const int64_t n_end = end * job.grain < job.N ? end * job.grain : job.N;
    if (job.x_bf16 != nullptr)
        k::gemm_bf16_dot(job.self->isa, job.x_bf16, job.M, job.K, job.K, job.w, job.ldw, job.y, job.ldy, n_begin,
                         n_end);
    else
        k::gemm(job.self->isa, job.x, job.M, job.K, job.ldx, job.w, job.wt, job.ldw, job.y, job.ldy, n_begin, n_end);
}

llmq_status matmul(void* raw, const llmq_matmul_args* a, llmq_error* error) {
    auto* self = static_cast<instance*>(raw);
    if (self == nullptr) return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "matmul: instance is NULL");
    if (llmq_status s = check_matmul(a, error); s != LLMQ_OK) return s;
    matmul_job job{};
    job.self = self;
    job.x = static_cast<const float*>(a->x.data);
    job.M = a->x.shape[0];
    job.K = a->x.shape[1];
    job.N = a->w.shape[0];
    job.ldx = a->x.strides[0] / 4;
    job.ldy = a->y.strides[0] / 4;
    job.ldw = a->w.strides[0];
    job.w = a->w.data;
    job.wt = static_cast<k::dtype>(a->w.dtype);
    job.y = static_cast<float*>(a->y.data);
    if (job.M == 0 || job.N == 0) return LLMQ_OK;
    if (job.K == 0) {  // empty sums
        for (int64_t m = 0; m < job.M; ++m)
            for (int64_t n = 0; n < job.N; ++n) job.y[m * job.ldy + n] = 0.0f;
        return LLMQ_OK;
    }
    try {
        if (self->bf16_dot && job.wt == k::dtype::bf16) {
            self->x_bf16.resize(static_cast<std::size_t>(job.M * job.K));
            for (int64_t m = 0; m < job.M; ++m)
                k::row_from_f32(self->isa, k::dtype::bf16, job.x + m * job.ldx, &self->x_bf16[m * job.K], job.K);
            job.x_bf16 = self->x_bf16.data();
        }
    } catch (const std::bad_alloc&) {
        return fail(error, LLMQ_STATUS_OUT_OF_MEMORY, "matmul: no memory for the bf16 copy of x (%" PRId64 " x %" PRId64 ")",
                    job.M, job.K);
    }
    job.grain = k::gemm_column_grain(job.M, job.N, job.K);
    const int64_t grains = (job.N + job.grain - 1) / job.grain;
    self->host->parallel_for(self->host->host_context, grains, run_columns, &job);
    return LLMQ_OK;
}

const llmq_gemm_ops gemm_ops = {sizeof(llmq_gemm_ops), 0, matmul};

const llmq_plugin_descriptor descriptor = {
    sizeof(llmq_plugin_descriptor),
    LLMQ_PLUGIN_ABI_VERSION,
    LLMQ_PLUGIN_KIND_GEMM,
    LLMQ_BACKEND_CPU,
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
