// The host-side logic of the CUDA plugins, which runs without a GPU: the plan cache
// (hits, misses, least-recently-used eviction, shapes that differ only in alignment) and the
// argument checks against the GPU contract (host table, device tensors, type mixes, strides,
// attention scalars).
#include <doctest/doctest.h>

#include <string>

#include "../../plugins/attention-cuda/attention_cuda_arguments.hpp"
#include "../../plugins/gemm-cuda/gemm_cuda_arguments.hpp"

namespace {

using llmq::gemm_cuda::gemm_call;
using llmq::gemm_cuda::gemm_shape;

gemm_shape shape(int64_t M, int64_t N, int64_t K) {
    gemm_shape s;
    s.M = M;
    s.N = N;
    s.K = K;
    s.ldx = K;
    s.ldw = K;
    s.ldy = N;
    s.x_type = s.w_type = s.y_type = LLMQ_DTYPE_BF16;
    s.x_alignment = s.w_alignment = s.y_alignment = 256;
    return s;
}

// A fake device address, aligned to `alignment`, of a fake device tensor.
llmq_tensor matrix(uintptr_t address, int32_t dtype, int64_t rows, int64_t cols, int64_t row_bytes) {
    llmq_tensor t{};
    t.data = reinterpret_cast<void*>(address);
    t.rank = 2;
    t.dtype = dtype;
    t.shape[0] = rows;
    t.shape[1] = cols;
    t.strides[0] = row_bytes;
    t.strides[1] = dtype == LLMQ_DTYPE_Q8_0 ? 0 : llmq::cuda_plugin::element_bytes(dtype);
    t.device_type = LLMQ_BACKEND_CUDA;
    t.device_index = 1;
    return t;
}

llmq_matmul_args bf16_args(int64_t M, int64_t N, int64_t K) {
    llmq_matmul_args a{};
    a.struct_size = sizeof a;
    a.x = matrix(0x100000, LLMQ_DTYPE_BF16, M, K, K * 2);
    a.w = matrix(0x200000, LLMQ_DTYPE_BF16, N, K, K * 2);
    a.y = matrix(0x300000, LLMQ_DTYPE_BF16, M, N, N * 2);
    return a;
}

std::string refusal(const llmq_matmul_args& a, llmq_status expected) {
    gemm_call call;
    llmq_error error{};
    const llmq_status s = llmq::gemm_cuda::check_matmul(&a, 1, &call, &error);
    CHECK(s == expected);
    return error.message;
}

}  // namespace

TEST_CASE("gemm_cuda_plan_cache_reuses_shapes_and_evicts_the_least_recently_used") {
    llmq::gemm_cuda::plan_cache<int> cache(2);
    CHECK(cache.find(shape(1, 4096, 4096)) == nullptr);
    cache.insert(shape(1, 4096, 4096), 1);
    cache.insert(shape(32, 4096, 4096), 2);
    REQUIRE(cache.find(shape(1, 4096, 4096)) != nullptr);  // now the most recent
    CHECK(*cache.find(shape(1, 4096, 4096)) == 1);
    cache.insert(shape(2048, 4096, 4096), 3);  // evicts M=32
    CHECK(cache.size() == 2);
    CHECK(cache.evictions() == 1);
    CHECK(cache.find(shape(32, 4096, 4096)) == nullptr);
    CHECK(cache.find(shape(1, 4096, 4096)) != nullptr);
    CHECK(cache.find(shape(2048, 4096, 4096)) != nullptr);
    CHECK(cache.hits() == 4);
    CHECK(cache.misses() == 2);
    // The same sizes with a less aligned y are another plan (cuBLASLt's choice depends on it).
    gemm_shape unaligned = shape(1, 4096, 4096);
    unaligned.y_alignment = 2;
    CHECK(cache.find(unaligned) == nullptr);
}

