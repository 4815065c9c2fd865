// The plugin host refuses every defective plugin with a message that names the file and the
// reason, and loads the real CPU plugins.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "llmq/runtime/device.hpp"
#include "llmq/runtime/plugin_file.hpp"
#include "llmq/runtime/plugin_host.hpp"

using namespace llmq;

namespace {

std::string fixture(const std::string& defect) {
    return std::string(FIXTURE_DIR) + "/test-plugin-" + defect + ".so";
}

Status load_gemm(const std::string& path) {
    auto lib = PluginLibrary::load(path, LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CPU);
    return lib.status();
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace

TEST_CASE("plugin_host_loads_a_valid_plugin_and_runs_it") {
    CpuDevice device(0, 1, {}, 1ull << 30);
    auto lib = PluginLibrary::load(fixture("none"), LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CPU);
    REQUIRE(lib.ok());
    CHECK(lib.value()->name() == "test-gemm");
    auto inst = PluginInstance::create(*lib, device, "");
    REQUIRE(inst.ok());
    float x[2] = {1, 2}, w[4] = {1, 0, 0, 1}, y[2] = {0, 0};
    llmq_matmul_args a{};
    a.struct_size = sizeof a;
    auto t = [](float* p, int64_t r, int64_t c) {
        llmq_tensor v{};
        v.data = p;
        v.rank = 2;
        v.dtype = LLMQ_DTYPE_F32;
        v.shape[0] = r;
        v.shape[1] = c;
        v.strides[0] = c * 4;
        v.strides[1] = 4;
        v.device_type = LLMQ_BACKEND_CPU;
        return v;
    };
    a.x = t(x, 1, 2);
    a.w = t(w, 2, 2);
    a.y = t(y, 1, 2);
    CHECK((*inst)->matmul(a).ok());
    CHECK(y[0] == 1.0f);
    CHECK(y[1] == 2.0f);
    CHECK((*inst)->calls() == 1);
}

TEST_CASE("plugin_host_refuses_a_newer_abi_major_naming_both_versions") {
    Status s = load_gemm(fixture("abi_major"));
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.message(), fixture("abi_major")));
    CHECK(contains(s.message(), "ABI 2.0"));
    CHECK(contains(s.message(), "ABI 1.2"));
}

TEST_CASE("plugin_host_refuses_a_short_descriptor_struct") {
    Status s = load_gemm(fixture("struct_size"));
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.message(), "struct_size is 16"));
}

TEST_CASE("plugin_host_refuses_a_library_without_the_entry_symbol") {
    Status s = load_gemm(fixture("no_entry"));
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.message(), "missing entry symbol llmq_plugin_entry"));
}

TEST_CASE("plugin_host_refuses_a_plugin_whose_init_fails_with_its_message") {
    CpuDevice device(0, 1, {}, 1ull << 30);
    auto lib = PluginLibrary::load(fixture("init_fails"), LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CPU);
    REQUIRE(lib.ok());
    auto inst = PluginInstance::create(*lib, device, "");
    REQUIRE_FALSE(inst.ok());
    CHECK(contains(inst.status().message(), "refuses to start on purpose"));
    CHECK(contains(inst.status().message(), "init on cpu:0 failed"));
}

TEST_CASE("plugin_host_refuses_the_wrong_kind_and_backend") {
    Status kind = load_gemm(fixture("wrong_kind"));
    REQUIRE_FALSE(kind.ok());
    CHECK(contains(kind.message(), "is a attention plugin, a gemm plugin was asked for"));
    Status backend = load_gemm(fixture("wrong_backend"));
    REQUIRE_FALSE(backend.ok());
    CHECK(contains(backend.message(), "cuda backend"));
}

TEST_CASE("plugin_host_refuses_a_missing_function_table") {
    Status s = load_gemm(fixture("null_table"));
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.message(), "gemm function table"));
}

TEST_CASE("plugin_host_refuses_a_file_that_is_not_a_shared_library") {
    auto dir = std::filesystem::temp_directory_path() / ("llmq-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "text.so").string();
    std::ofstream(path) << "just text\n";
    Status s = load_gemm(path);
    std::filesystem::remove_all(dir);
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.message(), path));
    CHECK(contains(s.message(), "cannot be loaded as a shared library"));
}

TEST_CASE("plugin_host_refuses_a_path_that_does_not_exist") {
    Status s = load_gemm("/nonexistent/llmq-nothing.so");
    REQUIRE_FALSE(s.ok());
    CHECK(s.code() == status_code::not_found);
    CHECK(contains(s.message(), "/nonexistent/llmq-nothing.so"));
}

