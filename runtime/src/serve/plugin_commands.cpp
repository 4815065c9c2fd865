// llmqd's plugin control: commands, SIGHUP, the file watch, and the swap thread behind them.
// See plugin_commands.hpp.
#include "llmq/runtime/plugin_commands.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include <boost/asio.hpp>

#include "llmq/ipc/listener.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/model_file.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_runtime.hpp"
#include "llmq/runtime/plugin_swap.hpp"

namespace llmq {

namespace {

using json = nlohmann::json;
namespace fs = std::filesystem;

constexpr size_t kept_jobs = 64;
constexpr int32_t kinds[] = {LLMQ_PLUGIN_KIND_GEMM, LLMQ_PLUGIN_KIND_ATTENTION, LLMQ_PLUGIN_KIND_VISION};

std::string normal_path(const std::string& p) {
    std::error_code ec;
    auto a = fs::absolute(p, ec);
    return (ec ? fs::path(p) : a).lexically_normal().string();
}

// The canary's shapes from the model's header (the runtime keeps its layout private).
CanaryShapes shapes_for(ModelRuntime& runtime) {
    GgufFile::Options o;
    o.require_data = false;
    o.allow_unsupported_types = true;
    auto file = open_model_file(runtime.model_path(), o);
    if (file) {
        auto layout = load_llama_layout(**file);
        if (layout)
            return canary_shapes_for_model(*layout, runtime.plan().parallel.tensor, runtime.plan().block_size,
                                           static_cast<int32_t>(runtime.executor().options().kv_dtype));
        log::warn("plugins: canary shapes: " + layout.status().message() + "; using small default shapes");
    } else {
        log::warn("plugins: canary shapes: " + file.status().message() + "; using small default shapes");
    }
    return default_canary_shapes();
}

class PluginControl : public std::enable_shared_from_this<PluginControl> {
public:
    PluginControl(boost::asio::io_context& io, ModelRuntime& runtime, const Config& config)
        : io_(io), host_(runtime.plugins()), watch_enabled_(config.plugins.watch),
          queue_limit_(static_cast<size_t>(config.plugins.swap_queue)) {
        SwapPolicy policy;
        policy.probe = config.plugins.probe;
        policy.tolerances = {config.plugins.tolerance_f32, config.plugins.tolerance_f16,
                             config.plugins.tolerance_bf16, config.plugins.tolerance_q8_0};
        policy.shapes = shapes_for(runtime);
        swapper_ = std::make_unique<PluginSwapper>(host_, std::move(policy));
        // With MPI each process holds one shard of a larger group and its own plugins.
        split_across_processes_ = static_cast<int32_t>(runtime.executor().shards().size()) !=
                                  runtime.plan().parallel.devices();
    }

    // Shutdown never waits on a swap: the running one is cancelled (its probe killed, the
    // queued ones dropped) and the swap thread gets a short grace to leave; a swap stuck
    // past it (a plugin's init hanging inside the daemon) is left behind and the process
    // exits without it.
    ~PluginControl() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        swapper_->cancel();
        cv_.notify_all();
        if (worker_.joinable()) {
            std::unique_lock lock(mutex_);
            const bool left = cv_.wait_for(lock, stop_grace, [this] { return worker_left_; });
            const std::string stuck = running_what_;
            lock.unlock();
            if (left) {
                worker_.join();
            } else {
                log::error("plugins: the swap thread is stuck in " + stuck + " and did not stop within " +
                           std::to_string(stop_grace.count()) + " ms; stopping without waiting for it");
                std::fflush(nullptr);
                std::_Exit(0);
            }
        }
        if (watch_) {
            boost::system::error_code ec;
            watch_->close(ec);
        }
    }

    void start() {
        worker_ = std::thread([this] { worker_main(); });
        std::weak_ptr<PluginControl> weak = weak_from_this();
        host_.set_reload_handler([weak](const std::string& why) {
            if (auto self = weak.lock()) self->reload_all(why);
            else log::info(why + ": the daemon is stopping; no plugin reload");
        });
        if (watch_enabled_) start_watch();
    }

    // ---- commands (Asio thread)

