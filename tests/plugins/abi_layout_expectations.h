/*
 * The frozen layout of ABI v1 (as of minor 2: 1.1's GPU contract changed no layout; 1.2 added
 * llmq_cross_attention_args, llmq_attention_ops.cross_attention and llmq_vision_args.variant), written out member by member. Included by a C11 test and a
 * C++ test, so both languages see the same sizes, offsets and constants at run time (the
 * header's static_asserts only cover part of it, and only at compile time).
 */
#ifndef LLMQ_ABI_LAYOUT_EXPECTATIONS_H
#define LLMQ_ABI_LAYOUT_EXPECTATIONS_H

#include <stddef.h>
#include <stdio.h>

#include "llmq_plugin.h"

#define LLMQ_EXPECT_EQ(actual, expected)                                                      \
    do {                                                                                      \
        ++*checks;                                                                            \
        if ((unsigned long long)(actual) != (unsigned long long)(expected)) {                 \
            fprintf(stderr, "ABI layout: %s is %llu, expected %llu\n", #actual,               \
                    (unsigned long long)(actual), (unsigned long long)(expected));            \
            ++failures;                                                                       \
        }                                                                                     \
    } while (0)

/* Returns the number of mismatches; *checks counts the comparisons made. */
static int llmq_abi_layout_mismatches(int* checks) {
    int failures = 0;
    *checks = 0;

    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_ABI_MAJOR, 1);
    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_ABI_MINOR, 2);
    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_ABI_VERSION, 0x10002);
    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_ABI_GPU_CONTRACT_MINOR, 1);
    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_CUDA_ALLOC_ALIGNMENT, 256);
    LLMQ_EXPECT_EQ(LLMQ_ERROR_MESSAGE_MAX, 256);
    LLMQ_EXPECT_EQ(LLMQ_TENSOR_MAX_RANK, 4);
    LLMQ_EXPECT_EQ(LLMQ_Q8_0_BLOCK_VALUES, 32);
    LLMQ_EXPECT_EQ(LLMQ_Q8_0_BLOCK_BYTES, 34);
    LLMQ_EXPECT_EQ(LLMQ_OK, 0);
    LLMQ_EXPECT_EQ(LLMQ_STATUS_INVALID_ARGUMENT, 1);
    LLMQ_EXPECT_EQ(LLMQ_STATUS_UNSUPPORTED, 2);
    LLMQ_EXPECT_EQ(LLMQ_STATUS_OUT_OF_MEMORY, 3);
    LLMQ_EXPECT_EQ(LLMQ_STATUS_DEVICE_ERROR, 4);
    LLMQ_EXPECT_EQ(LLMQ_STATUS_INTERNAL, 5);
    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_KIND_GEMM, 1);
    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_KIND_ATTENTION, 2);
    LLMQ_EXPECT_EQ(LLMQ_PLUGIN_KIND_VISION, 3);
    LLMQ_EXPECT_EQ(LLMQ_BACKEND_CPU, 1);
    LLMQ_EXPECT_EQ(LLMQ_BACKEND_CUDA, 2);
    LLMQ_EXPECT_EQ(LLMQ_DTYPE_F32, 0);
    LLMQ_EXPECT_EQ(LLMQ_DTYPE_F16, 1);
    LLMQ_EXPECT_EQ(LLMQ_DTYPE_BF16, 2);
    LLMQ_EXPECT_EQ(LLMQ_DTYPE_Q8_0, 3);
    LLMQ_EXPECT_EQ(LLMQ_DTYPE_I32, 4);
    LLMQ_EXPECT_EQ(LLMQ_DTYPE_U8, 5);

    LLMQ_EXPECT_EQ(sizeof(llmq_error), 256);

    LLMQ_EXPECT_EQ(sizeof(llmq_tensor), 88);
    LLMQ_EXPECT_EQ(offsetof(llmq_tensor, data), 0);
    LLMQ_EXPECT_EQ(offsetof(llmq_tensor, shape), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_tensor, strides), 40);
    LLMQ_EXPECT_EQ(offsetof(llmq_tensor, dtype), 72);
    LLMQ_EXPECT_EQ(offsetof(llmq_tensor, rank), 76);
    LLMQ_EXPECT_EQ(offsetof(llmq_tensor, device_type), 80);
    LLMQ_EXPECT_EQ(offsetof(llmq_tensor, device_index), 84);

    LLMQ_EXPECT_EQ(sizeof(llmq_host), 80);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, struct_size), 0);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, abi_version), 4);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, host_context), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, log), 16);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, alloc), 24);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, free), 32);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, parallel_for), 40);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, device_type), 48);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, device_index), 52);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, num_threads), 56);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, reserved0), 60);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, stream), 64);
    LLMQ_EXPECT_EQ(offsetof(llmq_host, config_toml), 72);

    LLMQ_EXPECT_EQ(sizeof(llmq_matmul_args), 272);
    LLMQ_EXPECT_EQ(offsetof(llmq_matmul_args, struct_size), 0);
    LLMQ_EXPECT_EQ(offsetof(llmq_matmul_args, reserved0), 4);
    LLMQ_EXPECT_EQ(offsetof(llmq_matmul_args, x), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_matmul_args, w), 96);
    LLMQ_EXPECT_EQ(offsetof(llmq_matmul_args, y), 184);

    LLMQ_EXPECT_EQ(sizeof(llmq_gemm_ops), 16);
    LLMQ_EXPECT_EQ(offsetof(llmq_gemm_ops, matmul), 8);

    LLMQ_EXPECT_EQ(sizeof(llmq_attention_args), 264);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, q), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, out), 96);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, k_cache), 184);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, v_cache), 192);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, query_start), 200);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, context_len), 208);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, block_tables), 216);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, kv_dtype), 224);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, num_seqs), 228);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, num_tokens), 232);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, num_heads), 236);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, num_kv_heads), 240);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, head_dim), 244);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, block_size), 248);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, max_blocks_per_seq), 252);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, num_blocks), 256);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_args, scale), 260);

    LLMQ_EXPECT_EQ(sizeof(llmq_cross_attention_args), 264);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, q), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, out), 96);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, k_image), 184);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, v_image), 192);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, query_start), 200);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, kv_start), 208);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, row_begin), 216);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, row_end), 224);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, kv_dtype), 232);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, num_seqs), 236);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, num_tokens), 240);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, num_heads), 244);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, num_kv_heads), 248);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, head_dim), 252);
    LLMQ_EXPECT_EQ(offsetof(llmq_cross_attention_args, scale), 256);

    LLMQ_EXPECT_EQ(sizeof(llmq_attention_ops), 24);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_ops, attention), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_attention_ops, cross_attention), 16);
    LLMQ_EXPECT_EQ(LLMQ_ATTENTION_OPS_SIZE_1_0, 16);

    LLMQ_EXPECT_EQ(sizeof(llmq_vision_args), 184);
    LLMQ_EXPECT_EQ(offsetof(llmq_vision_args, variant), 4);
    LLMQ_EXPECT_EQ(offsetof(llmq_vision_args, pixels), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_vision_args, embeddings), 96);
    LLMQ_EXPECT_EQ(sizeof(llmq_named_tensor), 96);
    LLMQ_EXPECT_EQ(offsetof(llmq_named_tensor, tensor), 8);
    LLMQ_EXPECT_EQ(sizeof(llmq_vision_ops), 24);
    LLMQ_EXPECT_EQ(offsetof(llmq_vision_ops, load_weights), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_vision_ops, encode), 16);

    LLMQ_EXPECT_EQ(sizeof(llmq_plugin_descriptor), 72);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, struct_size), 0);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, abi_version), 4);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, kind), 8);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, backend), 12);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, name), 16);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, version), 24);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, init), 32);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, shutdown), 40);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, gemm), 48);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, attention), 56);
    LLMQ_EXPECT_EQ(offsetof(llmq_plugin_descriptor, vision), 64);

    return failures;
}

#undef LLMQ_EXPECT_EQ

#endif /* LLMQ_ABI_LAYOUT_EXPECTATIONS_H */
