// The model maker's files open, pass load_llama_layout with the requested shapes, hold sane
// deterministic weights, and a Llama-3.1-70B-shaped header-only file is made at once.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <iterator>

#include "handcrafted_gguf.hpp"
#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "import_manifest.hpp"
#include "random_llama.hpp"

using namespace llmq;
using llmq::test::contains;
using llmq::test::ScratchDir;

namespace {

struct Made {
    std::shared_ptr<const GgufFile> file;
    LlamaLayout layout;
};

Made make(const ScratchDir& dir, const RandomLlamaSpec& spec, const std::string& name = "m.gguf") {
    std::string path = dir.file(name);
    Status s = write_random_llama(spec, path);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
    auto f = GgufFile::open(path, GgufFile::Options{.require_data = !spec.header_only});
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    auto L = load_llama_layout(**f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    return {*f, *L};
}

struct Moments {
    double mean;
    double stddev;
    bool finite;
};

Moments moments(const GgufTensor& t) {
    std::vector<float> row(static_cast<size_t>(t.row_length()));
    double sum = 0, sq = 0;
    bool finite = true;
    for (int64_t r = 0; r < t.rows(); ++r) {
        kernels::row_to_f32(t.dtype, t.data + r * t.row_bytes(), row.data(), t.row_length());
        for (float v : row) {
            finite = finite && std::isfinite(v);
            sum += v;
            sq += double(v) * v;
        }
    }
    double n = double(t.elements());
    double mean = sum / n;
    return {mean, std::sqrt(std::max(0.0, sq / n - mean * mean)), finite};
}

std::vector<char> slurp(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST_CASE("make_model_writes_a_loadable_model_in_every_dtype") {
    ScratchDir dir;
    for (kernels::dtype dt : {kernels::dtype::f32, kernels::dtype::f16, kernels::dtype::bf16,
                              kernels::dtype::q8_0}) {
        INFO(kernels::dtype_name(dt));
        RandomLlamaSpec spec;
        spec.dtype = dt;
        spec.ffn = 96;
        Made m = make(dir, spec);
        const LlamaHParams& hp = m.layout.hp;
        CHECK(hp.n_embd == 64);
        CHECK(hp.n_layer == 2);
        CHECK(hp.n_head == 4);
        CHECK(hp.n_head_kv == 2);
        CHECK(hp.n_ff == 96);
        CHECK(hp.n_vocab == 512);
        CHECK(hp.n_ctx_train == 2048);
        CHECK_FALSE(hp.tied_output);
        CHECK(m.layout.token_embd->dtype == dt);
        CHECK(m.layout.layers[1].ffn_down->dtype == dt);
        CHECK(m.layout.layers[1].ffn_norm->dtype == kernels::dtype::f32);
        CHECK(m.layout.layers[0].wk->shape == std::vector<int64_t>{64, 32});

        // Matmul weights: mean 0, stddev 1/sqrt(inputs); norms 1 +- 0.1.
        Moments q = moments(*m.layout.layers[0].wq);
        CHECK(q.finite);
        CHECK(std::abs(q.mean) < 0.01);
        CHECK(q.stddev == doctest::Approx(1.0 / 8.0).epsilon(0.08));
        Moments down = moments(*m.layout.layers[1].ffn_down);
        CHECK(down.stddev == doctest::Approx(1.0 / std::sqrt(96.0)).epsilon(0.08));
        Moments norm = moments(*m.layout.layers[0].attn_norm);
        CHECK(norm.mean == doctest::Approx(1.0).epsilon(0.05));
        CHECK(norm.stddev == doctest::Approx(0.1).epsilon(0.3));
    }
}

TEST_CASE("make_model_is_deterministic_in_its_seed") {
    ScratchDir dir;
    RandomLlamaSpec spec;
    spec.dtype = kernels::dtype::f16;
    REQUIRE(write_random_llama(spec, dir.file("a.gguf")).ok());
    REQUIRE(write_random_llama(spec, dir.file("b.gguf")).ok());
    spec.seed = 2;
    REQUIRE(write_random_llama(spec, dir.file("c.gguf")).ok());
    CHECK(slurp(dir.file("a.gguf")) == slurp(dir.file("b.gguf")));
    CHECK(slurp(dir.file("a.gguf")) != slurp(dir.file("c.gguf")));
}

TEST_CASE("make_model_writes_tied_and_biased_variants") {
    ScratchDir dir;
    RandomLlamaSpec spec;
    spec.tied = true;
    spec.qkv_bias = true;
    spec.arch = "qwen2";
    spec.heads = 8;
    spec.kv_heads = 8;
    spec.vocab = 300;
    Made m = make(dir, spec);
    CHECK(m.layout.hp.tied_output);
    CHECK(m.layout.output == m.layout.token_embd);
    CHECK(m.file->tensor("output.weight") == nullptr);
    CHECK(m.layout.hp.qkv_bias);
    CHECK(m.layout.hp.rope_neox);
    CHECK(m.layout.hp.n_vocab == 300);
    CHECK(m.layout.layers[1].bv->shape == std::vector<int64_t>{64});
    auto tokens = m.file->get_string_array("tokenizer.ggml.tokens");
    REQUIRE(tokens.ok());
    CHECK(tokens->size() == 300);
    CHECK((*tokens)[3] == "<0x00>");
    CHECK((*tokens)[258] == "<0xFF>");
    CHECK(m.file->get_i32_array("tokenizer.ggml.token_type")->at(3) == 6);
}

TEST_CASE("make_model_copies_a_vocabulary_from_another_gguf") {
    const char* vocab_dir = std::getenv("LLMQ_SHARED_VOCAB_DIR");
    std::string vocab = std::string(vocab_dir ? vocab_dir : "") + "/llama-spm.gguf";
    if (!vocab_dir || !std::filesystem::exists(vocab)) {
        MESSAGE("skipped: " << vocab << " is absent");
        return;
    }
    ScratchDir dir;
    RandomLlamaSpec spec;
    spec.vocab_from = vocab;
    spec.dtype = kernels::dtype::q8_0;
    spec.layers = 1;
    Made m = make(dir, spec);
    CHECK(m.layout.hp.n_vocab == 32000);
    CHECK(m.layout.token_embd->shape == std::vector<int64_t>{64, 32000});
    CHECK(*m.file->get_string("tokenizer.ggml.model") == "llama");
    CHECK(m.file->get_f32_array("tokenizer.ggml.scores")->size() == 32000);
    CHECK(*m.file->get_u32("tokenizer.ggml.eos_token_id") == 2);

    spec.vocab = 100;  // disagrees with the copied vocabulary
    Status s = write_random_llama(spec, dir.file("bad.gguf"));
    CHECK_FALSE(s.ok());
    CHECK(contains(s.message(), "32000"));
}

TEST_CASE("make_model_refuses_bad_specs") {
    ScratchDir dir;
    RandomLlamaSpec heads;
    heads.heads = 5;
    CHECK(contains(write_random_llama(heads, dir.file("x.gguf")).message(), "not divisible by heads 5"));
    RandomLlamaSpec kv;
    kv.kv_heads = 3;
    CHECK(contains(write_random_llama(kv, dir.file("x.gguf")).message(), "kv-heads 3"));
    RandomLlamaSpec q8;
    q8.dtype = kernels::dtype::q8_0;
    q8.ffn = 100;
    CHECK(contains(write_random_llama(q8, dir.file("x.gguf")).message(), "multiples of 32"));
    RandomLlamaSpec small_vocab;
    small_vocab.vocab = 100;
    CHECK(contains(write_random_llama(small_vocab, dir.file("x.gguf")).message(), "too few"));
    CHECK_FALSE(std::filesystem::exists(dir.file("x.gguf")));
}

TEST_CASE("make_model_writes_llama_3_1_70b_shaped_header_instantly") {
    ScratchDir dir;
    RandomLlamaSpec spec;
    spec.dim = 8192;
    spec.layers = 80;
    spec.heads = 64;
    spec.kv_heads = 8;
    spec.ffn = 28672;
    spec.vocab = 128256;
    spec.context = 131072;
    spec.rope_theta = 500000.0f;
    spec.dtype = kernels::dtype::bf16;
    spec.header_only = true;
    auto start = std::chrono::steady_clock::now();
    Made m = make(dir, spec, "llama-3.1-70b-header.gguf");
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(seconds < 10.0);
    CHECK_FALSE(m.file->has_data());
    CHECK(m.file->file_size() < 16u << 20);

    const double params = double(m.layout.parameter_count());
    const double gib = double(m.layout.weight_bytes()) / double(1ull << 30);
    MESSAGE("70B shape: " << params / 1e9 << " B parameters, " << gib << " GiB");
    CHECK(params > 70.5e9);
    CHECK(params < 70.7e9);
    CHECK(gib > 131.0);
    CHECK(gib < 131.8);
    CHECK(m.layout.weight_bytes() == m.file->data_bytes());  // every tensor is a weight, no gaps
}

TEST_CASE("make_model_command_line") {
    const char* build = std::getenv("LLMQ_BUILD_ROOT");
    REQUIRE(build != nullptr);
    std::string exe = std::string(build) + "/tools/make-model/llmq-make-model";
    ScratchDir dir;
    auto run = [&](const std::string& args) {
        std::string cmd = exe + " " + args + " >" + dir.file("out.txt") + " 2>&1";
        int rc = std::system(cmd.c_str());
        return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
    };
    auto output = [&] {
        std::vector<char> b = slurp(dir.file("out.txt"));
        return std::string(b.begin(), b.end());
    };
    CHECK(run("--help") == 0);
    CHECK(contains(output(), "--vocab-from"));
    CHECK(run("--out " + dir.file("cli.gguf") + " --dim 32 --layers 1 --heads 2 --kv-heads 1 "
              "--ffn 64 --vocab 300 --dtype q8_0 --tied --seed 7") == 0);
    auto f = GgufFile::open(dir.file("cli.gguf"));
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    auto L = load_llama_layout(**f);
    REQUIRE(L.ok());
    CHECK(L->hp.n_embd == 32);
    CHECK(L->hp.tied_output);
    CHECK(L->token_embd->dtype == kernels::dtype::q8_0);

    CHECK(run("--out " + dir.file("bad.gguf") + " --heads 3") != 0);
    CHECK(contains(output(), "not divisible by heads 3"));
    CHECK(run("--out " + dir.file("bad.gguf") + " --dtype q4_k") != 0);
    CHECK(contains(output(), "multiples of 256"));

    // A Q4_K_M-style mix: Q4_K weights, a Q6_K LM head, Q6_K attn_v / ffn_down where
    // use_more_bits picks the layer (layer 1 of 2), F32 norms.
    REQUIRE(run("--out " + dir.file("mix.gguf") + " --dim 256 --layers 2 --heads 2 --kv-heads 1 "
                "--ffn 512 --vocab 300 --dtype q4_k_m") == 0);
    auto mixed = GgufFile::open(dir.file("mix.gguf"));
    REQUIRE_MESSAGE(mixed.ok(), mixed.status().to_string());
    CHECK((*mixed)->tensor("output.weight")->dtype == kernels::dtype::q6_k);
    CHECK((*mixed)->tensor("token_embd.weight")->dtype == kernels::dtype::q4_k);
    CHECK((*mixed)->tensor("blk.0.ffn_up.weight")->dtype == kernels::dtype::q4_k);
    CHECK((*mixed)->tensor("blk.0.ffn_down.weight")->dtype == kernels::dtype::q4_k);
    CHECK((*mixed)->tensor("blk.1.ffn_down.weight")->dtype == kernels::dtype::q6_k);
    CHECK((*mixed)->tensor("blk.1.attn_v.weight")->dtype == kernels::dtype::q6_k);
    CHECK((*mixed)->tensor("blk.0.attn_norm.weight")->dtype == kernels::dtype::f32);
    CHECK(load_llama_layout(**mixed).ok());
}

// --import: a manifest and float32 blob (as tools/train-demo writes them) become a GGUF whose
// metadata and weights are the given ones; bad manifests are refused naming the entry.
TEST_CASE("make-model --import writes the manifest's metadata and weights") {
    ScratchDir dir;
    const int dim = 64, vocab = 300, ffn = 96;
    std::vector<float> blob;
    std::string tensors;
    auto add = [&](const std::string& name, std::vector<int> shape) {
        size_t n = 1;
        for (int d : shape) n *= size_t(d);
        if (!tensors.empty()) tensors += ",";
        tensors += "{\"name\":\"" + name + "\",\"shape\":[" + std::to_string(shape[0]) +
                   (shape.size() > 1 ? "," + std::to_string(shape[1]) : std::string()) +
                   "],\"offset\":" + std::to_string(blob.size()) + "}";
        for (size_t i = 0; i < n; ++i) blob.push_back(float(std::sin(double(blob.size()) * 0.37)) * 0.25f);
    };
    add("token_embd.weight", {dim, vocab});
    add("output_norm.weight", {dim});
    const std::string b = "blk.0.";
    for (auto n : {"attn_norm", "ffn_norm"}) add(b + n + ".weight", {dim});
    for (auto n : {"attn_q", "attn_output"}) add(b + n + ".weight", {dim, dim});
    for (auto n : {"attn_k", "attn_v"}) add(b + n + ".weight", {dim, dim / 2});
    for (auto n : {"ffn_gate", "ffn_up"}) add(b + n + ".weight", {dim, ffn});
    add(b + "ffn_down.weight", {ffn, dim});
    {
        std::ofstream f(dir.file("w.f32"), std::ios::binary);
        f.write(reinterpret_cast<const char*>(blob.data()), std::streamsize(blob.size() * 4));
    }
    std::string tokens = "\"<unk>\",\"<s>\",\"</s>\"";
    for (int i = 3; i < vocab; ++i) tokens += ",\"t" + std::to_string(i) + "\"";
    auto md = [](const std::string& k, const std::string& t, const std::string& v) {
        return "{\"key\":\"" + k + "\",\"type\":\"" + t + "\",\"value\":" + v + "}";
    };
    const std::string a = "llama.";
    const std::string metadata =
        md("general.architecture", "string", "\"llama\"") + "," + md(a + "context_length", "u32", "128") +
        "," + md(a + "embedding_length", "u32", std::to_string(dim)) + "," + md(a + "block_count", "u32", "1") +
        "," + md(a + "feed_forward_length", "u32", std::to_string(ffn)) + "," +
        md(a + "attention.head_count", "u32", "4") + "," + md(a + "attention.head_count_kv", "u32", "2") +
        "," + md(a + "attention.layer_norm_rms_epsilon", "f32", "1e-5") + "," +
        md("tokenizer.ggml.model", "string", "\"llama\"") + "," +
        md("tokenizer.ggml.tokens", "string_array", "[" + tokens + "]");
    auto write_manifest = [&](const std::string& name, const std::string& body) {
        std::ofstream(dir.file(name)) << body;
        return dir.file(name);
    };
    const std::string good = write_manifest(
        "m.json", "{\"data\":\"w.f32\",\"metadata\":[" + metadata + "],\"tensors\":[" + tensors + "]}");

    Status s = import_manifest(good, kernels::dtype::f16, dir.file("m.gguf"));
    REQUIRE_MESSAGE(s.ok(), s.to_string());
    auto f = GgufFile::open(dir.file("m.gguf"), GgufFile::Options{});
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    auto L = load_llama_layout(**f);
    REQUIRE_MESSAGE(L.ok(), L.status().to_string());
    CHECK(L->hp.n_embd == dim);
    const GgufTensor* q = (*f)->tensor("blk.0.attn_q.weight");
    const GgufTensor* norm = (*f)->tensor("blk.0.attn_norm.weight");
    REQUIRE(q != nullptr);
    REQUIRE(norm != nullptr);
    CHECK(q->dtype == kernels::dtype::f16);
    CHECK(norm->dtype == kernels::dtype::f32);
    // Row 5 of attn_q: the blob's floats rounded to f16.
    size_t q_offset = size_t(dim) * vocab + dim * 3;
    std::vector<float> row(dim);
    kernels::row_to_f32(q->dtype, q->data + 5 * q->row_bytes(), row.data(), dim);
    for (int i = 0; i < dim; ++i) CHECK(row[i] == doctest::Approx(blob[q_offset + 5 * dim + i]).epsilon(1e-3));

    // A tensor that runs past the blob, and a value of the wrong type, are refused by entry.
    const std::string past = write_manifest(
        "past.json", "{\"data\":\"w.f32\",\"metadata\":[],\"tensors\":[{\"name\":\"x\",\"shape\":[64,64],"
                     "\"offset\":" + std::to_string(blob.size() - 10) + "}]}");
    Status p = import_manifest(past, kernels::dtype::f16, dir.file("p.gguf"));
    CHECK(!p.ok());
    CHECK(contains(p.to_string(), "tensors[0] (x)"));
    CHECK(contains(p.to_string(), "pass the end"));
    const std::string wrong = write_manifest(
        "wrong.json", "{\"data\":\"w.f32\",\"metadata\":[" + md("llama.block_count", "u32", "\"one\"") +
                          "],\"tensors\":[]}");
    Status w = import_manifest(wrong, kernels::dtype::f16, dir.file("w.gguf"));
    CHECK(!w.ok());
    CHECK(contains(w.to_string(), "metadata[0] (llama.block_count)"));
}
