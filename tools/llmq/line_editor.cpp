#include "line_editor.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#ifdef LLMQ_HAVE_LIBEDIT
#include <editline/readline.h>
#endif

namespace llmq::cli {
namespace {

volatile std::sig_atomic_t* g_flag = nullptr;

// Reads one byte for the line editor: a read that SIGINT interrupts ends the line (EOF to
// libedit, which restores the terminal), so Ctrl-C is seen at once instead of retried.
[[maybe_unused]] int read_char(FILE* in) {
    for (;;) {
        unsigned char c = 0;
        const ssize_t n = ::read(fileno(in), &c, 1);
        if (n == 1) return c;
        if (n < 0 && errno == EINTR) {
            if (g_flag != nullptr && *g_flag) return EOF;
            continue;
        }
        return EOF;
    }
}

}  // namespace

std::string default_history_file() {
    if (const char* f = std::getenv("LLMQ_HISTORY_FILE")) return f;
    if (const char* home = std::getenv("HOME"); home && *home) return std::string(home) + "/.llmq_history";
    return "";
}

LineEditor::LineEditor(volatile std::sig_atomic_t* interrupted, std::string history_file)
    : interrupted_(interrupted), history_file_(std::move(history_file)) {
    g_flag = interrupted;
#ifdef LLMQ_HAVE_LIBEDIT
    editing_ = ::isatty(STDIN_FILENO) && ::isatty(STDERR_FILENO);
    if (editing_) {
        rl_catch_signals = 0;  // SIGINT stays the caller's
        rl_getc_function = read_char;
        rl_outstream = stderr;  // the prompt goes where llmq's other chatter goes
        using_history();
        stifle_history(1000);
        if (!history_file_.empty()) read_history(history_file_.c_str());
    }
#endif
}

LineEditor::~LineEditor() {
#ifdef LLMQ_HAVE_LIBEDIT
    if (editing_ && !history_file_.empty()) write_history(history_file_.c_str());
#endif
    g_flag = nullptr;
}

LineEditor::Result LineEditor::read(const std::string& prompt, std::string* line) {
    *interrupted_ = 0;
    line->clear();
#ifdef LLMQ_HAVE_LIBEDIT
    if (editing_) {
        char* text = readline(prompt.c_str());
        if (*interrupted_) {
            std::free(text);
            *interrupted_ = 0;
            return Result::interrupted;
        }
        if (text == nullptr) return Result::end_of_input;
        *line = text;
        std::free(text);
        if (!line->empty()) add_history(line->c_str());
        return Result::line;
    }
#endif
    std::fputs(prompt.c_str(), stderr);
    std::fflush(stderr);
    for (;;) {
        char c = 0;
        const ssize_t n = ::read(STDIN_FILENO, &c, 1);
        if (n == 1) {
            if (c == '\n') return Result::line;
            line->push_back(c);
            continue;
        }
        if (n < 0 && errno == EINTR) {
            if (*interrupted_) {
                *interrupted_ = 0;
                return Result::interrupted;
            }
            continue;
        }
        return line->empty() ? Result::end_of_input : Result::line;
    }
}

}  // namespace llmq::cli
