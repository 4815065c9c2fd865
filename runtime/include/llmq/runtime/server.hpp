// llmqd's serving loop: the instance socket and every client's private region on one Boost.Asio
// thread, the engine on its own thread.
//
// Request path: a client's doorbell fires on the Asio thread, which polls the client's region
// (each request copied out once and validated by ipc::ServerRegion), answers pings itself,
// turns defects into error events, and submits generate requests to the engine with a sink
// that writes the client's response ring. The engine thread steps while there is work and
// sleeps when there is none.
//
// The connection is the lease: when a client's socket closes, every request it had is
// cancelled and its KV blocks return at the next step.
//
// Shutdown: SIGINT/SIGTERM (or the `shutdown` command) stop accepting, refuse new requests
// with "shutting down", wait for running requests up to [ipc] drain_timeout, cancel the rest
// and return 0. A fault that stops the daemon returns non-zero.
#pragma once

#include <memory>

#include "llmq/runtime/config.hpp"
#include "llmq/runtime/model_runtime.hpp"

namespace llmq {

struct ServerOptions {
    Config config;
    std::string config_path;  // for logs and status
};

// Run llmqd until it is told to stop. Loads the model (after taking the instance lock, so a
// second daemon refuses at once). Returns the process exit code.
int run_server(const ServerOptions& options, MpiWorld* world);

// SIGINT/SIGTERM/SIGHUP wait (pending) from process start until run_server has its handlers,
// so a signal in the first milliseconds still drains cleanly instead of killing the daemon.
void block_stop_signals();
void unblock_stop_signals();

}  // namespace llmq
