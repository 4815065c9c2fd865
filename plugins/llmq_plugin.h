/*
 * llmq plugin ABI, version 1.2 (1.1 adds the GPU contract, see "GPU contract" below; 1.2 the
 * vision contract and cross-attention, see "vision" and "cross-attention" below).
 *
 * A plugin is a shared library that exports one C symbol, LLMQ_PLUGIN_ENTRY_SYMBOL
 * ("llmq_plugin_entry"), of type llmq_plugin_entry_fn. The entry returns a pointer to a
 * static, immutable descriptor that names the plugin, says what kind of kernel it provides
 * (GEMM, attention, vision), for which backend (CPU, CUDA), and holds its function table.
 *
 * Versioning (as Triton's backend API): LLMQ_PLUGIN_ABI_MAJOR breaks, LLMQ_PLUGIN_ABI_MINOR
 * adds. The runtime refuses a descriptor whose major differs from its own or whose minor is
 * newer, and one whose struct_size is smaller than the size it knows for that major, naming
 * both numbers in its message. Function tables only grow at the end; members added in a
 * later minor may be NULL. The runtime checks every table once at load, never per call.
 *
 * Per-call structs (llmq_tensor, llmq_matmul_args, llmq_attention_args, llmq_vision_args)
 * are frozen for a major version: their sizes and offsets are pinned by static_asserts below
 * and by tests/plugins/abi_layout_test.
 *
 * Threads: a plugin instance is created, used and destroyed by the runtime. Calls on one
 * instance come from one thread at a time (the device's worker), except where a function
 * says otherwise. A plugin may call back into the host table from any thread it is called on.
 *
 * Errors: functions return llmq_status; on anything but LLMQ_OK they may write a message of
 * at most LLMQ_ERROR_MESSAGE_MAX - 1 bytes (NUL-terminated) into the caller-owned llmq_error.
 * No C++ exception ever crosses this boundary.
 *
 * This header is plain C11 and compiles on its own as C and as C++.
 */
#ifndef LLMQ_PLUGIN_H
#define LLMQ_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLMQ_PLUGIN_ABI_MAJOR 1u
#define LLMQ_PLUGIN_ABI_MINOR 2u
/* abi_version as written in every versioned struct: major in the high 16 bits. */
#define LLMQ_PLUGIN_ABI_VERSION ((LLMQ_PLUGIN_ABI_MAJOR << 16) | LLMQ_PLUGIN_ABI_MINOR)
#define LLMQ_PLUGIN_ABI_VERSION_MAJOR(v) ((uint32_t)(v) >> 16)
#define LLMQ_PLUGIN_ABI_VERSION_MINOR(v) ((uint32_t)(v)&0xffffu)

#define LLMQ_PLUGIN_ENTRY_SYMBOL "llmq_plugin_entry"

#if defined(_WIN32)
#define LLMQ_PLUGIN_EXPORT __declspec(dllexport)
#else
#define LLMQ_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

/* ---------------------------------------------------------------- status codes ------ */

/*
 * | code                          | meaning                                              |
 * | LLMQ_OK                       | done                                                 |
 * | LLMQ_STATUS_INVALID_ARGUMENT  | the call's arguments are wrong (shape, dtype, NULL)  |
 * | LLMQ_STATUS_UNSUPPORTED       | valid, but this plugin cannot do it (dtype, device)  |
 * | LLMQ_STATUS_OUT_OF_MEMORY     | an allocation failed                                 |
 * | LLMQ_STATUS_DEVICE_ERROR      | the device or driver reported an error               |
 * | LLMQ_STATUS_INTERNAL          | a bug in the plugin                                  |
 */
typedef int32_t llmq_status;
#define LLMQ_OK 0
#define LLMQ_STATUS_INVALID_ARGUMENT 1
#define LLMQ_STATUS_UNSUPPORTED 2
#define LLMQ_STATUS_OUT_OF_MEMORY 3
#define LLMQ_STATUS_DEVICE_ERROR 4
#define LLMQ_STATUS_INTERNAL 5

