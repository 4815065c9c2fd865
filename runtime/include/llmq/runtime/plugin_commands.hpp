// llmqd's plugin control: the `plugins.*` commands on the instance socket, the SIGHUP reload
// and the [plugins] watch on the plugin files, all feeding one swap thread (plugin_swap.hpp).
//
// Commands (args → result):
//   plugins.list   {}                       → {"plugins": [{kind, backend, name, version, path,
//                                               loaded_since, loaded_since_ms, calls, errors,
//                                               devices}], "probe", "watch", "watched_dirs",
//                                               "recent": [the last swap reports]}
//   plugins.swap   {"kind", "path"}         → {"job": id}   path: a plugin name or a .so path
//   plugins.reload {"kind"} or {}           → {"job": id}   from the current path(s); {}: all
//   plugins.job    {"job": id}              → {"job", "state": "queued"|"running"|"done",
//                                               "reason", "reports": [SwapReport JSON]}
// A swap takes tens of milliseconds (a probe process, a canary on every device), so it never
// runs on the Asio thread that serves every client: the command queues it and returns a job id
// that the client polls (`llmq plugins swap` does this and prints the report). Jobs run one at a
// time in the order they came; the last 64 finished jobs are kept. At most [plugins] swap_queue
// jobs wait: one more is refused with "busy" and the reason (a reload from SIGHUP or the watch
// is then logged and dropped).
//
// SIGHUP: PluginHost::request_reload queues a reload of every loaded plugin.
//
// [plugins] watch = true: an inotify descriptor (read through a boost::asio stream_descriptor on
// the daemon's io_context) watches the folder of every plugin in use for IN_CLOSE_WRITE (a file
// written in place is complete) and IN_MOVED_TO (a file written elsewhere and renamed over it);
// such an event on the file a plugin was loaded from queues a reload of that plugin, unless one
// is already queued. Every plugin is loaded from a private copy, so overwriting the file in place
// never changes the code that runs.
//
// MPI (one shard per process): each rank has its own plugins, and a swap on rank 0 alone would
// split them; the commands refuse to swap there (a later release broadcasts swaps).
#pragma once

namespace boost::asio {
class io_context;
}

namespace llmq::ipc {
class Listener;
}

namespace llmq {

class ModelRuntime;
struct Config;

// Register the commands, start the swap thread, install the SIGHUP handler, start watching when
// configured. The state lives in the registered handlers and ends with the listener. Stopping
// never waits on a swap: the one running is cancelled (its probe killed; PluginSwapper::cancel),
// queued ones are dropped, and the swap thread is joined; if it is still stuck after 2 s (a
// plugin's init hanging inside the daemon) the process exits without it. `runtime` must
// outlive the listener.
// Thread: the io_context's thread (or before it runs).
void register_plugin_commands(boost::asio::io_context& io, ipc::Listener& listener, ModelRuntime& runtime,
                              const Config& config);

}  // namespace llmq
