// A file with every key read into the struct; print_config's output reads back to the same
// Config; load_config_file names the path.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>
#include <unistd.h>

#include <toml++/toml.h>

#include "config_test_support.hpp"
#include "llmq/runtime/config.hpp"

using namespace std::chrono_literals;
using llmq::Config;

namespace {

// Every key with a value other than its default.
constexpr std::string_view kEveryKey = R"(
[model]
path = "/models/llama.gguf"
context_length = 8192
name = "llama-test"
chat_template = "/models/llama.jinja"

[devices]
backend = "cuda"
cpu = 4
cpu_threads_per_device = 2
cpu_memory_limit = "6GiB"
memory_fraction = 0.85
cuda = [1, 0]
cuda_devices_per_gpu = 4
cuda_memory_limit = "20GiB"
cuda_communicator = "device-memory"

[cuda]
graphs = true

[parallel]
tensor = 2
pipeline = "auto"

[kv_cache]
dtype = "f32"
block_size = 32
memory = "1.5GB"

[scheduler]
max_tokens_per_step = 1024
max_running_sequences = 64
max_queued_requests = 0
max_new_tokens = 100
prefill_chunk = 1000

[ipc]
dir = "/run/llmq"
instance = "prod.v2"
group = "llmq"
allowed_users = ["alice", 1001]
region_size = 33554432
request_ring_slots = 128
response_ring_slots = 4096
max_clients = 17
max_handshaking = 9
max_clients_per_uid = 11
max_clients_per_pid = 3
max_requests_per_client = 5
max_running_per_client = 2
max_pending_events = 77
max_prompt_bytes = "2MiB"
stall_timeout = "1.5s"
drain_timeout = "2m"
control_max_line = "1KiB"
control_max_depth = 8

[plugins]
dir = "/opt/llmq/plugins"
gemm = "gemm-avx512"
attention = "/tmp/attention-dev.so"
vision = "vision-cpu"
watch = true
probe = false
max_file_size = "64MiB"
swap_queue = 4
tolerance_f32 = 2e-5
tolerance_f16 = 0.005
tolerance_bf16 = 0.03
tolerance_q8_0 = 0.1

[plugins.gemm-avx512]
tile = 64
names = ["a", "b"]
nested = { deep = true }

[plugins.attention-dev.sub]
x = 1.5

[log]
level = "debug"
file = "/var/log/llmq.log"
json = true

[metrics]
listen = "127.0.0.1:9464"
)";

Config every_key_config() {
    auto parsed = llmq::parse_config(kEveryKey, "every.toml");
    REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
    return *parsed;
}

}  // namespace