#define LLMQ_ERROR_MESSAGE_MAX 256
/* Caller-owned error text. A plugin writes at most LLMQ_ERROR_MESSAGE_MAX bytes including
 * the terminating NUL. */
typedef struct llmq_error {
    char message[LLMQ_ERROR_MESSAGE_MAX];
} llmq_error;

/* ---------------------------------------------------------------- enums ------------- */

typedef enum llmq_plugin_kind {
    LLMQ_PLUGIN_KIND_GEMM = 1,
    LLMQ_PLUGIN_KIND_ATTENTION = 2,
    LLMQ_PLUGIN_KIND_VISION = 3
} llmq_plugin_kind;

typedef enum llmq_backend {
    LLMQ_BACKEND_CPU = 1,
    LLMQ_BACKEND_CUDA = 2
} llmq_backend;

/* Element types. Q8_0 is GGUF's: blocks of 32 values, each block an IEEE half scale d
 * followed by 32 int8 q (34 bytes); value = d * q.
 * The values are the ids of llmq's dtype table (kernels/include/llmq/kernels/dtype.hpp),
 * which gives each type's name and block layout; plugins/abi/llmq_abi_dtypes.hpp checks every
 * row of that table against these constants at compile time. A new type is a new constant
 * here (a minor version) and a new row there. */
typedef enum llmq_dtype {
    LLMQ_DTYPE_F32 = 0,
    LLMQ_DTYPE_F16 = 1,
    LLMQ_DTYPE_BF16 = 2,
    LLMQ_DTYPE_Q8_0 = 3,
    LLMQ_DTYPE_I32 = 4,
    LLMQ_DTYPE_U8 = 5,
    /* GGUF's block quantizations: the byte layouts of ggml's
     * block_q4_0 ... block_iq4_xs; rows of them are whole blocks, strides[rank-1] is 0. */
    LLMQ_DTYPE_Q4_0 = 6,
    LLMQ_DTYPE_Q4_1 = 7,
    LLMQ_DTYPE_Q5_0 = 8,
    LLMQ_DTYPE_Q5_1 = 9,
    LLMQ_DTYPE_Q2_K = 10,
    LLMQ_DTYPE_Q3_K = 11,
    LLMQ_DTYPE_Q4_K = 12,
    LLMQ_DTYPE_Q5_K = 13,
    LLMQ_DTYPE_Q6_K = 14,
    LLMQ_DTYPE_IQ4_NL = 15,
    LLMQ_DTYPE_IQ4_XS = 16
} llmq_dtype;

#define LLMQ_Q8_0_BLOCK_VALUES 32
#define LLMQ_Q8_0_BLOCK_BYTES 34

typedef enum llmq_log_level {
    LLMQ_LOG_ERROR = 0,
    LLMQ_LOG_WARN = 1,
    LLMQ_LOG_INFO = 2,
    LLMQ_LOG_DEBUG = 3
} llmq_log_level;

/* ---------------------------------------------------------------- tensors ----------- */

#define LLMQ_TENSOR_MAX_RANK 4

/*
 * A view of memory the caller owns. shape[0] is the outermost dimension; strides are in
 * BYTES (as ggml's nb), so block-quantized rows are described exactly: for Q8_0 the
 * innermost dimension must be contiguous and a multiple of 32, and strides[rank-1] is 0.
 * Dimensions at or past rank are 1 with stride 0. data is a host pointer for
 * device_type == LLMQ_BACKEND_CPU and a device pointer for LLMQ_BACKEND_CUDA.
 */
typedef struct llmq_tensor {
    void *data;
    int64_t shape[LLMQ_TENSOR_MAX_RANK];
    int64_t strides[LLMQ_TENSOR_MAX_RANK];
    int32_t dtype;        /* llmq_dtype */
    int32_t rank;         /* 1..LLMQ_TENSOR_MAX_RANK */
    int32_t device_type;  /* llmq_backend */
    int32_t device_index; /* ordinal within the backend */
} llmq_tensor;

