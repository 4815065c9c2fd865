// The one dtype table (llmq/kernels/dtype.hpp) is what the GGUF reader, the ABI and the
// kernels read: every row maps to its GGML type and back, matches GGML's block layout and the
// ABI's id, and nothing outside the table's weight rows is taken as a model tensor.
#include <doctest/doctest.h>

#include <string>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq_abi_dtypes.hpp"

using namespace llmq;
namespace k = llmq::kernels;

TEST_CASE("dtype_table_rows_agree_with_gguf_abi_and_kernels") {
    int weights = 0;
    for (const k::dtype_info& d : k::dtype_table) {
        INFO(d.name);
        CHECK(abi::dtype_of(abi::dtype_id(d.id)) == &d);
        CHECK(std::string(k::dtype_name(d.id)) == d.name);
        CHECK(k::row_bytes(d.id, 4 * d.block_values) == size_t(4 * d.block_bytes));
        if (!d.weight) {
            CHECK_FALSE(dtype_to_ggml_type(d.id).has_value());
            if (d.ggml_type != k::no_ggml_type) CHECK_FALSE(ggml_type_to_dtype(uint32_t(d.ggml_type)).has_value());
            continue;
        }
        ++weights;
        REQUIRE(d.ggml_type != k::no_ggml_type);
        CHECK(dtype_to_ggml_type(d.id) == uint32_t(d.ggml_type));
        CHECK(ggml_type_to_dtype(uint32_t(d.ggml_type)) == d.id);
        auto traits = ggml_type_traits(uint32_t(d.ggml_type));
        REQUIRE(traits.has_value());
        CHECK(traits->block_values == d.block_values);
        CHECK(traits->block_bytes == d.block_bytes);
    }
    CHECK(weights >= 4);
    CHECK(k::weight_dtype_names().rfind("f32, f16, bf16, q8_0", 0) == 0);
    CHECK(abi::dtype_of(-1) == nullptr);
    CHECK(abi::dtype_of(k::dtype_count) == nullptr);
    CHECK(std::string(k::dtype_name(int32_t(77))) == "unknown");
    // I32 is a GGML type llmq knows but never computes a model with.
    CHECK_FALSE(ggml_type_to_dtype(static_cast<uint32_t>(GgmlType::i32)).has_value());
    CHECK(k::dtype_info_of(k::dtype::q8_0).is_quantized());
    CHECK(k::dtype_info_of(k::dtype::bf16).is_float());
    CHECK(k::dtype_info_of(k::dtype::q8_0).element_bytes() == 0);
    CHECK(k::dtype_info_of(k::dtype::f16).element_bytes() == 2);
}
