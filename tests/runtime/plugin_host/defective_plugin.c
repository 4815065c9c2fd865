/* One GEMM plugin source, built once per defect (see meson.build): each build is a plugin
 * the host must refuse for exactly one reason. Without a DEFECT_* macro it is a valid,
 * trivially correct f32 GEMM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "llmq_plugin.h"

#ifdef DEFECT_CTOR_MARKS
/* A library the probe always refuses (its init fails), whose constructor appends the pid of the
 * process that loaded it to $LLMQ_TEST_CTOR_MARKER: a line with llmqd's pid means the daemon ran
 * the code of a library no probe passed. */
#include <fcntl.h>
__attribute__((constructor)) static void mark_loader(void) {
    const char *path = getenv("LLMQ_TEST_CTOR_MARKER");
    if (!path) return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return;
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (n > 0) (void)!write(fd, line, (size_t)n);
    close(fd);
}
#endif

static llmq_status matmul(void *instance, const llmq_matmul_args *a, llmq_error *error) {
    (void)instance;
#ifdef DEFECT_CANARY_CRASHES
    (void)a;
    (void)error;
    abort();
#endif
    if (a->x.dtype != LLMQ_DTYPE_F32 || a->w.dtype != LLMQ_DTYPE_F32) {
        snprintf(error->message, sizeof error->message, "only f32");
        return LLMQ_STATUS_UNSUPPORTED;
    }
    const int64_t M = a->x.shape[0], K = a->x.shape[1], N = a->w.shape[0];
    for (int64_t m = 0; m < M; ++m)
        for (int64_t n = 0; n < N; ++n) {
            const float *x = (const float *)((const char *)a->x.data + m * a->x.strides[0]);
            const float *w = (const float *)((const char *)a->w.data + n * a->w.strides[0]);
            float acc = 0.0f;
            for (int64_t k = 0; k < K; ++k) acc += x[k] * w[k];
#ifdef DEFECT_WRONG_NUMBERS
            acc += 1.0f;
#endif
            ((float *)((char *)a->y.data + m * a->y.strides[0]))[n] = acc;
        }
    return LLMQ_OK;
}

static llmq_status init(const llmq_host *host, void **instance, llmq_error *error) {
    (void)host;
    *instance = NULL;
#if defined(DEFECT_INIT_FAILS) || defined(DEFECT_CTOR_MARKS)
    snprintf(error->message, sizeof error->message, "this plugin refuses to start on purpose");
    return LLMQ_STATUS_DEVICE_ERROR;
#elif defined(DEFECT_INIT_CRASHES)
    (void)error;
    abort();
#elif defined(DEFECT_INIT_HANGS)
    (void)error;
    for (;;) sleep(1);
#elif defined(DEFECT_INIT_FAILS_ON_SECOND_DEVICE)
    if (host->device_index == 1) {
        snprintf(error->message, sizeof error->message, "no room on device %d", host->device_index);
        return LLMQ_STATUS_OUT_OF_MEMORY;
    }
    return LLMQ_OK;
#else
    (void)error;
    return LLMQ_OK;
#endif
}

static void shutdown(void *instance) { (void)instance; }

static const llmq_gemm_ops ops = {sizeof(llmq_gemm_ops), 0, matmul};

static const llmq_plugin_descriptor descriptor = {
#ifdef DEFECT_STRUCT_SIZE
    16,
#else
    sizeof(llmq_plugin_descriptor),
#endif
#ifdef DEFECT_ABI_MAJOR
    (2u << 16) | 0u,
#else
    LLMQ_PLUGIN_ABI_VERSION,
#endif
#ifdef DEFECT_WRONG_KIND
    LLMQ_PLUGIN_KIND_ATTENTION,
#else
    LLMQ_PLUGIN_KIND_GEMM,
#endif
#ifdef DEFECT_WRONG_BACKEND
    LLMQ_BACKEND_CUDA,
#else
    LLMQ_BACKEND_CPU,
#endif
    "test-gemm",
    "0.0.1",
    init,
    shutdown,
#ifdef DEFECT_NULL_TABLE
    NULL,
#else
    &ops,
#endif
    NULL,
    NULL};

#ifdef DEFECT_NO_ENTRY
LLMQ_PLUGIN_EXPORT const llmq_plugin_descriptor *some_other_symbol(void) { return &descriptor; }
#else
LLMQ_PLUGIN_EXPORT const llmq_plugin_descriptor *llmq_plugin_entry(void) { return &descriptor; }
#endif
