// The GGML tensor types a GGUF file may name, with their block layout.
#include <array>

#include "llmq/runtime/gguf.hpp"

namespace llmq {
namespace {

struct TypeEntry {
    uint32_t id;
    GgmlTypeTraits traits;
};

// Block layouts as ggml defines them (ggml-common.h static_asserts). Ids 4, 5 (removed Q4_2,
// Q4_3) and 31..33 (removed repacked Q4_0 variants) are not types any more.
constexpr std::array<TypeEntry, 31> type_table{{
    {0, {"F32", 1, 4}},
    {1, {"F16", 1, 2}},
    {2, {"Q4_0", 32, 18}},
    {3, {"Q4_1", 32, 20}},
    {6, {"Q5_0", 32, 22}},
    {7, {"Q5_1", 32, 24}},
    {8, {"Q8_0", 32, 34}},
    {9, {"Q8_1", 32, 36}},
    {10, {"Q2_K", 256, 84}},
    {11, {"Q3_K", 256, 110}},
    {12, {"Q4_K", 256, 144}},
    {13, {"Q5_K", 256, 176}},
    {14, {"Q6_K", 256, 210}},
    {15, {"Q8_K", 256, 292}},
    {16, {"IQ2_XXS", 256, 66}},
    {17, {"IQ2_XS", 256, 74}},
    {18, {"IQ3_XXS", 256, 98}},
    {19, {"IQ1_S", 256, 50}},
    {20, {"IQ4_NL", 32, 18}},
    {21, {"IQ3_S", 256, 110}},
    {22, {"IQ2_S", 256, 82}},
    {23, {"IQ4_XS", 256, 136}},
    {24, {"I8", 1, 1}},
    {25, {"I16", 1, 2}},
    {26, {"I32", 1, 4}},
    {27, {"I64", 1, 8}},
    {28, {"F64", 1, 8}},
    {29, {"IQ1_M", 256, 56}},
    {30, {"BF16", 1, 2}},
    {34, {"TQ1_0", 256, 54}},
    {35, {"TQ2_0", 256, 66}},
}};

// Every weight dtype of the kernels' table names a GGML type whose block layout is its own.
constexpr bool dtype_table_matches_ggml() {
    for (const kernels::dtype_info& d : kernels::dtype_table) {
        if (!d.weight) continue;
        bool found = false;
        for (const TypeEntry& e : type_table) {
            if (static_cast<int64_t>(e.id) != d.ggml_type) continue;
            found = e.traits.block_values == d.block_values && e.traits.block_bytes == d.block_bytes;
        }
        if (!found) return false;
    }
    return true;
}
static_assert(dtype_table_matches_ggml(),
              "a weight row of llmq/kernels/dtype.hpp names a GGML type id whose block layout differs");

}  // namespace

std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t ggml_type) {
    for (const TypeEntry& e : type_table) {
        if (e.id == ggml_type) return e.traits;
    }
    return std::nullopt;
}

std::string ggml_type_name(uint32_t ggml_type) {
    if (auto t = ggml_type_traits(ggml_type)) return t->name;
    return "unknown(" + std::to_string(ggml_type) + ")";
}

std::optional<kernels::dtype> ggml_type_to_dtype(uint32_t ggml_type) {
    if (const kernels::dtype_info* d = kernels::find_dtype_by_ggml_type(ggml_type)) return d->id;
    return std::nullopt;
}

std::optional<uint32_t> dtype_to_ggml_type(kernels::dtype t) {
    const kernels::dtype_info& d = kernels::dtype_info_of(t);
    if (!d.weight || d.ggml_type == kernels::no_ggml_type) return std::nullopt;
    return static_cast<uint32_t>(d.ggml_type);
}

}  // namespace llmq