    ipc::Result<json> list() {
        auto set = host_.snapshot();
        json plugins = json::array();
        for (int32_t kind : kinds) {
            const auto& first = set->of(kind, 0);
            if (!first) continue;
            uint64_t calls = 0, errors = 0;
            for (size_t i = 0; i < set->devices.size(); ++i)
                if (const auto& inst = set->of(kind, i)) {
                    calls += inst->calls();
                    errors += inst->errors();
                }
            const auto& d = first->library().descriptor();
            const auto since = set->since(kind);
            plugins.push_back(
                {{"kind", plugin_kind_name(kind)}, {"backend", backend_name(d.backend)}, {"name", d.name},
                 {"version", d.version}, {"path", first->library().path()}, {"loaded_since", utc_timestamp(since)},
                 {"loaded_since_ms",
                  std::chrono::duration_cast<std::chrono::milliseconds>(since.time_since_epoch()).count()},
                 {"calls", calls}, {"errors", errors}, {"devices", set->devices.size()}});
        }
        json recent = json::array();
        json dirs = json::array();
        {
            std::lock_guard lock(mutex_);
            for (auto it = jobs_.rbegin(); it != jobs_.rend() && recent.size() < 16; ++it)
                for (const auto& r : it->reports) recent.push_back(r.to_json());
        }
        for (const auto& [wd, dir] : watched_) dirs.push_back(dir);
        return json{{"plugins", plugins}, {"probe", swapper_->policy().probe}, {"watch", watch_enabled_},
                    {"watched_dirs", dirs}, {"recent", recent}};
    }

    ipc::Result<json> swap(const json& args) {
        if (split_across_processes_) return mpi_refusal("plugins.swap");
        if (!args.is_object() || !args.contains("kind") || !args["kind"].is_string())
            return ipc::make_error(ipc::ErrorCode::invalid_argument,
                                   "plugins.swap: args.kind must be \"gemm\", \"attention\" or \"vision\"");
        const int32_t kind = plugin_kind_from_name(args["kind"].get<std::string>());
        if (kind == 0)
            return ipc::make_error(ipc::ErrorCode::invalid_argument,
                                   "plugins.swap: kind \"" + args["kind"].get<std::string>() +
                                       "\" is not one of gemm, attention, vision");
        if (!args.contains("path") || !args["path"].is_string() || args["path"].get<std::string>().empty() ||
            args["path"].get<std::string>().size() > 4096)
            return ipc::make_error(ipc::ErrorCode::invalid_argument,
                                   "plugins.swap: args.path must be a plugin name or the path of its .so");
        return queued("plugins.swap", queue({{kind, args["path"].get<std::string>()}}, "command", false));
    }

    ipc::Result<json> reload(const json& args) {
        if (split_across_processes_) return mpi_refusal("plugins.reload");
        if (args.is_object() && args.contains("kind") && !args["kind"].is_null()) {
            const int32_t kind = args["kind"].is_string() ? plugin_kind_from_name(args["kind"].get<std::string>()) : 0;
            if (kind == 0)
                return ipc::make_error(ipc::ErrorCode::invalid_argument,
                                       "plugins.reload: args.kind must be \"gemm\", \"attention\" or \"vision\"");
            return queued("plugins.reload", queue({{kind, ""}}, "reload", false));
        }
        return queued("plugins.reload", queue(loaded_kinds(), "reload", false));
    }

    ipc::Result<json> job(const json& args) {
        if (!args.is_object() || !args.contains("job") || !args["job"].is_number_unsigned())
            return ipc::make_error(ipc::ErrorCode::invalid_argument, "plugins.job: args.job must be a job id");
        const uint64_t id = args["job"].get<uint64_t>();
        std::lock_guard lock(mutex_);
        for (const auto& j : jobs_) {
            if (j.id != id) continue;
            json reports = json::array();
            for (const auto& r : j.reports) reports.push_back(r.to_json());
            const char* state = j.state == Job::queued ? "queued" : j.state == Job::running ? "running" : "done";
            return json{{"job", id}, {"state", state}, {"reason", j.reason}, {"reports", reports}};
        }
        return ipc::make_error(ipc::ErrorCode::not_found,
                               "plugins.job: no job " + std::to_string(id) + " (only the last 64 are kept)");
    }

private:
    struct Item {
        int32_t kind;
        std::string path;  // "" = reload from the current path
    };
    struct Job {
        enum State { queued, running, done };
        uint64_t id = 0;
        std::vector<Item> items;
        std::string reason;
        State state = queued;
        std::vector<SwapReport> reports;
    };

