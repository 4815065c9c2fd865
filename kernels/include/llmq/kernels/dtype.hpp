// The element types llmq computes with: one table, one row per type, read by the kernels, the
// plugins, the GGUF reader, the memory planner and the plugin canary. Nothing else in llmq
// lists dtypes, their names or their block layouts.
//
// Adding a type is one row in LLMQ_KERNELS_DTYPES below, plus:
//   - the matching LLMQ_DTYPE_<ABI> constant in plugins/llmq_plugin.h (a minor ABI version);
//     plugins/abi/llmq_abi_dtypes.hpp static_asserts every row against it, so a row without its
//     ABI constant does not compile;
//   - the kernels for it (row_to_f32 / row_from_f32, gemm, embedding_row) when `weight` is true.
// The GGUF reader then accepts the type (its GGML id is in the row) and checks the row's block
// layout against GGML's own table at compile time (runtime/src/model/ggml_types.cpp).
//
// Ids are dense (0, 1, 2, ...) and equal to the ABI's llmq_dtype values, so a dtype id indexes
// dtype_table directly. This header is constexpr only: no symbols, usable from any part.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace llmq::kernels {

// How the values of a type are stored.
enum class dtype_kind : int32_t {
    floating = 0,   // IEEE-style floats, one value per element (f32, f16, bf16)
    quantized = 1,  // blocks of block_values values in block_bytes bytes, scales inside
    integer = 2     // plain integers (token ids, bytes), never weights
};

// GGML has no type for this dtype.
inline constexpr int32_t no_ggml_type = -1;

// clang-format off
// ROW(id, enumerator, ABI suffix, name, block values, block bytes, kind, GGML type id, weight)
//   name:   lower case, as configs, logs and error messages print it
//   block:  `block values` values take `block bytes` bytes (1 value per block for plain types);
//           a row of a quantized type holds a whole number of blocks
//   GGML type id: the id GGUF files store for this layout (no_ggml_type if none)
//   weight: kernels::gemm, embedding_row and the GEMM plugins take it as weights, and model
//           tensors may have it (the GGUF reader refuses a model tensor of any other type)
#define LLMQ_KERNELS_DTYPES(ROW)                                                              \
    ROW(0, f32,  F32,  "f32",  1,  4,  floating,  0,            true)                         \
    ROW(1, f16,  F16,  "f16",  1,  2,  floating,  1,            true)                         \
    ROW(2, bf16, BF16, "bf16", 1,  2,  floating,  30,           true)                         \
    ROW(3, q8_0, Q8_0, "q8_0", 32, 34, quantized, 8,            true)  /* fp16 d + 32 x int8 */ \
    ROW(4, i32,  I32,  "i32",  1,  4,  integer,   26,           false)                        \
    ROW(5, u8,   U8,   "u8",   1,  1,  integer,   no_ggml_type, false)                        \
    /* GGUF's block quantizations: layouts and meaning in llmq/kernels/quant_blocks.hpp */     \
    ROW(6,  q4_0,   Q4_0,   "q4_0",   32,  18,  quantized, 2,  true)                          \
    ROW(7,  q4_1,   Q4_1,   "q4_1",   32,  20,  quantized, 3,  true)                          \
    ROW(8,  q5_0,   Q5_0,   "q5_0",   32,  22,  quantized, 6,  true)                          \
    ROW(9,  q5_1,   Q5_1,   "q5_1",   32,  24,  quantized, 7,  true)                          \
    ROW(10, q2_k,   Q2_K,   "q2_k",   256, 84,  quantized, 10, true)                          \
    ROW(11, q3_k,   Q3_K,   "q3_k",   256, 110, quantized, 11, true)                          \
    ROW(12, q4_k,   Q4_K,   "q4_k",   256, 144, quantized, 12, true)                          \
    ROW(13, q5_k,   Q5_K,   "q5_k",   256, 176, quantized, 13, true)                          \
    ROW(14, q6_k,   Q6_K,   "q6_k",   256, 210, quantized, 14, true)                          \
    ROW(15, iq4_nl, IQ4_NL, "iq4_nl", 32,  18,  quantized, 20, true)                          \
    ROW(16, iq4_xs, IQ4_XS, "iq4_xs", 256, 136, quantized, 23, true)
// clang-format on

