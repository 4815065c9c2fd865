// This ISA variant's dispatch table (defines detail::<isa>_table()).
#include "simd_entries.hpp"

#define LLMQ_KERNELS_PASTE2(a, b) a##b
#define LLMQ_KERNELS_PASTE(a, b) LLMQ_KERNELS_PASTE2(a, b)

namespace llmq::kernels::detail {

const kernel_table& LLMQ_KERNELS_PASTE(LLMQ_KERNELS_ISA_NS, _table)() {
    namespace v = llmq::kernels::LLMQ_KERNELS_ISA_NS;
    static const kernel_table table = {
#if defined(__AVX512BF16__)
        isa::avx512_bf16,
#elif defined(__AVX512F__)
        isa::avx512,
#else
        isa::avx2,
#endif
        v::gemm_entry,
#if defined(__AVX512BF16__)
        v::gemm_bf16_dot_entry,
#else
        nullptr,
#endif
        v::paged_attention_entry,
        v::rms_norm_rows_entry,
        v::swiglu_entry,
        v::softmax_entry,
        v::add_inplace_entry,
        v::row_to_f32_entry,
        v::row_from_f32_entry,
        v::fma_loop_entry,
        v::sum_words_entry,
        v::quant_gemm_entry,
#if defined(__AVX512BF16__)
        v::bf16_dot_loop_entry,
#else
        nullptr,
#endif
#if defined(__AVX512VNNI__)
        v::int8_dot_loop_entry,
#else
        nullptr,
#endif
        v::gelu_erf_entry,
    };
    return table;
}

}  // namespace llmq::kernels::detail