    static ipc::Error mpi_refusal(const char* command) {
        return ipc::make_error(ipc::ErrorCode::invalid_argument,
                               std::string(command) + ": this llmqd is one rank of an MPI group and each rank "
                                                      "holds its own plugins; swapping while serving is not "
                                                      "supported there yet; restart the group with the new plugin");
    }

    std::vector<Item> loaded_kinds() {
        std::vector<Item> items;
        auto set = host_.snapshot();
        for (int32_t kind : kinds)
            if (set->of(kind, 0)) items.push_back({kind, ""});
        return items;
    }

    ipc::Result<json> queued(const char* command, const Expected<uint64_t>& id) {
        if (!id) return ipc::make_error(ipc::ErrorCode::busy, std::string(command) + ": " + id.status().message());
        return json{{"job", *id}};
    }

    // Queue a job; with coalesce, a job for the same reason and items already waiting is reused.
    // Refused when queue_limit_ jobs already wait, or when the daemon is stopping.
    Expected<uint64_t> queue(std::vector<Item> items, const std::string& reason, bool coalesce) {
        std::lock_guard lock(mutex_);
        if (stopping_) return unavailable("llmqd is stopping; no more plugin swaps");
        size_t waiting = 0;
        for (const auto& j : jobs_) waiting += j.state == Job::queued;
        if (coalesce) {
            for (const auto& j : jobs_) {
                if (j.state != Job::queued || j.reason != reason || j.items.size() != items.size()) continue;
                bool same = true;
                for (size_t i = 0; i < items.size(); ++i)
                    same = same && j.items[i].kind == items[i].kind && j.items[i].path == items[i].path;
                if (same) return j.id;
            }
        }
        if (waiting >= queue_limit_)
            return unavailable(std::to_string(waiting) + " plugin swap jobs are already waiting, the most "
                               "[plugins] swap_queue allows; try again when they have run (plugins.job)");
        Job j;
        j.id = next_job_++;
        j.items = std::move(items);
        j.reason = reason;
        jobs_.push_back(std::move(j));
        // Forget the oldest finished jobs.
        size_t finished = 0;
        for (const auto& x : jobs_) finished += x.state == Job::done;
        while (finished > kept_jobs && jobs_.front().state == Job::done) {
            jobs_.pop_front();
            --finished;
        }
        cv_.notify_all();
        return jobs_.back().id;
    }

    void reload_all(const std::string& why) {
        if (split_across_processes_) {
            log::warn(why + ": " + mpi_refusal("reload").message);
            return;
        }
        log::info(why + ": reloading every plugin from its file");
        if (auto id = queue(loaded_kinds(), why, true); !id) log::warn(why + ": no reload: " + id.status().message());
    }

    void worker_main() {
        std::unique_lock lock(mutex_);
        for (;;) {
            cv_.wait(lock, [this] {
                if (stopping_) return true;
                for (const auto& j : jobs_)
                    if (j.state == Job::queued) return true;
                return false;
            });
            if (stopping_) break;
            Job* job = nullptr;
            for (auto& j : jobs_)
                if (j.state == Job::queued) {
                    job = &j;
                    break;
                }
            job->state = Job::running;
            const uint64_t id = job->id;
            const std::vector<Item> items = job->items;
            const std::string reason = job->reason;
            running_what_ = "job " + std::to_string(id) + " (" + reason + ")";
            lock.unlock();
            std::vector<SwapReport> reports;
            for (const auto& item : items)
                reports.push_back(item.path.empty() ? swapper_->reload(item.kind, reason)
                                                    : swapper_->swap(item.kind, item.path, reason));
            lock.lock();
            running_what_.clear();
            // jobs_ only loses finished jobs, so this one is still there.
            for (auto& j : jobs_)
                if (j.id == id) {
                    j.reports = std::move(reports);
                    j.state = Job::done;
                }
            if (watch_ && !stopping_) {
                std::weak_ptr<PluginControl> weak = weak_from_this();
                boost::asio::post(io_, [weak] {
                    if (auto self = weak.lock()) self->refresh_watches();
                });
            }
        }
        worker_left_ = true;
        cv_.notify_all();
    }

    // ---- the watch (Asio thread)

    void start_watch() {
        const int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (fd < 0) {
            log::warn(std::string("[plugins] watch: inotify_init1 failed (") + std::strerror(errno) +
                      "); plugin files are not watched");
            return;
        }
        watch_ = std::make_unique<boost::asio::posix::stream_descriptor>(io_, fd);
        refresh_watches();
        read_events();
    }

