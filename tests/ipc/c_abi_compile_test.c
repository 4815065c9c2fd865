/* llmq_client.h stands alone as C11: this file includes nothing else of llmq, pins the ABI
 * structs' sizes and offsets (x86-64 / LP64), and links against the shared libllmq-client. */
#include "llmq/llmq_client.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

_Static_assert(sizeof(llmq_connect_options) == 40, "llmq_connect_options changed: ABI break");
_Static_assert(offsetof(llmq_connect_options, timeout_ms) == 32, "llmq_connect_options layout");
/* 104 bytes in API 2.0; 2.1 appended the image fields (readers take a 104-byte struct_size). */
_Static_assert(sizeof(llmq_generate_request) == 128, "llmq_generate_request changed: ABI break");
_Static_assert(offsetof(llmq_generate_request, images) == 104, "llmq_generate_request grows only at the end");
_Static_assert(offsetof(llmq_generate_request, temperature) == 56, "llmq_generate_request layout");
_Static_assert(offsetof(llmq_generate_request, top_k) == 80, "llmq_generate_request layout");
_Static_assert(offsetof(llmq_generate_request, seed) == 96, "llmq_generate_request layout");
_Static_assert(sizeof(llmq_event) == 80, "llmq_event changed: ABI break");
_Static_assert(offsetof(llmq_event, text) == 32, "llmq_event layout");
_Static_assert(offsetof(llmq_event, decode_us) == 72, "llmq_event layout");

int main(void) {
    uint32_t major = 0, minor = 99;
    llmq_client_api_version(&major, &minor);
    if (major != LLMQ_CLIENT_API_VERSION_MAJOR || minor != LLMQ_CLIENT_API_VERSION_MINOR) {
        fprintf(stderr, "api version %u.%u, header says %u.%u\n", major, minor, LLMQ_CLIENT_API_VERSION_MAJOR,
                LLMQ_CLIENT_API_VERSION_MINOR);
        return 1;
    }

    llmq_connect_options options = LLMQ_CONNECT_OPTIONS_INIT;
    options.dir = "/nonexistent-llmq-ipc-dir";
    options.instance = "nobody";
    llmq_client* client = NULL;
    llmq_client_error* error = llmq_client_connect(&options, &client);
    if (error == NULL || client != NULL) {
        fprintf(stderr, "connecting to nothing succeeded\n");
        return 1;
    }
    if (llmq_client_error_code(error) != LLMQ_CLIENT_ERR_NOT_FOUND || strstr(llmq_client_error_message(error), "llmq-nobody.sock") == NULL) {
        fprintf(stderr, "unexpected error %s: %s\n", llmq_client_status_name(llmq_client_error_code(error)), llmq_client_error_message(error));
        llmq_client_error_delete(error);
        return 1;
    }
    llmq_client_error_delete(error);

    /* NULL handles and outputs are errors, never crashes. */
    error = llmq_client_submit(NULL, NULL, NULL);
    if (llmq_client_error_code(error) != LLMQ_CLIENT_ERR_INVALID_ARGUMENT) return 1;
    llmq_client_error_delete(error);
    if (llmq_client_error_code(NULL) != LLMQ_CLIENT_OK || strcmp(llmq_client_error_message(NULL), "") != 0) return 1;
    llmq_client_close(NULL);
    llmq_client_error_delete(NULL);
    llmq_client_string_free(NULL);
    return 0;
}
