// Every key refuses a bad value with a message naming the file, the line, the key and the value.
#include <doctest/doctest.h>

#include "config_test_support.hpp"

namespace {

struct BadValue {
    const char* section;
    const char* line;       // "key = value" as written
    const char* expected;   // the message after "llmq.toml:3: "
};

const BadValue kBadValues[] = {
    // [model]
    {"model", "path = 5", "[model] path = 5: must be a string: a file path"},
    {"model", "path = \"a\\u0000b\"", "[model] path = \"a\\u0000b\": must be a file path"},
    {"model", "context_length = -1", "[model] context_length = -1: must be between 0 and 16777216"},
    {"model", "context_length = 16777217",
     "[model] context_length = 16777217: must be between 0 and 16777216"},
    {"model", "context_length = \"4k\"",
     "[model] context_length = \"4k\": must be an integer between 0 and 16777216"},
    {"model", "name = \"two\\nlines\"",
     "[model] name = \"two\\nlines\": must be at most 128 bytes without control characters"},
    // [devices]
    {"devices", "cpu = 257", "[devices] cpu = 257: must be between 0 and 256"},
    {"devices", "cpu = 1.5", "[devices] cpu = 1.5: must be an integer between 0 and 256"},
    {"devices", "cpu_threads_per_device = -2",
     "[devices] cpu_threads_per_device = -2: must be between 0 and 1024"},
    {"devices", "cpu_memory_limit = \"6XB\"",
     "[devices] cpu_memory_limit = \"6XB\": must be a size: an integer (bytes) or a string such "
     "as \"16MiB\", \"512KiB\", \"1.5GB\""},
    {"devices", "cpu_memory_limit = -5",
     "[devices] cpu_memory_limit = -5: must be 0 (no limit) or a size of at least 1MiB"},
    {"devices", "cpu_memory_limit = \"512KiB\"",
     "[devices] cpu_memory_limit = \"512KiB\": must be 0 (no limit) or a size of at least 1MiB"},
    {"devices", "cpu_memory_limit = true",
     "[devices] cpu_memory_limit = true: must be a size: an integer (bytes) or a string such as "
     "\"16MiB\", \"512KiB\", \"1.5GB\""},
    {"devices", "memory_fraction = 0",
     "[devices] memory_fraction = 0: must be greater than 0 and at most 1"},
    {"devices", "memory_fraction = 1.01",
     "[devices] memory_fraction = 1.01: must be greater than 0 and at most 1"},
    {"devices", "memory_fraction = nan",
     "[devices] memory_fraction = nan: must be greater than 0 and at most 1"},
    {"devices", "memory_fraction = \"90%\"",
     "[devices] memory_fraction = \"90%\": must be a number greater than 0 and at most 1"},
    {"devices", "cuda = \"all\"",
     "[devices] cuda = \"all\": must be \"auto\", \"none\" or a list of distinct GPU ordinals such "
     "as [0, 1]"},
    {"devices", "cuda = [0, 0]", "[devices] cuda = [ 0, 0 ]: lists GPU 0 twice"},
    {"devices", "cuda = [-1]", "[devices] cuda = [ -1 ]: must list GPU ordinals between 0 and 1023"},
    {"devices", "cuda = [\"0\"]",
     "[devices] cuda = [ \"0\" ]: must list GPU ordinals between 0 and 1023"},
    {"devices", "cuda = []", "[devices] cuda = []: must not be an empty list; write \"none\" for no GPU"},
    {"devices", "backend = \"gpu\"", "[devices] backend = \"gpu\": must be one of \"auto\", \"cpu\", \"cuda\""},
    {"devices", "backend = 1", "[devices] backend = 1: must be one of \"auto\", \"cpu\", \"cuda\""},
    {"devices", "cuda_devices_per_gpu = 0", "[devices] cuda_devices_per_gpu = 0: must be between 1 and 64"},
    {"devices", "cuda_devices_per_gpu = 65", "[devices] cuda_devices_per_gpu = 65: must be between 1 and 64"},
    {"devices", "cuda_memory_limit = \"1KiB\"",
     "[devices] cuda_memory_limit = \"1KiB\": must be 0 (the GPU's free memory divided among its logical devices) "
     "or a size of at least 1MiB"},
    {"devices", "cuda_communicator = \"mpi\"",
     "[devices] cuda_communicator = \"mpi\": must be one of \"auto\", \"nccl\", \"device-memory\""},
    // [parallel]
    {"parallel", "tensor = 0",
     "[parallel] tensor = 0: must be \"auto\" or an integer between 1 and 4096"},
    {"parallel", "tensor = \"max\"",
     "[parallel] tensor = \"max\": must be \"auto\" or an integer between 1 and 4096"},
    {"parallel", "pipeline = 5000",
     "[parallel] pipeline = 5000: must be \"auto\" or an integer between 1 and 4096"},
    {"parallel", "pipeline = 2.0",
     "[parallel] pipeline = 2.0: must be \"auto\" or an integer between 1 and 4096"},
    // [kv_cache]
    {"kv_cache", "dtype = \"bf16\"", "[kv_cache] dtype = \"bf16\": must be \"f16\" or \"f32\""},
    {"kv_cache", "dtype = 16", "[kv_cache] dtype = 16: must be \"f16\" or \"f32\""},
    {"kv_cache", "block_size = 24",
     "[kv_cache] block_size = 24: must be a power of two between 1 and 256"},
    {"kv_cache", "block_size = 512",
     "[kv_cache] block_size = 512: must be a power of two between 1 and 256"},
    {"kv_cache", "block_size = 0",
     "[kv_cache] block_size = 0: must be a power of two between 1 and 256"},
    {"kv_cache", "memory = \"100B\"",
     "[kv_cache] memory = \"100B\": must be 0 (auto: max_running_sequences x context_length) or "
     "a size of at least 1KiB"},
    // [scheduler]
    {"scheduler", "max_tokens_per_step = 0",
     "[scheduler] max_tokens_per_step = 0: must be between 1 and 1048576"},
    {"scheduler", "max_running_sequences = -3",
     "[scheduler] max_running_sequences = -3: must be between 1 and 4096"},
    {"scheduler", "max_running_sequences = 99999999999999",
     "[scheduler] max_running_sequences = 99999999999999: must be between 1 and 4096"},
    {"scheduler", "max_queued_requests = -1",
     "[scheduler] max_queued_requests = -1: must be between 0 and 1048576"},
    {"scheduler", "max_new_tokens = 0", "[scheduler] max_new_tokens = 0: must be between 1 and 16777216"},
    {"scheduler", "prefill_chunk = 0", "[scheduler] prefill_chunk = 0: must be between 1 and 1048576"},
    // [ipc]
    {"ipc", "dir = \"relative/dir\"",
     "[ipc] dir = \"relative/dir\": must be \"\" or an absolute path"},
    {"ipc", "instance = \"\"",
     "[ipc] instance = \"\": must be 1 to 64 characters from A-Z a-z 0-9 _ . -"},
    {"ipc", "instance = \"a/b\"",
     "[ipc] instance = \"a/b\": must be 1 to 64 characters from A-Z a-z 0-9 _ . -"},
    {"ipc", "instance = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"",
     "[ipc] instance = \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": must be "
     "1 to 64 characters from A-Z a-z 0-9 _ . -"},
    {"ipc", "group = \"wheel users\"",
     "[ipc] group = \"wheel users\": must be \"\", a group name or a gid"},
    {"ipc", "allowed_users = \"alice\"",
     "[ipc] allowed_users = \"alice\": must be a list of user names or uids, such as [\"alice\", "
     "1001]"},
    {"ipc", "allowed_users = [\"al ice\"]",
     "[ipc] allowed_users = [ \"al ice\" ]: must list user names or uids; \"al ice\" is neither"},
    {"ipc", "allowed_users = [-1]",
     "[ipc] allowed_users = [ -1 ]: must list user names or uids; -1 is not a uid"},
    {"ipc", "allowed_users = [1.5]",
     "[ipc] allowed_users = [ 1.5 ]: must be a list of user names or uids, such as [\"alice\", "
     "1001]"},
    {"ipc", "region_size = \"32KiB\"",
     "[ipc] region_size = \"32KiB\": must be a size between 64KiB and 1GiB"},
    {"ipc", "region_size = \"2GiB\"",
     "[ipc] region_size = \"2GiB\": must be a size between 64KiB and 1GiB"},
    {"ipc", "request_ring_slots = 100",
     "[ipc] request_ring_slots = 100: must be a power of two between 2 and 65536"},
    {"ipc", "response_ring_slots = 1",
     "[ipc] response_ring_slots = 1: must be a power of two between 2 and 1048576"},
    {"ipc", "max_clients = 0", "[ipc] max_clients = 0: must be between 1 and 65536"},
    {"ipc", "max_prompt_bytes = 0", "[ipc] max_prompt_bytes = 0: must be a size between 1B and 256MiB"},
    {"ipc", "stall_timeout = 5",
     "[ipc] stall_timeout = 5: must be a duration string such as \"5s\" or \"250ms\""},
    {"ipc", "stall_timeout = \"5 seconds\"",
     "[ipc] stall_timeout = \"5 seconds\": must be a duration such as \"5s\" or \"250ms\" (units "
     "ms, s, m, h)"},
    {"ipc", "stall_timeout = \"1ms\"",
     "[ipc] stall_timeout = \"1ms\": must be a duration between 10ms and 1h"},
    {"ipc", "drain_timeout = \"2h\"",
     "[ipc] drain_timeout = \"2h\": must be a duration between 0s and 1h"},
    {"ipc", "control_max_line = 10",
     "[ipc] control_max_line = 10: must be a size between 256B and 16MiB"},
    {"ipc", "control_max_depth = 0", "[ipc] control_max_depth = 0: must be between 1 and 1024"},
    // [plugins]
    {"plugins", "dir = false", "[plugins] dir = false: must be a string: a path"},
    {"plugins", "gemm = \"\"", "[plugins] gemm = \"\": must be a plugin name or a path to its .so"},
    {"plugins", "attention = \"\"",
     "[plugins] attention = \"\": must be a plugin name or a path to its .so"},
    {"plugins", "vision = \"a\\tb\"",
     "[plugins] vision = \"a\\tb\": must be \"\" or a plugin name or a path to its .so"},
    {"plugins", "watch = \"yes\"", "[plugins] watch = \"yes\": must be true or false"},
    {"plugins", "probe = 1", "[plugins] probe = 1: must be true or false"},
    {"plugins", "tolerance_f32 = 0",
     "[plugins] tolerance_f32 = 0: must be greater than 0 and at most 1"},
    {"plugins", "tolerance_f16 = -0.01",
     "[plugins] tolerance_f16 = -0.01: must be greater than 0 and at most 1"},
    {"plugins", "tolerance_bf16 = inf",
     "[plugins] tolerance_bf16 = inf: must be greater than 0 and at most 1"},
    {"plugins", "tolerance_q8_0 = 2",
     "[plugins] tolerance_q8_0 = 2: must be greater than 0 and at most 1"},
    // [log]
    {"log", "level = \"verbose\"",
     "[log] level = \"verbose\": must be one of \"error\", \"warn\", \"info\", \"debug\""},
    {"log", "file = [\"a\"]", "[log] file = [ \"a\" ]: must be a string: a path"},
    {"log", "json = \"true\"", "[log] json = \"true\": must be true or false"},
};

}  // namespace

