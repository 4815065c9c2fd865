// [plugins] gemm / attention / vision name the CPU devices' plugins, [plugins.cuda] the CUDA
// devices' ones; the two never collide, and PluginChoice hands each device its backend's.
#include <doctest/doctest.h>

#include "config_test_support.hpp"
#include "llmq/runtime/plugin_host.hpp"

TEST_CASE("plugins_cuda_names_the_cuda_plugins_beside_the_cpu_ones") {
    auto c = llmq::parse_config("[plugins]\ngemm = \"gemm-cpu\"\n\n[plugins.cuda]\ngemm = \"gemm-cuda-dev\"\n"
                                "vision = \"vision-cuda\"\n\n[plugins.gemm-cuda-dev]\ntile = 4\n",
                                "llmq.toml");
    REQUIRE_MESSAGE(c.ok(), c.status().message());
    CHECK(c->plugins.gemm == "gemm-cpu");
    CHECK(c->plugins.cuda_gemm == "gemm-cuda-dev");
    CHECK(c->plugins.cuda_attention == "attention-cuda");
    CHECK(c->plugins.cuda_vision == "vision-cuda");
    CHECK(c->plugins.tables.count("cuda") == 0);
    CHECK(c->plugins.tables.count("gemm-cuda-dev") == 1);

    // Printed as a table when it differs from the defaults, and read back the same.
    const std::string printed = llmq::print_config(*c);
    CHECK(printed.find("[plugins.cuda]\n# GEMM plugin of CUDA devices") != std::string::npos);
    auto back = llmq::parse_config(printed, "printed.toml");
    REQUIRE_MESSAGE(back.ok(), (back.status().message() + "\n" + printed));
    CHECK(*back == *c);
}

TEST_CASE("print_config documents the cuda plugins with their defaults") {
    const std::string printed = llmq::print_config(llmq::Config{});
    CHECK(printed.find("# [plugins.cuda] names the plugins of CUDA devices") != std::string::npos);
    CHECK(printed.find("#   gemm = \"gemm-cuda\"") != std::string::npos);
    CHECK(printed.find("\n[plugins.cuda]") == std::string::npos);
}

TEST_CASE("plugins_cuda_refuses_unknown_keys_and_bad_values") {
    CHECK(config_error("[plugins.cuda]\ngem = \"x\"\n") ==
          "llmq.toml:2: [plugins.cuda] gem: unknown key (did you mean gemm?) (llmqd --print-config lists "
          "every key)");
    CHECK(config_error("[plugins.cuda]\nattention = \"\"\n") ==
          "llmq.toml:2: [plugins.cuda] attention = \"\": must be a plugin name or a path to its .so");
    CHECK(config_error("[plugins.cpu]\ngemm = \"gemm-cpu\"\n") ==
          "llmq.toml:1: [plugins.cpu]: the plugins of CPU devices are [plugins] gemm, attention and "
          "vision; [plugins.cuda] names those of CUDA devices");
    llmq::Config code;
    code.plugins.cuda_gemm = "";
    CHECK(llmq::validate_config(code).message() ==
          "invalid configuration: [plugins.cuda] gemm = \"\": must be a plugin name or a path to its .so");
}

TEST_CASE("plugin_choice_gives_each_backend_its_own_plugin") {
    llmq::PluginChoice choice;
    choice.gemm = "gemm-a";
    choice.cuda_gemm = "gemm-b";
    choice.cuda_vision = "vision-b";
    CHECK(choice.name(LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CPU) == "gemm-a");
    CHECK(choice.name(LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CUDA) == "gemm-b");
    CHECK(choice.name(LLMQ_PLUGIN_KIND_ATTENTION, LLMQ_BACKEND_CPU) == "attention-cpu");
    CHECK(choice.name(LLMQ_PLUGIN_KIND_ATTENTION, LLMQ_BACKEND_CUDA) == "attention-cuda");
    CHECK(choice.name(LLMQ_PLUGIN_KIND_VISION, LLMQ_BACKEND_CPU).empty());
    CHECK(choice.name(LLMQ_PLUGIN_KIND_VISION, LLMQ_BACKEND_CUDA) == "vision-b");
    CHECK(choice.name(LLMQ_PLUGIN_KIND_GEMM, 7).empty());
    CHECK(choice.name(9, LLMQ_BACKEND_CPU).empty());
}
