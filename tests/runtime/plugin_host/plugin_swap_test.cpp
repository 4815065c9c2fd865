// Swapping plugins in-process: the canary, the probe process, and PluginSwapper's stages,
// refusals (the old plugin keeps serving), all-or-none init and the retirement of the old set
// only after the last step holding it.
#include <doctest/doctest.h>
#include <link.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <future>
#include <string>

#include "llmq/runtime/device.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/plugin_canary.hpp"
#include "llmq/runtime/plugin_probe.hpp"
#include "llmq/runtime/plugin_swap.hpp"

using namespace llmq;

namespace {

std::string fixture(const std::string& defect) {
    return std::string(FIXTURE_DIR) + "/test-plugin-" + defect + ".so";
}

std::string plugin_dir() {
    const char* dir = std::getenv("LLMQ_PLUGIN_DIR");
    return dir ? dir : "";
}

bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

void use_built_probe() { setenv("LLMQ_PLUGIN_PROBE", PROBE_PATH, 1); }

// A private folder holding copies of files, removed at the end.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() / ("llmq-swap-test-" + std::to_string(getpid()));
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string copy(const std::string& from, const std::string& name) {
        auto to = path / name;
        std::filesystem::copy_file(from, to, std::filesystem::copy_options::overwrite_existing);
        return to.string();
    }
};

std::shared_ptr<PluginInstance> make_instance(const std::string& path, int32_t kind, Device& device) {
    auto lib = PluginLibrary::load(path, kind, LLMQ_BACKEND_CPU);
    REQUIRE_MESSAGE(lib.ok(), lib.status().message());
    std::promise<Expected<std::shared_ptr<PluginInstance>>> made;
    device.post([&] { made.set_value(PluginInstance::create(*lib, device, "")); });
    auto inst = made.get_future().get();
    REQUIRE_MESSAGE(inst.ok(), inst.status().message());
    return *inst;
}

void release_on(Device& device, std::shared_ptr<PluginInstance>& inst) {
    std::promise<void> done;
    device.post([&] {
        inst.reset();
        done.set_value();
    });
    done.get_future().wait();
}

// Loaded objects loaded from a plugin file's sealed copy (/proc/self/fd/N) (closed libraries drop out).
int loaded_private_copies() {
    int n = 0;
    dl_iterate_phdr(
        [](dl_phdr_info* info, size_t, void* count) {
            if (info->dlpi_name && std::string(info->dlpi_name).rfind("/proc/self/fd/", 0) == 0)
                ++*static_cast<int*>(count);
            return 0;
        },
        &n);
    return n;
}

CanaryShapes f32_gemm_shapes() {
    CanaryShapes s;
    s.gemm = {{"test", 64, 48, LLMQ_DTYPE_F32, {1, 7}}};
    s.attention = default_canary_shapes().attention;
    return s;
}

struct Host {
    std::vector<std::unique_ptr<Device>> devices = make_cpu_devices({2, 1, 1ull << 30});
    std::unique_ptr<PluginHost> host;
    explicit Host(const std::string& gemm) {
        PluginChoice choice;
        choice.dir = plugin_dir();
        choice.gemm = gemm;
        auto h = PluginHost::create(choice, {devices[0].get(), devices[1].get()});
        REQUIRE_MESSAGE(h.ok(), h.status().message());
        host = std::move(*h);
    }
    ~Host() {
        // Instances shut down on their own workers before the devices go.
        host.reset();
    }
    std::string gemm_path() const { return host->snapshot()->devices[0].gemm->library().path(); }
};

}  // namespace

TEST_CASE("canary_accepts_a_second_build_of_the_same_plugin_in_every_dtype") {
    if (plugin_dir().empty()) return;
    CpuDevice device(0, 2, {}, 1ull << 30);
    TempDir tmp;
    for (auto [name, kind] : {std::pair{"gemm-cpu", LLMQ_PLUGIN_KIND_GEMM},
                              std::pair{"attention-cpu", LLMQ_PLUGIN_KIND_ATTENTION}}) {
        const std::string built = plugin_dir() + "/llmq-" + name + ".so";
        auto current = make_instance(built, kind, device);
        auto second = make_instance(tmp.copy(built, std::string("second-") + name + ".so"), kind, device);
        Status s = run_canary_on_device(device, kind, *second, current.get(), default_canary_shapes(),
                                        CanaryTolerances{});
        CHECK_MESSAGE(s.ok(), s.message());
        release_on(device, second);
        release_on(device, current);
    }
}

