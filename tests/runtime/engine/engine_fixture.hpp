// Small random models and a collecting sink for engine tests.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_runtime.hpp"
#include "random_llama.hpp"

namespace llmq::test {

// A temporary folder removed at the end of the test.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        path = std::filesystem::temp_directory_path() /
               ("llmq-engine-test-" + std::to_string(getpid()) + "-" + std::to_string(counter()++));
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    std::string file(const std::string& name) const { return (path / name).string(); }
    static int& counter() {
        static int c = 0;
        return c;
    }
};

inline std::string make_model(const TempDir& dir, RandomLlamaSpec spec, const std::string& name) {
    const std::string path = dir.file(name);
    Status s = write_random_llama(spec, path);
    if (!s.ok()) throw std::runtime_error(s.message());
    return path;
}

// Collects everything one request produced.
class CollectSink final : public RequestSink {
public:
    void on_token(int32_t, std::string_view text, float) override { text_ += text; }
    void on_finish(const FinishInfo& info) override {
        info_ = info;
        done_ = true;
    }
    bool wants_logits() const override { return keep_logits_ && first_logits_.empty(); }
    void on_logits(std::span<const float> l) override { first_logits_.assign(l.begin(), l.end()); }

    bool done() const { return done_; }
    const FinishInfo& info() const { return info_; }
    const std::string& streamed_text() const { return text_; }
    std::vector<float> first_logits_;
    bool keep_logits_ = false;

private:
    bool done_ = false;
    FinishInfo info_;
    std::string text_;
};

// Tests read their own output; the runtime's info lines would drown it.
inline const bool quiet_logs = [] {
    log::set_level(log::level::warn);
    return true;
}();

inline Config config_for(const std::string& model) {
    Config c;
    c.model.path = model;
    c.model.context_length = 256;
    c.devices.cpu_memory_limit = 1ull << 30;
    return c;
}

inline std::unique_ptr<ModelRuntime> load(const Config& c) {
    auto rt = ModelRuntime::load(c);
    if (!rt) throw std::runtime_error(rt.status().message());
    return std::move(*rt);
}

inline void run_until_done(Engine& e, const std::vector<std::shared_ptr<CollectSink>>& sinks) {
    for (int guard = 0; guard < 100000; ++guard) {
        bool all = true;
        for (const auto& s : sinks) all = all && s->done();
        if (all) return;
        e.step();
    }
    throw std::runtime_error("engine did not finish");
}

inline GenerateRequest request(std::vector<int32_t> prompt, int32_t max_tokens, float temperature,
                               uint64_t seed) {
    GenerateRequest r;
    r.prompt_tokens = std::move(prompt);
    r.sampling.max_tokens = max_tokens;
    r.sampling.temperature = temperature;
    r.sampling.seed = seed;
    r.sampling.seed_set = true;
    r.sampling.ignore_eos = true;
    return r;
}

// The log lines written while `f` runs, at info level (through a file in `dir`).
template <typename F>
std::string logged(const TempDir& dir, F&& f) {
    const std::string path = dir.file("log.txt");
    std::string why;
    if (!log::set_file(path, &why)) throw std::runtime_error("log file " + path + ": " + why);
    const log::level before = log::current_level();
    log::set_level(log::level::info);
    f();
    log::set_level(before);
    if (!log::set_file("", &why)) throw std::runtime_error("log back to stderr: " + why);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
}

}  // namespace llmq::test
