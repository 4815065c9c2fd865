#include "llmq/runtime/engine.hpp"

#include <algorithm>
#include <cmath>

#include "llmq/runtime/log.hpp"

namespace llmq {

using clock_type = std::chrono::steady_clock;

const char* finish_reason_name(FinishReason r) {
    switch (r) {
        case FinishReason::stop: return "stop";
        case FinishReason::length: return "length";
        case FinishReason::cancelled: return "cancelled";
        case FinishReason::error: return "error";
    }
    return "error";
}

struct Engine::Sequence {
    uint64_t id = 0;
    int32_t priority = 0;
    uint64_t owner = 0;
    uint64_t admission = 0;  // order of first admission, for preemption choice
    std::shared_ptr<RequestSink> sink;
    SamplingParams params;
    std::unique_ptr<Sampler> sampler;
    std::unique_ptr<TokenStreamDecoder> decoder;
    std::unique_ptr<StopStringMatcher> stops;
    std::vector<int32_t> tokens;  // prompt, then generated
    // Images: decoded at submit, encoded at first scheduling (embeddings [rows][n_embd]);
    // embed_row[p] for prompt position p is its embedding row, -1 for a text token.
    std::vector<RgbImage> images;
    std::vector<int32_t> image_start;
    std::vector<float> embeddings;
    std::vector<int32_t> embed_row;
    // Cross-attention images (mllama): kept to the end of the request, like their keys and
    // values in the shards, so they survive preemption.
    std::shared_ptr<const CrossAttentionStates> cross;
    CrossAttentionMask cross_mask;
    int32_t prompt_len = 0;
    int32_t computed = 0;         // tokens whose KV is in the cache
    std::vector<int32_t> blocks;
    std::string text;
    int32_t max_tokens = 0;
    bool finished = false;
    bool stop_string = false;
    bool cancelled = false;
    // Timing.
    clock_type::time_point submitted, scheduled, first_token, last_token, stalled_since;
    bool has_scheduled = false, has_first_token = false, stalled = false;

