// One plugin swap, stage by stage; see plugin_swap.hpp.
#include "llmq/runtime/plugin_swap.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <future>
#include <thread>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/plugin_probe.hpp"

namespace llmq {

namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

}  // namespace

std::string utc_timestamp(std::chrono::system_clock::time_point t) {
    const std::time_t s = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[64];
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

namespace {

// Let go of instances on their own devices' workers, so that shutdown (and the dlclose of a
// library whose last instance this was) runs on the thread that made them, and wait for it.
void release_on_devices(std::vector<std::shared_ptr<PluginInstance>>& instances) {
    std::vector<std::future<void>> done;
    for (auto& inst : instances) {
        if (!inst) continue;
        Device& device = inst->device();
        auto task = std::make_shared<std::packaged_task<void()>>(
            [held = std::move(inst)]() mutable { held.reset(); });
        done.push_back(task->get_future());
        device.post([task] { (*task)(); });
    }
    for (auto& f : done) f.wait();
    instances.clear();
}

}  // namespace

double SwapReport::stage_ms(const std::string& name) const {
    for (const auto& s : stages)
        if (s.name == name) return s.ms;
    return 0;
}

nlohmann::json SwapReport::to_json() const {
    nlohmann::json j = {{"kind", plugin_kind_name(kind)},
                        {"requested", requested},
                        {"path", path},
                        {"reason", reason},
                        {"swapped", swapped},
                        {"message", message},
                        {"old", {{"name", old_name}, {"version", old_version}, {"path", old_path}}},
                        {"finished", utc_timestamp(finished)}};
    if (!refused_at.empty()) j["refused_at"] = refused_at;
    if (swapped) j["new"] = {{"name", new_name}, {"version", new_version}, {"path", path}};
    j["stages"] = nlohmann::json::array();
    double total = 0;
    for (const auto& s : stages) {
        j["stages"].push_back({{"stage", s.name}, {"ms", s.ms}});
        total += s.ms;
    }
    j["total_ms"] = total;
    return j;
}

PluginSwapper::PluginSwapper(PluginHost& host, SwapPolicy policy)
    : host_(host), policy_(std::move(policy)), cancel_fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

PluginSwapper::~PluginSwapper() {
    if (cancel_fd_ >= 0) ::close(cancel_fd_);
}

void PluginSwapper::cancel() {
    cancelled_.store(true);
    if (cancel_fd_ >= 0) {
        const uint64_t one = 1;
        (void)!::write(cancel_fd_, &one, sizeof one);
    }
}

Status PluginSwapper::stopping_status() {
    return unavailable("llmqd is stopping; swaps are cancelled");
}

SwapReport PluginSwapper::swap(int32_t kind, const std::string& name_or_path, const std::string& reason) {
    return run(kind, name_or_path, reason);
}

SwapReport PluginSwapper::reload(int32_t kind, const std::string& reason) {
    std::string path;
    {
        auto set = host_.snapshot();
        if (const auto& inst = set->of(kind, 0)) path = inst->library().path();
    }
    return run(kind, path, reason);
}

SwapReport PluginSwapper::run(int32_t kind, const std::string& requested, const std::string& reason) {
    std::lock_guard lock(mutex_);
    SwapReport r;
    r.kind = kind;
    r.requested = requested;
    r.reason = reason;
    const std::string kind_name = plugin_kind_name(kind);
    const std::vector<Device*>& devices = host_.devices();

    // What serves now.
    std::string serving = "no plugin";
    {
        auto set = host_.snapshot();
        if (const auto& inst = set->of(kind, 0)) {
            const PluginLibrary& lib = inst->library();
            r.old_name = lib.name();
            r.old_version = lib.version();
            r.old_path = lib.path();
            serving = r.old_name + " " + r.old_version + " from " + r.old_path;
        }
    }
    auto refuse = [&](const char* stage, const Status& why) -> SwapReport {
        r.refused_at = stage;
        r.message = kind_name + " swap refused at " + stage + ": " + why.message() + "; " + serving +
                    " keeps serving";
        r.finished = std::chrono::system_clock::now();
        log::warn("plugins: " + r.message + " (asked by " + reason + ")");
        return r;
    };

    if (cancelled()) return refuse("request", stopping_status());
    if (kind != LLMQ_PLUGIN_KIND_GEMM && kind != LLMQ_PLUGIN_KIND_ATTENTION && kind != LLMQ_PLUGIN_KIND_VISION)
        return refuse("request", invalid_argument("unknown plugin kind " + std::to_string(kind) +
                                                  "; use gemm, attention or vision"));
    if (r.old_path.empty())
        return refuse("request", unsupported("no " + kind_name + " plugin is loaded, so there is none to "
                                             "replace; set [plugins] " + kind_name + " and restart"));
    if (requested.empty()) return refuse("request", invalid_argument("no plugin name or path given"));
    r.path = plugin_path(host_.choice().dir, requested);
    // Read once: the probe, the checks and dlopen all get this sealed copy, never the name again,
    // so the file changing under the name during the swap cannot change what runs here.
    auto file = PluginFile::open(r.path, host_.choice().max_file_size);
    if (!file) return refuse("load", file.status());
    std::vector<int32_t> backends;
    for (Device* d : devices)
        if (std::find(backends.begin(), backends.end(), d->backend()) == backends.end())
            backends.push_back(d->backend());
    // The canary's inputs are host memory, which a CUDA plugin refuses (the GPU contract), so
    // no swap on CUDA devices could pass it: say so before anything is probed or loaded.
    if (std::find(backends.begin(), backends.end(), LLMQ_BACKEND_CUDA) != backends.end())
        return refuse("request",
                      unsupported("hot swap of a plugin on CUDA devices is not built yet (its canary runs on "
                                  "host memory; docs/cuda.md); set [plugins.cuda] " + kind_name +
                                  " and restart llmqd"));

    // probe
    if (policy_.probe) {
        const auto t = Clock::now();
        for (int32_t backend : backends) {
            ProbeRequest p;
            p.path = r.path;
            p.file = *file;
            p.cancel_fd = cancel_fd_;
            p.kind = kind;
            p.backend = backend;
            for (const auto& [name, table] : host_.choice().plugin_tables) p.tables[name] = table;
            p.shapes = policy_.shapes;
            p.timeout = policy_.probe_timeout;
            auto probed = run_plugin_probe(p);
            if (!probed) {
                r.stages.push_back({"probe", ms_since(t)});
                return refuse("probe", probed.status());
            }
        }
        r.stages.push_back({"probe", ms_since(t)});
    }

    if (cancelled()) return refuse("load", stopping_status());
    // load
    auto t = Clock::now();
    std::vector<std::shared_ptr<PluginLibrary>> libs(3);
    for (int32_t backend : backends) {
        auto lib = PluginLibrary::load(**file, kind, backend);
        if (!lib) {
            r.stages.push_back({"load", ms_since(t)});
            return refuse("load", lib.status());
        }
        libs[backend] = *lib;
    }
    r.new_name = libs[backends.front()]->name();
    r.new_version = libs[backends.front()]->version();
    r.stages.push_back({"load", ms_since(t)});

    // init: every device at once, each on its worker; all or none.
    t = Clock::now();
    std::vector<std::shared_ptr<PluginInstance>> made(devices.size());
    {
        std::vector<std::future<Expected<std::shared_ptr<PluginInstance>>>> pending;
        for (Device* d : devices) {
            auto lib = libs[d->backend()];
            auto table = host_.table_for(lib->name());
            auto task = std::make_shared<std::packaged_task<Expected<std::shared_ptr<PluginInstance>>()>>(
                [lib, d, table] { return PluginInstance::create(lib, *d, table); });
            pending.push_back(task->get_future());
            d->post([task] { (*task)(); });
        }
        Status failed;
        for (size_t i = 0; i < pending.size(); ++i) {
            auto inst = pending[i].get();
            if (inst) made[i] = *inst;
            else if (failed.ok()) failed = inst.status();
        }
        if (!failed.ok()) {
            release_on_devices(made);
            libs.clear();
            r.stages.push_back({"init", ms_since(t)});
            return refuse("init", failed.with_context("all or none of " + std::to_string(devices.size()) +
                                                      " device(s)"));
        }
    }
    r.stages.push_back({"init", ms_since(t)});

    // canary: inputs made here once; then case by case, every device at once, each against the
    // instance serving there now, so a device's engine steps wait for one case at most.
    t = Clock::now();
    {
        auto set = host_.snapshot();
        Status failed;
        auto canary = CanaryRun::prepare(kind, policy_.shapes, policy_.tolerances);
        if (!canary) failed = canary.status();
        for (size_t c = 0; failed.ok() && c < canary->cases(); ++c) {
            std::vector<std::future<Status>> pending;
            for (size_t i = 0; i < devices.size(); ++i) {
                PluginInstance* current = set->of(kind, i).get();
                PluginInstance* candidate = made[i].get();
                const CanaryRun* run = &*canary;
                auto task = std::make_shared<std::packaged_task<Status()>>(
                    [run, c, candidate, current] { return run->run_case(c, *candidate, current); });
                pending.push_back(task->get_future());
                devices[i]->post([task] { (*task)(); });
            }
            for (size_t i = 0; i < pending.size(); ++i) {
                Status s = pending[i].get();
                if (!s.ok() && failed.ok()) failed = s.with_context(devices[i]->info().name);
            }
        }
        if (!failed.ok()) {
            set.reset();
            release_on_devices(made);
            libs.clear();
            r.stages.push_back({"canary", ms_since(t)});
            return refuse("canary", failed.with_context("plugin " + r.path));
        }
    }
    r.stages.push_back({"canary", ms_since(t)});

    if (cancelled()) {
        release_on_devices(made);
        libs.clear();
        return refuse("publish", stopping_status());
    }
    // publish
    t = Clock::now();
    auto old = host_.publish_kind(kind, made);
    r.stages.push_back({"publish", ms_since(t)});
    made.clear();
    libs.clear();

    // retire: the steps that took the old set finish with it; then it is closed here.
    t = Clock::now();
    const auto give_up = Clock::now() + policy_.retire_timeout;
    while (old.use_count() > 1 && Clock::now() < give_up && !cancelled())
        std::this_thread::sleep_for(std::chrono::microseconds(200));
    std::vector<std::shared_ptr<PluginInstance>> retiring;
    if (old.use_count() == 1)
        for (size_t i = 0; i < devices.size(); ++i) retiring.push_back(old->of(kind, i));
    else
        log::warn("plugins: a step still holds the old " + kind_name + " plugin after " +
                  std::to_string(policy_.retire_timeout.count()) + " ms; it closes when that step ends");
    old.reset();
    release_on_devices(retiring);
    r.stages.push_back({"retire", ms_since(t)});

    r.swapped = true;
    r.finished = std::chrono::system_clock::now();
    r.message = kind_name + ": " + r.new_name + " " + r.new_version + " from " + r.path + " replaced " + serving;
    log::info("plugins: " + r.message + " (asked by " + reason + "; probe " + std::to_string(r.stage_ms("probe")) +
              " ms, load " + std::to_string(r.stage_ms("load")) + " ms, init " + std::to_string(r.stage_ms("init")) +
              " ms, canary " + std::to_string(r.stage_ms("canary")) + " ms, publish " +
              std::to_string(r.stage_ms("publish")) + " ms)");
    return r;
}

}  // namespace llmq