/* ---------------------------------------------------------------- host table -------- */

/* Work callback for the host's parallel_for: process items [begin, end). */
typedef void (*llmq_range_fn)(void *arg, int64_t begin, int64_t end);

/*
 * What the runtime gives a plugin at init. Valid until the instance's shutdown returns.
 * All function pointers are non-NULL unless marked optional.
 */
typedef struct llmq_host {
    uint32_t struct_size; /* sizeof(llmq_host) as the runtime built it */
    uint32_t abi_version; /* LLMQ_PLUGIN_ABI_VERSION of the runtime */
    void *host_context;   /* opaque; pass back as the first argument below */

    /* Write one log line (no trailing newline needed). Any thread. */
    void (*log)(void *host_context, int32_t level, const char *message);
    /* Device-appropriate memory: host memory for CPU devices, device memory for CUDA ones.
     * Returns NULL on failure. alignment is a power of two. Any thread. */
    void *(*alloc)(void *host_context, size_t bytes, size_t alignment);
    void (*free)(void *host_context, void *pointer);
    /* CPU devices: run fn over [0, n) split into ranges across the device's own cores, and
     * return when all ranges are done. Called only from the thread that called the plugin;
     * fn runs on the device's worker threads (including the caller). For CUDA devices it
     * runs fn(arg, 0, n) inline. */
    void (*parallel_for)(void *host_context, int64_t n, llmq_range_fn fn, void *arg);

    int32_t device_type;  /* llmq_backend of the device this instance serves */
    int32_t device_index; /* ordinal */
    int32_t num_threads;  /* CPU: cores the device owns; CUDA: 1 */
    int32_t reserved0;
    void *stream;         /* CUDA: the device's cudaStream_t; CPU: NULL */

    /* The plugin's own table from the runtime's config ([plugins.<name>]), as TOML text,
     * NUL-terminated; "" when there is none. */
    const char *config_toml;
} llmq_host;

/* ---------------------------------------------------------------- GEMM -------------- */

/*
 * y[m, n] = sum_k x[m, k] * w[n, k]      (y = x · wᵀ, the layout of every linear layer)
 *   x: [M, K] F32, rows may be strided
 *   w: [N, K] F32 / F16 / BF16 / Q8_0 (K a multiple of 32 for Q8_0)
 *   y: [M, N] F32; written, never read
 * M = 1 is a GEMV (decode); plugins are expected to read w once for all M rows.
 */
typedef struct llmq_matmul_args {
    uint32_t struct_size;
    uint32_t reserved0;
    llmq_tensor x;
    llmq_tensor w;
    llmq_tensor y;
} llmq_matmul_args;

typedef struct llmq_gemm_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    /* Compute one matmul. Thread: the device worker. Owns nothing it is given. */
    llmq_status (*matmul)(void *instance, const llmq_matmul_args *args, llmq_error *error);
} llmq_gemm_ops;

/* ---------------------------------------------------------------- attention --------- */

/*
 * Causal attention over a paged KV cache, for a batch that mixes prefill and decode.
 *
 * The batch holds num_seqs sequences; sequence s owns query rows
 * [query_start[s], query_start[s+1]) of q and out, and those rows sit at positions
 * context_len[s] - (query_start[s+1] - query_start[s]) ... context_len[s] - 1 of the
 * sequence. The KV entries of every position < context_len[s], including the new ones,
 * are already in the cache. Query row at position p attends to cache positions 0..p.
 *
 * Cache layout (one layer): k_cache and v_cache are arrays of num_blocks blocks, each
 *   [block_size][num_kv_heads][head_dim] of kv_dtype (F32 or F16), contiguous.
 * Position p of sequence s lives in block block_tables[s * max_blocks_per_seq + p / block_size],
 * slot p % block_size.
 *
 * Heads: query head h reads KV head h / (num_heads / num_kv_heads) (grouped-query).
 * q, out: [num_tokens][num_heads][head_dim] F32, contiguous. scale multiplies q·k.
 * Every index table is validated by the runtime before the call.
 */