TEST_CASE("a default Config holds the documented defaults and equals an empty file") {
    Config c;
    CHECK(c.model.path.empty());
    CHECK(c.model.context_length == 0);
    CHECK(c.devices.cpu == 1);
    CHECK(c.devices.cpu_threads_per_device == 0);
    CHECK(c.devices.cpu_memory_limit == 0);
    CHECK(c.devices.memory_fraction == 0.9);
    CHECK(c.devices.cuda.mode == llmq::CudaSelection::Mode::automatic);
    CHECK(c.devices.backend == llmq::DeviceBackend::automatic);
    CHECK_FALSE(c.cuda.graphs);
    CHECK(c.devices.cuda_devices_per_gpu == 1);
    CHECK(c.devices.cuda_memory_limit == 0);
    CHECK(c.devices.cuda_communicator == llmq::CudaCommunicator::automatic);
    CHECK_FALSE(c.parallel.tensor.has_value());
    CHECK_FALSE(c.parallel.pipeline.has_value());
    CHECK(c.kv_cache.dtype == llmq::KvCacheDtype::f16);
    CHECK(c.kv_cache.block_size == 16);
    CHECK(c.kv_cache.memory == 0);
    CHECK(c.scheduler.max_tokens_per_step == 512);
    CHECK(c.scheduler.max_running_sequences == 32);
    CHECK(c.scheduler.max_queued_requests == 256);
    CHECK(c.scheduler.max_new_tokens == 4096);
    CHECK(c.scheduler.prefill_chunk == 256);
    CHECK(c.ipc.dir.empty());
    CHECK(c.ipc.instance == "default");
    CHECK(c.ipc.region_size == 16u << 20);
    CHECK(c.ipc.request_ring_slots == 64);
    CHECK(c.ipc.response_ring_slots == 1024);
    CHECK(c.ipc.max_clients == 256);
    CHECK(c.ipc.max_handshaking == 64);
    CHECK(c.ipc.max_clients_per_uid == 128);
    CHECK(c.ipc.max_clients_per_pid == 64);
    CHECK(c.ipc.max_requests_per_client == 64);
    CHECK(c.ipc.max_running_per_client == 16);
    CHECK(c.ipc.max_pending_events == 256);
    CHECK(c.ipc.max_prompt_bytes == 1u << 20);
    CHECK(c.ipc.stall_timeout == 5s);
    CHECK(c.ipc.drain_timeout == 30s);
    CHECK(c.ipc.control_max_line == 64u << 10);
    CHECK(c.ipc.control_max_depth == 32);
    CHECK(c.plugins.gemm == "gemm-cpu");
    CHECK(c.plugins.attention == "attention-cpu");
    CHECK(c.plugins.vision.empty());
    CHECK_FALSE(c.plugins.watch);
    CHECK(c.plugins.probe);
    CHECK(c.plugins.tolerance_f32 == 1e-4);
    CHECK(c.plugins.tolerance_f16 == 1e-2);
    CHECK(c.plugins.tolerance_bf16 == 2e-2);
    CHECK(c.plugins.tolerance_q8_0 == 2e-2);
    CHECK(c.log.level == llmq::log::level::info);
    CHECK(c.log.file.empty());
    CHECK_FALSE(c.log.json);
    CHECK(c.metrics.listen.empty());

    auto empty = llmq::parse_config("", "empty.toml");
    REQUIRE(empty.ok());
    CHECK(*empty == Config{});
    CHECK(llmq::validate_config(Config{}).ok());
}

