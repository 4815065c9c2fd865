// The ABI's dtype ids (llmq_dtype in llmq_plugin.h) are the ids of the kernels' dtype table
// (llmq/kernels/dtype.hpp). The C header must stand alone, so it spells its constants out;
// this header proves, row by row at compile time, that they agree, and gives the runtime and
// the C++ plugins one way to read an ABI dtype. A row of the table without its LLMQ_DTYPE_<ABI>
// constant fails to compile here.
#pragma once

#include <cstdint>

#include "llmq/kernels/dtype.hpp"
#include "llmq_plugin.h"

namespace llmq::abi {

#define LLMQ_ABI_DTYPE_CHECK(id, e, abi, name, bv, bb, kind, ggml, weight)                 \
    static_assert(LLMQ_DTYPE_##abi == id && static_cast<int32_t>(kernels::dtype::e) == id, \
                  "llmq_dtype LLMQ_DTYPE_" #abi " differs from the kernels' dtype table");
LLMQ_KERNELS_DTYPES(LLMQ_ABI_DTYPE_CHECK)
#undef LLMQ_ABI_DTYPE_CHECK

static_assert(LLMQ_Q8_0_BLOCK_VALUES == kernels::dtype_info_of(kernels::dtype::q8_0).block_values &&
                  LLMQ_Q8_0_BLOCK_BYTES == kernels::dtype_info_of(kernels::dtype::q8_0).block_bytes,
              "LLMQ_Q8_0_BLOCK_* differ from the kernels' dtype table");

// The ABI id of a dtype (the llmq_dtype value a tensor descriptor carries).
constexpr int32_t dtype_id(kernels::dtype t) { return static_cast<int32_t>(t); }
// The table row of an ABI id from a descriptor, or nullptr when it is no llmq_dtype.
constexpr const kernels::dtype_info* dtype_of(int32_t abi_dtype) { return kernels::find_dtype(abi_dtype); }

}  // namespace llmq::abi
