#include "bench_model.hpp"

#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <map>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/llama_layout.hpp"

namespace llmq::bench {

namespace {

// The temporary model is large (2.2 GB at the TinyLlama shape): a benchmark stopped with
// Ctrl-C or SIGTERM removes it too. The handler only calls unlink and _exit, both
// async-signal-safe, on a path copied here before the handler is installed.
char g_temporary_path[4096] = {};

void remove_and_exit(int signal_number) {
    if (g_temporary_path[0] != '\0') ::unlink(g_temporary_path);
    ::_exit(128 + signal_number);
}

}  // namespace

void add_model_options(CLI::App& app, ModelChoice& c) {
    c.shape.dim = 2048;
    c.shape.layers = 22;
    c.shape.heads = 32;
    c.shape.kv_heads = 4;
    c.shape.ffn = 5632;
    c.shape.vocab = 32000;
    c.shape.name = "llmq-bench";
    app.add_option("--model", c.path, "GGUF model to run (default: make a random one of the shape below)")
        ->check(CLI::ExistingFile);
    app.add_option("--dim", c.shape.dim, "hidden size")->capture_default_str();
    app.add_option("--layers", c.shape.layers, "transformer blocks")->capture_default_str();
    app.add_option("--heads", c.shape.heads, "attention heads")->capture_default_str();
    app.add_option("--kv-heads", c.shape.kv_heads, "key/value heads")->capture_default_str();
    app.add_option("--ffn", c.shape.ffn, "feed-forward hidden size")->capture_default_str();
    app.add_option("--vocab", c.shape.vocab, "vocabulary size")->capture_default_str();
    app.add_option("--dtype", c.dtype, "weight dtype of the made model")
        ->check(CLI::IsMember({"f32", "f16", "bf16", "q8_0"}))
        ->capture_default_str();
}

Expected<BenchModel> BenchModel::prepare(const ModelChoice& choice) {
    BenchModel m;
    if (!choice.path.empty()) {
        m.path_ = choice.path;
        return m;
    }
    static const std::map<std::string, kernels::dtype> dtypes{{"f32", kernels::dtype::f32},
                                                              {"f16", kernels::dtype::f16},
                                                              {"bf16", kernels::dtype::bf16},
                                                              {"q8_0", kernels::dtype::q8_0}};
    const auto dtype = dtypes.find(choice.dtype);
    if (dtype == dtypes.end())
        return invalid_argument("--dtype " + choice.dtype + ": not one of f32, f16, bf16, q8_0");
    RandomLlamaSpec spec = choice.shape;
    spec.dtype = dtype->second;

    const std::filesystem::path dir = std::filesystem::temp_directory_path();
    std::string pattern = (dir / "llmq-bench-XXXXXX.gguf").string();
    const int fd = ::mkstemps(pattern.data(), 5);
    if (fd < 0)
        return io_error("bench model: cannot create a file in " + dir.string() + ": " +
                        std::strerror(errno) + "; set TMPDIR to a writable folder");
    ::close(fd);
    m.path_ = pattern;
    m.temporary_ = true;
    if (pattern.size() < sizeof g_temporary_path) {
        std::memcpy(g_temporary_path, pattern.c_str(), pattern.size() + 1);
        std::signal(SIGINT, remove_and_exit);
        std::signal(SIGTERM, remove_and_exit);
    }
    const auto start = std::chrono::steady_clock::now();
    if (Status s = write_random_llama(spec, m.path_); !s.ok()) return s;  // ~BenchModel removes it
    m.make_seconds_ = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return m;
}

BenchModel::BenchModel(BenchModel&& other) noexcept
    : path_(std::move(other.path_)), temporary_(other.temporary_), make_seconds_(other.make_seconds_) {
    other.temporary_ = false;
    other.path_.clear();
}

BenchModel::~BenchModel() {
    if (!temporary_) return;
    std::error_code ignored;
    std::filesystem::remove(path_, ignored);
    g_temporary_path[0] = '\0';
}

double TokenCost::prefill_flops(int64_t prompt) const {
    const double p = static_cast<double>(prompt);
    const double attention = 4.0 * n_layer * n_head * head_dim * (p * (p + 1) / 2);
    return 2.0 * static_cast<double>(layer_matmul_params) * p +
           2.0 * static_cast<double>(lm_head_params) + attention;
}

Expected<TokenCost> token_cost(const std::string& gguf_path) {
    GgufFile::Options options;
    options.require_data = false;  // the header is all this needs
    auto file = GgufFile::open(gguf_path, options);
    if (!file) return file.status();
    auto layout = load_llama_layout(**file);
    if (!layout) return layout.status();
    const LlamaLayout& l = *layout;
    TokenCost c;
    c.n_layer = l.hp.n_layer;
    c.n_embd = l.hp.n_embd;
    c.n_head = l.hp.n_head;
    c.head_dim = l.hp.head_dim;
    c.n_vocab = l.hp.n_vocab;
    c.file_weight_bytes = l.weight_bytes();
    c.weight_dtype = kernels::dtype_name(l.layers.at(0).wq->dtype);
    uint64_t layer_bytes = 0;
    for (const LlamaLayerTensors& t : l.layers) {
        for (const GgufTensor* m : {t.wq, t.wk, t.wv, t.wo, t.ffn_gate, t.ffn_up, t.ffn_down}) {
            layer_bytes += m->size_bytes;
            c.layer_matmul_params += static_cast<uint64_t>(m->elements());
        }
        for (const GgufTensor* v : {t.attn_norm, t.ffn_norm, t.bq, t.bk, t.bv})
            if (v) layer_bytes += v->size_bytes;
    }
    c.lm_head_params = static_cast<uint64_t>(l.output->elements());
    c.decode_weight_bytes = layer_bytes + l.output_norm->size_bytes + l.output->size_bytes;
    if (l.output != l.token_embd) c.decode_weight_bytes += l.token_embd->row_bytes();
    c.kv_bytes_per_position = 2ull * 2ull * l.hp.n_layer * l.hp.n_head_kv * l.hp.head_dim;
    return c;
}

}  // namespace llmq::bench