TEST_CASE("every key refuses a bad value naming file, line, key and value") {
    for (const BadValue& bad : kBadValues) {
        std::string text = "# comment\n[" + std::string(bad.section) + "]\n" + bad.line + "\n";
        CAPTURE(text);
        CHECK(config_error(text) == "llmq.toml:3: " + std::string(bad.expected));
    }
}

TEST_CASE("the issue's example message is produced exactly") {
    std::string text =
        "[model]\npath = \"m.gguf\"\n\n[scheduler]\nmax_tokens_per_step = 512\n# many\n"
        "max_running_sequences = -3\n";
    CHECK(config_error(text) ==
          "llmq.toml:7: [scheduler] max_running_sequences = -3: must be between 1 and 4096");
}

TEST_CASE("bad values are errors with the invalid_argument code") {
    auto parsed = llmq::parse_config("[kv_cache]\nblock_size = 3\n", "x.toml");
    REQUIRE_FALSE(parsed.ok());
    CHECK(parsed.status().code() == llmq::status_code::invalid_argument);
}

TEST_CASE("every problem of a file is reported, in file order") {
    std::string text =
        "[scheduler]\nprefill_chunk = 0\n[devices]\ncpu = -1\n[model]\nbogus = 1\n";
    CHECK(config_error(text) ==
          "llmq.toml:2: [scheduler] prefill_chunk = 0: must be between 1 and 1048576\n"
          "llmq.toml:4: [devices] cpu = -1: must be between 0 and 256\n"
          "llmq.toml:6: [model] bogus: unknown key (llmqd --print-config lists every key)");
}

