#include "llmq/runtime/executor.hpp"
#include "llmq/runtime/pipeline_schedule.hpp"

#include <algorithm>
#include <future>
#include <latch>
#include <utility>

namespace llmq {

namespace {

// The logit rows a sequence asks of a step: its last logit_tokens tokens (at least one, at
// most all of them) when it wants logits. make_batches and check_step both count with this.
int32_t logit_rows_of(const StepSequence& s) {
    return s.want_logits ? std::min(std::max(s.logit_tokens, 1), s.count) : 0;
}

// Micro-batches travel from MPI rank 0 to the others as int32 words:
// [count] then per batch [num_tokens, num_seqs, max_blocks, logits_offset] followed by the
// arrays, each as [length, values...].
void put_array(std::vector<int32_t>& out, const std::vector<int32_t>& a) {
    out.push_back(static_cast<int32_t>(a.size()));
    out.insert(out.end(), a.begin(), a.end());
}

std::vector<int32_t> serialize(const std::vector<MicroBatch>& batches) {
    std::vector<int32_t> out;
    out.push_back(static_cast<int32_t>(batches.size()));
    for (const auto& b : batches) {
        out.insert(out.end(), {b.num_tokens, b.num_seqs, b.max_blocks, b.logits_offset});
        for (const auto* a : {&b.tokens, &b.positions, &b.token_seq, &b.query_start,
                              &b.context_len, &b.block_tables, &b.logit_rows})
            put_array(out, *a);
    }
    return out;
}

// The words come from rank 0 of the same build, but are still checked for length.
Expected<std::vector<MicroBatch>> deserialize(const std::vector<int32_t>& in) {
    size_t at = 0;
    auto take = [&](int32_t& v) {
        if (at >= in.size()) return false;
        v = in[at++];
        return true;
    };
    auto take_array = [&](std::vector<int32_t>& a) {
        int32_t n;
        if (!take(n) || n < 0 || static_cast<size_t>(n) > in.size() - at) return false;
        a.assign(in.begin() + at, in.begin() + at + n);
        at += n;
        return true;
    };
    int32_t count;
    if (!take(count) || count < 0) return internal_error("step broadcast: bad batch count");
    std::vector<MicroBatch> out(count);
    for (auto& b : out) {
        if (!take(b.num_tokens) || !take(b.num_seqs) || !take(b.max_blocks) || !take(b.logits_offset))
            return internal_error("step broadcast: truncated");
        for (auto* a : {&b.tokens, &b.positions, &b.token_seq, &b.query_start, &b.context_len,
                        &b.block_tables, &b.logit_rows})
            if (!take_array(*a)) return internal_error("step broadcast: truncated array");
    }
    return out;
}

}  // namespace

Expected<std::unique_ptr<Executor>> Executor::create(const LlamaLayout& layout,
                                                     std::vector<Backend*> backends,
                                                     PluginHost& plugins,
                                                     const ExecutorOptions& options,
                                                     MpiWorld* world) {
    const auto& plan = options.plan;
    if (world && world->size() != plan.devices())
        return invalid_argument("[parallel] tensor = " + std::to_string(plan.tensor) +
                                " x pipeline = " + std::to_string(plan.pipeline) + " needs " +
                                std::to_string(plan.devices()) + " MPI ranks, mpirun started " +
                                std::to_string(world->size()));
    if (!world && static_cast<int32_t>(backends.size()) < plan.devices())
        return invalid_argument("[parallel] tensor = " + std::to_string(plan.tensor) +
                                " x pipeline = " + std::to_string(plan.pipeline) + " needs " +
                                std::to_string(plan.devices()) + " devices, " +
                                std::to_string(backends.size()) + " are present");
    if (backends.empty()) return invalid_argument("the executor needs at least one device");
    if (options.num_blocks <= 0) return invalid_argument("[kv_cache] leaves no KV blocks");
    if (!layout.hp.cross_layers.empty()) {
        auto set = plugins.snapshot();
        for (size_t d = 0; d < set->devices.size(); ++d) {
            const auto& attention = set->devices[d].attention;
            if (attention && !attention->has_cross_attention())
                return unsupported(std::string("the model has cross-attention layers (mllama) and the attention plugin '") +
                                   attention->library().descriptor().name +
                                   std::string("' has no cross_attention (ABI 1.2); use attention-cpu"));
        }
    }
    std::unique_ptr<Executor> e(new Executor());
    e->hp_ = layout.hp;
    e->options_ = options;
    e->plugins_ = &plugins;
    e->backends_ = std::move(backends);
    e->world_ = world;
    e->blocks_ = std::make_unique<KvBlockAllocator>(options.num_blocks);
    KvCacheShape kv;
    kv.block_size = options.block_size;
    kv.num_blocks = options.num_blocks;
    kv.dtype = options.kv_dtype;
    for (int32_t s = 0; s < plan.pipeline; ++s) {
        for (int32_t r = 0; r < plan.tensor; ++r) {
            const int32_t index = plan.device_of(s, r);
            if (world && index != world->rank()) continue;
            ShardSpec spec{s, plan.pipeline, r, plan.tensor, plan.stage_layers[s],
                           plan.stage_layers[s + 1]};
            Backend& backend = *e->backends_[world ? 0 : index];
            auto shard = ModelShard::create(layout, spec, backend, kv, options.max_tokens_per_step,
                                            options.max_seqs_per_step);
            if (!shard) return shard.status().with_context(backend.device().info().name);
            (*shard)->enable_decode_graphs(options.decode_graphs);
            e->shards_.push_back(std::move(*shard));
        }
    }
    // Every group is made by the backend of its first member: the devices of one group are
    // all of one kind.
    if (world) {
        Backend& backend = *e->backends_[0];
        const ShardSpec& spec = e->shards_[0]->spec();
        auto tc = backend.world_group(*world, spec.stage, spec.rank);
        if (!tc) return tc.status();
        auto pc = backend.world_group(*world, 1000 + spec.rank, spec.stage);
        if (!pc) return pc.status();
        e->tensor_comms_.push_back(std::move(*tc));
        e->pipe_comms_.push_back(std::move(*pc));
        e->world_comm_ = backend.world(*world);
    } else {
        for (int32_t s = 0; s < plan.pipeline; ++s)
            e->tensor_groups_.push_back(e->backends_[plan.device_of(s, 0)]->local_group(plan.tensor));
        for (int32_t r = 0; r < plan.tensor; ++r)
            e->pipe_groups_.push_back(e->backends_[plan.device_of(0, r)]->local_group(plan.pipeline));
        e->rebuild_groups();
    }
    return e;
}

Executor::~Executor() {
    // Tasks posted to the devices' workers may still use the shards (release_image_kv, posted
    // when a request with images finishes): wait until each worker has run what was queued
    // before this, then the shards may go. (The devices' workers outlive the executor.)
    std::vector<std::future<void>> drained;
    for (auto& shard : shards_) {
        auto done = std::make_shared<std::promise<void>>();
        drained.push_back(done->get_future());
        shard->device().post([done] { done->set_value(); });
    }
    for (auto& f : drained) f.wait();
}

void Executor::rebuild_groups() {
    if (world_) return;  // MPI communicators are not rebuilt; a failed collective is fatal there
    const auto& plan = options_.plan;
    tensor_comms_.clear();
    pipe_comms_.clear();
    for (auto& g : tensor_groups_) g->reset();
    for (auto& g : pipe_groups_) g->reset();
    for (int32_t s = 0; s < plan.pipeline; ++s)
        for (int32_t r = 0; r < plan.tensor; ++r) {
            tensor_comms_.push_back(tensor_groups_[s]->communicator(r));
            pipe_comms_.push_back(pipe_groups_[r]->communicator(s));
        }
}

int32_t Executor::logits_producer() const {
    return options_.plan.device_of(options_.plan.pipeline - 1, 0);
}

std::vector<ShardReport> Executor::shards() const {
    std::vector<ShardReport> out;
    for (const auto& s : shards_)
        out.push_back({s->device().info().name, s->spec().stage, s->spec().rank,
                       s->spec().layer_begin, s->spec().layer_end, s->weight_bytes(),
                       s->kv().shape().total_bytes(), s->workspace_bytes()});
    return out;
}

std::vector<MicroBatch> Executor::make_batches(std::span<const StepSequence> seqs,
                                               int32_t* logit_rows_out) const {
    const int32_t n = static_cast<int32_t>(seqs.size());
    int64_t total_tokens = 0;
    for (const auto& s : seqs) total_tokens += s.count;
    // Contiguous runs of sequences, about equal in tokens, as many as pipeline_micro_batches
    // finds cheapest for this step (pipeline_schedule.hpp).
    const int32_t parts = pipeline_micro_batches(options_.plan.pipeline, n, total_tokens);
    std::vector<MicroBatch> batches(parts);
    int32_t logit_rows = 0, part = 0;
    int64_t acc = 0;
    for (int32_t i = 0; i < n; ++i) {
        MicroBatch& b = batches[part];
        const StepSequence& s = seqs[i];
        if (b.num_seqs == 0) {
            b.query_start.push_back(0);
            b.logits_offset = logit_rows;
        }
        b.cross.push_back(s.cross && s.cross_mask ? s.cross : nullptr);
        for (int32_t t = 0; t < s.count; ++t) {
            int32_t row_begin = 0, row_end = 0;
            if (b.cross.back()) {
                const auto [first, last] = s.cross_mask->images_seen(s.position + t);
                row_begin = static_cast<int32_t>(s.cross->image_row_start[static_cast<size_t>(first)]);
                row_end = first < last ? static_cast<int32_t>(s.cross->image_row_start[static_cast<size_t>(last)]) : row_begin;
            }
            b.cross_row_begin.push_back(row_begin);
            b.cross_row_end.push_back(row_end);
            if (s.embedding_row && s.embedding_row[t] >= 0) {
                b.embed_rows.push_back(b.num_tokens + t);
                b.embed_src.push_back(s.embeddings + static_cast<int64_t>(s.embedding_row[t]) * hp_.n_embd);
            }
            b.tokens.push_back(s.tokens[t]);
            b.positions.push_back(s.position + t);
            b.token_seq.push_back(b.num_seqs);
        }
        b.num_tokens += s.count;
        b.query_start.push_back(b.num_tokens);
        b.context_len.push_back(s.position + s.count);
        b.max_blocks = std::max<int32_t>(b.max_blocks, static_cast<int32_t>(s.block_table->size()));
        if (s.want_logits) {
            for (int32_t t = s.count - logit_rows_of(s); t < s.count; ++t) {
                b.logit_rows.push_back(b.num_tokens - s.count + t);
                ++logit_rows;
            }
        }
        ++b.num_seqs;
        acc += s.count;
        // Close this part at its share of the tokens, or when each later part needs one of
        // the sequences left.
        const int32_t seqs_left = n - i - 1, parts_left = parts - part - 1;
        if (parts_left > 0 && (acc * parts >= total_tokens * (part + 1) || seqs_left == parts_left))
            ++part;
    }
    // Block tables padded to each micro-batch's widest.
    int32_t first = 0;
    for (auto& b : batches) {
        b.block_tables.assign(static_cast<size_t>(b.num_seqs) * b.max_blocks, 0);
        for (int32_t j = 0; j < b.num_seqs; ++j) {
            const auto& table = *seqs[first + j].block_table;
            std::copy(table.begin(), table.end(), b.block_tables.begin() + j * b.max_blocks);
        }
        first += b.num_seqs;
    }
    batches.erase(std::remove_if(batches.begin(), batches.end(),
                                 [](const MicroBatch& b) { return b.num_seqs == 0; }),
                  batches.end());
    // A batch without images skips the cross-attention layers.
    for (auto& b : batches) {
        if (std::none_of(b.cross.begin(), b.cross.end(), [](const auto& c) { return c != nullptr; })) {
            b.cross.clear();
            b.cross_row_begin.clear();
            b.cross_row_end.clear();
        }
    }
    *logit_rows_out = logit_rows;
    return batches;
}

// A step posted to the devices and not yet waited for.
struct Executor::InFlight {
    explicit InFlight(size_t shards) : results(shards), done(static_cast<std::ptrdiff_t>(shards)) {}
    std::vector<MicroBatch> batches;
    std::vector<float> logits;
    decltype(std::declval<PluginHost&>().snapshot()) plugin_set;  // held to the end of the step
    std::vector<Status> results;
    std::latch done;
};

void Executor::post_batches(InFlight& f) {
    const auto& plan = options_.plan;
    const int64_t V = hp_.n_vocab;
    f.plugin_set = plugins_->snapshot();
    float* logits = f.logits.data();
    peak_in_flight_ = std::max(peak_in_flight_, ++in_flight_);
    // Every device gets this step's task after those of the steps launched before it, in the
    // same order on every device: stage s+1 receives the micro-batches of one step after
    // another in the order stage s sends them.
    for (size_t i = 0; i < shards_.size(); ++i) {
        ModelShard* shard = shards_[i].get();
        Communicator* tc = tensor_comms_[i].get();
        Communicator* pc = pipe_comms_[i].get();
        const int32_t index = plan.device_of(shard->spec().stage, shard->spec().rank);
        const auto& per_device = f.plugin_set->devices[world_ ? 0 : index];
        shard->device().post([this, &f, &per_device, shard, tc, pc, i, index, logits, V] {
            Status s;
            for (const auto& b : f.batches) {
                s = shard->forward(b, per_device, tc, pc, logits);
                if (!s.ok()) break;
            }
            // MPI: the logits travel from their producer to rank 0, one micro-batch at a time.
            if (s.ok() && world_ && logits_producer() != 0) {
                for (const auto& b : f.batches) {
                    const size_t bytes = b.logit_rows.size() * V * sizeof(float);
                    if (bytes == 0) continue;
                    float* at = logits + static_cast<int64_t>(b.logits_offset) * V;
                    if (index == logits_producer()) s = world_comm_->send(at, bytes, 0);
                    else if (index == 0) s = world_comm_->recv(at, bytes, logits_producer());
                    if (!s.ok()) break;
                }
            }
            if (!s.ok()) {
                f.results[i] = s;
                if (!world_) {
                    tensor_groups_[shard->spec().stage]->abort();
                    pipe_groups_[shard->spec().rank]->abort();
                }
            }
            f.done.count_down();
        });
    }
}

Status Executor::finish_batches(InFlight& f) {
    f.done.wait();
    --in_flight_;
    Status failed;
    for (const auto& s : f.results) {
        if (s.ok()) continue;
        // The first real failure is the cause; the others are peers woken by the abort.
        failed = s;
        for (const auto& r : f.results)
            if (!r.ok() && r.code() != status_code::unavailable) {
                failed = r;
                break;
            }
        break;
    }
    if (!failed.ok()) needs_rebuild_ = true;
    // The groups are rebuilt only once no other step still runs on them.
    if (needs_rebuild_ && in_flight_ == 0) {
        rebuild_groups();
        needs_rebuild_ = false;
    }
    return failed;
}

Status Executor::run_batches(std::vector<MicroBatch> batches, std::vector<float>& logits) {
    InFlight f(shards_.size());
    f.batches = std::move(batches);
    f.logits = std::move(logits);
    post_batches(f);
    Status s = finish_batches(f);
    logits = std::move(f.logits);
    return s;
}

Expected<Executor::InFlightPtr> Executor::launch(std::span<const StepSequence> seqs) {
    if (world_) return invalid_argument("launch: steps in flight are for in-process device groups");
    LLMQ_TRY(check_step(seqs));
    InFlightPtr f(new InFlight(shards_.size()));
    int32_t logit_rows = 0;
    f->batches = make_batches(seqs, &logit_rows);
    f->logits.resize(static_cast<size_t>(logit_rows) * hp_.n_vocab);
    post_batches(*f);
    return f;
}

Status Executor::wait(InFlight& flight, std::vector<float>& logits) {
    Status s = finish_batches(flight);
    logits.swap(flight.logits);
    return s;
}

void Executor::InFlightDeleter::operator()(InFlight* f) const { delete f; }

Status Executor::check_step(std::span<const StepSequence> seqs) const {
    const int32_t n = static_cast<int32_t>(seqs.size());
    if (n > options_.max_seqs_per_step)
        return internal_error("step of " + std::to_string(n) + " sequences exceeds the limit");
    int64_t total_tokens = 0;
    for (const auto& s : seqs) total_tokens += s.count;
    if (total_tokens > options_.max_tokens_per_step)
        return internal_error("step of " + std::to_string(total_tokens) + " tokens exceeds the limit");
    int64_t wanted_rows = 0;
    for (const auto& s : seqs)
        wanted_rows += logit_rows_of(s);
    if (wanted_rows > options_.max_seqs_per_step)
        return internal_error("step wants the logits of " + std::to_string(wanted_rows) +
                              " tokens; the workspace holds " + std::to_string(options_.max_seqs_per_step));
    return {};
}

Status Executor::forward(std::span<const StepSequence> seqs, std::vector<float>& logits) {
    if (seqs.empty()) return {};
    LLMQ_TRY(check_step(seqs));
    int32_t logit_rows = 0;
    std::vector<MicroBatch> batches = make_batches(seqs, &logit_rows);
    logits.resize(static_cast<size_t>(logit_rows) * hp_.n_vocab);
    if (world_) {
        for (const auto& b : batches)
            if (!b.embed_rows.empty() || !b.cross.empty())
                return unsupported("images across MPI ranks are not done yet: serve a vision model in one process");
        std::vector<int32_t> words = serialize(batches);
        int64_t count = static_cast<int64_t>(words.size());
        LLMQ_TRY(world_comm_->broadcast(&count, sizeof count, 0));
        LLMQ_TRY(world_comm_->broadcast(words.data(), words.size() * sizeof(int32_t), 0));
    }
    return run_batches(std::move(batches), logits);
}

void Executor::release_image_kv(uint64_t states_id) {
    for (auto& shard : shards_) {
        ModelShard* s = shard.get();
        s->device().post([s, states_id] { s->release_image_kv(states_id); });
    }
}

uint64_t Executor::image_kv_bytes() const {
    uint64_t total = 0;
    for (const auto& s : shards_) total += s->image_kv_bytes();
    return total;
}

Status Executor::on_vision_device(const std::function<Status(PluginInstance&)>& encode) {
    auto set = plugins_->snapshot();
    std::shared_ptr<PluginInstance> vision = set->of(LLMQ_PLUGIN_KIND_VISION, 0);
    if (!vision)
        return unavailable("no vision plugin is loaded on " + backends_[0]->device().info().name +
                           ": set [plugins] vision = \"vision-cpu\"");
    std::promise<Status> done;
    auto result = done.get_future();
    backends_[0]->device().post([&] { done.set_value(encode(*vision)); });
    return result.get();
}

Status Executor::encode_image(const VisionEncoder& encoder, const RgbImage& image, float* out) {
    return on_vision_device([&](PluginInstance& vision) { return encoder.encode(image, vision, out); });
}

Status Executor::encode_mllama_image(const MllamaVisionModel& model, const RgbImage& image, MllamaImageFeatures& out) {
    return on_vision_device([&](PluginInstance& vision) { return model.encode(image, vision, out); });
}

Status Executor::follow() {
    if (!world_) return invalid_argument("follow() is for MPI ranks other than 0");
    for (;;) {
        int64_t count = 0;
        LLMQ_TRY(world_comm_->broadcast(&count, sizeof count, 0));
        if (count == 0) return {};  // rank 0 stops
        if (count < 0 || count > (int64_t{1} << 28)) return internal_error("step broadcast: bad size");
        std::vector<int32_t> words(static_cast<size_t>(count));
        LLMQ_TRY(world_comm_->broadcast(words.data(), words.size() * sizeof(int32_t), 0));
        auto batches = deserialize(words);
        if (!batches) return batches.status();
        int64_t rows = 0;
        for (const auto& b : *batches) rows += static_cast<int64_t>(b.logit_rows.size());
        follower_logits_.resize(static_cast<size_t>(rows) * hp_.n_vocab);
        LLMQ_TRY(run_batches(std::move(*batches), follower_logits_));
    }
}

void Executor::stop_followers() {
    if (!world_ || world_->rank() != 0) return;
    int64_t zero = 0;
    (void)world_comm_->broadcast(&zero, sizeof zero, 0);
}

}  // namespace llmq
