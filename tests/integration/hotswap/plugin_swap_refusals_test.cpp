// Every refusal of `plugins swap`, on a serving daemon: each defect is refused with a message
// that says why, while requests keep streaming, and the old plugin keeps serving the same tokens.
#include <atomic>
#include <mutex>

#include "plugin_swap_daemon.hpp"

using namespace swaptest;

TEST_CASE("plugin_swap_refuses_each_defect_and_the_old_plugin_keeps_serving") {
    REQUIRE_FALSE(plugin_dir().empty());
    DaemonSetup setup;  // f32 weights: the test fixtures compute f32 only
    setup.plugins_toml = "dir = \"" + plugin_dir() + "\"\nprobe = true\n";
    Daemon daemon(setup);
    const json before = daemon.plugin("gemm");
    auto client = daemon.connect("checker");
    const auto request = greedy_request(prompt_for(3), 16);
    const Outcome reference = generate(*client, request);
    REQUIRE(reference.error.empty());

    // Traffic while the refusals happen.
    std::atomic<int> failures{0}, served{0};
    Background load;
    for (int c = 0; c < 4; ++c)
        load.start([&, c](const Background& bg) {
            auto cl = daemon.try_connect("load-" + std::to_string(c));
            if (!cl) {
                ++failures;
                return;
            }
            const auto mine = greedy_request(prompt_for(c), 16);
            const Outcome first = generate(*cl, mine);
            while (bg.running()) {
                Outcome o = generate(*cl, mine);
                ++served;
                if (!o.error.empty() || o.tokens != first.tokens) ++failures;
            }
        });

    const std::string text = (daemon.dir() / "text.so").string();
    std::ofstream(text) << "this is not a shared library\n";
    struct Case {
        std::string name, kind, path, stage;
        std::vector<std::string> says;
    };
    const std::vector<Case> cases = {
        {"wrong ABI version", "gemm", fixture("abi_major"), "probe", {"built for plugin ABI 2.0", "speaks ABI 1.2"}},
        {"wrong struct size", "gemm", fixture("struct_size"), "probe", {"struct_size is 16 bytes"}},
        {"missing entry symbol", "gemm", fixture("no_entry"), "probe", {"missing entry symbol llmq_plugin_entry"}},
        {"init that fails", "gemm", fixture("init_fails"), "probe", {"init on cpu:0 failed", "on purpose"}},
        {"crash in init", "gemm", fixture("init_crashes"), "probe",
         {"crashed with SIGABRT in init", "never loaded into the daemon"}},
        {"crash in the canary", "gemm", fixture("canary_crashes"), "probe", {"crashed with SIGABRT in canary"}},
        {"wrong numbers", "gemm", fixture("wrong_numbers"), "canary",
         {"canary gemm blk.0.", "[plugins] tolerance_f32", "computes something else"}},
        {"wrong kind", "gemm", fixture("wrong_kind"), "probe", {"is a attention plugin, a gemm plugin was asked for"}},
        {"wrong kind for attention", "attention", built("gemm-cpu"), "probe", {"is a gemm plugin"}},
        {"wrong backend", "gemm", fixture("wrong_backend"), "probe", {"is for the cuda backend, the device is cpu"}},
        {"not a shared library", "gemm", text, "probe", {"cannot be loaded as a shared library", "text.so"}},
        {"path that does not exist", "gemm", (daemon.dir() / "nothing.so").string(), "load", {"no such file"}},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const json serving = daemon.plugin(c.kind);
        json r = daemon.swap(c.kind, c.path);
        const std::string message = r["message"].get<std::string>();
        CHECK_FALSE(r["swapped"].get<bool>());
        CHECK(r.value("refused_at", std::string()) == c.stage);
        for (const auto& s : c.says) CHECK_MESSAGE(contains(message, s), message);
        CHECK_MESSAGE(contains(message, "keeps serving"), message);
        REQUIRE(daemon.alive());
        const json after = daemon.plugin(c.kind);
        CHECK(after["path"] == serving["path"]);
        CHECK(after["loaded_since_ms"] == serving["loaded_since_ms"]);
        Outcome o = generate(*client, request);
        CHECK(o.error.empty());
        CHECK(o.tokens == reference.tokens);
    }
    load.stop();
    CHECK(failures.load() == 0);
    CHECK(served.load() > 0);
    CHECK(daemon.plugin("gemm")["path"] == before["path"]);

    // The command-line client says the same and exits 1.
    setenv("LLMQ_IPC_DIR", daemon.ipc_dir().c_str(), 1);
    const std::string out = (daemon.dir() / "cli.txt").string();
    CHECK(run_program({LLMQ_PATH, "plugins", "swap", "--instance", "hotswap", "gemm", fixture("init_crashes")}, out) == 1);
    const std::string said = read_file(out);
    CHECK_MESSAGE(contains(said, "refused gemm swap refused at probe"), said);
    CHECK_MESSAGE(contains(said, "crashed with SIGABRT in init"), said);
    CHECK(run_program({LLMQ_PATH, "plugins", "swap", "--instance", "hotswap", "gemm", second_build("gemm-cpu")}, out) == 0);
    const std::string swapped = read_file(out);
    CHECK_MESSAGE(contains(swapped, "swapped gemm: gemm-cpu 1.0.0 from " + second_build("gemm-cpu")), swapped);
    for (const char* stage : {"probe ", "load ", "init ", "canary ", "publish ", "retire "})
        CHECK_MESSAGE(contains(swapped, stage), swapped);
    CHECK(run_program({LLMQ_PATH, "plugins", "list", "--instance", "hotswap"}, out) == 0);
    CHECK(contains(read_file(out), "llmq-gemm-cpu-second-build.so"));
}