TEST_CASE("gemm_cuda_arguments_follow_the_gpu_contract") {
    gemm_call call;
    llmq_error error{};
    llmq_matmul_args a = bf16_args(3, 64, 128);
    REQUIRE(llmq::gemm_cuda::check_matmul(&a, 1, &call, &error) == LLMQ_OK);
    CHECK(call.shape.M == 3);
    CHECK(call.shape.N == 64);
    CHECK(call.shape.K == 128);
    CHECK(call.shape.ldx == 128);
    CHECK(call.shape.ldy == 64);
    CHECK(call.shape.x_alignment == 256);
    CHECK(call.shape.y_alignment == 128);  // 64 bf16 = 128-byte rows

    a.x.data = reinterpret_cast<void*>(0x100002);
    REQUIRE(llmq::gemm_cuda::check_matmul(&a, 1, &call, &error) == LLMQ_OK);
    CHECK(call.shape.x_alignment == 2);

    a = bf16_args(3, 64, 128);
    a.y.device_index = 0;
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("y is on cuda:0, this instance serves cuda:1") != std::string::npos);
    a = bf16_args(3, 64, 128);
    a.w.device_type = LLMQ_BACKEND_CPU;
    CHECK(refusal(a, LLMQ_STATUS_UNSUPPORTED).find("w.device_type is 1") != std::string::npos);
    a = bf16_args(3, 64, 128);
    a.w.dtype = LLMQ_DTYPE_F16;
    CHECK(refusal(a, LLMQ_STATUS_UNSUPPORTED).find("x is bf16 but w is f16") != std::string::npos);
    a = bf16_args(3, 64, 128);
    a.y.dtype = LLMQ_DTYPE_F16;
    a.y.strides[0] = 128;
    CHECK(refusal(a, LLMQ_STATUS_UNSUPPORTED).find("with bf16 x, y is bf16 or f32") != std::string::npos);
    a = bf16_args(20, 64, 128);
    a.x = matrix(0x100000, LLMQ_DTYPE_F32, 20, 128, 128 * 4);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q8_0, 64, 128, 4 * 34);  // f32 x by q8_0 w: y must be f32
    CHECK(refusal(a, LLMQ_STATUS_UNSUPPORTED).find("y.dtype is bf16; with f32 x, y is f32") != std::string::npos);
    a = bf16_args(3, 64, 128);
    a.x.dtype = LLMQ_DTYPE_I32;
    CHECK(refusal(a, LLMQ_STATUS_UNSUPPORTED).find("x.dtype is i32") != std::string::npos);
    a = bf16_args(3, 64, 128);
    a.y.shape[1] = 65;
    a.y.strides[0] = 130;
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("y is [3, 65], x · wᵀ is [3, 64]") != std::string::npos);
    a = bf16_args(3, 64, 128);
    a.x.strides[0] = 200;  // a row of x needs 256 bytes
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("x.strides[0] is 200") != std::string::npos);
    a = bf16_args(3, 64, 128);
    a.x.data = reinterpret_cast<void*>(0x100001);
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("x.data is not aligned to 2 bytes") != std::string::npos);

    // q8_0 weights: any activation type, K a multiple of 32, rows of 34-byte blocks.
    a = bf16_args(20, 64, 128);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q8_0, 64, 128, 4 * 34);
    a.y = matrix(0x300000, LLMQ_DTYPE_F32, 20, 64, 64 * 4);
    REQUIRE_MESSAGE(llmq::gemm_cuda::check_matmul(&a, 1, &call, &error) == LLMQ_OK, error.message);
    CHECK(call.ldw_bytes == 136);
    CHECK(call.shape.w_alignment == 8);
    a.w.strides[0] = 100;
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("w.strides[0] is 100, a row needs 136 bytes") != std::string::npos);
    a = bf16_args(1, 64, 100);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q8_0, 64, 100, 4 * 34);
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("K = 100, not a multiple of 32") != std::string::npos);

    // q4_0 and the K-quants: any activation type, K a multiple of the block's values (32 for
    // q4_0, 256 for q4_k, q5_k, q6_k), rows of whole blocks; other quantized types refused.
    a = bf16_args(4, 64, 512);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q4_K, 64, 512, 2 * 144);
    REQUIRE_MESSAGE(llmq::gemm_cuda::check_matmul(&a, 1, &call, &error) == LLMQ_OK, error.message);
    CHECK(call.ldw_bytes == 288);
    CHECK(call.shape.ldw == 288);
    CHECK(call.shape.w_type == LLMQ_DTYPE_Q4_K);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q6_K, 64, 512, 2 * 210);
    REQUIRE_MESSAGE(llmq::gemm_cuda::check_matmul(&a, 1, &call, &error) == LLMQ_OK, error.message);
    CHECK(call.ldw_bytes == 420);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q5_K, 64, 512, 2 * 176);
    REQUIRE_MESSAGE(llmq::gemm_cuda::check_matmul(&a, 1, &call, &error) == LLMQ_OK, error.message);
    a.w.strides[0] = 300;
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("w.strides[0] is 300, a row needs 352 bytes") != std::string::npos);
    a = bf16_args(4, 64, 96);
    a.x = matrix(0x100000, LLMQ_DTYPE_F16, 4, 96, 96 * 2);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q4_0, 64, 96, 3 * 18);
    a.y = matrix(0x300000, LLMQ_DTYPE_F32, 4, 64, 64 * 4);
    REQUIRE_MESSAGE(llmq::gemm_cuda::check_matmul(&a, 1, &call, &error) == LLMQ_OK, error.message);
    CHECK(call.ldw_bytes == 54);
    a = bf16_args(1, 64, 128);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q4_K, 64, 128, 144);
    CHECK(refusal(a, LLMQ_STATUS_INVALID_ARGUMENT).find("w is q4_k with K = 128, not a multiple of 256") !=
          std::string::npos);
    a = bf16_args(1, 64, 256);
    a.w = matrix(0x200000, LLMQ_DTYPE_Q2_K, 64, 256, 84);
    CHECK(refusal(a, LLMQ_STATUS_UNSUPPORTED).find("w.dtype is q2_k, not a weight type") != std::string::npos);
}

