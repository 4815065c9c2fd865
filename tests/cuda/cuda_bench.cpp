// GPU benchmark on Llama-3-8B shapes (dim 4096, 32 heads, 8 KV heads, head_dim 128, ffn
// 14336, vocab 128256), random BF16 data. Every figure is printed beside a bound measured in
// the same run, with the ratio:
//   - device-to-device copy bandwidth (bytes read + written per second): the bound of every
//     memory-bound figure below;
//   - each linear layer's GEMM through the gemm-cuda plugin against a plain cuBLASLt call of
//     the same shape (the heuristic's first choice, descriptors made outside the timing), at
//     M = 1, 32 and 2048;
//   - Q8_0 GEMV (M = 1) weight bytes per second against the copy bandwidth;
//   - attention-cuda decode (batch 1 and 32) KV bytes per second against the copy bandwidth,
//     and a 2048-token prefill's attention FLOP rate beside the cuBLASLt BF16 rate.
// The whole-model decode and prefill figures need the CUDA backend (docs/cuda.md).
// Usage: llmq-cuda-bench [--json FILE] [--reps N]; plugins from LLMQ_PLUGIN_DIR.
#include <cublasLt.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq/kernels/cuda.hpp"
#include "llmq_plugin.h"

namespace {

#define CHECK_CUDA(call)                                                                             \
    do {                                                                                             \
        const cudaError_t e_ = (call);                                                               \
        if (e_ != cudaSuccess) {                                                                     \
            std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
            std::exit(1);                                                                            \
        }                                                                                            \
    } while (0)

cudaStream_t stream;
int reps = 20;
std::vector<std::pair<std::string, double>> figures;

void figure(const std::string& name, double value) { figures.emplace_back(name, value); }

// Mean milliseconds of one call of `body` over `reps` calls after 3 warm-ups.
template <typename F> double time_ms(F&& body) {
    for (int i = 0; i < 3; ++i) body();
    cudaEvent_t start, stop;
    CHECK_CUDA(cudaEventCreate(&start));
    CHECK_CUDA(cudaEventCreate(&stop));
    CHECK_CUDA(cudaEventRecord(start, stream));
    for (int i = 0; i < reps; ++i) body();
    CHECK_CUDA(cudaEventRecord(stop, stream));
    CHECK_CUDA(cudaEventSynchronize(stop));
    float ms = 0.0f;
    CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return double(ms) / reps;
}

// `bytes` of device memory holding a random 4 MiB pattern over and over (bf16 values in
// [-0.05, 0.05], or raw random bits).
void* device_random(size_t bytes, uint32_t seed, bool bf16 = true) {
    void* p = nullptr;
    CHECK_CUDA(cudaMalloc(&p, bytes));
    std::vector<uint16_t> host(std::min(bytes, size_t(4) << 20) / 2);
    std::mt19937 rng(seed);
    std::uniform_real_distribution<float> dist(-0.05f, 0.05f);
    for (auto& v : host) v = bf16 ? llmq::kernels::fp32_to_bf16(dist(rng)) : uint16_t(rng());
    const size_t chunk = host.size() * 2;
    for (size_t at = 0; at < bytes; at += chunk)
        CHECK_CUDA(cudaMemcpy(static_cast<uint8_t*>(p) + at, host.data(), std::min(chunk, bytes - at),
                              cudaMemcpyHostToDevice));
    return p;
}

// ---- a plugin on cuda:0

struct plugin {
    const llmq_plugin_descriptor* d = nullptr;
    void* state = nullptr;
    llmq_host host{};
};

bool load_plugin(const char* name, const char* config, plugin& out) {
    const char* dir = std::getenv("LLMQ_PLUGIN_DIR");
    const std::string path = std::string(dir != nullptr ? dir : "plugins") + "/llmq-" + name + ".so";
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        std::fprintf(stderr, "dlopen %s: %s\n", path.c_str(), dlerror());
        return false;
    }
    auto entry = reinterpret_cast<llmq_plugin_entry_fn>(dlsym(handle, LLMQ_PLUGIN_ENTRY_SYMBOL));
    out.d = entry != nullptr ? entry() : nullptr;
    if (out.d == nullptr) return false;
    llmq_host& h = out.host;
    h.struct_size = sizeof h;
    h.abi_version = LLMQ_PLUGIN_ABI_VERSION;
    h.log = [](void*, int32_t, const char* line) { std::printf("  [plugin] %s\n", line); };
    h.alloc = [](void*, size_t bytes, size_t) -> void* {
        void* p = nullptr;
        return cudaMalloc(&p, bytes) == cudaSuccess ? p : nullptr;
    };
    h.free = [](void*, void* p) { cudaFree(p); };
    h.parallel_for = [](void*, int64_t n, llmq_range_fn fn, void* arg) { fn(arg, 0, n); };
    h.device_type = LLMQ_BACKEND_CUDA;
    h.num_threads = 1;
    h.stream = stream;
    h.config_toml = config;
    llmq_error error{};
    if (out.d->init(&h, &out.state, &error) != LLMQ_OK) {
        std::fprintf(stderr, "%s init: %s\n", name, error.message);
        return false;
    }
    return true;
}