#define LLMQ_KERNELS_DTYPE_ENUMERATOR(id, e, abi, name, bv, bb, kind, ggml, weight) e = id,
enum class dtype : int32_t { LLMQ_KERNELS_DTYPES(LLMQ_KERNELS_DTYPE_ENUMERATOR) };
#undef LLMQ_KERNELS_DTYPE_ENUMERATOR

// One row of the table.
struct dtype_info {
    dtype id;
    const char* name;
    int32_t block_values;
    int32_t block_bytes;
    dtype_kind kind;
    int32_t ggml_type;  // no_ggml_type if none
    bool weight;

    constexpr bool is_float() const { return kind == dtype_kind::floating; }
    constexpr bool is_quantized() const { return kind == dtype_kind::quantized; }
    // Bytes of one element for plain types; 0 for block-quantized ones (no element stride).
    constexpr int32_t element_bytes() const { return block_values == 1 ? block_bytes : 0; }
};

#define LLMQ_KERNELS_DTYPE_INFO(id, e, abi, name, bv, bb, kind, ggml, weight) \
    dtype_info{dtype::e, name, bv, bb, dtype_kind::kind, ggml, weight},
inline constexpr dtype_info dtype_table[] = {LLMQ_KERNELS_DTYPES(LLMQ_KERNELS_DTYPE_INFO)};
#undef LLMQ_KERNELS_DTYPE_INFO

inline constexpr int32_t dtype_count = static_cast<int32_t>(sizeof dtype_table / sizeof dtype_table[0]);

namespace dtype_table_checks {
constexpr bool rows_are_dense_and_sane() {
    for (int32_t i = 0; i < dtype_count; ++i) {
        const dtype_info& d = dtype_table[i];
        if (static_cast<int32_t>(d.id) != i || d.block_values < 1 || d.block_bytes < 1) return false;
        if ((d.kind == dtype_kind::quantized) != (d.block_values > 1)) return false;
        if (d.weight && d.kind == dtype_kind::integer) return false;
    }
    return true;
}
static_assert(rows_are_dense_and_sane(),
              "LLMQ_KERNELS_DTYPES: ids must be 0, 1, 2, ... in order; quantized types and only "
              "they have blocks of more than one value; integer types are never weights");
}  // namespace dtype_table_checks

// The row of a dtype (t must be one of the enumerators).
constexpr const dtype_info& dtype_info_of(dtype t) { return dtype_table[static_cast<int32_t>(t)]; }
// The row of a raw id (an ABI int32_t or a number from outside), or nullptr if none.
constexpr const dtype_info* find_dtype(int32_t id) {
    return id >= 0 && id < dtype_count ? &dtype_table[id] : nullptr;
}
// The weight dtype stored in GGUF files under this GGML type id, or nullptr.
constexpr const dtype_info* find_dtype_by_ggml_type(int64_t ggml_type) {
    for (const dtype_info& d : dtype_table) {
        if (d.weight && d.ggml_type != no_ggml_type && d.ggml_type == ggml_type) return &d;
    }
    return nullptr;
}

// Bytes of one row of `n` values (n a multiple of the block for quantized types).
constexpr std::size_t row_bytes(dtype t, int64_t n) {
    const dtype_info& d = dtype_info_of(t);
    return static_cast<std::size_t>(n) / static_cast<std::size_t>(d.block_values) *
           static_cast<std::size_t>(d.block_bytes);
}
// "f32", "q8_0", ...
constexpr const char* dtype_name(dtype t) { return dtype_info_of(t).name; }
// The name of a raw id, or "unknown" if it is none.
constexpr const char* dtype_name(int32_t id) {
    const dtype_info* d = find_dtype(id);
    return d != nullptr ? d->name : "unknown";
}

// "f32, f16, bf16, q8_0": the names of the weight dtypes, in table order, for error messages.
inline std::string weight_dtype_names() {
    std::string out;
    for (const dtype_info& d : dtype_table) {
        if (!d.weight) continue;
        if (!out.empty()) out += ", ";
        out += d.name;
    }
    return out;
}

inline constexpr int q8_0_block_values = dtype_info_of(dtype::q8_0).block_values;
inline constexpr int q8_0_block_bytes = dtype_info_of(dtype::q8_0).block_bytes;

}  // namespace llmq::kernels
