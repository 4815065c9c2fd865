// llmq-plugin-probe: loads one plugin, inits it and runs the canary on it, reporting each stage,
// so that llmqd never runs a new plugin's code before a process it can lose has survived it.
// Request on stdin, JSON lines on stdout, the plugin's own logs on stderr (plugin_probe.hpp).
#include "llmq/runtime/plugin_probe.hpp"

int main() { return llmq::plugin_probe_main(0, 1); }