llmq_tensor matrix(void* data, int32_t dtype, int64_t rows, int64_t cols, int64_t row_bytes) {
    llmq_tensor t{};
    t.data = data;
    t.rank = 2;
    t.dtype = dtype;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.strides[0] = row_bytes;
    t.strides[1] = dtype == LLMQ_DTYPE_Q8_0 ? 0 : (dtype == LLMQ_DTYPE_F32 ? 4 : 2);
    t.device_type = LLMQ_BACKEND_CUDA;
    return t;
}

// ---- plain cuBLASLt, BF16 in and out, f32 accumulation: y[M,N] = x[M,K] w[N,K]ᵀ

struct plain_gemm {
    cublasLtHandle_t lt = nullptr;
    void* workspace = nullptr;
    size_t workspace_bytes = size_t(32) << 20;
    plain_gemm() {
        cublasLtCreate(&lt);
        CHECK_CUDA(cudaMalloc(&workspace, workspace_bytes));
    }
    // Returns ms per call, or -1 when cuBLASLt has no algorithm.
    double time(int64_t M, int64_t N, int64_t K, const void* x, const void* w, void* y) {
        cublasLtMatmulDesc_t desc;
        cublasLtMatrixLayout_t a, b, c;
        cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
        const cublasOperation_t t = CUBLAS_OP_T;
        cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof t);
        cublasLtMatrixLayoutCreate(&a, CUDA_R_16BF, uint64_t(K), uint64_t(N), K);
        cublasLtMatrixLayoutCreate(&b, CUDA_R_16BF, uint64_t(K), uint64_t(M), K);
        cublasLtMatrixLayoutCreate(&c, CUDA_R_16BF, uint64_t(N), uint64_t(M), N);
        cublasLtMatmulPreference_t pref;
        cublasLtMatmulPreferenceCreate(&pref);
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                             sizeof workspace_bytes);
        cublasLtMatmulHeuristicResult_t result{};
        int found = 0;
        cublasLtMatmulAlgoGetHeuristic(lt, desc, a, b, c, c, pref, 1, &result, &found);
        double ms = -1.0;
        if (found > 0) {
            const float one = 1.0f, zero = 0.0f;
            ms = time_ms([&] {
                cublasLtMatmul(lt, desc, &one, w, a, x, b, &zero, y, c, y, c, &result.algo, workspace, workspace_bytes,
                               stream);
            });
        }
        cublasLtMatmulPreferenceDestroy(pref);
        cublasLtMatrixLayoutDestroy(c);
        cublasLtMatrixLayoutDestroy(b);
        cublasLtMatrixLayoutDestroy(a);
        cublasLtMatmulDescDestroy(desc);
        return ms;
    }
};