typedef struct llmq_attention_args {
    uint32_t struct_size;
    /* Sliding-window attention (Mistral): when not 0, the query at position p sees only the
     * keys at positions p - sliding_window + 1 .. p. 0: every earlier key (plain causal).
     * This was reserved0 (always 0) before; a plugin that cannot mask a window must refuse a
     * non-zero value with LLMQ_STATUS_UNSUPPORTED. */
    uint32_t sliding_window;
    llmq_tensor q;
    llmq_tensor out;
    const void *k_cache;
    const void *v_cache;
    const int32_t *query_start;  /* [num_seqs + 1] */
    const int32_t *context_len;  /* [num_seqs] */
    const int32_t *block_tables; /* [num_seqs * max_blocks_per_seq] */
    int32_t kv_dtype;            /* llmq_dtype: F32 or F16 */
    int32_t num_seqs;
    int32_t num_tokens;
    int32_t num_heads;
    int32_t num_kv_heads;
    int32_t head_dim;
    int32_t block_size;
    int32_t max_blocks_per_seq;
    int32_t num_blocks; /* blocks in k_cache / v_cache, for bounds */
    float scale;
} llmq_attention_args;

/*
 * Cross-attention (since ABI 1.2; the layers of Llama 3.2 Vision that attend from text to
 * images): non-causal attention of a batch's text query rows over per-sequence sets of image
 * keys and values, which the runtime computed once per image and keeps with the request.
 *
 * Sequence s owns query rows [query_start[s], query_start[s+1]) of q and out, and image K/V
 * rows [kv_start[s], kv_start[s+1]) of k_image and v_image, each row
 * [num_kv_heads][head_dim] of kv_dtype (F32, F16 or BF16), contiguous.
 * The mask: query row t sees the image rows [kv_start[s] + row_begin[t], kv_start[s] +
 * row_end[t]) of its sequence (the images whose tag precedes it, as a run of whole images);
 * row_begin[t] == row_end[t] means the row sees no image, and its output row is all zeros
 * (Hugging Face's "full text row masked out"). 0 <= row_begin[t] <= row_end[t] <=
 * kv_start[s+1] - kv_start[s].
 * q, out: [num_tokens][num_heads][head_dim] F32; scale multiplies q·k; grouped-query heads as
 * in llmq_attention_args. Every index table is validated by the runtime before the call.
 */
typedef struct llmq_cross_attention_args {
    uint32_t struct_size;
    uint32_t reserved0;
    llmq_tensor q;
    llmq_tensor out;
    const void *k_image;
    const void *v_image;
    const int32_t *query_start; /* [num_seqs + 1] */
    const int64_t *kv_start;    /* [num_seqs + 1] */
    const int32_t *row_begin;   /* [num_tokens] */
    const int32_t *row_end;     /* [num_tokens] */
    int32_t kv_dtype;           /* llmq_dtype */
    int32_t num_seqs;
    int32_t num_tokens;
    int32_t num_heads;
    int32_t num_kv_heads;
    int32_t head_dim;
    float scale;
    int32_t reserved1;
} llmq_cross_attention_args;

typedef struct llmq_attention_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    /* Thread: the device worker. Owns nothing it is given. */
    llmq_status (*attention)(void *instance, const llmq_attention_args *args, llmq_error *error);
    /* Since 1.2, optional (NULL, or struct_size too small to hold it: the plugin has none, and
     * a model with cross-attention layers is refused with the plugin's name). Thread: the
     * device worker. Owns nothing it is given. */
    llmq_status (*cross_attention)(void *instance, const llmq_cross_attention_args *args,
                                   llmq_error *error);
} llmq_attention_ops;
/* The size of llmq_attention_ops before 1.2 added cross_attention: what the runtime requires. */
#define LLMQ_ATTENTION_OPS_SIZE_1_0 ((uint32_t)offsetof(llmq_attention_ops, cross_attention))

