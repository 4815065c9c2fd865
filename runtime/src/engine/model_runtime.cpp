#include "llmq/runtime/model_runtime.hpp"

#include <chrono>
#include <filesystem>

#include "llmq/runtime/byte_size.hpp"
#include "llmq/runtime/device_selection.hpp"
#include "llmq/runtime/log.hpp"
#include "llmq/runtime/model_file.hpp"

namespace llmq {

PlannerInput planner_input(const Config& c) {
    PlannerInput in;
    if (c.parallel.tensor) in.tensor = *c.parallel.tensor;
    if (c.parallel.pipeline) in.pipeline = *c.parallel.pipeline;
    in.memory_fraction = c.devices.memory_fraction;
    in.kv_dtype = c.kv_cache.dtype == KvCacheDtype::f32 ? kernels::dtype::f32 : kernels::dtype::f16;
    in.block_size = c.kv_cache.block_size;
    in.kv_memory = c.kv_cache.memory;
    in.context_length = static_cast<int32_t>(c.model.context_length);
    in.max_seqs = c.scheduler.max_running_sequences;
    in.max_tokens_per_step = c.scheduler.max_tokens_per_step;
    in.max_images = c.ipc.max_images;
    if (c.model.vision.empty()) {
        // A single-file mllama model's own vision part.
        GgufFile::Options header_only;
        header_only.require_data = false;
        if (auto file = GgufFile::open(c.model.path, header_only);
            file && (*file)->has("mllama.vision.block_count"))
            if (auto model = MllamaVisionModel::from_file(*file)) {
                in.vision_weight_bytes = (*model)->weight_bytes();
                in.vision_activation_bytes = (*model)->activation_bytes();
            }
    } else {
        // The header is enough; a file that does not open is refused, naming it, when the
        // model loads (ModelRuntime::load) or by `llmq plan`.
        GgufFile::Options header_only;
        header_only.require_data = false;
        if (auto file = GgufFile::open(c.model.vision, header_only))
            if (auto clip = ClipModel::from_file(*file)) {
                in.vision_weight_bytes = (*clip)->weight_bytes();
                in.vision_activation_bytes = (*clip)->activation_bytes();
            }
    }
    return in;
}

CpuDeviceOptions cpu_device_options(const DevicesConfig& d) {
    CpuDeviceOptions o;
    o.count = d.cpu;
    o.threads_per_device = d.cpu_threads_per_device;
    o.memory_limit = d.cpu_memory_limit;
    return o;
}

Expected<std::unique_ptr<ModelRuntime>> ModelRuntime::load(const Config& config, MpiWorld* world,
                                                          const ProgressFn& progress) {
    const auto start = std::chrono::steady_clock::now();
    // The load's steps, in order; the last one reports the end.
    constexpr uint64_t kSteps = 5;
    auto step = [&](uint64_t done, std::string_view what) {
        if (progress) progress({"loading model", what, done, kSteps, false});
    };
    step(0, "reading the model file");
    if (config.model.path.empty())
        return invalid_argument("[model] path is empty: name a GGUF model file");
    std::unique_ptr<ModelRuntime> m(new ModelRuntime());
    auto file = open_model_file(config.model.path);
    if (!file) return file.status();
    m->file_ = *file;
    auto layout = load_llama_layout(*m->file_);
    if (!layout) return layout.status();
    m->layout_ = std::move(*layout);
    step(1, "reading the tokenizer");
    auto vocab = vocab_from_gguf(*m->file_);
    if (!vocab) return vocab.status();
    auto tok = Tokenizer::create(std::move(*vocab));
    if (!tok) return tok.status();
    m->tokenizer_ = std::move(*tok);
    // mllama's tokenizer also lists <|image|>, which has an embedding row and no logit.
    const int64_t tokens = m->tokenizer_->vocab_size();
    if (tokens < m->layout_.hp.n_vocab || tokens > m->layout_.hp.n_embd_rows)
        return corrupt(config.model.path + ": the tokenizer has " +
                       std::to_string(m->tokenizer_->vocab_size()) + " tokens, the model " +
                       std::to_string(m->layout_.hp.n_vocab));
    if (!config.model.chat_template.empty()) {
        auto source = read_chat_template_file(config.model.chat_template);
        if (!source) return source.status().with_context("[model] chat_template");
        m->chat_template_ = select_chat_template(*m->tokenizer_, *source, config.model.chat_template);
        if (!m->chat_template_) return m->chat_template_.status();
    } else {
        m->chat_template_ = select_chat_template(*m->tokenizer_, {}, {});
        if (!m->chat_template_) log::warn(m->chat_template_.status().message());
    }
        m->name_ = config.model.name.empty()
                   ? (m->file_->format() == "GGUF" ? std::filesystem::path(m->file_->path()).stem().string()
                                                   : std::filesystem::path(m->file_->path()).filename().string())
                   : config.model.name;

    // Devices, then the plan, before any weight is touched.
    step(2, "planning memory");
    auto devices = make_devices(config.devices, world != nullptr);  // one device per MPI rank
    if (!devices) return devices.status();
    m->devices_ = std::move(*devices);
    std::vector<DeviceInfo> infos;
    for (const auto& d : m->devices_) infos.push_back(d->info());
    if (world) {
        // Every rank's device is planned like this one (same config, same kind of host).
        DeviceInfo local = infos[0];
        const std::string own = local.name;
        infos.clear();
        for (int r = 0; r < world->size(); ++r) {
            local.index = r;
            local.name = "rank" + std::to_string(r) + ":" + own;
            infos.push_back(local);
        }
    }
    auto plan = plan_memory(m->layout_, infos, planner_input(config));
    if (!plan) return plan.status();
    m->plan_ = std::move(*plan);
    if (!m->plan_.fits) return out_of_memory(m->plan_.reason);
    {
        std::string text = m->plan_.to_text(), line;
        for (char c : text) {
            if (c != '\n') { line += c; continue; }
            log::info(line);
            line.clear();
        }
    }

    if (world && m->plan_.parallel.devices() != world->size())
        return invalid_argument("[parallel] plans " + std::to_string(m->plan_.parallel.devices()) +
                                " devices but mpirun started " + std::to_string(world->size()) +
                                " ranks; with MPI every rank holds one shard");
    std::vector<Device*> used;
    if (world) used.push_back(m->devices_[0].get());
    else
        for (int32_t i = 0; i < m->plan_.parallel.devices(); ++i) used.push_back(m->devices_[i].get());
    if (!config.model.vision.empty()) {
        auto clip = ClipModel::open(config.model.vision);
        if (!clip) return clip.status().with_context("[model] vision");
        ImageLimits limits;
        limits.max_dimension = config.ipc.max_image_dimension;
        limits.max_pixels = config.ipc.max_image_pixels;
        limits.max_images = config.ipc.max_images;
        limits.max_total_bytes = config.ipc.max_image_bytes;
        auto vision = VisionEncoder::create(*clip, m->layout_.hp.n_embd, limits);
        if (!vision) return vision.status().with_context("[model] vision");
        m->vision_ = std::move(*vision);
    }
    ImageLimits limits;
    limits.max_dimension = config.ipc.max_image_dimension;
    limits.max_pixels = config.ipc.max_image_pixels;
    limits.max_images = config.ipc.max_images;
    limits.max_total_bytes = config.ipc.max_image_bytes;
    if (m->layout_.hp.arch == "mllama" && m->file_->has("mllama.vision.block_count")) {
        if (!config.model.vision.empty())
            return invalid_argument("[model] vision: an mllama file holds its own vision part; no projector file goes with it");
        auto model = MllamaVisionModel::from_file(m->file_);
        if (!model) return model.status();
        if ((*model)->hparams().projection_dim != static_cast<int32_t>(m->layout_.hp.n_embd))
            return corrupt(config.model.path + ": mm.0 projects to " + std::to_string((*model)->hparams().projection_dim) +
                           " values, the text model's embedding length is " + std::to_string(m->layout_.hp.n_embd));
        m->mllama_vision_ = std::move(*model);
    }
    step(3, "loading plugins");
    PluginChoice choice;
    choice.dir = config.plugins.dir;
    choice.gemm = config.plugins.gemm;
    choice.attention = config.plugins.attention;
    // A vision model needs a vision plugin: vision-cpu unless [plugins] vision names one.
    const bool vision_model = !config.model.vision.empty() || m->mllama_vision_;
    choice.vision = config.plugins.vision.empty() && vision_model ? "vision-cpu" : config.plugins.vision;
    choice.cuda_gemm = config.plugins.cuda_gemm;
    choice.cuda_attention = config.plugins.cuda_attention;
    choice.cuda_vision = config.plugins.cuda_vision;
    choice.probe = config.plugins.probe;
    choice.max_file_size = config.plugins.max_file_size;
    for (const auto& [name, table] : config.plugins.tables) choice.plugin_tables.emplace_back(name, table);
    auto host = PluginHost::create(choice, used);
    if (!host) return host.status();
    m->plugins_ = std::move(*host);

    ExecutorOptions eo;
    eo.plan = m->plan_.parallel;
    eo.block_size = m->plan_.block_size;
    eo.num_blocks = m->plan_.num_blocks;
    eo.kv_dtype = config.kv_cache.dtype == KvCacheDtype::f32 ? kernels::dtype::f32 : kernels::dtype::f16;
    eo.max_tokens_per_step = config.scheduler.max_tokens_per_step;
    eo.max_seqs_per_step = config.scheduler.max_running_sequences;
    eo.decode_graphs = config.cuda.graphs;
    std::vector<Backend*> backends;
    for (Device* d : used) {
        auto backend = d->create_backend();
        if (!backend) return backend.status().with_context(d->info().name);
        backends.push_back(backend->get());
        m->backends_.push_back(std::move(*backend));
    }
    step(4, "placing weights");
    auto exec = Executor::create(m->layout_, backends, *m->plugins_, eo, world);
    if (!exec) return exec.status();
    m->executor_ = std::move(*exec);

    EngineOptions en;
    en.max_tokens_per_step = config.scheduler.max_tokens_per_step;
    en.max_running = config.scheduler.max_running_sequences;
    en.max_queued = config.scheduler.max_queued_requests;
    en.max_running_per_owner = config.ipc.max_running_per_client;
    en.max_new_tokens = config.scheduler.max_new_tokens;
    en.prefill_chunk = config.scheduler.prefill_chunk;
    en.context_length = m->plan_.context_length;
    en.stall_timeout = config.ipc.stall_timeout;
    m->engine_ = std::make_unique<Engine>(*m->tokenizer_, *m->executor_, en);
    m->engine_->set_vision(m->vision_.get());
    if (m->mllama_vision_) m->engine_->set_mllama_vision(m->mllama_vision_.get(), limits);
    m->load_seconds_ =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    step(kSteps, "ready");
    return m;
}

ModelRuntime::~ModelRuntime() {
    // The engine and executor use the backends and devices; the devices' workers stop last.
    engine_.reset();
    executor_.reset();
    backends_.clear();
    plugins_.reset();
}

}  // namespace llmq