void write_json(const char* path, const cudaDeviceProp& props) {
    FILE* f = std::fopen(path, "w");
    if (f == nullptr) {
        std::perror(path);
        return;
    }
    std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"sm\": \"%d.%d\",\n  \"multiprocessors\": %d", props.name, props.major,
                 props.minor, props.multiProcessorCount);
    for (const auto& [name, value] : figures) std::fprintf(f, ",\n  \"%s\": %.6g", name.c_str(), value);
    std::fprintf(f, "\n}\n");
    std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
    const char* json = nullptr;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--json") == 0 && i + 1 < argc) json = argv[++i];
        else if (std::strcmp(argv[i], "--reps") == 0 && i + 1 < argc) reps = std::atoi(argv[++i]);
        else {
            std::fprintf(stderr, "usage: %s [--json FILE] [--reps N]\n", argv[0]);
            return 2;
        }
    }
    std::string why;
    if (llmq::kernels::cuda::visible_device_count(&why) <= 0) {
        std::printf("SKIP: no GPU found (%s)\n", why.c_str());
        return 77;
    }
    cudaDeviceProp props{};
    CHECK_CUDA(cudaGetDeviceProperties(&props, 0));
    CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    std::printf("device: %s, sm_%d%d, %d SMs, %.1f GiB\n", props.name, props.major, props.minor,
                props.multiProcessorCount, double(props.totalGlobalMem) / (1 << 30));

    // ---- bound: device-to-device copy
    const size_t copy_bytes = size_t(2) << 30;
    void *src = nullptr, *dst = nullptr;
    CHECK_CUDA(cudaMalloc(&src, copy_bytes));
    CHECK_CUDA(cudaMalloc(&dst, copy_bytes));
    CHECK_CUDA(cudaMemsetAsync(src, 1, copy_bytes, stream));
    const double copy_ms = time_ms([&] { cudaMemcpyAsync(dst, src, copy_bytes, cudaMemcpyDeviceToDevice, stream); });
    const double bandwidth = 2.0 * double(copy_bytes) / (copy_ms * 1e-3) / 1e9;  // GB/s read + written
    cudaFree(src);
    cudaFree(dst);
    std::printf("d2d copy: %.0f GB/s (bytes read + written)\n", bandwidth);
    figure("d2d_copy_gbs", bandwidth);

    plugin gemm, attention;
    if (!load_plugin("gemm-cuda", "", gemm) || !load_plugin("attention-cuda", "", attention)) return 1;

    // ---- GEMMs of one layer (and the LM head), plugin vs plain cuBLASLt
    struct layer_shape {
        const char* name;
        int64_t N, K;
    };
    const layer_shape shapes[] = {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096},
                                  {"down", 4096, 14336}, {"lm_head", 128256, 4096}};
    plain_gemm plain;
    void* x = device_random(size_t(2048) * 14336 * 2, 1);
    void* y = nullptr;
    CHECK_CUDA(cudaMalloc(&y, size_t(2048) * 128256 * 2));
    double bf16_prefill_tflops = 0.0;
    double weight_bytes_per_token = 0.0;
    for (const auto& s : shapes) {
        void* w = device_random(size_t(s.N * s.K) * 2, 2);
        weight_bytes_per_token += double(s.N * s.K) * 2.0 * (std::strcmp(s.name, "lm_head") == 0 ? 1 : 32);
        for (int64_t M : {int64_t(1), int64_t(32), int64_t(2048)}) {
            const double plain_ms = plain.time(M, s.N, s.K, x, w, y);
            llmq_matmul_args a{};
            a.struct_size = sizeof a;
            a.x = matrix(x, LLMQ_DTYPE_BF16, M, s.K, s.K * 2);
            a.w = matrix(w, LLMQ_DTYPE_BF16, s.N, s.K, s.K * 2);
            a.y = matrix(y, LLMQ_DTYPE_BF16, M, s.N, s.N * 2);
            llmq_error error{};
            bool ok = true;
            const double plugin_ms = time_ms([&] { ok = ok && gemm.d->gemm->matmul(gemm.state, &a, &error) == LLMQ_OK; });
            if (!ok) {
                std::fprintf(stderr, "gemm-cuda %s M=%ld: %s\n", s.name, long(M), error.message);
                return 1;
            }
            const double flops = 2.0 * double(M) * double(s.N) * double(s.K);
            const double tflops = flops / (plugin_ms * 1e-3) / 1e12;
            const double weight_gbs = double(s.N * s.K) * 2.0 / (plugin_ms * 1e-3) / 1e9;
            std::printf("gemm %-8s M=%-5ld plugin %8.3f ms (%6.1f TFLOP/s, weights %6.0f GB/s)  cuBLASLt %8.3f ms  "
                        "plain/plugin %.3f\n",
                        s.name, long(M), plugin_ms, tflops, weight_gbs, plain_ms, plain_ms / plugin_ms);
            const std::string key = std::string("gemm_") + s.name + "_m" + std::to_string(M);
            figure(key + "_plugin_ms", plugin_ms);
            figure(key + "_cublaslt_ms", plain_ms);
            figure(key + "_plain_over_plugin", plain_ms / plugin_ms);
            if (M == 2048 && std::strcmp(s.name, "gate_up") == 0)
                bf16_prefill_tflops = flops / (plain_ms * 1e-3) / 1e12;
        }
        cudaFree(w);
    }
    std::printf("BF16 decode bound: %.2f GB of weights per token -> %.1f tokens/s at the copy bandwidth "
                "(the whole-model figure needs the CUDA backend)\n",
                weight_bytes_per_token / 1e9, bandwidth * 1e9 / weight_bytes_per_token);
    figure("decode_bound_tokens_per_s", bandwidth * 1e9 / weight_bytes_per_token);
    figure("cublaslt_bf16_gate_up_m2048_tflops", bf16_prefill_tflops);

    // ---- Q8_0 GEMV at M = 1
    for (const auto& s : {shapes[2], shapes[3]}) {
        const int64_t row = s.K / 32 * 34;
        void* w = device_random(size_t(s.N * row), 3, false);
        // Scales as random bits can be inf/NaN; the timing does not care about the values.
        llmq_matmul_args a{};
        a.struct_size = sizeof a;
        a.x = matrix(x, LLMQ_DTYPE_BF16, 1, s.K, s.K * 2);
        a.w = matrix(w, LLMQ_DTYPE_Q8_0, s.N, s.K, row);
        a.y = matrix(y, LLMQ_DTYPE_BF16, 1, s.N, s.N * 2);
        llmq_error error{};
        const double ms = time_ms([&] { gemm.d->gemm->matmul(gemm.state, &a, &error); });
        const double gbs = double(s.N * row) / (ms * 1e-3) / 1e9;
        std::printf("q8_0 gemv %-8s M=1: %.3f ms, %.0f GB/s of weights, %.2f of the copy bandwidth\n", s.name, ms, gbs,
                    gbs / bandwidth);
        figure(std::string("q8_0_gemv_") + s.name + "_gbs", gbs);
        figure(std::string("q8_0_gemv_") + s.name + "_over_copy", gbs / bandwidth);
        cudaFree(w);
    }

    // ---- attention: decode at batch 1 and 32, and one 2048-token prefill
    const int32_t H = 32, G = 8, D = 128, block = 16;
    struct attention_case {
        const char* name;
        int32_t seqs, queries, context;
    };
    for (const attention_case& c : {attention_case{"decode_b1_ctx4096", 1, 1, 4096},
                                    attention_case{"decode_b1_ctx32768", 1, 1, 32768},
                                    attention_case{"decode_b32_ctx4096", 32, 1, 4096},
                                    attention_case{"prefill_2048", 1, 2048, 2048}}) {
        const int32_t blocks_per_seq = (c.context + block - 1) / block;
        const int32_t num_blocks = c.seqs * blocks_per_seq;
        const size_t cache_bytes = size_t(num_blocks) * block * G * D * 2;
        void* kc = device_random(cache_bytes, 4);
        void* vc = device_random(cache_bytes, 5);
        const int32_t tokens = c.seqs * c.queries;
        void* q = device_random(size_t(tokens) * H * D * 2, 6);
        void* out = nullptr;
        CHECK_CUDA(cudaMalloc(&out, size_t(tokens) * H * D * 2));
        std::vector<int32_t> starts(size_t(c.seqs + 1)), contexts(size_t(c.seqs), c.context),
            tables(static_cast<size_t>(num_blocks));
        for (int32_t s = 0; s <= c.seqs; ++s) starts[size_t(s)] = s * c.queries;
        for (int32_t i = 0; i < num_blocks; ++i) tables[size_t(i)] = i;
        int32_t *dstarts, *dcontexts, *dtables;
        CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&dstarts), starts.size() * 4));
        CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&dcontexts), contexts.size() * 4));
        CHECK_CUDA(cudaMalloc(reinterpret_cast<void**>(&dtables), tables.size() * 4));
        CHECK_CUDA(cudaMemcpy(dstarts, starts.data(), starts.size() * 4, cudaMemcpyHostToDevice));
        CHECK_CUDA(cudaMemcpy(dcontexts, contexts.data(), contexts.size() * 4, cudaMemcpyHostToDevice));
        CHECK_CUDA(cudaMemcpy(dtables, tables.data(), tables.size() * 4, cudaMemcpyHostToDevice));
        llmq_attention_args a{};
        a.struct_size = sizeof a;
        a.q = matrix(q, LLMQ_DTYPE_BF16, tokens, H * D, H * D * 2);
        a.out = matrix(out, LLMQ_DTYPE_BF16, tokens, H * D, H * D * 2);
        a.k_cache = kc;
        a.v_cache = vc;
        a.query_start = dstarts;
        a.context_len = dcontexts;
        a.block_tables = dtables;
        a.kv_dtype = LLMQ_DTYPE_BF16;
        a.num_seqs = c.seqs;
        a.num_tokens = tokens;
        a.num_heads = H;
        a.num_kv_heads = G;
        a.head_dim = D;
        a.block_size = block;
        a.max_blocks_per_seq = blocks_per_seq;
        a.num_blocks = num_blocks;
        a.scale = 0.0883883f;
        llmq_error error{};
        bool ok = true;
        const double ms = time_ms([&] { ok = ok && attention.d->attention->attention(attention.state, &a, &error) == LLMQ_OK; });
        if (!ok) {
            std::fprintf(stderr, "attention-cuda %s: %s\n", c.name, error.message);
            return 1;
        }
        if (c.queries == 1) {
            const double gbs = 2.0 * double(cache_bytes) / (ms * 1e-3) / 1e9;
            std::printf("attention %-20s %.3f ms, KV %.0f GB/s, %.2f of the copy bandwidth\n", c.name, ms, gbs,
                        gbs / bandwidth);
            figure(std::string("attention_") + c.name + "_ms", ms);
            figure(std::string("attention_") + c.name + "_over_copy", gbs / bandwidth);
        } else {
            // Causal: about half of the 4 * T^2 * H * D flops of the full score and value products.
            const double flops = 2.0 * double(c.queries) * double(c.context) * H * D;
            const double tflops = flops / (ms * 1e-3) / 1e12;
            std::printf("attention %-20s %.3f ms, %.1f TFLOP/s, %.3f of the cuBLASLt BF16 rate (%.1f TFLOP/s)\n", c.name,
                        ms, tflops, tflops / bf16_prefill_tflops, bf16_prefill_tflops);
            figure(std::string("attention_") + c.name + "_ms", ms);
            figure(std::string("attention_") + c.name + "_over_cublaslt", tflops / bf16_prefill_tflops);
        }
        cudaFree(kc);
        cudaFree(vc);
        cudaFree(q);
        cudaFree(out);
        cudaFree(dstarts);
        cudaFree(dcontexts);
        cudaFree(dtables);
    }
    CHECK_CUDA(cudaStreamSynchronize(stream));
    if (json != nullptr) write_json(json, props);
    return 0;
}
