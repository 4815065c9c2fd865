// mllama_text_dump: what llmq's engine makes of an mllama (Llama 3.2 Vision) text model given
// cross-attention states directly, for mllama_reference_check.py and the parallel tests.
//
//   mllama_text_dump MODEL.gguf OUT --prompt-tokens 1,2,3 --max-tokens N
//       [--states FILE --max-tiles M --rows-per-tile R --tiles-used U1,U2,...]
//       [--tensor T] [--pipeline P] [--prefill-chunk C] [--kv f16|f32]
//
// FILE holds the images' states as HF's cross_attention_states: per image M x R rows of
// n_embd f32 (little-endian). Greedy decoding with EOS ignored on T x P CPU devices. Writes
// OUT.tokens (the generated ids, one a line) and OUT.logits (the logits each token was chosen
// from, [N][n_vocab] f32).
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_runtime.hpp"

using namespace llmq;

namespace {

int fail(const std::string& m) {
    std::fprintf(stderr, "mllama_text_dump: %s\n", m.c_str());
    return 1;
}

std::vector<int64_t> numbers(const std::string& csv) {
    std::vector<int64_t> out;
    std::stringstream in(csv);
    for (std::string item; std::getline(in, item, ',');) out.push_back(std::stoll(item));
    return out;
}

class Sink final : public RequestSink {
public:
    bool wants_logits() const override { return true; }
    void on_logits(std::span<const float> l) override { logits.insert(logits.end(), l.begin(), l.end()); }
    void on_token(int32_t, std::string_view, float) override {}
    void on_finish(const FinishInfo& i) override {
        info = i;
        done = true;
    }
    std::vector<float> logits;
    FinishInfo info;
    bool done = false;
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) return fail("usage: mllama_text_dump MODEL.gguf OUT --prompt-tokens IDS --max-tokens N [...]");
    log::set_level(log::level::warn);
    const std::string model = argv[1], out = argv[2];
    std::string prompt, states_path, tiles_used = "1", kv = "f32";
    int64_t max_tokens = 4, max_tiles = 1, rows_per_tile = 1, tensor = 1, pipeline = 1, chunk = 256;
    for (int i = 3; i + 1 < argc; i += 2) {
        const std::string k = argv[i], v = argv[i + 1];
        if (k == "--prompt-tokens") prompt = v;
        else if (k == "--max-tokens") max_tokens = std::stoll(v);
        else if (k == "--states") states_path = v;
        else if (k == "--max-tiles") max_tiles = std::stoll(v);
        else if (k == "--rows-per-tile") rows_per_tile = std::stoll(v);
        else if (k == "--tiles-used") tiles_used = v;
        else if (k == "--tensor") tensor = std::stoll(v);
        else if (k == "--pipeline") pipeline = std::stoll(v);
        else if (k == "--prefill-chunk") chunk = std::stoll(v);
        else if (k == "--kv") kv = v;
        else return fail("unknown option " + k);
    }
    Config c;
    c.model.path = model;
    c.model.context_length = 256;
    c.devices.cpu = static_cast<int>(tensor * pipeline);
    c.devices.cpu_memory_limit = 1ull << 30;
    c.parallel.tensor = static_cast<int>(tensor);
    c.parallel.pipeline = static_cast<int>(pipeline);
    c.kv_cache.dtype = kv == "f16" ? KvCacheDtype::f16 : KvCacheDtype::f32;
    c.scheduler.prefill_chunk = static_cast<int>(chunk);
    auto rt = ModelRuntime::load(c);
    if (!rt) return fail(rt.status().message());

    GenerateRequest r;
    for (int64_t id : numbers(prompt)) r.prompt_tokens.push_back(static_cast<int32_t>(id));
    r.sampling.max_tokens = static_cast<int32_t>(max_tokens);
    r.sampling.temperature = 0.0f;
    r.sampling.ignore_eos = true;
    if (!states_path.empty()) {
        std::ifstream in(states_path, std::ios::binary);
        std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        std::vector<float> values(bytes.size() / sizeof(float));
        std::memcpy(values.data(), bytes.data(), values.size() * sizeof(float));
        auto states = std::make_shared<CrossAttentionStates>();
        states->dim = (*rt)->layout().hp.n_embd;
        const size_t per_image = static_cast<size_t>(max_tiles * rows_per_tile * states->dim);
        const std::vector<int64_t> used = numbers(tiles_used);
        if (values.size() != used.size() * per_image) return fail("the states file does not hold " + std::to_string(used.size()) + " images");
        for (size_t i = 0; i < used.size(); ++i) {
            Status s = states->add_image(std::span<const float>(values.data() + i * per_image, per_image),
                                         static_cast<int32_t>(max_tiles), static_cast<int32_t>(used[i]), rows_per_tile);
            if (!s.ok()) return fail(s.message());
        }
        r.cross_states = std::move(states);
    }
    auto sink = std::make_shared<Sink>();
    auto id = (*rt)->engine().submit(std::move(r), sink);
    if (!id) return fail(id.status().message());
    for (int guard = 0; !sink->done && guard < 100000; ++guard) (*rt)->engine().step();
    if (!sink->done) return fail("the engine did not finish");
    if (sink->info.reason == FinishReason::error) return fail(sink->info.error);
    std::ofstream tokens(out + ".tokens");
    for (int32_t t : sink->info.tokens) tokens << t << "\n";
    std::ofstream(out + ".logits", std::ios::binary)
        .write(reinterpret_cast<const char*>(sink->logits.data()), std::streamsize(sink->logits.size() * sizeof(float)));
    return 0;
}