TEST_CASE("canary_refuses_wrong_numbers_naming_the_case_and_the_tolerance") {
    CpuDevice device(0, 1, {}, 1ull << 30);
    auto current = make_instance(fixture("none"), LLMQ_PLUGIN_KIND_GEMM, device);
    auto wrong = make_instance(fixture("wrong_numbers"), LLMQ_PLUGIN_KIND_GEMM, device);
    Status s = run_canary_on_device(device, LLMQ_PLUGIN_KIND_GEMM, *wrong, current.get(), f32_gemm_shapes(),
                                    CanaryTolerances{});
    REQUIRE_FALSE(s.ok());
    CHECK(contains(s.message(), "canary gemm test [M=1, K=64, N=48, f32]"));
    CHECK(contains(s.message(), "[plugins] tolerance_f32 = 0.0001"));
    // Without a reference (the probe) the same plugin passes: its outputs are finite.
    CHECK(run_canary_on_device(device, LLMQ_PLUGIN_KIND_GEMM, *wrong, nullptr, f32_gemm_shapes(), {}).ok());
    // A plugin that cannot compute the model's dtype is refused with its own message.
    CanaryShapes f16;
    f16.gemm = {{"f16 case", 64, 8, LLMQ_DTYPE_F16, {1}}};
    Status unsupported = run_canary_on_device(device, LLMQ_PLUGIN_KIND_GEMM, *wrong, current.get(), f16, {});
    CHECK(contains(unsupported.message(), "only f32"));
    release_on(device, wrong);
    release_on(device, current);
}

TEST_CASE("canary_shapes_come_from_the_model_and_its_split_and_round_trip_through_json") {
    // A Llama-3-8B-like layer split two ways (header only: no data).
    auto tensor = [](std::vector<int64_t> shape, GgmlType type, kernels::dtype dtype) {
        GgufTensor t;
        t.shape = std::move(shape);
        t.ggml_type = static_cast<uint32_t>(type);
        t.dtype = dtype;
        return t;
    };
    const auto f16 = kernels::dtype::f16;
    GgufTensor wq = tensor({4096, 4096}, GgmlType::f16, f16), wk = tensor({4096, 1024}, GgmlType::f16, f16);
    GgufTensor up = tensor({4096, 14336}, GgmlType::q8_0, kernels::dtype::q8_0);
    GgufTensor down = tensor({14336, 4096}, GgmlType::f16, f16);
    LlamaLayout layout;
    layout.hp.n_embd = 4096;
    layout.hp.n_head = 32;
    layout.hp.n_head_kv = 8;
    layout.hp.head_dim = 128;
    layout.layers.resize(1);
    layout.layers[0].wq = &wq;
    layout.layers[0].wk = &wk;
    layout.layers[0].ffn_up = &up;
    layout.layers[0].ffn_down = &down;
    CanaryShapes m = canary_shapes_for_model(layout, 2, 16, LLMQ_DTYPE_F16);
    REQUIRE(m.gemm.size() == 4);
    CHECK(m.gemm[0].what == "blk.0.attn_q");
    CHECK(m.gemm[0].K == 4096);
    CHECK(m.gemm[0].N == 1024);  // 2048 rows per device, trimmed to 4 Mi values
    CHECK(m.gemm[1].N == 512);   // 1024 / 2: small enough to keep
    CHECK(m.gemm[2].w_dtype == LLMQ_DTYPE_Q8_0);
    CHECK(m.gemm[3].K == 7168);  // row-parallel: the inputs are split
    CHECK(m.gemm[3].N == 576);
    CHECK(m.gemm[0].M == std::vector<int64_t>{1, 7});
    REQUIRE(m.attention.size() == 1);
    CHECK(m.attention[0].num_heads == 16);
    CHECK(m.attention[0].num_kv_heads == 4);
    CHECK(m.attention[0].head_dim == 128);

    CanaryShapes s = default_canary_shapes();
    auto back = canary_shapes_from_json(canary_shapes_to_json(s));
    REQUIRE(back.ok());
    REQUIRE(back->gemm.size() == s.gemm.size());
    CHECK(back->gemm[3].w_dtype == LLMQ_DTYPE_Q8_0);
    CHECK(back->attention[1].kv_dtype == LLMQ_DTYPE_F32);
    // Sizes a probe would allocate are bounded.
    auto j = canary_shapes_to_json(s);
    j["gemm"][0]["N"] = int64_t(1) << 40;
    CHECK(contains(canary_shapes_from_json(j).status().message(), "N = "));
}

