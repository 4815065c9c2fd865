// The probe process's side (llmq-plugin-probe): load, init and canary one plugin, reporting
// each stage before entering it. A crash here is the point: the daemon reads it as a refusal.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <future>
#include <nlohmann/json.hpp>
#include <string>

#include "llmq/runtime/device.hpp"
#include "llmq/runtime/plugin_probe.hpp"

namespace llmq {

namespace {

constexpr size_t max_request_bytes = 16u << 20;

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// One line, written at once and unbuffered, so it is out before anything that follows can crash.
void say(int fd, const nlohmann::json& line) {
    const std::string text = line.dump() + "\n";
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n <= 0) return;
        done += static_cast<size_t>(n);
    }
}

int refuse(int fd, const char* stage, const Status& s) {
    say(fd, {{"ok", false}, {"stage", stage}, {"code", status_code_name(s.code())}, {"error", s.message()}});
    return 1;
}

}  // namespace

int plugin_probe_main(int in_fd, int out_fd) {
    // Background work: the daemon's engine and clients come first on a busy machine.
    setpriority(PRIO_PROCESS, 0, 10);
    std::string text;
    char buf[65536];
    for (;;) {
        const ssize_t n = ::read(in_fd, buf, sizeof buf);
        if (n <= 0) break;
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > max_request_bytes) break;
    }
    const auto req = nlohmann::json::parse(text, nullptr, false);
    auto bad = [&](const std::string& why) {
        say(out_fd, {{"ok", false}, {"stage", "request"}, {"code", "invalid_argument"},
                     {"error", "llmq-plugin-probe: bad request: " + why}});
        return 2;
    };
    if (text.size() > max_request_bytes) return bad("larger than 16 MiB");
    if (!req.is_object()) return bad("not a JSON object");
    if (!req.contains("path") || !req["path"].is_string()) return bad("path must be a string");
    if (!req.contains("kind") || !req["kind"].is_number_integer()) return bad("kind must be an integer");
    if (!req.contains("backend") || !req["backend"].is_number_integer())
        return bad("backend must be an integer");
    const std::string path = req["path"].get<std::string>();
    const int32_t kind = req["kind"].get<int32_t>();
    const int32_t backend = req["backend"].get<int32_t>();
    auto shapes = canary_shapes_from_json(req.value("shapes", nlohmann::json()));
    if (!shapes) return bad(shapes.status().message());
    std::string table;

    // The daemon's sealed copy, inherited; the name is only for messages.
    std::shared_ptr<const PluginFile> file;
    if (req.contains("fd")) {
        if (!req["fd"].is_number_integer() || req["fd"].get<int>() < 0) return bad("fd must be a descriptor number");
        auto adopted = PluginFile::adopt(req["fd"].get<int>(), path);
        if (!adopted) return bad(adopted.status().message());
        file = *adopted;
    }

    say(out_fd, {{"stage", "load"}});
    auto t = Clock::now();
    if (!file) {
        auto opened = PluginFile::open(path, PluginFile::default_max_size);
        if (!opened) return refuse(out_fd, "load", opened.status());
        file = *opened;
    }
    auto lib = PluginLibrary::load(*file, kind, backend);
    if (!lib) return refuse(out_fd, "load", lib.status());
    const double load_ms = ms_since(t);
    if (const auto tables = req.value("tables", nlohmann::json::object()); tables.is_object()) {
        auto it = tables.find((*lib)->name());
        if (it != tables.end() && it->is_string()) table = it->get<std::string>();
    }

    say(out_fd, {{"stage", "init"}});
    if (backend != LLMQ_BACKEND_CPU)
        return refuse(out_fd, "init",
                      unsupported("plugin " + path + ": this build has no " + backend_name(backend) +
                                  " devices to probe it on"));
    // A small CPU device of its own: two threads, so the plugin's parallel_for use is exercised.
    CpuDevice device(0, std::min(2, std::max(host_online_cores(), 1)), {}, uint64_t(8) << 30);
    t = Clock::now();
    std::promise<Expected<std::shared_ptr<PluginInstance>>> made;
    auto made_future = made.get_future();
    device.post([&] { made.set_value(PluginInstance::create(*lib, device, table)); });
    auto instance = made_future.get();
    if (!instance) return refuse(out_fd, "init", instance.status());
    const double init_ms = ms_since(t);

    say(out_fd, {{"stage", "canary"}});
    t = Clock::now();
    Status canary = run_canary_on_device(device, kind, **instance, nullptr, *shapes, CanaryTolerances{});
    if (!canary.ok())
        return refuse(out_fd, "canary", canary.with_context("plugin " + path));
    const double canary_ms = ms_since(t);

    say(out_fd, {{"stage", "shutdown"}});
    std::promise<void> closed;
    device.post([&] {
        instance->reset();
        closed.set_value();
    });
    closed.get_future().wait();
    say(out_fd, {{"ok", true}, {"load_ms", load_ms}, {"init_ms", init_ms}, {"canary_ms", canary_ms}});
    return 0;
}

}  // namespace llmq
