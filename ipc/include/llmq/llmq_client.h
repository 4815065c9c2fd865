/* llmq_client.h: the C ABI of libllmq-client, the client library of llmqd.
 *
 * A client connects to an llmqd instance over its UNIX socket, gets a private shared-memory
 * region, submits generate requests into it and reads the daemon's events (tokens, then a final
 * event) from it. Link with `pkg-config --libs llmq-client`.
 *
 * Versioning: LLMQ_CLIENT_API_VERSION_MAJOR changes break the ABI; MINOR ones only add (new
 * functions, new members at the end of the structs below, whose first member is struct_size).
 * A caller sets struct_size (the *_INIT macros do), and the library reads or writes only that
 * many bytes, so an old caller works with a newer library.
 *
 * Errors: every fallible function returns NULL on success, or an llmq_client_error the caller owns and
 * frees with llmq_client_error_delete(). An error has a code (llmq_client_status) and a message that says what
 * failed, why and what to do.
 *
 * Threads: an llmq_client is used by one thread at a time (any thread, not concurrently).
 * Different llmq_client handles are independent. The llmq_client_error and string functions may be
 * called from any thread.
 *
 * Names: everything here starts with llmq_client / LLMQ_CLIENT_ or names an event, request or
 * finish value (LLMQ_EVENT_*, LLMQ_REQUEST_*, LLMQ_FINISH_*, llmq_event, ...), so this header
 * and the plugin ABI (llmq_plugin.h, whose llmq_status and llmq_error are the plugins') can be
 * included together. API 2 renamed llmq_status, LLMQ_OK, LLMQ_ERR_* and llmq_error* of API 1.
 *
 * Liveness: every wait takes a timeout in milliseconds; when llmqd dies or restarts, waiting
 * calls return LLMQ_CLIENT_ERR_DISCONNECTED within about 100 ms.
 */
#ifndef LLMQ_CLIENT_H
#define LLMQ_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LLMQ_CLIENT_API_VERSION_MAJOR 2
#define LLMQ_CLIENT_API_VERSION_MINOR 2

typedef enum llmq_client_status {
    LLMQ_CLIENT_OK = 0,
    LLMQ_CLIENT_ERR_INVALID_ARGUMENT = 1, /* the caller's input is wrong */
    LLMQ_CLIENT_ERR_NOT_FOUND = 2,        /* no llmqd serves that instance */
    LLMQ_CLIENT_ERR_PERMISSION = 3,       /* llmqd or the directory refused this user */
    LLMQ_CLIENT_ERR_BUSY = 4,             /* full right now (ring, arena, daemon); retry later */
    LLMQ_CLIENT_ERR_TIMEOUT = 5,          /* nothing arrived within the timeout */
    LLMQ_CLIENT_ERR_DISCONNECTED = 6,     /* llmqd closed the connection (stopped, restarted, died) */
    LLMQ_CLIENT_ERR_PROTOCOL = 7,         /* llmqd and this library disagree (versions, bad data) */
    LLMQ_CLIENT_ERR_IO = 8,               /* the operating system refused */
    LLMQ_CLIENT_ERR_INTERNAL = 9          /* a bug in llmq */
} llmq_client_status;

/* Opaque handles. */
typedef struct llmq_client llmq_client;
typedef struct llmq_client_error llmq_client_error;

/* ---- versions and errors ----------------------------------------------------------------- */

/* The library's API version (compare MAJOR with the header's). Any thread. */
void llmq_client_api_version(uint32_t* major, uint32_t* minor);

/* The error's code; LLMQ_CLIENT_OK for NULL. Any thread. */
llmq_client_status llmq_client_error_code(const llmq_client_error* error);
/* The error's message, owned by the error, valid until llmq_client_error_delete(). "" for NULL. */
const char* llmq_client_error_message(const llmq_client_error* error);
/* Frees an error; NULL is allowed. */
void llmq_client_error_delete(llmq_client_error* error);
/* "LLMQ_CLIENT_ERR_BUSY", ...: a static string. */
const char* llmq_client_status_name(llmq_client_status status);
/* Frees a string the library returned (llmq_client_control's result); NULL is allowed. */
void llmq_client_string_free(char* text);