TEST_CASE("probe_passes_a_good_plugin_and_refuses_crashes_hangs_and_abi_defects_by_stage") {
    use_built_probe();
    ProbeRequest req;
    req.kind = LLMQ_PLUGIN_KIND_GEMM;
    req.shapes = f32_gemm_shapes();

    req.path = fixture("none");
    auto good = run_plugin_probe(req);
    CHECK_MESSAGE(good.ok(), good.status().message());

    req.path = fixture("init_crashes");
    auto crash = run_plugin_probe(req);
    REQUIRE_FALSE(crash.ok());
    CHECK(contains(crash.status().message(), "crashed with SIGABRT in init"));

    req.path = fixture("canary_crashes");
    auto canary = run_plugin_probe(req);
    REQUIRE_FALSE(canary.ok());
    CHECK(contains(canary.status().message(), "crashed with SIGABRT in canary"));

    req.path = fixture("init_hangs");
    req.timeout = std::chrono::milliseconds(1000);
    auto hang = run_plugin_probe(req);
    REQUIRE_FALSE(hang.ok());
    CHECK(contains(hang.status().message(), "did not finish within 1000 ms (last stage: init)"));
    req.timeout = std::chrono::milliseconds(20000);

    req.path = fixture("abi_major");
    auto abi = run_plugin_probe(req);
    REQUIRE_FALSE(abi.ok());
    CHECK(contains(abi.status().message(), "ABI 2.0"));
    CHECK(contains(abi.status().message(), "found by the probe in load"));
}

TEST_CASE("probe_that_cannot_start_is_an_io_error_naming_the_variable") {
    setenv("LLMQ_PLUGIN_PROBE", "/nonexistent/llmq-plugin-probe", 1);
    ProbeRequest req;
    req.path = fixture("none");
    req.kind = LLMQ_PLUGIN_KIND_GEMM;
    auto r = run_plugin_probe(req);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == status_code::io_error);
    CHECK(contains(r.status().message(), "LLMQ_PLUGIN_PROBE"));
    use_built_probe();
}

TEST_CASE("swapper_swaps_through_every_stage_and_refuses_each_defect_keeping_the_old_plugin") {
    if (plugin_dir().empty()) return;
    use_built_probe();
    TempDir tmp;
    Host h(tmp.copy(fixture("none"), "first.so"));
    SwapPolicy policy;
    policy.shapes = f32_gemm_shapes();
    PluginSwapper swapper(*h.host, policy);

    const std::string second = tmp.copy(fixture("none"), "second.so");
    SwapReport ok = swapper.swap(LLMQ_PLUGIN_KIND_GEMM, second, "test");
    REQUIRE_MESSAGE(ok.swapped, ok.message);
    std::vector<std::string> stages;
    for (const auto& s : ok.stages) stages.push_back(s.name);
    CHECK(stages == std::vector<std::string>{"probe", "load", "init", "canary", "publish", "retire"});
    CHECK(h.gemm_path() == second);
    CHECK(ok.old_path == tmp.path.string() + "/first.so");

    const std::string text = (tmp.path / "text.so").string();
    std::ofstream(text) << "not a library\n";
    struct Case {
        std::string path, stage, says;
    };
    const std::vector<Case> cases = {
        {fixture("abi_major"), "probe", "ABI 2.0"},
        {fixture("struct_size"), "probe", "struct_size is 16"},
        {fixture("no_entry"), "probe", "missing entry symbol llmq_plugin_entry"},
        {fixture("init_fails"), "probe", "refuses to start on purpose"},
        {fixture("init_crashes"), "probe", "crashed with SIGABRT in init"},
        {fixture("canary_crashes"), "probe", "crashed with SIGABRT in canary"},
        {fixture("wrong_numbers"), "canary", "tolerance_f32"},
        {fixture("wrong_kind"), "probe", "is a attention plugin, a gemm plugin was asked for"},
        {fixture("wrong_backend"), "probe", "cuda backend"},
        {fixture("null_table"), "probe", "gemm function table"},
        {fixture("init_fails_on_second_device"), "init", "no room on device 1"},
        {text, "probe", "cannot be loaded as a shared library"},
        {tmp.path.string() + "/missing.so", "load", "no such file"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.path);
        const auto before = h.host->snapshot();
        SwapReport r = swapper.swap(LLMQ_PLUGIN_KIND_GEMM, c.path, "test");
        CHECK_FALSE(r.swapped);
        CHECK(r.refused_at == c.stage);
        CHECK_MESSAGE(contains(r.message, c.says), r.message);
        CHECK(contains(r.message, "test-gemm 0.0.1 from " + second + " keeps serving"));
        CHECK(h.host->snapshot() == before);
    }

    // Without the probe the library checks and init run in this process, with the same refusals.
    SwapPolicy direct = policy;
    direct.probe = false;
    PluginSwapper unprobed(*h.host, direct);
    for (const auto& [defect, says] : {std::pair{"abi_major", "ABI 2.0"}, std::pair{"init_fails", "on purpose"},
                                       std::pair{"wrong_kind", "is a attention plugin"}}) {
        SwapReport r = unprobed.swap(LLMQ_PLUGIN_KIND_GEMM, fixture(defect), "test");
        CHECK_FALSE(r.swapped);
        CHECK_MESSAGE(contains(r.message, says), r.message);
    }
}

