// Reading the lines of an interactive session (llmq chat): line editing and history through
// libedit when stdin is a terminal and llmq was built with it, plain reads otherwise (pipes,
// tests, builds without libedit).
//
// Ctrl-C while a line is read ends that read with `interrupted` (the typed text is dropped),
// so the caller can say how to leave; it never ends the program. The caller owns SIGINT: it
// installs a handler that sets the flag passed to the constructor, without SA_RESTART.
#pragma once

#include <csignal>
#include <string>

namespace llmq::cli {

class LineEditor {
public:
    enum class Result { line, interrupted, end_of_input };

    // `interrupted` is the flag the caller's SIGINT handler sets; read() clears it.
    // `history_file`: where history is kept between sessions ("" = none).
    LineEditor(volatile std::sig_atomic_t* interrupted, std::string history_file);
    ~LineEditor();
    LineEditor(const LineEditor&) = delete;
    LineEditor& operator=(const LineEditor&) = delete;

    // Shows `prompt` (on stderr for plain reads) and reads one line into *line.
    Result read(const std::string& prompt, std::string* line);

    // Whether lines are edited (libedit on a terminal).
    bool editing() const { return editing_; }

private:
    volatile std::sig_atomic_t* interrupted_;
    std::string history_file_;
    bool editing_ = false;
};

// The default history file: $LLMQ_HISTORY_FILE, else ~/.llmq_history ("" without a home).
std::string default_history_file();

}  // namespace llmq::cli
