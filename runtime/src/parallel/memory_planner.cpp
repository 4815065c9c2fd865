#include "llmq/runtime/memory_planner.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

#include "llmq/runtime/byte_size.hpp"

namespace llmq {

namespace {

std::vector<int32_t> divisors(int32_t n) {
    std::vector<int32_t> d;
    for (int32_t i = 1; i <= n; ++i)
        if (n % i == 0) d.push_back(i);
    return d;
}

}  // namespace

uint64_t shard_weight_bytes(const LlamaLayout& layout, const ShardSpec& spec) {
    uint64_t b = 0;
    for (int32_t l = spec.layer_begin; l < spec.layer_end; ++l)
        b += rank_layer_bytes(layout, spec.ranks, spec.rank, l);
    if (spec.stage == 0) b += rank_embedding_bytes(layout, spec.ranks, spec.rank);
    if (spec.stage == spec.stages - 1)
        b += rank_lm_head_bytes(layout, spec.ranks, spec.rank, spec.stage == 0);
    return b;
}

uint64_t shard_workspace_bytes(const LlamaHParams& hp, int32_t tensor, int32_t rank,
                               int32_t max_tokens, int32_t max_logit_rows) {
    const TensorSlice s = tensor_slice(hp, tensor, rank);
    const uint64_t T = max_tokens, E = hp.n_embd, hd = hp.head_dim;
    const uint64_t q = (s.head_end - s.head_begin) * hd, kv = (s.kv_end - s.kv_begin) * hd;
    const uint64_t ff = s.ff_end - s.ff_begin;
    const uint64_t logits = static_cast<uint64_t>(max_logit_rows) * s.vocab_padded * (1 + tensor);
    // x, h, o; q, att; k, v; gate, up; logits (the same buffers ModelShard allocates)
    return 4 * (T * E * 3 + T * q * 2 + T * kv * 2 + T * ff * 2 + logits);
}

Expected<ParallelPlan> auto_parallel_plan(const LlamaLayout& layout, int32_t devices,
                                          uint64_t kv_head_bytes) {
    const int32_t layers = static_cast<int32_t>(layout.layers.size());
    auto ds = divisors(devices);
    for (auto it = ds.rbegin(); it != ds.rend(); ++it) {
        const int32_t tp = *it, pp = devices / tp;
        if (pp > layers) continue;
        if (!check_tensor_split(layout, tp).ok()) continue;
        return make_parallel_plan(layout, tp, pp, kv_head_bytes);
    }
    // No exact factorisation: use fewer devices, largest count first.
    for (int32_t n = devices - 1; n >= 1; --n) {
        auto ds2 = divisors(n);
        for (auto it = ds2.rbegin(); it != ds2.rend(); ++it) {
            const int32_t tp = *it, pp = n / tp;
            if (pp <= layers && check_tensor_split(layout, tp).ok())
                return make_parallel_plan(layout, tp, pp, kv_head_bytes);
        }
    }
    return invalid_argument("no tensor/pipeline split of this model fits 1 device");
}

namespace {

int32_t context_of(const LlamaHParams& hp, const PlannerInput& in) {
    const int32_t c = in.context_length > 0 ? in.context_length : static_cast<int32_t>(hp.n_ctx_train);
    return c > 0 ? c : 2048;
}

int32_t blocks_per_sequence(const LlamaHParams& hp, const PlannerInput& in) {
    return (context_of(hp, in) + in.block_size - 1) / in.block_size;
}

// KV bytes one layer's one KV head holds for one full-context sequence: what a stage needs
// per layer and head beyond its weights, and so part of what the stage balancer evens out.
uint64_t sequence_kv_head_bytes(const LlamaHParams& hp, const PlannerInput& in) {
    const uint64_t esize = in.kv_dtype == kernels::dtype::f32 ? 4 : 2;
    return 2ull * hp.head_dim * static_cast<uint64_t>(blocks_per_sequence(hp, in)) * in.block_size * esize;
}

// Fill per-device numbers for a fixed split; fits says whether weights + workspace + one
// full-context sequence of KV fit every device.
MemoryPlan evaluate(const LlamaLayout& layout, const std::vector<DeviceInfo>& devices,
                    const PlannerInput& in, const ParallelPlan& plan) {
    const auto& hp = layout.hp;
    MemoryPlan mp;
    mp.parallel = plan;
    mp.block_size = in.block_size;
    mp.context_length = context_of(hp, in);
    mp.total_weights = layout.weight_bytes();
    const uint64_t esize = in.kv_dtype == kernels::dtype::f32 ? 4 : 2;
    const int32_t blocks_per_seq = blocks_per_sequence(hp, in);
    const int32_t logit_rows = std::min(in.max_seqs, in.max_tokens_per_step);
    mp.fits = true;
    int64_t max_blocks = INT32_MAX;
    uint64_t kv_per_block_total = 0;  // all devices, one block
    for (int32_t s = 0; s < plan.pipeline; ++s) {
        for (int32_t r = 0; r < plan.tensor; ++r) {
            const DeviceInfo& info = devices[plan.device_of(s, r)];
            DevicePlan d;
            d.device = info.name;
            d.stage = s;
            d.rank = r;
            d.layer_begin = plan.stage_layers[s];
            d.layer_end = plan.stage_layers[s + 1];
            d.capacity = info.memory_capacity;
            d.usable = static_cast<uint64_t>(std::floor(static_cast<double>(info.memory_capacity) * in.memory_fraction));
            ShardSpec spec{s, plan.pipeline, r, plan.tensor, d.layer_begin, d.layer_end};
            d.weights = shard_weight_bytes(layout, spec);
            d.workspace = shard_workspace_bytes(hp, plan.tensor, r, in.max_tokens_per_step, logit_rows);
            const TensorSlice sl = tensor_slice(hp, plan.tensor, r);
            uint64_t self_layers = 0, cross_layers = 0;
            for (int32_t l = d.layer_begin; l < d.layer_end; ++l) (layout.layers[l].cross ? cross_layers : self_layers) += 1;
            d.kv_per_block = 2ull * self_layers * (sl.kv_end - sl.kv_begin) * hp.head_dim * in.block_size * esize;
            d.image_kv = 2ull * cross_layers * static_cast<uint64_t>(layout.vision.rows_per_image) *
                         static_cast<uint64_t>(std::max(in.max_images, 0)) * (sl.kv_end - sl.kv_begin) * hp.head_dim * 4;
            d.minimum_kv = d.kv_per_block * blocks_per_seq;
            if (s == 0 && r == 0) {
                // The encoder runs once per image on the first device (a LLaVA projector file,
                // or an mllama file's own v.* / mm.0 tensors).
                d.vision_weights = in.vision_weight_bytes;
                d.vision_workspace = in.vision_activation_bytes;
            }
            const uint64_t fixed = d.fixed();
            d.fits = fixed + d.minimum_kv <= d.usable;
            if (!d.fits) mp.fits = false;
            if (d.kv_per_block > 0 && fixed < d.usable)
                max_blocks = std::min<int64_t>(max_blocks, (d.usable - fixed) / d.kv_per_block);
            else if (fixed >= d.usable)
                max_blocks = 0;
            kv_per_block_total += d.kv_per_block;
            mp.devices.push_back(d);
        }
    }
    int64_t wanted = static_cast<int64_t>(blocks_per_seq) * in.max_seqs;
    if (in.kv_memory > 0 && kv_per_block_total > 0)
        wanted = static_cast<int64_t>(in.kv_memory / kv_per_block_total);
    mp.num_blocks = static_cast<int32_t>(std::max<int64_t>(0, std::min<int64_t>(wanted, max_blocks)));
    if (mp.num_blocks < blocks_per_seq) {
        mp.fits = false;
        // A plan that does not fit shows what it needs, one full-context sequence, as the
        // refusal counts it; never the zero blocks that were left over.
        mp.num_blocks = blocks_per_seq;
    }
    for (auto& d : mp.devices) d.kv = d.kv_per_block * mp.num_blocks;
    return mp;
}

std::string split_name(const ParallelPlan& p) {
    return "tensor = " + std::to_string(p.tensor) + ", pipeline = " + std::to_string(p.pipeline);
}

}  // namespace

Expected<MemoryPlan> plan_memory(const LlamaLayout& layout, const std::vector<DeviceInfo>& devices,
                                 const PlannerInput& in) {
    const int32_t n = static_cast<int32_t>(devices.size());
    if (n == 0) return invalid_argument("no devices to plan for");
    if (in.memory_fraction <= 0 || in.memory_fraction > 1)
        return invalid_argument("[devices] memory_fraction must be in (0, 1]");
    const uint64_t kv_head_bytes = sequence_kv_head_bytes(layout.hp, in);
    ParallelPlan plan;
    if (!in.tensor && !in.pipeline) {
        auto p = auto_parallel_plan(layout, n, kv_head_bytes);
        if (!p) return p.status();
        plan = *p;
    } else {
        // One dimension given: the other is 1 unless given too.
        const int32_t tp = in.tensor.value_or(1), pp = in.pipeline.value_or(1);
        if (tp * pp > n)
            return invalid_argument("[parallel] tensor = " + std::to_string(tp) + " x pipeline = " +
                                    std::to_string(pp) + " needs " + std::to_string(tp * pp) +
                                    " devices; " + std::to_string(n) + " are present");
        auto p = make_parallel_plan(layout, tp, pp, kv_head_bytes);
        if (!p) return p.status();
        plan = *p;
    }
    MemoryPlan mp = evaluate(layout, devices, in, plan);
    if (mp.fits) return mp;

    std::ostringstream why;
    if (std::all_of(mp.devices.begin(), mp.devices.end(), [](const DevicePlan& d) { return d.fits; })) {
        // Every device has room for a sequence: [kv_cache] memory is what is short.
        uint64_t sequence = 0;
        for (const auto& d : mp.devices) sequence += d.minimum_kv;
        why << "[kv_cache] memory = " << format_bytes(in.kv_memory) << " holds fewer KV blocks than one "
            << mp.context_length << "-token sequence needs (" << format_bytes(sequence)
            << " over the " << mp.devices.size() << " device(s) of " << split_name(plan)
            << "): raise it to at least that, or lower [model] context_length";
        mp.reason = why.str();
        return mp;
    }
    // Explain: the worst device's numbers, then the smallest split that fits.
    auto shortfall = [](const DevicePlan& d) {
        return static_cast<double>(d.fixed() + d.minimum_kv) - static_cast<double>(d.usable);
    };
    const DevicePlan* worst = &mp.devices[0];
    for (const auto& d : mp.devices)
        if (shortfall(d) > shortfall(*worst)) worst = &d;
    why << "the model does not fit with " << split_name(plan) << ": device " << worst->device
        << " needs " << format_bytes(worst->weights) << " of weights + "
        << format_bytes(worst->workspace) << " of workspace + " << format_bytes(worst->minimum_kv)
        << " of KV cache for one " << mp.context_length << "-token sequence";
    if (worst->vision_weights + worst->vision_workspace > 0)
        why << " + " << format_bytes(worst->vision_weights) << " of vision tower and projector + "
            << format_bytes(worst->vision_workspace) << " of encoder activations";
    if (worst->image_kv > 0)
        why << " + " << format_bytes(worst->image_kv) << " of cross-attention image K/V for " << in.max_images
            << " images";
    why << " = " << format_bytes(worst->fixed() + worst->minimum_kv) << ", and has "
        << format_bytes(worst->usable) << " usable (" << format_bytes(worst->capacity) << " x "
        << in.memory_fraction << " memory_fraction)";
    bool found = false;
    for (int32_t count = 1; count <= n && !found; ++count) {
        auto ds = divisors(count);
        for (auto it = ds.rbegin(); it != ds.rend() && !found; ++it) {
            const int32_t tp = *it, pp = count / tp;
            if (pp > static_cast<int32_t>(layout.layers.size()) || !check_tensor_split(layout, tp).ok())
                continue;
            auto p = make_parallel_plan(layout, tp, pp, kv_head_bytes);
            if (!p) continue;
            MemoryPlan alt = evaluate(layout, devices, in, *p);
            if (alt.fits) {
                uint64_t most = 0;
                for (const auto& d : alt.devices) most = std::max(most, d.weights);
                why << "; " << split_name(*p) << " needs " << format_bytes(most)
                    << " of weights per device and fits";
                found = true;
            }
        }
    }
    if (!found)
        why << "; no split of the " << n << " device(s) present fits: more or larger devices, a "
            << "smaller context_length or a smaller weight type (Q8_0) would";
    mp.reason = why.str();
    return mp;
}

std::string MemoryPlan::to_text() const {
    std::ostringstream o;
    o << "plan: " << split_name(parallel) << " (" << parallel.devices() << " device"
      << (parallel.devices() == 1 ? "" : "s") << "), model weights " << format_bytes(total_weights)
      << ", context " << context_length << ", KV blocks " << num_blocks << " x " << block_size
      << " tokens\n";
    for (const auto& d : devices) {
        o << "  " << d.device << ": stage " << d.stage << " rank " << d.rank << " layers "
          << d.layer_begin << "-" << (d.layer_end - 1) << "  weights " << format_bytes(d.weights)
          << "  kv " << format_bytes(d.kv) << "  workspace " << format_bytes(d.workspace);
        if (d.vision_weights + d.vision_workspace > 0)
            o << "  vision tower " << format_bytes(d.vision_weights) << " + encoder activations "
              << format_bytes(d.vision_workspace);
        if (d.image_kv > 0) o << "  image K/V " << format_bytes(d.image_kv);
        o << "  total " << format_bytes(d.needed()) << " of " << format_bytes(d.usable)
          << " usable" << (d.fits ? "" : "  DOES NOT FIT") << "\n";
    }
    o << (fits ? "fits" : "does not fit: " + reason) << "\n";
    return o.str();
}

nlohmann::json MemoryPlan::to_json() const {
    nlohmann::json j;
    j["tensor"] = parallel.tensor;
    j["pipeline"] = parallel.pipeline;
    j["fits"] = fits;
    if (!fits) j["reason"] = reason;
    j["total_weight_bytes"] = total_weights;
    j["context_length"] = context_length;
    j["kv_blocks"] = num_blocks;
    j["block_size"] = block_size;
    j["devices"] = nlohmann::json::array();
    for (const auto& d : devices)
        j["devices"].push_back({{"device", d.device},
                                {"stage", d.stage},
                                {"rank", d.rank},
                                {"layers", {d.layer_begin, d.layer_end}},
                                {"capacity_bytes", d.capacity},
                                {"usable_bytes", d.usable},
                                {"weight_bytes", d.weights},
                                {"kv_bytes", d.kv},
                                {"workspace_bytes", d.workspace},
                                {"vision_weight_bytes", d.vision_weights},
                                {"vision_activation_bytes", d.vision_workspace},
                                {"image_kv_bytes", d.image_kv},
                                {"fits", d.fits}});
    return j;
}

Expected<std::vector<DeviceInfo>> parse_device_list(const std::string& text) {
    std::vector<DeviceInfo> out;
    auto add = [&](int count, uint64_t bytes) {
        for (int i = 0; i < count; ++i) {
            DeviceInfo d;
            d.index = static_cast<int>(out.size());
            d.name = "device:" + std::to_string(d.index);
            d.memory_capacity = bytes;
            out.push_back(d);
        }
    };
    std::stringstream ss(text);
    std::string item;
    while (std::getline(ss, item, ',')) {
        int count = 1;
        std::string size = item;
        if (auto x = item.find('x'); x != std::string::npos && x > 0 &&
                                     std::all_of(item.begin(), item.begin() + x, ::isdigit)) {
            count = std::stoi(item.substr(0, x));
            size = item.substr(x + 1);
        }
        auto bytes = parse_byte_size(size);
        if (!bytes || count < 1 || count > 4096)
            return invalid_argument("--devices \"" + text + "\": \"" + item +
                                    "\" is not COUNTxSIZE or SIZE (e.g. 4x80GiB)");
        add(count, *bytes);
    }
    if (out.empty()) return invalid_argument("--devices is empty");
    return out;
}

}  // namespace llmq