TEST_CASE("swapper_inits_on_every_device_or_none") {
    if (plugin_dir().empty()) return;
    use_built_probe();
    Host h(fixture("none"));
    SwapPolicy policy;
    policy.shapes = f32_gemm_shapes();
    policy.probe = false;  // the probe's one device would not see device 1's refusal
    PluginSwapper swapper(*h.host, policy);
    const int copies_before = loaded_private_copies();
    SwapReport r = swapper.swap(LLMQ_PLUGIN_KIND_GEMM, fixture("init_fails_on_second_device"), "test");
    CHECK_FALSE(r.swapped);
    CHECK(r.refused_at == "init");
    CHECK(contains(r.message, "all or none of 2 device(s)"));
    CHECK(contains(r.message, "init on cpu:1 failed: no room on device 1"));
    // The instance made on cpu:0 was shut down and the library closed again.
    CHECK(loaded_private_copies() == copies_before);
    CHECK(h.gemm_path() == fixture("none"));
}

TEST_CASE("swapper_retires_the_old_plugin_only_after_the_last_step_holding_it") {
    if (plugin_dir().empty()) return;
    use_built_probe();
    TempDir tmp;
    Host h(fixture("none"));
    SwapPolicy policy;
    policy.shapes = f32_gemm_shapes();
    PluginSwapper swapper(*h.host, policy);

    auto step = h.host->snapshot();  // a step in flight holds the set
    std::weak_ptr<PluginInstance> old = step->devices[0].gemm;
    const std::string next = tmp.copy(fixture("none"), "next.so");
    auto swapping = std::async(std::launch::async, [&] { return swapper.swap(LLMQ_PLUGIN_KIND_GEMM, next, "test"); });
    // Published: the next step sees the new plugin while the running one still has the old.
    for (int i = 0; i < 2000 && h.gemm_path() != next; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    CHECK(h.gemm_path() == next);
    CHECK(step->devices[0].gemm->library().path() == fixture("none"));
    CHECK(swapping.wait_for(std::chrono::milliseconds(150)) == std::future_status::timeout);
    CHECK_FALSE(old.expired());
    step.reset();  // the step ends
    SwapReport r = swapping.get();
    CHECK(r.swapped);
    CHECK(r.stage_ms("retire") >= 100.0);
    CHECK(old.expired());
}

TEST_CASE("plugin_host_with_probe_refuses_a_plugin_that_crashes_in_init_at_load") {
    if (plugin_dir().empty()) return;
    use_built_probe();
    auto devices = make_cpu_devices({1, 1, 1ull << 30});
    PluginChoice choice;
    choice.dir = plugin_dir();
    choice.probe = true;
    choice.gemm = fixture("init_crashes");
    auto host = PluginHost::create(choice, {devices[0].get()});
    REQUIRE_FALSE(host.ok());
    CHECK(contains(host.status().message(), "[plugins] gemm = \"" + fixture("init_crashes") + "\""));
    CHECK(contains(host.status().message(), "crashed with SIGABRT in init"));
    choice.gemm = "gemm-cpu";
    auto good = PluginHost::create(choice, {devices[0].get()});
    CHECK_MESSAGE(good.ok(), good.status().message());
}
