// llmqd: the resident daemon. `llmqd --config FILE` serves in the foreground until SIGINT or
// SIGTERM; `llmqd --print-config` prints every key with its default.

#include "llmq/runtime/daemon.hpp"

int main(int argc, char** argv) { return llmq::daemon_main(argc, argv, "llmqd"); }
