// llmqd's `chat_template` control command: renders a conversation with the model's chat
// template (or one the client sends) and tokenizes it as the model must read it.
//
//   chat_template {}                         → {"origin": where the template came from,
//                                               "error": why it does not parse (only then)}
//   chat_template {"messages": [{"role", "content"}...],
//                  "add_generation_prompt": true (default),
//                  "template": Jinja source (optional, instead of the model's)}
//                                            → {"origin", "text": the rendered prompt,
//                                               "tokens": its ids}
// The tokens hold control tokens only where the template's markup spells them: message
// content that spells "<|eot_id|>" stays text. Bad arguments and templates that cannot render
// are invalid_argument errors naming the field or the template line; the daemon keeps serving.
#pragma once

namespace llmq::ipc {
class Listener;
}

namespace llmq {

class ModelRuntime;
struct Config;

// Registers the command. `runtime` must outlive the listener. Thread: the io_context's.
void register_chat_command(ipc::Listener& listener, const ModelRuntime& runtime, const Config& config);

}  // namespace llmq
