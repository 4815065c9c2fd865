/* The client ABI and the plugin ABI in one translation unit: a program that is both a client
 * and a plugin host (or a plugin that talks to llmqd) must compile, as C11 and as C++. Each
 * header's own status and error types stay distinct. */
#include "llmq/llmq_client.h"
#include "llmq_plugin.h"

#ifdef __cplusplus
#include <cstdio>
#else
#include <stdio.h>
#endif

int main(void) {
    llmq_status plugin_status = LLMQ_OK;
    llmq_client_status client_status = LLMQ_CLIENT_OK;
    llmq_error plugin_error;
    plugin_error.message[0] = '\0';
    llmq_client_error* client_error = NULL;
    if (plugin_status != 0 || client_status != 0 || plugin_error.message[0] != '\0' || client_error != NULL) return 1;
    if (sizeof(plugin_error) != LLMQ_ERROR_MESSAGE_MAX) return 1;
    printf("%s\n", llmq_client_status_name(LLMQ_CLIENT_ERR_BUSY));
    return 0;
}
