// Argument checks every plugin makes the same way, whatever its backend: the error message
// helper and the shape/stride/data checks of a rank-2 tensor. Header-only C++ for the plugins
// of this tree (plugins written elsewhere need only llmq_plugin.h); never installed.
#pragma once

#include <cinttypes>
#include <cstdarg>
#include <cstdint>
#include <cstdio>

#include "llmq_plugin.h"

namespace llmq::plugin_checks {

inline constexpr int64_t max_dimension = int64_t(1) << 31;
inline constexpr int64_t max_stride = int64_t(1) << 40;

// Writes the formatted message into error (when given) and returns status.
__attribute__((format(printf, 3, 4))) inline llmq_status fail(llmq_error* error, llmq_status status,
                                                               const char* format, ...) {
    if (error != nullptr) {
        va_list args;
        va_start(args, format);
        std::vsnprintf(error->message, sizeof error->message, format, args);
        va_end(args);
    }
    return status;
}

// `name` of operation `op` is a rank-2 tensor with shapes in [0, 2^31], strides in [0, 2^40]
// and data unless it is empty. Where it lives is the caller's check.
inline llmq_status check_matrix_layout(const llmq_tensor& t, const char* op, const char* name,
                                       llmq_error* error) {
    if (t.rank != 2)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s: %s.rank is %d, expected 2", op, name, t.rank);
    for (int d = 0; d < 2; ++d) {
        if (t.shape[d] < 0 || t.shape[d] > max_dimension)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s: %s.shape[%d] is %" PRId64 ", outside [0, 2^31]",
                        op, name, d, t.shape[d]);
        if (t.strides[d] < 0 || t.strides[d] > max_stride)
            return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s: %s.strides[%d] is %" PRId64 ", outside [0, 2^40]",
                        op, name, d, t.strides[d]);
    }
    if (t.data == nullptr && t.shape[0] > 0 && t.shape[1] > 0)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT, "%s: %s.data is NULL", op, name);
    return LLMQ_OK;
}

// The shapes of y = x · wᵀ agree: x [M, K], w [N, K], y [M, N].
inline llmq_status check_matmul_shapes(const llmq_matmul_args& a, llmq_error* error) {
    const int64_t M = a.x.shape[0], K = a.x.shape[1], N = a.w.shape[0];
    if (a.w.shape[1] != K)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "matmul: x is [%" PRId64 ", %" PRId64 "] but w is [%" PRId64 ", %" PRId64 "]: inner sizes differ", M, K,
                    N, a.w.shape[1]);
    if (a.y.shape[0] != M || a.y.shape[1] != N)
        return fail(error, LLMQ_STATUS_INVALID_ARGUMENT,
                    "matmul: y is [%" PRId64 ", %" PRId64 "], x · wᵀ is [%" PRId64 ", %" PRId64 "]", a.y.shape[0],
                    a.y.shape[1], M, N);
    return LLMQ_OK;
}

}  // namespace llmq::plugin_checks
