#include "llmq/runtime/executor.hpp"

#include <algorithm>
#include <latch>

namespace llmq {

Expected<std::unique_ptr<Executor>> Executor::create(const LlamaLayout& layout,
                                                     std::vector<Device*> devices,
                                                     PluginHost& plugins,
                                                     const ExecutorOptions& options) {
    const auto& plan = options.plan;
    if (static_cast<int32_t>(devices.size()) < plan.devices())
        return invalid_argument("[parallel] tensor = " + std::to_string(plan.tensor) +
                                " x pipeline = " + std::to_string(plan.pipeline) + " needs " +
                                std::to_string(plan.devices()) + " devices, " +
                                std::to_string(devices.size()) + " are present");
    if (options.num_blocks <= 0) return invalid_argument("[kv_cache] leaves no KV blocks");
    std::unique_ptr<Executor> e(new Executor());
    e->hp_ = layout.hp;
    e->options_ = options;
    e->plugins_ = &plugins;
    e->devices_ = std::move(devices);
    e->blocks_ = std::make_unique<KvBlockAllocator>(options.num_blocks);
    KvCacheShape kv;
    kv.block_size = options.block_size;
    kv.num_blocks = options.num_blocks;
    kv.dtype = options.kv_dtype;
    for (int32_t s = 0; s < plan.pipeline; ++s) {
        for (int32_t r = 0; r < plan.tensor; ++r) {
            ShardSpec spec{s, plan.pipeline, r, plan.tensor, plan.stage_layers[s],
                           plan.stage_layers[s + 1]};
            Device& dev = *e->devices_[plan.device_of(s, r)];
            auto shard = ModelShard::create(layout, spec, dev, kv, options.max_tokens_per_step,
                                            options.max_seqs_per_step);
            if (!shard) return shard.status();
            e->shards_.push_back(std::move(*shard));
        }
    }
    for (int32_t s = 0; s < plan.pipeline; ++s)
        e->tensor_groups_.push_back(std::make_unique<InProcessGroup>(plan.tensor));
    for (int32_t r = 0; r < plan.tensor; ++r)
        e->pipe_groups_.push_back(std::make_unique<InProcessGroup>(plan.pipeline));
    e->rebuild_groups();
    return e;
}

Executor::~Executor() = default;

void Executor::rebuild_groups() {
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

std::vector<ShardReport> Executor::shards() const {
    std::vector<ShardReport> out;
    for (const auto& s : shards_)
        out.push_back({s->device().info().name, s->spec().stage, s->spec().rank,
                       s->spec().layer_begin, s->spec().layer_end, s->weight_bytes(),
                       s->kv().shape().total_bytes(), s->workspace_bytes()});
    return out;
}

Status Executor::forward(std::span<const StepSequence> seqs, std::vector<float>& logits) {
    const auto& plan = options_.plan;
    const int32_t n = static_cast<int32_t>(seqs.size());
    if (n == 0) return {};
    if (n > options_.max_seqs_per_step)
        return internal_error("step of " + std::to_string(n) + " sequences exceeds the limit");

    // Micro-batches: contiguous runs of sequences, about equal in tokens; one per stage
    // (when there are enough sequences) keeps every stage busy.
    int64_t total_tokens = 0;
    for (const auto& s : seqs) total_tokens += s.count;
    if (total_tokens > options_.max_tokens_per_step)
        return internal_error("step of " + std::to_string(total_tokens) + " tokens exceeds the limit");
    const int32_t parts = std::max<int32_t>(1, std::min<int32_t>(n, plan.pipeline));
    std::vector<MicroBatch> batches(parts);
    int32_t logit_rows = 0;
    {
        int32_t part = 0;
        int64_t acc = 0;
        for (int32_t i = 0; i < n; ++i) {
            MicroBatch& b = batches[part];
            const StepSequence& s = seqs[i];
            if (b.num_seqs == 0) {
                b.query_start.push_back(0);
                b.logits_offset = logit_rows;
            }
            for (int32_t t = 0; t < s.count; ++t) {
                b.tokens.push_back(s.tokens[t]);
                b.positions.push_back(s.position + t);
                b.token_seq.push_back(b.num_seqs);
            }
            b.num_tokens += s.count;
            b.query_start.push_back(b.num_tokens);
            b.context_len.push_back(s.position + s.count);
            b.max_blocks = std::max<int32_t>(b.max_blocks, static_cast<int32_t>(s.block_table->size()));
            if (s.want_logits) {
                b.logit_rows.push_back(b.num_tokens - 1);
                ++logit_rows;
            }
            ++b.num_seqs;
            acc += s.count;
            // Close this part at its share of the tokens, or when each later part needs
            // one of the sequences left.
            const int32_t seqs_left = n - i - 1, parts_left = parts - part - 1;
            if (parts_left > 0 && (acc * parts >= total_tokens * (part + 1) || seqs_left == parts_left))
                ++part;
        }
        // Block tables padded to the micro-batch's widest.
        int32_t first = 0;
        for (auto& b : batches) {
            b.block_tables.assign(static_cast<size_t>(b.num_seqs) * b.max_blocks, 0);
            for (int32_t j = 0; j < b.num_seqs; ++j) {
                const auto& table = *seqs[first + j].block_table;
                std::copy(table.begin(), table.end(), b.block_tables.begin() + j * b.max_blocks);
            }
            first += b.num_seqs;
        }
    }
    batches.erase(std::remove_if(batches.begin(), batches.end(),
                                 [](const MicroBatch& b) { return b.num_seqs == 0; }),
                  batches.end());
    logits.resize(static_cast<size_t>(logit_rows) * hp_.n_vocab);

    auto plugin_set = plugins_->snapshot();  // held to the end of the step
    std::vector<Status> results(shards_.size());
    std::latch done(static_cast<std::ptrdiff_t>(shards_.size()));
    for (size_t i = 0; i < shards_.size(); ++i) {
        ModelShard* shard = shards_[i].get();
        Communicator* tc = tensor_comms_[i].get();
        Communicator* pc = pipe_comms_[i].get();
        const auto& per_device = plugin_set->devices[plan.device_of(shard->spec().stage, shard->spec().rank)];
        shard->device().post([&, shard, tc, pc, i] {
            for (const auto& b : batches) {
                Status s = shard->forward(b, per_device, tc, pc, logits.data());
                if (!s.ok()) {
                    results[i] = s;
                    tensor_groups_[shard->spec().stage]->abort();
                    pipe_groups_[shard->spec().rank]->abort();
                    break;
                }
            }
            done.count_down();
        });
    }
    done.wait();
    for (const auto& s : results) {
        if (!s.ok()) {
            rebuild_groups();
            // The first failure is the cause; the others are peers woken by the abort.
            for (const auto& r : results)
                if (!r.ok() && r.code() != status_code::unavailable) return r;
            return s;
        }
    }
    return {};
}

}  // namespace llmq