TEST_CASE("plugin_host_private_copy_names_the_users_file_and_leaves_nothing") {
    auto lib = PluginLibrary::load(fixture("none"), LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CPU);
    REQUIRE(lib.ok());
    CHECK(lib.value()->path() == fixture("none"));
}

TEST_CASE("plugin_host_loads_the_built_cpu_plugins_for_every_device") {
    const char* dir = std::getenv("LLMQ_PLUGIN_DIR");
    if (!dir) {
        MESSAGE("LLMQ_PLUGIN_DIR not set; skipping");
        return;
    }
    auto devices = make_cpu_devices({2, 1, 1ull << 30});
    PluginChoice choice;
    choice.dir = dir;
    auto host = PluginHost::create(choice, {devices[0].get(), devices[1].get()});
    REQUIRE_MESSAGE(host.ok(), host.status().message());
    auto set = (*host)->snapshot();
    REQUIRE(set->devices.size() == 2);
    CHECK(set->devices[0].gemm->library().name() == "gemm-cpu");
    CHECK(set->devices[1].attention->library().name() == "attention-cpu");
    // The same library serves both devices, with one instance each.
    CHECK(set->devices[0].gemm->library_ptr() == set->devices[1].gemm->library_ptr());
    CHECK(set->devices[0].gemm != set->devices[1].gemm);
}

TEST_CASE("plugin_file_is_read_once_into_a_sealed_copy_that_loads_whatever_the_name_holds_later") {
    auto dir = std::filesystem::temp_directory_path() / ("llmq-file-test-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string path = (dir / "plugin.so").string();
    std::filesystem::copy_file(fixture("none"), path);
    auto file = PluginFile::open(path, PluginFile::default_max_size);
    REQUIRE_MESSAGE(file.ok(), file.status().message());
    CHECK((*file)->size() == std::filesystem::file_size(path));
    // The name now holds something else; the copy is what loads.
    std::filesystem::remove(path);
    std::ofstream(path) << "not a library any more\n";
    auto lib = PluginLibrary::load(**file, LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CPU);
    REQUIRE_MESSAGE(lib.ok(), lib.status().message());
    CHECK(lib.value()->name() == "test-gemm");
    CHECK(lib.value()->path() == path);
    // Nobody can change the copy: writes and resizes are sealed off.
    CHECK(::write((*file)->fd(), "x", 1) < 0);
    CHECK(::ftruncate((*file)->fd(), 0) != 0);
    // Two loads of one copy share the handle; a new read of the name is a new library.
    auto again = PluginLibrary::load(**file, LLMQ_PLUGIN_KIND_GEMM, LLMQ_BACKEND_CPU);
    REQUIRE(again.ok());
    CHECK(&again.value()->descriptor() == &lib.value()->descriptor());
    CHECK(contains(load_gemm(path).message(), "cannot be loaded as a shared library"));
    std::filesystem::remove_all(dir);
}

TEST_CASE("plugin_file_refuses_what_is_not_a_regular_file_under_the_cap_naming_it") {
    auto dir = std::filesystem::temp_directory_path() / ("llmq-file-test2-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir);
    const std::string fifo = (dir / "fifo.so").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    const std::string link = (dir / "link.so").string();
    std::filesystem::create_symlink(fixture("none"), link);
    const std::pair<std::string, std::string> cases[] = {{fifo, "is a FIFO (named pipe)"},
                                                         {"/dev/zero", "is a character device"},
                                                         {dir.string(), "is a directory"},
                                                         {link, "is a symbolic link"}};
    for (const auto& [path, says] : cases) {
        CAPTURE(path);
        auto f = PluginFile::open(path, PluginFile::default_max_size);
        REQUIRE_FALSE(f.ok());
        CHECK(contains(f.status().message(), path));
        CHECK_MESSAGE(contains(f.status().message(), says), f.status().message());
    }
    auto big = PluginFile::open(fixture("none"), 4096);
    REQUIRE_FALSE(big.ok());
    CHECK_MESSAGE(contains(big.status().message(), "larger than [plugins] max_file_size (4.0 KiB)"),
                  big.status().message());
    CHECK(PluginFile::open((dir / "none.so").string(), 4096).status().code() == status_code::not_found);
    std::filesystem::remove_all(dir);
}