/* ---------------------------------------------------------------- vision ------------ */

/*
 * Encode one preprocessed image into embeddings in the language model's space.
 *   pixels:     [3][height][width] F32, normalised as the model's preprocessor says (a
 *               tiled encoder: [tiles][3][height][width], rank 4)
 *   embeddings: [num_patches_out][embedding_dim] F32, written
 *   variant:    since 1.2 (reserved0, always 0, before): 0 for a single-image encoder; for a
 *               tiled one (Llama 3.2 Vision) the 1-based aspect-ratio id of the tile grid.
 *
 * Vision contract (since 1.2). load_weights hands over the encoder's tensors by their GGUF
 * names, as the model file holds them (for "clip": v.patch_embd.weight, v.class_embd,
 * v.position_embd.weight, v.pre_ln.{weight,bias}, v.blk.N.{ln1,ln2,attn_q,attn_k,attn_v,
 * attn_out,ffn_down,ffn_up}.{weight,bias}, mm.0.{weight,bias}, mm.2.{weight,bias}), each an
 * llmq_tensor of the file's dtype and shape (shape[0] outermost: a linear weight is [out][in],
 * the patch embedding [dim][3][patch][patch]) in device memory the runtime owns until
 * shutdown. metadata_json is an object the plugin must understand or refuse:
 *   {"architecture": "clip", "image_size": I, "patch_size": P, "embedding_length": D,
 *    "feed_forward_length": F, "head_count": H, "layer_norm_epsilon": e, "layers": L
 *    (encoder layers to run: the feature layer), "activation": "gelu" | "quick_gelu",
 *    "class_token": true, "drop_class_token": true, "projector": "mlp",
 *    "projection_dim": N}
 * For "mllama" (Llama 3.2 Vision's tiled encoder, since 1.2): the tensors v.patch_embd.weight,
 * v.class_embd, v.position_embd.{weight,gate}, v.tile_position_embd.{weight,gate},
 * v.{pre,post}_tile_position_embd.{weight,gate}, v.{pre,post}_ln.{weight,bias},
 * v.blk.N.{attn_norm,ffn_norm}.{weight,bias}, v.blk.N.attn_{q,k,v,output}.weight,
 * v.blk.N.{ffn_up,ffn_down}.{weight,bias} (fc1, fc2), v.global.blk.N.* the same plus attn_gate
 * and ffn_gate, mm.0.{weight,bias}; gates hold tanh(g) (position_embd.gate 1 - tanh(g)). Metadata:
 *   {"architecture": "mllama", the keys above but drop_class_token, "global_layers": G,
 *    "intermediate_layers": [i, ...] (indices into the local encoder's hidden states),
 *    "max_num_tiles": T, "aspect_ratio_rows": R, "tile_grids": [[high, wide], ...] (the grid of
 *    aspect-ratio id k + 1 at index k), "activation": "gelu", "projector": "linear",
 *    "projection_dim": N}
 * with pixels [T][3][I][I] (the tiles past the grid zero), embeddings [T * (P + 1)][N] (P the
 * patches per tile) and variant the aspect-ratio id; runtime/include/llmq/runtime/
 * mllama_vision.hpp and docs/vision.md give the semantics.
 * A plugin refuses an architecture or projector it does not implement with
 * LLMQ_STATUS_UNSUPPORTED naming it. encode may be called many times after one load_weights;
 * load_weights may be called again (the runtime then hands the same or other weights).
 */
typedef struct llmq_vision_args {
    uint32_t struct_size;
    uint32_t variant;
    llmq_tensor pixels;
    llmq_tensor embeddings;
} llmq_vision_args;