TEST_CASE("cuda_plugins_refuse_a_host_table_without_the_gpu_contract") {
    llmq_host host{};
    host.struct_size = sizeof host;
    host.abi_version = LLMQ_PLUGIN_ABI_VERSION;
    host.log = [](void*, int32_t, const char*) {};
    host.alloc = [](void*, size_t, size_t) -> void* { return nullptr; };
    host.free = [](void*, void*) {};
    host.device_type = LLMQ_BACKEND_CUDA;
    host.stream = reinterpret_cast<void*>(0x1000);
    llmq_error error{};
    CHECK(llmq::cuda_plugin::check_host(&host, "gemm-cuda", &error) == LLMQ_OK);
    host.abi_version = (1u << 16) | 0u;
    CHECK(llmq::cuda_plugin::check_host(&host, "gemm-cuda", &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("host ABI 1.0 predates the GPU contract") != std::string::npos);
    host.abi_version = LLMQ_PLUGIN_ABI_VERSION;
    host.stream = nullptr;
    CHECK(llmq::cuda_plugin::check_host(&host, "gemm-cuda", &error) == LLMQ_STATUS_INVALID_ARGUMENT);
    CHECK(std::string(error.message).find("host.stream is NULL") != std::string::npos);
    host.stream = reinterpret_cast<void*>(0x1000);
    host.device_type = LLMQ_BACKEND_CPU;
    CHECK(llmq::cuda_plugin::check_host(&host, "attention-cuda", &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("attention-cuda init: device_type 1 is not a CUDA device") != std::string::npos);
}

TEST_CASE("attention_cuda_arguments_follow_the_gpu_contract") {
    llmq_attention_args a{};
    a.struct_size = sizeof a;
    a.num_seqs = 2;
    a.num_tokens = 5;
    a.num_heads = 32;
    a.num_kv_heads = 8;
    a.head_dim = 128;
    a.block_size = 16;
    a.max_blocks_per_seq = 8;
    a.num_blocks = 40;
    a.kv_dtype = LLMQ_DTYPE_BF16;
    a.scale = 0.088f;
    auto rows = [](uintptr_t address) {
        llmq_tensor t{};
        t.data = reinterpret_cast<void*>(address);
        t.rank = 2;
        t.dtype = LLMQ_DTYPE_BF16;
        t.shape[0] = 5;
        t.shape[1] = 32 * 128;
        t.strides[0] = 32 * 128 * 2;
        t.strides[1] = 2;
        t.device_type = LLMQ_BACKEND_CUDA;
        return t;
    };
    a.q = rows(0x10000);
    a.out = rows(0x20000);
    a.k_cache = reinterpret_cast<void*>(0x30000);
    a.v_cache = reinterpret_cast<void*>(0x40000);
    a.query_start = reinterpret_cast<const int32_t*>(0x50000);
    a.context_len = reinterpret_cast<const int32_t*>(0x50100);
    a.block_tables = reinterpret_cast<const int32_t*>(0x50200);
    llmq_error error{};
    CHECK(llmq::attention_cuda::check_attention(&a, 0, &error) == LLMQ_OK);

    llmq_attention_args b = a;
    b.head_dim = 96;
    b.q.shape[1] = b.out.shape[1] = 32 * 96;
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("head_dim 96; attention-cuda has kernels for 64 and 128") != std::string::npos);
    b = a;
    b.kv_dtype = LLMQ_DTYPE_Q8_0;
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("kv_dtype q8_0") != std::string::npos);
    b = a;
    b.sliding_window = 4096;  // the ABI: a plugin that cannot mask a window refuses it
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("sliding_window 4096") != std::string::npos);
    b = a;
    b.num_kv_heads = 5;
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_INVALID_ARGUMENT);
    b = a;
    b.out.dtype = LLMQ_DTYPE_F32;
    b.out.strides[1] = 4;
    b.out.strides[0] = 32 * 128 * 4;
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_UNSUPPORTED);
    CHECK(std::string(error.message).find("q is bf16 but out is f32") != std::string::npos);
    b = a;
    b.q.device_index = 3;
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_INVALID_ARGUMENT);
    CHECK(std::string(error.message).find("q is on cuda:3") != std::string::npos);
    b = a;
    b.block_tables = reinterpret_cast<const int32_t*>(0x50202);
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_INVALID_ARGUMENT);
    b = a;
    b.q.strides[0] = 32 * 128 * 2 + 64;
    CHECK(llmq::attention_cuda::check_attention(&b, 0, &error) == LLMQ_STATUS_INVALID_ARGUMENT);
    CHECK(std::string(error.message).find("q must be contiguous bf16") != std::string::npos);
}

TEST_CASE("attention_cuda_splits_long_contexts_only_when_the_batch_leaves_the_gpu_idle") {
    using llmq::attention_cuda::choose_splits;
    // Llama-3-8B on an H200 (132 SMs): batch 1 decode wants 264 / 8 = 33 splits, capped at 32
    // for a 32k context and at 4096 / 256 = 16 for a 4k one; 4 sequences want ceil(264 / 32).
    CHECK(choose_splits(1, 8, 32768, 132) == 32);
    CHECK(choose_splits(1, 8, 4096, 132) == 16);
    CHECK(choose_splits(4, 8, 32768, 132) == 9);
    CHECK(choose_splits(33, 8, 32768, 132) == 1);  // 264 blocks already
    CHECK(choose_splits(1, 8, 300, 132) == 1);     // short context
    CHECK(choose_splits(0, 8, 32768, 132) == 1);
}
