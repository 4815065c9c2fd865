// The isa::scalar dispatch table: the reference kernels.
#include "../kernel_table.hpp"
#include "reference_kernels.hpp"

namespace llmq::kernels::detail {

const kernel_table& scalar_table() {
    static const kernel_table table = {
        isa::scalar,
        reference::gemm,
        reference::gemm_bf16_dot,
        reference::paged_attention,
        reference::rms_norm_rows,
        reference::swiglu,
        reference::softmax,
        reference::add_inplace,
        reference::row_to_f32,
        reference::row_from_f32,
        reference::fma_loop,
        reference::sum_words,
        reference::quant_gemm,
        nullptr,  // no bf16 or int8 dot-product unit in portable C++
        nullptr,
        reference::gelu_erf,
    };
    return table;
}

}  // namespace llmq::kernels::detail