TEST_CASE("every key is read into its field") {
    Config c = every_key_config();
    CHECK(c.model.path == "/models/llama.gguf");
    CHECK(c.model.context_length == 8192);
    CHECK(c.model.name == "llama-test");
    CHECK(c.model.chat_template == "/models/llama.jinja");
    CHECK(c.devices.cpu == 4);
    CHECK(c.devices.cpu_threads_per_device == 2);
    CHECK(c.devices.cpu_memory_limit == 6ull << 30);
    CHECK(c.devices.memory_fraction == 0.85);
    CHECK(c.devices.cuda.mode == llmq::CudaSelection::Mode::list);
    CHECK(c.devices.cuda.ordinals == std::vector<int>{1, 0});
    CHECK(c.devices.backend == llmq::DeviceBackend::cuda);
    CHECK(c.devices.cuda_devices_per_gpu == 4);
    CHECK(c.devices.cuda_memory_limit == 20ull << 30);
    CHECK(c.devices.cuda_communicator == llmq::CudaCommunicator::device_memory);
    CHECK(c.cuda.graphs);
    CHECK(c.parallel.tensor == 2);
    CHECK_FALSE(c.parallel.pipeline.has_value());
    CHECK(c.kv_cache.dtype == llmq::KvCacheDtype::f32);
    CHECK(c.kv_cache.block_size == 32);
    CHECK(c.kv_cache.memory == 1'500'000'000ull);
    CHECK(c.scheduler.max_tokens_per_step == 1024);
    CHECK(c.scheduler.max_running_sequences == 64);
    CHECK(c.scheduler.max_queued_requests == 0);
    CHECK(c.scheduler.max_new_tokens == 100);
    CHECK(c.scheduler.prefill_chunk == 1000);
    CHECK(c.ipc.dir == "/run/llmq");
    CHECK(c.ipc.instance == "prod.v2");
    CHECK(c.ipc.group == "llmq");
    CHECK(c.ipc.allowed_users == std::vector<std::string>{"alice", "1001"});
    CHECK(c.ipc.region_size == 32u << 20);
    CHECK(c.ipc.request_ring_slots == 128);
    CHECK(c.ipc.response_ring_slots == 4096);
    CHECK(c.ipc.max_clients == 17);
    CHECK(c.ipc.max_handshaking == 9);
    CHECK(c.ipc.max_clients_per_uid == 11);
    CHECK(c.ipc.max_clients_per_pid == 3);
    CHECK(c.ipc.max_requests_per_client == 5);
    CHECK(c.ipc.max_running_per_client == 2);
    CHECK(c.ipc.max_pending_events == 77);
    CHECK(c.ipc.max_prompt_bytes == 2u << 20);
    CHECK(c.ipc.stall_timeout == 1500ms);
    CHECK(c.ipc.drain_timeout == 120s);
    CHECK(c.ipc.control_max_line == 1024);
    CHECK(c.ipc.control_max_depth == 8);
    CHECK(c.plugins.dir == "/opt/llmq/plugins");
    CHECK(c.plugins.gemm == "gemm-avx512");
    CHECK(c.plugins.attention == "/tmp/attention-dev.so");
    CHECK(c.plugins.vision == "vision-cpu");
    CHECK(c.plugins.watch);
    CHECK_FALSE(c.plugins.probe);
    CHECK(c.plugins.max_file_size == 64ull << 20);
    CHECK(c.plugins.swap_queue == 4);
    CHECK(c.plugins.tolerance_f32 == 2e-5);
    CHECK(c.plugins.tolerance_f16 == 0.005);
    CHECK(c.plugins.tolerance_bf16 == 0.03);
    CHECK(c.plugins.tolerance_q8_0 == 0.1);
    CHECK(c.log.level == llmq::log::level::debug);
    CHECK(c.log.file == "/var/log/llmq.log");
    CHECK(c.log.json);
    CHECK(c.metrics.listen == "127.0.0.1:9464");
    CHECK(llmq::validate_config(c).ok());
}

TEST_CASE("a plugin table reaches the plugin as a TOML document of its own") {
    Config c = every_key_config();
    REQUIRE(c.plugins.tables.size() == 2);
    auto gemm = toml::parse(c.plugins.tables.at("gemm-avx512"));
    CHECK(gemm["tile"].value<int64_t>() == 64);
    CHECK(gemm["names"][1].value<std::string>() == "b");
    CHECK(gemm["nested"]["deep"].value<bool>() == true);
    auto attention = toml::parse(c.plugins.tables.at("attention-dev"));
    CHECK(attention["sub"]["x"].value<double>() == 1.5);
}

TEST_CASE("print_config of the defaults parses back to the defaults") {
    std::string printed = llmq::print_config(Config{});
    auto parsed = llmq::parse_config(printed, "printed.toml");
    REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
    CHECK(*parsed == Config{});
}

TEST_CASE("print_config of a config with every key changed parses back to it") {
    Config c = every_key_config();
    std::string printed = llmq::print_config(c);
    auto parsed = llmq::parse_config(printed, "printed.toml");
    REQUIRE_MESSAGE(parsed.ok(), (parsed.status().message() + "\n" + printed));
    CHECK(*parsed == c);
    // And printing is stable.
    CHECK(llmq::print_config(*parsed) == printed);
}

TEST_CASE("print_config round-trips values built in code that no file spelled") {
    Config c;
    c.devices.memory_fraction = 0.1 + 0.2;              // 0.30000000000000004
    c.devices.cuda.mode = llmq::CudaSelection::Mode::none;
    c.devices.cpu_memory_limit = (1ull << 20) + 1;      // not a whole KiB: printed as an integer
    c.kv_cache.memory = 3ull << 40;
    c.ipc.stall_timeout = 1001ms;
    c.ipc.drain_timeout = 0ms;
    c.ipc.group = "llmq";
    c.ipc.allowed_users = {"1000", "bob"};
    c.model.name = "quote \" backslash \\ unicode \xc3\xa9";
    c.log.file = "/tmp/tab\there\nnewline\x01";
    c.plugins.tables["empty-plugin"] = "";
    auto parsed = llmq::parse_config(llmq::print_config(c), "printed.toml");
    REQUIRE_MESSAGE(parsed.ok(), parsed.status().message());
    CHECK(*parsed == c);
}

TEST_CASE("print_config documents every key with a comment above it") {
    std::string printed = llmq::print_config(Config{});
    CHECK(printed.find("[scheduler]\n# Most tokens in one engine step") != std::string::npos);
    CHECK(printed.find("# Most sequences in one step's batch (between 1 and 4096)\n"
                       "max_running_sequences = 32\n") != std::string::npos);
    CHECK(printed.find("region_size = \"16MiB\"\n") != std::string::npos);
    CHECK(printed.find("stall_timeout = \"5s\"\n") != std::string::npos);
    CHECK(printed.find("tensor = \"auto\"\n") != std::string::npos);
    CHECK(printed.find("cuda = \"auto\"\n") != std::string::npos);
    CHECK(printed.find("memory_fraction = 0.9\n") != std::string::npos);
    CHECK(printed.find("tolerance_f32 = 1e-04\n") != std::string::npos);
    // Each key line has a comment line right above it.
    size_t keys = 0;
    size_t pos = 0;
    while ((pos = printed.find('\n', pos)) != std::string::npos) {
        ++pos;
        if (pos >= printed.size() || printed[pos] == '#' || printed[pos] == '[' ||
            printed[pos] == '\n')
            continue;
        ++keys;
        size_t previous_line = printed.rfind('\n', pos - 2);
        CHECK(printed[previous_line + 1] == '#');
    }
    CHECK(keys == 65);   // every key of config.hpp
}

TEST_CASE("validate_config names the key and value of a Config changed in code") {
    Config c;
    c.scheduler.max_running_sequences = -3;
    c.devices.memory_fraction = 1.5;
    llmq::Status status = llmq::validate_config(c);
    CHECK(status.code() == llmq::status_code::invalid_argument);
    CHECK(status.message() ==
          "invalid configuration: [devices] memory_fraction = 1.5: must be greater than 0 and at "
          "most 1\n[scheduler] max_running_sequences = -3: must be between 1 and 4096");

    Config tables;
    tables.plugins.tables["ok"] = "x = 1";
    tables.plugins.tables["broken"] = "x = ";
    tables.plugins.tables["bad/name"] = "";
    status = llmq::validate_config(tables);
    CHECK(status.message().find("[plugins.bad/name]: a plugin table needs a plugin name") !=
          std::string::npos);
    CHECK(status.message().find("[plugins.broken] is not valid TOML") != std::string::npos);

    Config relation;
    relation.scheduler.prefill_chunk = 1000;
    CHECK(llmq::validate_config(relation).message() ==
          "invalid configuration: [scheduler] prefill_chunk = 1000: must not exceed [scheduler] "
          "max_tokens_per_step = 512");
}

TEST_CASE("load_config_file names the path in every error") {
    auto missing = llmq::load_config_file("/nonexistent/llmq.toml");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code() == llmq::status_code::not_found);
    CHECK(missing.status().message().find("/nonexistent/llmq.toml") != std::string::npos);

    char path[] = "/tmp/llmq-config-test-XXXXXX";
    int fd = mkstemp(path);
    REQUIRE(fd >= 0);
    close(fd);
    {
        std::ofstream out(path);
        out << "[log]\nlevel = \"debug\"\n\n[ipc]\nmax_clients = 0\n";
    }
    auto bad = llmq::load_config_file(path);
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.status().message() ==
          std::string(path) + ":5: [ipc] max_clients = 0: must be between 1 and 65536");
    {
        std::ofstream out(path);
        out << kEveryKey;
    }
    auto good = llmq::load_config_file(path);
    REQUIRE(good.ok());
    CHECK(*good == every_key_config());
    std::remove(path);

    auto directory = llmq::load_config_file("/tmp");
    CHECK_FALSE(directory.ok());
}