    int32_t generated() const { return static_cast<int32_t>(tokens.size()) - prompt_len; }
};

Engine::Engine(const Tokenizer& tokenizer, Executor& executor, EngineOptions options)
    : tokenizer_(tokenizer), executor_(executor), options_(options) {
    const int32_t bs = executor_.options().block_size;
    max_blocks_per_seq_ = (options_.context_length + bs - 1) / bs;
    options_.max_running = std::min(options_.max_running, executor_.options().max_seqs_per_step);
    options_.max_tokens_per_step =
        std::min(options_.max_tokens_per_step, executor_.options().max_tokens_per_step);
}

Engine::~Engine() = default;

Expected<uint64_t> Engine::submit(GenerateRequest request, std::shared_ptr<RequestSink> sink) {
    LLMQ_TRY(validate(request.sampling));
    auto s = std::make_unique<Sequence>();
    if (!request.images.empty()) {
        if (!vision_ && !mllama_vision_)
            return invalid_argument("images: this model has no vision projector ([model] vision, or llmq run "
                                    "--vision MMPROJ)");
        const ImageLimits& limits = vision_ ? vision_->limits() : mllama_limits_;
        if (request.images.size() > static_cast<size_t>(limits.max_images))
            return invalid_argument("images: " + std::to_string(request.images.size()) + " images, over [ipc] max_images = " +
                                    std::to_string(limits.max_images));
        uint64_t total = 0;
        for (const auto& image : request.images) total += image.size();
        if (total > limits.max_total_bytes)
            return invalid_argument("images: " + std::to_string(total) + " bytes, over [ipc] max_image_bytes = " +
                                    std::to_string(limits.max_total_bytes));
        for (size_t i = 0; i < request.images.size(); ++i) {
            auto image = decode_image(request.images[i], limits);
            if (!image) return Status(image.status().code(), "images[" + std::to_string(i) + "]: " + image.status().message());
            s->images.push_back(std::move(*image));
        }
    }
    if (mllama_vision_ && !s->images.empty()) {
        // Llama 3.2 Vision: the images' places are <|image|> tokens, given or placed.
        if (!request.prompt_tokens.empty()) {
            // A chat's image marks (image_prompt_token, from chat_template) are <|image|> here.
            for (int32_t& t : request.prompt_tokens)
                if (t == image_prompt_token) t = executor_.hparams().image_token;
            for (size_t i = 0; i < request.prompt_tokens.size(); ++i)
                if (!tokenizer_.valid_id(request.prompt_tokens[i]))
                    return invalid_argument("prompt_tokens[" + std::to_string(i) + "] = " +
                                            std::to_string(request.prompt_tokens[i]) + " is not a token id of this model");
            s->tokens = std::move(request.prompt_tokens);
        } else {
            s->tokens = place_image_tokens(request.prompt, s->images.size(), request.add_bos, request.parse_special);
        }
        auto mask = cross_attention_mask(s->tokens, executor_.hparams().image_token, static_cast<int32_t>(s->images.size()));
        if (!mask) return mask.status();
        s->cross_mask = std::move(*mask);
    } else if (!request.prompt_tokens.empty()) {
        const bool marks_allowed = !s->images.empty();
        for (size_t i = 0; i < request.prompt_tokens.size(); ++i) {
            const int32_t t = request.prompt_tokens[i];
            if (marks_allowed && t == image_prompt_token) continue;
            if (!tokenizer_.valid_id(t))
                return invalid_argument("prompt_tokens[" + std::to_string(i) + "] = " + std::to_string(t) +
                                        " is not a token id of this model (vocabulary of " +
                                        std::to_string(tokenizer_.vocab_size()) + ")");
        }
        if (s->images.empty()) {
            s->tokens = std::move(request.prompt_tokens);
        } else {
            auto placed = vision_->place_images(tokenizer_, request.prompt_tokens, s->images.size());
            if (!placed) return placed.status();
            s->tokens = std::move(placed->tokens);
            s->image_start = std::move(placed->image_start);
        }
    } else if (!s->images.empty()) {
        auto placed = vision_->place_images(tokenizer_, request.prompt, s->images.size(), request.add_bos,
                                            request.parse_special);
        if (!placed) return placed.status();
        s->tokens = std::move(placed->tokens);
        s->image_start = std::move(placed->image_start);
    } else {
        s->tokens = tokenizer_.encode(request.prompt, request.add_bos, request.parse_special);
    }
    if (s->tokens.empty()) return invalid_argument("prompt: empty (no text and no token ids)");
    if (request.cross_states) {
        const LlamaHParams& hp = executor_.hparams();
        if (hp.cross_layers.empty())
            return invalid_argument("images: this model has no cross-attention layers (cross-attention states "
                                    "are for Llama 3.2 Vision, architecture mllama)");
        if (request.cross_states->dim != hp.n_embd)
            return invalid_argument("images: cross-attention states of " + std::to_string(request.cross_states->dim) +
                                    " values a row, the model's embedding length is " + std::to_string(hp.n_embd));
        auto mask = cross_attention_mask(s->tokens, hp.image_token, request.cross_states->images());
        if (!mask) return mask.status();
        s->cross_mask = std::move(*mask);
        s->cross = std::move(request.cross_states);
    }
    if (static_cast<int64_t>(s->tokens.size()) >= options_.context_length)
        return invalid_argument("prompt: " + std::to_string(s->tokens.size()) +
                                " tokens do not fit the context of " +
                                std::to_string(options_.context_length) +
                                " positions with room to generate");
    if (request.sampling.max_tokens > options_.max_new_tokens)
        return invalid_argument("max_tokens = " + std::to_string(request.sampling.max_tokens) +
                                " exceeds [scheduler] max_new_tokens = " +
                                std::to_string(options_.max_new_tokens));
    s->prompt_len = static_cast<int32_t>(s->tokens.size());
    s->priority = request.priority;
    s->owner = request.owner;
    s->sink = std::move(sink);
    s->params = request.sampling;
    s->max_tokens = request.sampling.max_tokens;
    s->sampler = std::make_unique<Sampler>(s->params);
    s->decoder = std::make_unique<TokenStreamDecoder>(tokenizer_, /*skip_leading_space=*/false);
    s->stops = std::make_unique<StopStringMatcher>(s->params.stop);
    s->submitted = clock_type::now();
    uint64_t id;
    {
        std::lock_guard lock(mutex_);
        if (counters_.queued >= options_.max_queued)
            return unavailable("busy: " + std::to_string(counters_.queued) +
                               " requests are queued ([scheduler] max_queued_requests); retry later");
        id = next_id_++;
        s->id = id;
        incoming_.push_back(std::move(s));
        ++counters_.queued;
    }
    work_cv_.notify_one();
    return id;
}

void Engine::cancel(uint64_t id) {
    {
        std::lock_guard lock(mutex_);
        cancels_.push_back(id);
    }
    work_cv_.notify_one();
}

void Engine::notify() {
    {
        std::lock_guard lock(mutex_);
        woken_ = true;
    }
    work_cv_.notify_all();
}

bool Engine::idle() const {
    std::lock_guard lock(mutex_);
    return incoming_.empty() && cancels_.empty() && waiting_.empty() && running_.empty();
}

void Engine::wait_for_work(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    // Sequences that are waiting or paused (their consumer stalled) are looked at again after
    // a short nap; new requests and cancellations wake the engine at once.
    if (!waiting_.empty() || !running_.empty())
        timeout = std::min(timeout, std::chrono::milliseconds(5));
    work_cv_.wait_for(lock, timeout, [&] { return !incoming_.empty() || !cancels_.empty() || woken_; });
    woken_ = false;
}

EngineStats Engine::stats() const {
    std::lock_guard lock(mutex_);
    EngineStats s = counters_;
    s.kv_blocks_total = executor_.blocks().total();
    s.kv_blocks_used = executor_.blocks().used_count();
    if (rate_window_.size() >= 2) {
        const double secs = std::chrono::duration<double>(rate_window_.back().first -
                                                          rate_window_.front().first).count();
        if (secs > 0)
            s.tokens_per_s = (rate_window_.back().second - rate_window_.front().second) / secs;
    }
    return s;
}

void Engine::finish(Sequence& s, FinishReason reason, std::string error) {
    if (s.finished) return;
    s.finished = true;
    if (s.cross) executor_.release_image_kv(s.cross->id);
    executor_.blocks().release(s.blocks);
    s.blocks.clear();
    if (reason == FinishReason::stop || reason == FinishReason::length) {
        // Text held back by the UTF-8 assembler or the stop-string matcher is complete now.
        std::string tail = s.stops->push(s.decoder->flush()).emit;
        tail += s.stops->flush();
        if (!tail.empty()) {
            s.text += tail;
            s.sink->on_token(-1, tail, 0.0f);
        }
    }
    FinishInfo info;
    info.reason = reason;
    info.prompt_tokens.assign(s.tokens.begin(), s.tokens.begin() + s.prompt_len);
    info.tokens.assign(s.tokens.begin() + s.prompt_len, s.tokens.end());
    info.text = s.text;
    info.error = std::move(error);
    info.stop_string = s.stop_string;
    auto& t = info.timings;
    const auto now = clock_type::now();
    auto ms = [](clock_type::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
    if (s.has_scheduled) t.queue_ms = ms(s.scheduled - s.submitted);
    if (s.has_first_token) {
        t.prefill_ms = ms(s.first_token - s.scheduled);
        t.decode_ms = ms(s.last_token - s.first_token);
        if (t.prefill_ms > 0) t.prefill_tokens_per_s = s.prompt_len / (t.prefill_ms / 1000.0);
        const int32_t decoded = s.generated() - 1;
        if (decoded > 0 && t.decode_ms > 0) t.decode_tokens_per_s = decoded / (t.decode_ms / 1000.0);
    } else if (s.has_scheduled) {
        t.prefill_ms = ms(now - s.scheduled);
    }
    s.sink->on_finish(info);
    std::lock_guard lock(mutex_);
    ++counters_.requests_finished;
}

void Engine::preempt(Sequence& s) {
    executor_.blocks().release(s.blocks);
    s.blocks.clear();
    s.computed = 0;
    std::lock_guard lock(mutex_);
    ++counters_.preemptions;
}

// mllama prompts: each "<|image|>" of the text becomes the image token (whatever
// parse_special says); without one, the images' tokens go first, after BOS.
std::vector<int32_t> Engine::place_image_tokens(const std::string& text, size_t images, bool add_bos,
                                                bool parse_special) const {
    constexpr std::string_view marker = "<|image|>";
    const int32_t image = executor_.hparams().image_token;
    std::vector<int32_t> tokens;
    if (text.find(marker) == std::string::npos) {
        tokens = tokenizer_.encode("", add_bos, parse_special);
        tokens.insert(tokens.end(), images, image);
        const auto rest = tokenizer_.encode(text, false, parse_special);
        tokens.insert(tokens.end(), rest.begin(), rest.end());
        return tokens;
    }
    size_t at = 0;
    bool first = true;
    for (;;) {
        const size_t next = text.find(marker, at);
        const std::string_view piece = std::string_view(text).substr(at, next == std::string::npos ? std::string::npos : next - at);
        const auto ids = tokenizer_.encode(piece, first && add_bos, parse_special);
        tokens.insert(tokens.end(), ids.begin(), ids.end());
        first = false;
        if (next == std::string::npos) return tokens;
        tokens.push_back(image);
        at = next + marker.size();
    }
}

// The images' embeddings, once per request (they survive preemption), and where each prompt
// position takes its input from. For mllama, the images' cross-attention states.
Status Engine::encode_images(Sequence& s) {
    if (mllama_vision_ && !s.images.empty() && !s.cross) {
        auto states = std::make_shared<CrossAttentionStates>();
        states->dim = executor_.hparams().n_embd;
        MllamaImageFeatures features;
        for (size_t i = 0; i < s.images.size(); ++i) {
            Status st = executor_.encode_mllama_image(*mllama_vision_, s.images[i], features);
            if (st.ok())
                st = states->add_image(features.rows, features.max_tiles, features.tiles_used, features.rows_per_tile);
            if (!st.ok()) return st.with_context("images[" + std::to_string(i) + "]");
        }
        s.cross = std::move(states);
        s.images.clear();
        return {};
    }
    if (s.images.empty() || !s.embeddings.empty()) return {};
    const int32_t n = vision_->tokens_per_image();
    const size_t dim = static_cast<size_t>(vision_->embedding_dim());
    std::vector<float> embeddings(s.images.size() * static_cast<size_t>(n) * dim);
    for (size_t i = 0; i < s.images.size(); ++i) {
        Status st = executor_.encode_image(*vision_, s.images[i], embeddings.data() + i * static_cast<size_t>(n) * dim);
        if (!st.ok()) return st.with_context("images[" + std::to_string(i) + "]");
    }
    s.embed_row.assign(static_cast<size_t>(s.prompt_len), -1);
    for (size_t i = 0; i < s.image_start.size(); ++i)
        for (int32_t r = 0; r < n; ++r) s.embed_row[static_cast<size_t>(s.image_start[i] + r)] = static_cast<int32_t>(i) * n + r;
    s.embeddings = std::move(embeddings);
    s.images.clear();
    return {};
}

void Engine::emit_token(Sequence& s, int32_t token, float logprob) {
    auto r = s.stops->push(s.decoder->push(token));
    if (!r.emit.empty() || !r.stopped) {
        s.text += r.emit;
        s.sink->on_token(token, r.emit, logprob);
    }
    if (r.stopped) {
        s.stop_string = true;
        finish(s, FinishReason::stop);
    }
}

bool Engine::step() {
    // ---- take in new requests and cancellations
    std::vector<uint64_t> cancels;
    {
        std::lock_guard lock(mutex_);
        while (!incoming_.empty()) {
            waiting_.push_back(std::move(incoming_.front()));
            incoming_.pop_front();
        }
        cancels.swap(cancels_);
    }
    for (uint64_t id : cancels) {
        for (auto& s : running_)
            if (s->id == id) finish(*s, FinishReason::cancelled);
        for (auto& s : waiting_)
            if (s->id == id) finish(*s, FinishReason::cancelled);
    }
    const auto now = clock_type::now();
    // Stalled consumers: pause, then cancel after the timeout.
    for (auto& s : running_) {
        if (s->finished) continue;
        if (s->sink->ready()) {
            s->stalled = false;
        } else if (!s->stalled) {
            s->stalled = true;
            s->stalled_since = now;
        } else if (now - s->stalled_since > options_.stall_timeout) {
            finish(*s, FinishReason::cancelled, "the client did not read its responses within the stall timeout");
        }
    }
    auto drop_finished = [](auto& list) {
        list.erase(std::remove_if(list.begin(), list.end(), [](const auto& s) { return s->finished; }),
                   list.end());
    };
    drop_finished(running_);
    drop_finished(waiting_);
    // Highest priority first, then first come.
    std::stable_sort(waiting_.begin(), waiting_.end(),
                     [](const auto& a, const auto& b) { return a->priority > b->priority; });

    // ---- choose this step's work
    const int32_t bs = executor_.options().block_size;
    auto blocks_needed = [&](const Sequence& s, int32_t upto) {
        const int32_t need = (upto + bs - 1) / bs;
        return std::max<int32_t>(0, need - static_cast<int32_t>(s.blocks.size()));
    };
    struct Work {
        Sequence* seq;
        int32_t count;
    };
    std::vector<Work> work;
    int32_t budget = options_.max_tokens_per_step;
    std::vector<Sequence*> preempted;

    // Running sequences: decode tokens first (cheap, latency-critical), then prefill chunks.
    std::stable_sort(running_.begin(), running_.end(), [](const auto& a, const auto& b) {
        return (a->tokens.size() - a->computed == 1) > (b->tokens.size() - b->computed == 1);
    });
    for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
        Sequence& s = *running_[i];
        if (s.finished || s.stalled) continue;
        if (std::find(preempted.begin(), preempted.end(), &s) != preempted.end()) continue;
        const int32_t remaining = static_cast<int32_t>(s.tokens.size()) - s.computed;
        const int32_t count = std::min({remaining, budget, options_.prefill_chunk});
        const int32_t need = blocks_needed(s, s.computed + count);
        while (!executor_.blocks().allocate(need, s.blocks)) {
            // Preempt the lowest-priority, latest-admitted other running sequence.
            Sequence* victim = nullptr;
            for (auto& o : running_) {
                if (o.get() == &s || o->finished || o->blocks.empty()) continue;
                if (std::any_of(work.begin(), work.end(), [&](const Work& w) { return w.seq == o.get(); }))
                    continue;
                if (!victim || o->priority < victim->priority ||
                    (o->priority == victim->priority && o->admission > victim->admission))
                    victim = o.get();
            }
            if (!victim || victim->priority > s.priority) {
                victim = &s;
            }
            preempt(*victim);
            preempted.push_back(victim);
            if (victim == &s) break;
        }
        if (std::find(preempted.begin(), preempted.end(), &s) != preempted.end()) continue;
        work.push_back({&s, count});
        budget -= count;
    }
    // Preempted sequences go back to the queue's front (they were admitted before the rest).
    for (auto it = running_.begin(); it != running_.end();) {
        if (std::find(preempted.begin(), preempted.end(), it->get()) != preempted.end()) {
            waiting_.push_front(std::move(*it));
            it = running_.erase(it);
        } else {
            ++it;
        }
    }
    // Admit waiting requests while budget, sequence slots and blocks allow; an owner that
    // already runs its share waits, and the next request in line goes first.
    running_by_owner_.clear();
    if (options_.max_running_per_owner > 0)
        for (const auto& s : running_)
            if (s->owner != 0) ++running_by_owner_[s->owner];
    // mllama: an admitted request's image K/V stay on the devices until it ends (preemption
    // keeps them), and the planner counted [ipc] max_images images of them on every device
    // with cross layers. So a request whose images would take the admitted requests' past that
    // waits until some end (alone it always fits: submit refuses more than max_images), and
    // no image request behind it is admitted first; text requests go on being admitted.
    const auto cross_images = [](const Sequence& s) -> int64_t {  // before and after encoding
        return s.cross ? s.cross->images() : static_cast<int64_t>(s.images.size());
    };
    int64_t images_held = 0;
    bool image_waits = false;
    const int64_t images_planned = mllama_vision_ ? mllama_limits_.max_images : -1;
    if (images_planned >= 0) {
        for (const auto& s : running_) images_held += cross_images(*s);
        for (const auto& s : waiting_)
            if (s->has_scheduled) images_held += cross_images(*s);
    }
    for (size_t i = 0; i < waiting_.size() && budget > 0 &&
                       static_cast<int32_t>(running_.size()) < options_.max_running;) {
        Sequence& s = *waiting_[i];
        if (options_.max_running_per_owner > 0 && s.owner != 0 &&
            running_by_owner_[s.owner] >= options_.max_running_per_owner) {
            ++i;
            continue;
        }
        const int64_t images = images_planned >= 0 && !s.has_scheduled ? cross_images(s) : 0;
        if (images > 0 && (image_waits || (images_held > 0 && images_held + images > images_planned))) {
            image_waits = true;
            ++i;
            continue;
        }
        const int32_t remaining = static_cast<int32_t>(s.tokens.size()) - s.computed;
        const int32_t count = std::min({remaining, budget, options_.prefill_chunk});
        if (!executor_.blocks().allocate(blocks_needed(s, s.computed + count), s.blocks)) break;
        if (!s.has_scheduled) {
            s.has_scheduled = true;
            s.scheduled = now;
        }
        if (s.admission == 0) s.admission = ++admissions_;
        images_held += images;
        work.push_back({&s, count});
        budget -= count;
        if (s.owner != 0) ++running_by_owner_[s.owner];
        running_.push_back(std::move(waiting_[i]));
        waiting_.erase(waiting_.begin() + static_cast<std::ptrdiff_t>(i));
    }
    {
        std::lock_guard lock(mutex_);
        counters_.running = static_cast<int32_t>(running_.size());
        counters_.queued = static_cast<int32_t>(waiting_.size() + incoming_.size());
    }
    if (work.empty()) return !cancels.empty();

    // ---- images first: a request whose image fails to encode ends with that error alone
    for (auto& w : work) {
        Status st = encode_images(*w.seq);
        if (!st.ok()) {
            log::warn("request " + std::to_string(w.seq->id) + ": " + st.message());
            finish(*w.seq, FinishReason::error, st.message());
        }
    }
    work.erase(std::remove_if(work.begin(), work.end(), [](const Work& w) { return w.seq->finished; }), work.end());
    drop_finished(running_);
    if (work.empty()) return true;
    // Decode only, several pipeline stages, nobody waiting: keep one group of sequences per
    // stage in flight across steps, so that every stage works (decode_in_flight).
    if (executor_.overlaps_steps() && work.size() >= 2 && waiting_.empty() &&
        std::all_of(work.begin(), work.end(), [](const Work& w) {
            return w.count == 1 && w.seq->computed + 1 == static_cast<int32_t>(w.seq->tokens.size());
        })) {
        std::vector<Sequence*> seqs;
        for (const auto& w : work) seqs.push_back(w.seq);
        decode_in_flight(seqs);
        drop_finished(running_);
        std::lock_guard lock(mutex_);
        counters_.running = static_cast<int32_t>(running_.size());
        return true;
    }

    // ---- run it
    std::vector<StepSequence> step;
    step.reserve(work.size());
    std::vector<std::vector<int32_t>> rows(work.size());
    for (size_t wi = 0; wi < work.size(); ++wi) {
        const Work& w = work[wi];
        StepSequence q;
        if (!w.seq->embed_row.empty() && w.seq->computed < w.seq->prompt_len) {
            for (int32_t t = 0; t < w.count; ++t) {
                const int32_t p = w.seq->computed + t;
                rows[wi].push_back(p < w.seq->prompt_len ? w.seq->embed_row[static_cast<size_t>(p)] : -1);
            }
            q.embeddings = w.seq->embeddings.data();
            q.embedding_row = rows[wi].data();
        }
        q.cross = w.seq->cross;
        q.cross_mask = &w.seq->cross_mask;
        q.tokens = w.seq->tokens.data() + w.seq->computed;
        q.count = w.count;
        q.position = w.seq->computed;
        q.block_table = &w.seq->blocks;
        q.want_logits = w.seq->computed + w.count == static_cast<int32_t>(w.seq->tokens.size());
        step.push_back(q);
    }
    Status st = executor_.forward(step, logits_);
    if (!st.ok()) {
        log::error("engine step failed: " + st.message());
        for (const auto& w : work) finish(*w.seq, FinishReason::error, st.message());
        drop_finished(running_);
        std::lock_guard lock(mutex_);
        counters_.running = static_cast<int32_t>(running_.size());
        return true;
    }

    // ---- sample and stream
    std::vector<Sequence*> seqs;
    std::vector<int32_t> counts;
    for (const auto& w : work) {
        seqs.push_back(w.seq);
        counts.push_back(w.count);
    }
    const StepTokens done = sample_and_stream(seqs, counts, step, logits_);
    drop_finished(running_);
    record_step(done);
    return true;
}

Engine::StepTokens Engine::sample_and_stream(const std::vector<Sequence*>& seqs, const std::vector<int32_t>& counts,
                                             const std::vector<StepSequence>& step, std::vector<float>& logits) {
    const int32_t V = static_cast<int32_t>(executor_.hparams().n_vocab);
    size_t row = 0;
    StepTokens done;
    done.at = clock_type::now();
    const auto after = done.at;
    for (size_t i = 0; i < seqs.size(); ++i) {
        Sequence& s = *seqs[i];
        s.computed += counts[i];
        if (s.computed <= s.prompt_len) done.prefilled += counts[i];
        if (!step[i].want_logits) continue;
        std::span<float> lg(logits.data() + row * V, V);
        ++row;
        if (s.sink->wants_logits()) s.sink->on_logits(lg);
        const int32_t token = s.sampler->sample(lg, s.tokens);
        if (token < 0) {
            finish(s, FinishReason::error, "no token could be sampled: every logit is NaN or -inf");
            continue;
        }
        s.tokens.push_back(token);
        ++done.generated;
        if (!s.has_first_token) {
            s.has_first_token = true;
            s.first_token = after;
        }
        s.last_token = after;
        const bool eog = !s.params.ignore_eos && tokenizer_.is_end_of_generation(token);
        if (eog) {
            s.tokens.pop_back();  // the end-of-generation token is not part of the output
            finish(s, FinishReason::stop);
            continue;
        }
        emit_token(s, token, s.sampler->last_logprob());
        if (s.finished) continue;
        if (s.generated() >= s.max_tokens ||
            static_cast<int32_t>(s.tokens.size()) >= options_.context_length)
            finish(s, FinishReason::length);
    }
    return done;
}

void Engine::decode_in_flight(const std::vector<Sequence*>& seqs) {
    // Rounds: tokens each sequence may decode before the scheduler looks at the queue again.
    constexpr int kRounds = 8;
    const size_t groups = std::min<size_t>(static_cast<size_t>(executor_.options().plan.pipeline), seqs.size());
    struct Group {
        std::vector<Sequence*> seqs;
        std::vector<StepSequence> step;
        Executor::InFlightPtr flight;
        std::vector<float> logits;
    };
    std::vector<Group> group(groups);
    for (size_t i = 0; i < seqs.size(); ++i) group[i * groups / seqs.size()].seqs.push_back(seqs[i]);
    const int32_t bs = executor_.options().block_size;
    auto launch = [&](Group& g) {
        g.step.clear();
        for (Sequence* s : g.seqs) {
            StepSequence q;
            q.cross = s->cross;
            q.cross_mask = &s->cross_mask;
            q.tokens = s->tokens.data() + s->computed;
            q.count = 1;
            q.position = s->computed;
            q.block_table = &s->blocks;
            q.want_logits = true;
            g.step.push_back(q);
        }
        auto flight = executor_.launch(g.step);
        if (!flight) {
            for (Sequence* s : g.seqs) finish(*s, FinishReason::error, flight.status().message());
            g.seqs.clear();
            return;
        }
        g.flight = std::move(*flight);
    };
    for (auto& g : group) launch(g);
    bool more = true;
    for (int round = 0;; ++round) {
        bool any = false;
        for (auto& g : group) {
            if (!g.flight) continue;
            any = true;
            const Status st = executor_.wait(*g.flight, g.logits);
            g.flight.reset();
            if (!st.ok()) {
                log::error("engine step failed: " + st.message());
                for (Sequence* s : g.seqs) finish(*s, FinishReason::error, st.message());
                g.seqs.clear();
                continue;
            }
            record_step(sample_and_stream(g.seqs, std::vector<int32_t>(g.seqs.size(), 1), g.step, g.logits));
            if (round + 1 >= kRounds || !more) continue;
            {
                // New requests and cancellations wait for the next step(), at most a round.
                std::lock_guard lock(mutex_);
                if (!incoming_.empty() || !cancels_.empty()) more = false;
            }
            if (!more) continue;
            // This group's next token while the others are still on the later stages. A
            // sequence that finished, stalls or needs a block that is not free leaves the
            // rounds; the next step() deals with it as usual (preemption included).
            std::vector<Sequence*> next;
            for (Sequence* s : g.seqs) {
                if (s->finished || !s->sink->ready()) continue;
                const int32_t need = (s->computed + 1 + bs - 1) / bs - static_cast<int32_t>(s->blocks.size());
                if (need > 0 && !executor_.blocks().allocate(need, s->blocks)) continue;
                next.push_back(s);
            }
            g.seqs = std::move(next);
            if (!g.seqs.empty()) launch(g);
        }
        if (!any) break;
    }
}

void Engine::record_step(const StepTokens& done) {
    std::lock_guard lock(mutex_);
    counters_.tokens_generated += done.generated;
    counters_.tokens_prefilled += done.prefilled;
    ++counters_.steps;
    counters_.running = static_cast<int32_t>(running_.size());
    rate_window_.emplace_back(done.at, counters_.tokens_generated);
    while (rate_window_.size() > 2 && done.at - rate_window_.front().first > std::chrono::seconds(5))
        rate_window_.pop_front();
}

}  // namespace llmq