typedef struct llmq_named_tensor {
    const char *name;
    llmq_tensor tensor;
} llmq_named_tensor;

typedef struct llmq_vision_ops {
    uint32_t struct_size;
    uint32_t reserved0;
    /* Hand the plugin the vision tower's weights; it keeps the pointers (owned by the
     * runtime) until shutdown. metadata_json: the model's vision hyperparameters. */
    llmq_status (*load_weights)(void *instance, const llmq_named_tensor *tensors, size_t count,
                                const char *metadata_json, llmq_error *error);
    llmq_status (*encode)(void *instance, const llmq_vision_args *args, llmq_error *error);
} llmq_vision_ops;

/* ---------------------------------------------------------------- descriptor -------- */

typedef struct llmq_plugin_descriptor {
    uint32_t struct_size; /* sizeof(llmq_plugin_descriptor) as the plugin was built */
    uint32_t abi_version; /* LLMQ_PLUGIN_ABI_VERSION the plugin was built against */
    int32_t kind;         /* llmq_plugin_kind */
    int32_t backend;      /* llmq_backend */
    const char *name;     /* e.g. "gemm-cpu"; static storage */
    const char *version;  /* the plugin's own version, e.g. "1.0.0"; static storage */

    /* Create an instance for one device. On success *instance is the plugin's state (may be
     * NULL if it has none). The host table outlives the instance. Thread: any, once. */
    llmq_status (*init)(const llmq_host *host, void **instance, llmq_error *error);
    /* Destroy an instance; no call on it is in flight. Thread: any, once. */
    void (*shutdown)(void *instance);

    /* Exactly one of these is non-NULL, the one matching kind. Static storage. */
    const llmq_gemm_ops *gemm;
    const llmq_attention_ops *attention;
    const llmq_vision_ops *vision;
} llmq_plugin_descriptor;

typedef const llmq_plugin_descriptor *(*llmq_plugin_entry_fn)(void);

/* ---------------------------------------------------------------- GPU contract ----- */

/*
 * Since ABI 1.1: what holds for a plugin with backend LLMQ_BACKEND_CUDA, called by a host
 * whose device_type is LLMQ_BACKEND_CUDA. Nothing here changes a layout; it says what the
 * fields above mean on a GPU. (A 1.0 host never hands a CUDA plugin a CUDA device.)
 *
 * Device and stream.
 *   host->device_index is the CUDA ordinal as the process sees it (after CUDA_VISIBLE_DEVICES),
 *   and it is the current device (cudaSetDevice) on every thread that calls the plugin; a
 *   plugin never changes the current device. host->stream is that device's cudaStream_t, never
 *   NULL (the legacy default stream is not used). Several instances (logical devices of one
 *   GPU) may share an ordinal but never a stream.
 *
 * Stream order. matmul, attention and encode only ENQUEUE work on host->stream and return;
 *   their outputs are ready when the stream reaches the point where the call returned, and
 *   their inputs (tensors and index tables) stay valid until then, because the runtime orders
 *   everything on that stream. On the call path a plugin must not synchronize the stream or the
 *   device, allocate or free device memory through CUDA (cudaMalloc/cudaFree synchronize), read
 *   device memory on the host, or enqueue on another stream unless it joins it back to
 *   host->stream with events before returning. A call whose scalar arguments match an earlier
 *   call's may be recorded into a CUDA graph (stream capture on host->stream) and replayed
 *   with the same pointers; what is said above makes every call capturable. A status other
 *   than LLMQ_OK means nothing was enqueued, or, for LLMQ_STATUS_DEVICE_ERROR, that the stream
 *   is in an unknown state.
 *
 * Memory.
 *   host->alloc returns device memory of host->device_index (ordinary cudaMalloc memory from
 *   the runtime's caching allocator, never managed memory), aligned to at least 256 bytes, or
 *   NULL. Plugins call alloc in init and when growing a workspace (never from inside a
 *   capture); host->free may be given memory that work already enqueued on host->stream still
 *   uses: the host reuses it only after the stream has passed that point.
 *   matmul: x.data, w.data and y.data are device pointers of that device.
 *   attention: q.data, out.data, k_cache and v_cache are device pointers; the index tables
 *   query_start, context_len and block_tables are DEVICE memory too, written on host->stream
 *   before the call. The runtime validated its host copy of every table before the upload, so
 *   the plugin never reads them on the host; its kernels still never read outside k_cache and
 *   v_cache for an out-of-range block id (they write NaN into the query rows of that sequence
 *   instead), so a runtime bug cannot become a wild read.
 *   Every tensor's device_type is LLMQ_BACKEND_CUDA and its device_index the host's.
 *
 * Element types on a GPU.
 *   activations (matmul x and y, attention q and out, vision pixels and embeddings): BF16, F16
 *   or F32. The runtime keeps activations in BF16 (F16 for F16 models) and accumulates in F32
 *   inside every kernel; y may be F32 where the consumer wants it (logits).
 *   matmul weights: BF16, F16, F32 or Q8_0; x and w have the same type unless w is Q8_0.
 *   attention kv_dtype: BF16 or F16 (F32 allowed, for tests).
 *   Each pointer is aligned to its element size (Q8_0 rows to 2 bytes); anything wider a fast
 *   path wants, the plugin checks and falls back from.
 */