TEST_CASE("rules between keys name the key, its value and the other key") {
    CHECK(config_error("[scheduler]\nmax_tokens_per_step = 128\nprefill_chunk = 256\n") ==
          "llmq.toml:3: [scheduler] prefill_chunk = 256: must not exceed [scheduler] "
          "max_tokens_per_step = 128");
    // The default prefill_chunk (256) against a lower budget: no line, the key is not in the file.
    CHECK(config_error("[scheduler]\nmax_tokens_per_step = 100\n") ==
          "llmq.toml: [scheduler] prefill_chunk = 256: must not exceed [scheduler] "
          "max_tokens_per_step = 100");
    CHECK(config_error("[ipc]\nregion_size = \"1MiB\"\nmax_prompt_bytes = \"768KiB\"\n") ==
          "llmq.toml:3: [ipc] max_prompt_bytes = \"768KiB\": must be at most half of [ipc] "
          "region_size = 1MiB, which also holds the rings; raise region_size");
    CHECK(config_error("[devices]\ncpu = 0\ncuda = \"none\"\n") ==
          "llmq.toml:2: [devices] cpu = 0: leaves no device, as [devices] cuda = \"none\"; use at "
          "least 1 CPU device");
    CHECK(config_error("[devices]\nbackend = \"cuda\"\ncuda = \"none\"\n") ==
          "llmq.toml:2: [devices] backend = \"cuda\": is \"cuda\" but [devices] cuda = \"none\" selects no GPU");
    CHECK(config_error("[devices]\nbackend = \"cpu\"\ncpu = 0\n") ==
          "llmq.toml:3: [devices] cpu = 0: leaves no device, as [devices] backend = \"cpu\"; use at least 1 CPU "
          "device");
    CHECK(config_error("[devices]\nbackend = \"cuda\"\ncpu = 0\ncuda_devices_per_gpu = 4\n").empty());
    std::string long_dir = "/" + std::string(100, 'd');
    CHECK(config_error("[ipc]\ndir = \"" + long_dir + "\"\n") ==
          "llmq.toml:2: [ipc] dir = \"" + long_dir + "\": is too long: the socket path " +
              long_dir + "/llmq-default.sock has 119 bytes, UNIX sockets allow 107");
    CHECK(config_error("[ipc]\nallowed_users = [\"alice\"]\n") ==
          "llmq.toml:2: [ipc] allowed_users = [\"alice\"]: needs [ipc] group: without it the "
          "socket's directory is 0700, so no other user can reach the socket; set group to one "
          "these users are in (the list then narrows that group)");
    CHECK(config_error("[devices]\ncpu = 0\ncuda = \"auto\"\n").empty());
    CHECK(config_error("[scheduler]\nmax_tokens_per_step = 256\nprefill_chunk = 256\n").empty());
}

TEST_CASE("values that are right but unusual are accepted") {
    CHECK(config_error("[devices]\nmemory_fraction = 1\n").empty());             // integer for a float
    CHECK(config_error("[devices]\ncpu_memory_limit = 0\n").empty());
    CHECK(config_error("[ipc]\ngroup = \"llmq\"\nallowed_users = [\"alice\", 1000, \"svc$\"]\n").empty());
    CHECK(config_error("[ipc]\ngroup = \"1001\"\n").empty());
    CHECK(config_error("[ipc]\ndrain_timeout = \"0s\"\n").empty());
    CHECK(config_error("[parallel]\ntensor = \"auto\"\npipeline = 4096\n").empty());
    CHECK(config_error("[model]\nname = \"llama 3 \\u00e9\"\n").empty());
}
