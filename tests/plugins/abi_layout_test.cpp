// llmq_plugin.h compiled as C++ on its own (no other header before it), with its layout
// checked at run time against the same expectations as the C11 test.
#include "llmq_plugin.h"

#include <doctest/doctest.h>

#include <type_traits>

#include "abi_layout_expectations.h"

TEST_SUITE("plugins") {
    TEST_CASE("plugin_abi_layout_is_frozen_in_cpp") {
        int checks = 0;
        CHECK(llmq_abi_layout_mismatches(&checks) == 0);
        CHECK(checks > 90);
    }

    TEST_CASE("plugin_abi_structs_are_plain_data") {
        // Per-call structs cross the boundary by pointer from any language: trivially
        // copyable, standard layout, zero-initialisable.
        CHECK(std::is_trivially_copyable_v<llmq_tensor>);
        CHECK(std::is_standard_layout_v<llmq_tensor>);
        CHECK(std::is_trivially_copyable_v<llmq_matmul_args>);
        CHECK(std::is_standard_layout_v<llmq_attention_args>);
        CHECK(std::is_standard_layout_v<llmq_plugin_descriptor>);
        CHECK(std::is_standard_layout_v<llmq_host>);
    }

    TEST_CASE("plugin_abi_version_macros_split_major_and_minor") {
        CHECK(LLMQ_PLUGIN_ABI_VERSION_MAJOR(LLMQ_PLUGIN_ABI_VERSION) == LLMQ_PLUGIN_ABI_MAJOR);
        CHECK(LLMQ_PLUGIN_ABI_VERSION_MINOR(LLMQ_PLUGIN_ABI_VERSION) == LLMQ_PLUGIN_ABI_MINOR);
        CHECK(LLMQ_PLUGIN_ABI_VERSION_MAJOR(0x00030007u) == 3u);
        CHECK(LLMQ_PLUGIN_ABI_VERSION_MINOR(0x00030007u) == 7u);
    }
}
