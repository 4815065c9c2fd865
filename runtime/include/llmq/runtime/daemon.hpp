// The daemon's command line, shared by `llmqd` and `llmq serve`.
#pragma once

namespace llmq {

// Parse llmqd's arguments (argv[0] is the program name as the user typed it), set up logging
// and MPI, and run the server. Returns the process exit code: 0 after a clean stop (signal or
// shutdown command), non-zero when the daemon could not start or stopped on a fault.
int daemon_main(int argc, char** argv, const char* program);

}  // namespace llmq
