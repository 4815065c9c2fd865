// Unknown sections and keys are errors with their line and, when one is close, a suggestion.
#include <doctest/doctest.h>

#include "config_test_support.hpp"

TEST_CASE("an unknown key names its line and the closest key") {
    CHECK(config_error("[scheduler]\nmax_tokens_per_step = 1\n\nmax_running_seqs = 3\n") ==
          "llmq.toml:4: [scheduler] max_running_seqs: unknown key (did you mean "
          "max_running_sequences?) (llmqd --print-config lists every key)");
    CHECK(config_error("[ipc]\ninstnace = \"x\"\n") ==
          "llmq.toml:2: [ipc] instnace: unknown key (did you mean instance?) (llmqd "
          "--print-config lists every key)");
    CHECK(config_error("[log]\ncompletely_unrelated = 1\n") ==
          "llmq.toml:2: [log] completely_unrelated: unknown key (llmqd --print-config lists every "
          "key)");
}

TEST_CASE("a key valid in another section is unknown in this one") {
    CHECK(config_error("[model]\nblock_size = 16\n") ==
          "llmq.toml:2: [model] block_size: unknown key (llmqd --print-config lists every key)");
}

TEST_CASE("an unknown section names its line and the closest section") {
    CHECK(config_error("[model]\npath = \"\"\n\n[modle]\npath = \"x\"\n") ==
          "llmq.toml:4: [modle]: unknown section (did you mean [model]?); the sections are "
          "[model], [devices], [cuda], [parallel], [kv_cache], [scheduler], [ipc], [plugins], [log], "
          "[metrics]");
    CHECK(config_error("toplevel = 1\n") ==
          "llmq.toml:1: toplevel: unknown section; the sections are [model], [devices], [cuda], "
          "[parallel], [kv_cache], [scheduler], [ipc], [plugins], [log], [metrics]");
}

TEST_CASE("a section that is not a table is refused") {
    CHECK(config_error("model = \"m.gguf\"\n") ==
          "llmq.toml:1: model = \"m.gguf\": must be a table, written [model]");
    CHECK(config_error("[[log]]\nlevel = \"info\"\n") ==
          "llmq.toml:1: log = an array of tables: must be a table, written [log]");
}

TEST_CASE("a table inside a section is an unknown key, except plugin tables") {
    CHECK(config_error("[scheduler.extra]\nx = 1\n") ==
          "llmq.toml:1: [scheduler] extra: unknown key (llmqd --print-config lists every key)");
    CHECK(config_error("[plugins.gemm-cpu]\nthreads = 2\n").empty());
    CHECK(config_error("[plugins]\nunknown = 1\n") ==
          "llmq.toml:2: [plugins] unknown: unknown key (llmqd --print-config lists every key)");
    CHECK(config_error("[plugins.\"bad name\"]\nx = 1\n") ==
          "llmq.toml:1: [plugins.bad name]: a plugin table needs a plugin name of 1 to 64 "
          "characters from A-Z a-z 0-9 _ . -");
    // A known key given as a table is a bad value, not a plugin table.
    CHECK(config_error("[plugins.gemm]\nx = 1\n") ==
          "llmq.toml:1: [plugins] gemm = a table: must be a string: a plugin name or a path to its "
          ".so");
}

TEST_CASE("TOML syntax errors name the file, line and column") {
    CHECK(config_error("[model]\npath = \n") ==
          "llmq.toml:2:8: not valid TOML: Error while parsing key-value pair: expected value, "
          "saw '\\n'; fix the syntax at that place");
    std::string dup = config_error("[model]\npath = \"a\"\npath = \"b\"\n");
    CHECK(dup.rfind("llmq.toml:3:", 0) == 0);
    CHECK(dup.find("not valid TOML") != std::string::npos);
}