/* ---- connecting --------------------------------------------------------------------------- */

typedef struct llmq_connect_options {
    uint32_t struct_size;    /* sizeof(llmq_connect_options) */
    uint32_t api_major;      /* LLMQ_CLIENT_API_VERSION_MAJOR */
    const char* instance;    /* NULL: "default" */
    const char* dir;         /* NULL: $LLMQ_IPC_DIR, else $XDG_RUNTIME_DIR/llmq, else /tmp/llmq-<uid> */
    const char* client_name; /* NULL: "llmq-client"; shown in llmqd's logs */
    uint32_t timeout_ms;     /* connection and handshake; 0: 5000 */
    uint32_t spin_us;        /* busy-wait before sleeping when waiting for events; 0: 50 */
} llmq_connect_options;

#define LLMQ_CONNECT_OPTIONS_INIT \
    { sizeof(llmq_connect_options), LLMQ_CLIENT_API_VERSION_MAJOR, NULL, NULL, NULL, 0, 0 }

/* Connects to an instance. On success *out is a new client the caller owns (llmq_client_close).
 * options may be NULL (all defaults). */
llmq_client_error* llmq_client_connect(const llmq_connect_options* options, llmq_client** out);

/* Closes the connection (llmqd cancels the client's requests) and frees the client. NULL is
 * allowed. Strings and events the client handed out become invalid. */
void llmq_client_close(llmq_client* client);

/* ---- generating --------------------------------------------------------------------------- */

/* Request flags. */
#define LLMQ_REQUEST_ADD_BOS 0x1u    /* prepend BOS to a text prompt */
#define LLMQ_REQUEST_IGNORE_EOS 0x2u /* keep going after end-of-sequence */
#define LLMQ_REQUEST_LOGPROBS 0x4u   /* report each token's log-probability */
#define LLMQ_REQUEST_SEED_SET 0x8u   /* use `seed`; otherwise llmqd picks one */

/* Since API 2.2: in prompt_tokens of a request with images, the place of one image. */
#define LLMQ_IMAGE_TOKEN (-1)

typedef struct llmq_generate_request {
    uint32_t struct_size;          /* sizeof(llmq_generate_request) */
    uint32_t flags;                /* LLMQ_REQUEST_* */
    const char* prompt;            /* UTF-8 text, prompt_length bytes (need not end in NUL) */
    size_t prompt_length;
    const int32_t* prompt_tokens;  /* when not NULL: token ids instead of text */
    size_t prompt_token_count;
    const char* const* stop;       /* stop_count NUL-terminated UTF-8 strings (at most 8) */
    size_t stop_count;
    float temperature;             /* 0 = greedy */
    float top_p;
    float min_p;
    float repetition_penalty;
    float presence_penalty;
    float frequency_penalty;
    int32_t top_k;                 /* 0 = off */
    int32_t penalty_last_n;        /* -1 = whole context */
    int32_t max_tokens;            /* 0 = llmqd's limit */
    int32_t priority;              /* -1000..1000, higher first */
    uint64_t seed;                 /* with LLMQ_REQUEST_SEED_SET */
    /* Since API 2.1 (a struct_size of 104, API 2.0's, leaves them NULL / 0): encoded images
     * (PNG or JPEG file bytes; llmqd decodes and checks them) for a model with a vision
     * projector, in prompt order: each at an "<image>" of the text prompt, else all before it.
     * Since API 2.2 also with prompt_tokens: each image at one LLMQ_IMAGE_TOKEN among the ids
     * (as the "chat_template" command returns them for image parts). llmqd's [ipc] max_images
     * and max_image_bytes (all images together) bound them; a bad image is an LLMQ_EVENT_ERROR event naming it ("images[0]: image: ..."). */
    const uint8_t* const* images;  /* image_count pointers */
    const size_t* image_sizes;     /* image_count byte counts */
    size_t image_count;
} llmq_generate_request;