#define LLMQ_PLUGIN_ABI_GPU_CONTRACT_MINOR 1u /* the minor that introduced the contract above */
#define LLMQ_PLUGIN_CUDA_ALLOC_ALIGNMENT 256u /* host->alloc's alignment on a CUDA device */

/* ---------------------------------------------------------------- frozen layouts ---- */

#if defined(__cplusplus)
#define LLMQ_STATIC_ASSERT(c, m) static_assert(c, m)
#else
#define LLMQ_STATIC_ASSERT(c, m) _Static_assert(c, m)
#endif

#if UINTPTR_MAX == 0xffffffffffffffffu
LLMQ_STATIC_ASSERT(sizeof(llmq_error) == 256, "llmq_error is frozen");
LLMQ_STATIC_ASSERT(sizeof(llmq_tensor) == 88, "llmq_tensor is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_tensor, shape) == 8, "llmq_tensor.shape is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_tensor, strides) == 40, "llmq_tensor.strides is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_tensor, dtype) == 72, "llmq_tensor.dtype is frozen");
LLMQ_STATIC_ASSERT(sizeof(llmq_matmul_args) == 272, "llmq_matmul_args is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_matmul_args, w) == 96, "llmq_matmul_args.w is frozen");
LLMQ_STATIC_ASSERT(sizeof(llmq_attention_args) == 264, "llmq_attention_args is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_attention_args, k_cache) == 184, "llmq_attention_args.k_cache is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_attention_args, kv_dtype) == 224, "llmq_attention_args.kv_dtype is frozen");
LLMQ_STATIC_ASSERT(sizeof(llmq_vision_args) == 184, "llmq_vision_args is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_vision_args, variant) == 4, "llmq_vision_args.variant is frozen");
LLMQ_STATIC_ASSERT(sizeof(llmq_cross_attention_args) == 264, "llmq_cross_attention_args is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_cross_attention_args, k_image) == 184, "llmq_cross_attention_args.k_image is frozen");
LLMQ_STATIC_ASSERT(offsetof(llmq_cross_attention_args, kv_dtype) == 232, "llmq_cross_attention_args.kv_dtype is frozen");
LLMQ_STATIC_ASSERT(sizeof(llmq_attention_ops) == 24, "llmq_attention_ops grows only at the end");
LLMQ_STATIC_ASSERT(offsetof(llmq_attention_ops, cross_attention) == 16, "llmq_attention_ops.cross_attention is frozen");
#endif

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_PLUGIN_H */
