/* llmq_plugin.h compiled as C11 on its own (no other header before it), with its layout
 * checked at run time. Exit status: 0 when every size, offset and constant matches. */
#include "llmq_plugin.h"

#include "abi_layout_expectations.h"

int main(void) {
    int checks = 0;
    const int mismatches = llmq_abi_layout_mismatches(&checks);
    printf("%d layout checks, %d mismatches (C11)\n", checks, mismatches);
    return mismatches == 0 && checks > 0 ? 0 : 1;
}