/* Defaults: add BOS, temperature 0.8, top_k 40, top_p 0.95, min_p 0.05, no penalties (last 64). */
#define LLMQ_GENERATE_REQUEST_INIT                                                           \
    { sizeof(llmq_generate_request), LLMQ_REQUEST_ADD_BOS, NULL, 0, NULL, 0, NULL, 0, 0.8f, \
      0.95f, 0.05f, 1.0f, 0.0f, 0.0f, 40, 64, 0, 0, 0, NULL, NULL, 0 }

/* Submits a request; *request_id receives its id (events carry it). The library copies
 * everything it needs before returning. LLMQ_CLIENT_ERR_BUSY: the client's ring or arena is full;
 * read events and retry. A bad field is reported later as an LLMQ_EVENT_ERROR event. */
llmq_client_error* llmq_client_submit(llmq_client* client, const llmq_generate_request* request, uint64_t* request_id);

/* Asks llmqd to cancel a request; its final event still arrives (finish reason CANCELLED). */
llmq_client_error* llmq_client_cancel(llmq_client* client, uint64_t request_id);

/* Event kinds, finish reasons and event error codes (the values of the region protocol). */
#define LLMQ_EVENT_TOKEN 1u
#define LLMQ_EVENT_FINAL 2u
#define LLMQ_EVENT_ERROR 3u
#define LLMQ_EVENT_PONG 4u
#define LLMQ_FINISH_EOS 1u
#define LLMQ_FINISH_LENGTH 2u
#define LLMQ_FINISH_STOP_STRING 3u
#define LLMQ_FINISH_CANCELLED 4u
#define LLMQ_EVENT_ERROR_INVALID_REQUEST 1u
#define LLMQ_EVENT_ERROR_BUSY 2u
#define LLMQ_EVENT_ERROR_SHUTTING_DOWN 3u
#define LLMQ_EVENT_ERROR_STALLED 4u
#define LLMQ_EVENT_ERROR_INTERNAL 5u

typedef struct llmq_event {
    uint32_t struct_size;      /* set by the caller: sizeof(llmq_event) */
    uint32_t kind;             /* LLMQ_EVENT_* */
    uint64_t request_id;
    int32_t token_id;          /* TOKEN */
    float logprob;             /* TOKEN, when has_logprob */
    uint32_t has_logprob;
    uint32_t code;             /* FINAL: LLMQ_FINISH_*; ERROR: LLMQ_EVENT_ERROR_* */
    const char* text;          /* TOKEN: piece (may split a UTF-8 sequence); ERROR: message.
                                  NUL-terminated, text_length bytes before the NUL; owned by the
                                  client, valid until its next call */
    size_t text_length;
    uint32_t prompt_tokens;    /* FINAL */
    uint32_t generated_tokens; /* FINAL */
    uint64_t queued_us;        /* FINAL */
    uint64_t prefill_us;       /* FINAL */
    uint64_t decode_us;        /* FINAL */
} llmq_event;

#define LLMQ_EVENT_INIT { sizeof(llmq_event), 0, 0, 0, 0.0f, 0, 0, NULL, 0, 0, 0, 0, 0, 0 }

/* Waits up to timeout_ms for the next event of any request and fills *event.
 * LLMQ_CLIENT_ERR_TIMEOUT: nothing arrived; LLMQ_CLIENT_ERR_DISCONNECTED: llmqd is gone. */
llmq_client_error* llmq_client_next_event(llmq_client* client, uint32_t timeout_ms, llmq_event* event);

/* A ping through the region; *round_trip_ns receives the round trip (may be NULL). */
llmq_client_error* llmq_client_ping(llmq_client* client, uint32_t timeout_ms, uint64_t* round_trip_ns);

