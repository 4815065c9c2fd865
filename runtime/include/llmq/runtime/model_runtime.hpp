// A loaded model ready to serve: the GGUF file, its tokenizer, the devices, the memory
// plan, the plugins, the executor and the engine, built from one Config in that order. The
// memory plan is made from the file's header before any weight is read; a plan that does
// not fit stops the load with the planner's numbers.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "llmq/runtime/backend.hpp"
#include "llmq/runtime/chat_template.hpp"
#include "llmq/runtime/config.hpp"
#include "llmq/runtime/device.hpp"
#include "llmq/runtime/engine.hpp"
#include "llmq/runtime/executor.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/llama_layout.hpp"
#include "llmq/runtime/memory_planner.hpp"
#include "llmq/runtime/mpi_world.hpp"
#include "llmq/runtime/plugin_host.hpp"
#include "llmq/runtime/progress.hpp"
#include "llmq/runtime/tokenizer.hpp"

namespace llmq {

// The planner's input from a config and the model's hyperparameters.
PlannerInput planner_input(const Config& config);
// CPU device options from [devices].
CpuDeviceOptions cpu_device_options(const DevicesConfig& devices);

class ModelRuntime {
public:
    // Load config.model.path. Thread: any; the engine is then driven by one thread.
    // With an MPI world every process calls load with the same config: each holds one
    // device and one shard, and the plan counts one device per rank.
    // `progress` (optional) hears the load's steps, stage "loading model".
    static Expected<std::unique_ptr<ModelRuntime>> load(const Config& config,
                                                        MpiWorld* world = nullptr,
                                                        const ProgressFn& progress = {});
    ~ModelRuntime();

    Engine& engine() { return *engine_; }
    const Tokenizer& tokenizer() const { return *tokenizer_; }
    // The chat template: [model] chat_template when set (a file that cannot be read or
    // parsed stops the load), else the model file's tokenizer.chat_template (one that does
    // not parse is this error, so generation still works and chat says why), else plain().
    const Expected<std::shared_ptr<const ChatTemplate>>& chat_template() const { return chat_template_; }
    const LlamaHParams& hparams() const { return layout_.hp; }
    const LlamaLayout& layout() const { return layout_; }
    const MemoryPlan& plan() const { return plan_; }
    PluginHost& plugins() { return *plugins_; }
    Executor& executor() { return *executor_; }
    const VisionEncoder* vision() const { return vision_.get(); }
    // The vision part of a single-file Llama 3.2 Vision model (null: none).
    const MllamaVisionModel* mllama_vision() const { return mllama_vision_.get(); }
    // Whether requests may carry images (either kind of vision model).
    bool takes_images() const { return vision_ || mllama_vision_; }
    const std::vector<std::unique_ptr<Device>>& devices() const { return devices_; }
    const std::string& model_name() const { return name_; }
    const std::string& model_path() const { return file_->path(); }
    double load_seconds() const { return load_seconds_; }

private:
    ModelRuntime() = default;
    std::shared_ptr<const GgufFile> file_;
    LlamaLayout layout_;
    std::unique_ptr<Tokenizer> tokenizer_;
    Expected<std::shared_ptr<const ChatTemplate>> chat_template_{ChatTemplate::plain()};
    std::vector<std::unique_ptr<Device>> devices_;
    std::vector<std::unique_ptr<Backend>> backends_;  // one per device the plan uses
    MemoryPlan plan_;
    std::unique_ptr<PluginHost> plugins_;
    std::unique_ptr<Executor> executor_;
    std::unique_ptr<Engine> engine_;
    std::unique_ptr<VisionEncoder> vision_;  // [model] vision; null: text only
    std::shared_ptr<const MllamaVisionModel> mllama_vision_;
    std::string name_;
    double load_seconds_ = 0;
};

}  // namespace llmq