    // Watch the folder of every plugin in use (and [plugins] dir).
    void refresh_watches() {
        if (!watch_) return;
        std::vector<std::string> dirs = {normal_path(host_.choice().dir)};
        auto set = host_.snapshot();
        for (int32_t kind : kinds)
            if (const auto& inst = set->of(kind, 0))
                dirs.push_back(fs::path(normal_path(inst->library().path())).parent_path().string());
        for (const auto& dir : dirs) {
            bool known = false;
            for (const auto& [wd, d] : watched_) known = known || d == dir;
            if (known) continue;
            const int wd = inotify_add_watch(watch_->native_handle(), dir.c_str(), IN_CLOSE_WRITE | IN_MOVED_TO);
            if (wd < 0) {
                log::warn("[plugins] watch: cannot watch " + dir + " (" + std::strerror(errno) + ")");
                continue;
            }
            watched_[wd] = dir;
            log::info("[plugins] watch: watching " + dir);
        }
    }

    void read_events() {
        std::weak_ptr<PluginControl> weak = weak_from_this();
        watch_->async_read_some(boost::asio::buffer(events_),
                                [weak](const boost::system::error_code& ec, size_t n) {
                                    auto self = weak.lock();
                                    if (!self || ec) return;
                                    self->on_events(n);
                                    self->read_events();
                                });
    }

    void on_events(size_t n) {
        auto set = host_.snapshot();
        std::vector<Item> due;
        for (size_t at = 0; at + sizeof(inotify_event) <= n;) {
            inotify_event e;
            std::memcpy(&e, events_.data() + at, sizeof e);
            const size_t next = at + sizeof(inotify_event) + e.len;
            if (next > n) break;
            std::string name;
            if (e.len > 0) name = std::string(events_.data() + at + sizeof(inotify_event)).substr(0, e.len);
            at = next;
            auto dir = watched_.find(e.wd);
            if (dir == watched_.end() || name.empty()) continue;
            const std::string changed = (fs::path(dir->second) / name).lexically_normal().string();
            for (int32_t kind : kinds) {
                const auto& inst = set->of(kind, 0);
                if (!inst || normal_path(inst->library().path()) != changed) continue;
                log::info(std::string("[plugins] watch: ") + changed + " was " +
                          ((e.mask & IN_MOVED_TO) ? "replaced" : "rewritten") + "; reloading the " +
                          plugin_kind_name(kind) + " plugin");
                due.push_back({kind, ""});
            }
        }
        if (split_across_processes_ && !due.empty()) {
            log::warn("[plugins] watch: " + mpi_refusal("reload").message);
            return;
        }
        for (const auto& item : due)
            if (auto id = queue({item}, "watch", true); !id)
                log::warn("[plugins] watch: no reload: " + id.status().message());
    }

    boost::asio::io_context& io_;
    PluginHost& host_;
    std::unique_ptr<PluginSwapper> swapper_;
    bool watch_enabled_ = false;
    bool split_across_processes_ = false;

    static constexpr std::chrono::milliseconds stop_grace{2000};
    size_t queue_limit_ = 16;  // [plugins] swap_queue

    std::mutex mutex_;  // guards jobs_, next_job_, stopping_, worker_left_, running_what_
    std::condition_variable cv_;
    std::deque<Job> jobs_;
    uint64_t next_job_ = 1;
    bool stopping_ = false;
    bool worker_left_ = false;
    std::string running_what_;  // the job the swap thread runs, for the stop message
    std::thread worker_;

    std::unique_ptr<boost::asio::posix::stream_descriptor> watch_;  // Asio thread only
    std::map<int, std::string> watched_;                             // watch descriptor → folder
    std::array<char, 64 * 1024> events_{};
};

}  // namespace

void register_plugin_commands(boost::asio::io_context& io, ipc::Listener& listener, ModelRuntime& runtime,
                              const Config& config) {
    auto control = std::make_shared<PluginControl>(io, runtime, config);
    control->start();
    listener.add_command("plugins.list", [control](ipc::Connection&, const json&) { return control->list(); });
    listener.add_command("plugins.swap", [control](ipc::Connection&, const json& a) { return control->swap(a); });
    listener.add_command("plugins.reload", [control](ipc::Connection&, const json& a) { return control->reload(a); });
    listener.add_command("plugins.job", [control](ipc::Connection&, const json& a) { return control->job(a); });
}

}  // namespace llmq