/* A control command with args_json (a JSON object, or NULL for {}). *result_json receives the
 * reply's result as JSON text, which the caller frees with llmq_client_string_free (may be NULL
 * to discard it). A command the daemon refuses returns an error with the daemon's code and
 * message (LLMQ_CLIENT_ERR_INVALID_ARGUMENT for bad args, LLMQ_CLIENT_ERR_NOT_FOUND for an
 * unknown command or job).
 *
 * The commands of llmqd (args → result; unknown args keys are ignored):
 *
 * | command        | args                                 | result                                   |
 * | ping           | {}                                   | {"pong": true}                           |
 * | status         | {}                                   | {"server", "instance", "pid", "uptime_s", |
 * |                |                                      |  "draining", "model": {name, path,        |
 * |                |                                      |  architecture, vocab, layers, dim,       |
 * |                |                                      |  context_length, load_seconds},          |
 * |                |                                      |  "devices": [{name, threads,             |
 * |                |                                      |  memory_capacity_bytes,                  |
 * |                |                                      |  memory_used_bytes}], "plan",            |
 * |                |                                      |  "plugins": [{kind, backend, name,       |
 * |                |                                      |  version, path, calls, errors}],         |
 * |                |                                      |  "clients", "client_list": [{id, name,   |
 * |                |                                      |  pid, uid, requests}], "requests":       |
 * |                |                                      |  {running, queued, finished},            |
 * |                |                                      |  "kv_blocks": {used, free, total,        |
 * |                |                                      |  block_size}, "tokens_per_s",            |
 * |                |                                      |  "tokens_generated", "preemptions",      |
 * |                |                                      |  "steps"}                                |
 * | metrics        | {}                                   | {"requests": {eos, length, stop_string,  |
 * |                |                                      |  cancelled, error, rejected} (counts),   |
 * |                |                                      |  "prompt_tokens", "generated_tokens",    |
 * |                |                                      |  "time_to_first_token_seconds",          |
 * |                |                                      |  "time_per_output_token_seconds":        |
 * |                |                                      |  {"buckets": [[le, cumulative count]],   |
 * |                |                                      |  "sum", "count"}, "queued", "running",   |
 * |                |                                      |  "kv_blocks", "preemptions",             |
 * |                |                                      |  "plugin_swaps", and "model", "devices", |
 * |                |                                      |  "plugins", "clients", "uptime_s" as in  |
 * |                |                                      |  status}                                 |
 * | tokenize       | {"text": string, "add_bos": bool     | {"tokens": [int]}                        |
 * |                |  (true), "special": bool (false:     |                                          |
 * |                |  control-token text is plain text)}  |                                          |
 * | chat_template  | {} or {"messages": [{"role",         | {"origin": where the Jinja template came |
 * |                |  "content"}], "add_generation_prompt"|  from}; with messages also "text" (the   |
 * |                |  : bool (true), "template": Jinja    |  rendered prompt) and "tokens" (its ids, |
 * |                |  source to use instead of the        |  BOS and the template's control tokens   |
 * |                |  model's (optional)}                 |  included; control-token text inside a   |
 * |                |                                      |  message stays text): submit them as     |
 * |                |                                      |  prompt_tokens. A template that cannot   |
 * |                |                                      |  render is an error naming its line      |
 * |                | A "content" may also be an array of  | Each image part is one LLMQ_IMAGE_TOKEN  |
 * |                |  parts {"type": "text", "text"} and  |  in "tokens" (send the images in that    |
 * |                |  {"type": "image"} (vision models)   |  order); "images": their number          |
 * | drain          | {}                                   | {"draining": true}: no new requests,     |
 * |                |                                      |  running ones finish, then llmqd exits 0 |
 * | shutdown       | {}                                   | {"stopping": true} (drains, as drain)    |
 * | plugins.list   | {}                                   | {"plugins": [{kind, backend, name,       |
 * |                |                                      |  version, path, loaded_since,            |
 * |                |                                      |  loaded_since_ms, calls, errors,         |
 * |                |                                      |  devices}], "probe", "watch",            |
 * |                |                                      |  "watched_dirs", "recent": [reports]}    |
 * | plugins.swap   | {"kind": "gemm"|"attention"|"vision",| {"job": id}: probe, load, canary,        |
 * |                |  "path": plugin name or .so path}    |  publish in the background               |
 * | plugins.reload | {"kind": KIND} or {} (every kind)    | {"job": id}                              |
 * | plugins.job    | {"job": id}                          | {"job", "state": "queued"|"running"|     |
 * |                |                                      |  "done", "reason", "reports": [...]}     |
 */
llmq_client_error* llmq_client_control(llmq_client* client, const char* command, const char* args_json,
                                uint32_t timeout_ms, char** result_json);

#ifdef __cplusplus
}
#endif

#endif /* LLMQ_CLIENT_H */
