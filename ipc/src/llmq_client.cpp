// The C ABI (llmq_client.h) over the C++ Client: the one place where ipc::Error becomes
// llmq_client_status and where no exception may pass.
#include "llmq/llmq_client.h"

#include <algorithm>
#include <cstring>
#include <exception>
#include <memory>
#include <new>
#include <string>

#include "llmq/ipc/client.hpp"

struct llmq_client_error {
    llmq_client_status code;
    std::string message;
};

struct llmq_client {
    std::unique_ptr<llmq::ipc::Client> client;
    std::string event_text;  // backs llmq_event::text until the next call
};

namespace {

using llmq::ipc::ErrorCode;

llmq_client_status to_status(ErrorCode code) {
    switch (code) {
        case ErrorCode::ok: return LLMQ_CLIENT_OK;
        case ErrorCode::invalid_argument: return LLMQ_CLIENT_ERR_INVALID_ARGUMENT;
        case ErrorCode::not_found: return LLMQ_CLIENT_ERR_NOT_FOUND;
        case ErrorCode::permission_denied: return LLMQ_CLIENT_ERR_PERMISSION;
        case ErrorCode::busy: return LLMQ_CLIENT_ERR_BUSY;
        case ErrorCode::timeout: return LLMQ_CLIENT_ERR_TIMEOUT;
        case ErrorCode::disconnected: return LLMQ_CLIENT_ERR_DISCONNECTED;
        case ErrorCode::protocol: return LLMQ_CLIENT_ERR_PROTOCOL;
        case ErrorCode::io_error: return LLMQ_CLIENT_ERR_IO;
        case ErrorCode::internal: return LLMQ_CLIENT_ERR_INTERNAL;
    }
    return LLMQ_CLIENT_ERR_INTERNAL;
}

llmq_client_error* make(llmq_client_status code, std::string message) {
    return new (std::nothrow) llmq_client_error{code, std::move(message)};
}

llmq_client_error* from(const llmq::ipc::Error& error) { return make(to_status(error.code), error.message); }

// Runs `body`, turning any escaping exception into an error object.
template <typename Body>
llmq_client_error* guarded(const char* function, Body&& body) {
    try {
        return body();
    } catch (const std::bad_alloc&) {
        return make(LLMQ_CLIENT_ERR_INTERNAL, std::string(function) + ": out of memory");
    } catch (const std::exception& e) {
        return make(LLMQ_CLIENT_ERR_INTERNAL, std::string(function) + ": " + e.what());
    } catch (...) {
        return make(LLMQ_CLIENT_ERR_INTERNAL, std::string(function) + ": unknown exception");
    }
}

// Copies a caller's versioned struct over defaults: only the bytes it says it has.
template <typename T>
bool read_versioned(const T* in, T& out) {
    if (in == nullptr) return true;
    if (in->struct_size < sizeof(std::uint32_t)) return false;
    std::memcpy(&out, in, std::min<std::size_t>(in->struct_size, sizeof(T)));
    return true;
}

}  // namespace

extern "C" {

void llmq_client_api_version(uint32_t* major, uint32_t* minor) {
    if (major) *major = LLMQ_CLIENT_API_VERSION_MAJOR;
    if (minor) *minor = LLMQ_CLIENT_API_VERSION_MINOR;
}

llmq_client_status llmq_client_error_code(const llmq_client_error* error) { return error ? error->code : LLMQ_CLIENT_OK; }
const char* llmq_client_error_message(const llmq_client_error* error) { return error ? error->message.c_str() : ""; }
void llmq_client_error_delete(llmq_client_error* error) { delete error; }
void llmq_client_string_free(char* text) { delete[] text; }

const char* llmq_client_status_name(llmq_client_status status) {
    switch (status) {
        case LLMQ_CLIENT_OK: return "LLMQ_CLIENT_OK";
        case LLMQ_CLIENT_ERR_INVALID_ARGUMENT: return "LLMQ_CLIENT_ERR_INVALID_ARGUMENT";
        case LLMQ_CLIENT_ERR_NOT_FOUND: return "LLMQ_CLIENT_ERR_NOT_FOUND";
        case LLMQ_CLIENT_ERR_PERMISSION: return "LLMQ_CLIENT_ERR_PERMISSION";
        case LLMQ_CLIENT_ERR_BUSY: return "LLMQ_CLIENT_ERR_BUSY";
        case LLMQ_CLIENT_ERR_TIMEOUT: return "LLMQ_CLIENT_ERR_TIMEOUT";
        case LLMQ_CLIENT_ERR_DISCONNECTED: return "LLMQ_CLIENT_ERR_DISCONNECTED";
        case LLMQ_CLIENT_ERR_PROTOCOL: return "LLMQ_CLIENT_ERR_PROTOCOL";
        case LLMQ_CLIENT_ERR_IO: return "LLMQ_CLIENT_ERR_IO";
        case LLMQ_CLIENT_ERR_INTERNAL: return "LLMQ_CLIENT_ERR_INTERNAL";
    }
    return "LLMQ_CLIENT_ERR_UNKNOWN";
}

llmq_client_error* llmq_client_connect(const llmq_connect_options* options, llmq_client** out) {
    return guarded("llmq_client_connect", [&]() -> llmq_client_error* {
        if (out == nullptr) return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_connect: out is NULL");
        *out = nullptr;
        llmq_connect_options o = LLMQ_CONNECT_OPTIONS_INIT;
        if (!read_versioned(options, o)) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_connect: options->struct_size is not set; use LLMQ_CONNECT_OPTIONS_INIT");
        }
        if (o.api_major != LLMQ_CLIENT_API_VERSION_MAJOR) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT,
                        "llmq_client_connect: caller built for API " + std::to_string(o.api_major) +
                            ", this library is API " + std::to_string(LLMQ_CLIENT_API_VERSION_MAJOR));
        }
        llmq::ipc::ConnectOptions c;
        if (o.instance) c.instance = o.instance;
        if (o.dir) c.dir = o.dir;
        if (o.client_name) c.client_name = o.client_name;
        if (o.timeout_ms) c.timeout = std::chrono::milliseconds(o.timeout_ms);
        if (o.spin_us) c.spin = std::chrono::microseconds(o.spin_us);
        auto client = llmq::ipc::Client::connect(c);
        if (!client) return from(client.error());
        *out = new llmq_client{std::move(*client), {}};
        return nullptr;
    });
}

void llmq_client_close(llmq_client* client) { delete client; }

llmq_client_error* llmq_client_submit(llmq_client* client, const llmq_generate_request* request, uint64_t* request_id) {
    return guarded("llmq_client_submit", [&]() -> llmq_client_error* {
        if (client == nullptr || request == nullptr) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_submit: client or request is NULL");
        }
        llmq_generate_request r = LLMQ_GENERATE_REQUEST_INIT;
        if (!read_versioned(request, r)) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_submit: request->struct_size is not set; use LLMQ_GENERATE_REQUEST_INIT");
        }
        llmq::ipc::GenerateRequest g;
        if (r.prompt_tokens != nullptr) {
            g.prompt_is_tokens = true;
            g.prompt_tokens.assign(r.prompt_tokens, r.prompt_tokens + r.prompt_token_count);
        } else if (r.prompt != nullptr) {
            g.prompt_text.assign(r.prompt, r.prompt_length);
        } else if (r.prompt_length != 0) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_submit: prompt is NULL but prompt_length is not 0");
        }
        if (r.stop_count != 0 && r.stop == nullptr) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_submit: stop is NULL but stop_count is not 0");
        }
        for (std::size_t i = 0; i < r.stop_count; ++i) {
            if (r.stop[i] == nullptr) {
                return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_submit: stop[" + std::to_string(i) + "] is NULL");
            }
            g.stop.emplace_back(r.stop[i]);
        }
        if (r.image_count != 0 && (r.images == nullptr || r.image_sizes == nullptr)) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_submit: images or image_sizes is NULL but image_count is not 0");
        }
        for (std::size_t i = 0; i < r.image_count; ++i) {
            if (r.images[i] == nullptr && r.image_sizes[i] != 0) {
                return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_submit: images[" + std::to_string(i) + "] is NULL");
            }
            g.images.emplace_back(r.images[i], r.images[i] + r.image_sizes[i]);
        }
        g.add_bos = (r.flags & LLMQ_REQUEST_ADD_BOS) != 0;
        g.ignore_eos = (r.flags & LLMQ_REQUEST_IGNORE_EOS) != 0;
        g.logprobs = (r.flags & LLMQ_REQUEST_LOGPROBS) != 0;
        g.sampling.seed_set = (r.flags & LLMQ_REQUEST_SEED_SET) != 0;
        g.sampling.seed = r.seed;
        g.sampling.temperature = r.temperature;
        g.sampling.top_p = r.top_p;
        g.sampling.min_p = r.min_p;
        g.sampling.repetition_penalty = r.repetition_penalty;
        g.sampling.presence_penalty = r.presence_penalty;
        g.sampling.frequency_penalty = r.frequency_penalty;
        g.sampling.top_k = r.top_k;
        g.sampling.penalty_last_n = r.penalty_last_n;
        g.max_tokens = r.max_tokens;
        g.priority = r.priority;
        auto id = client->client->submit(g);
        if (!id) return from(id.error());
        if (request_id) *request_id = *id;
        return nullptr;
    });
}

llmq_client_error* llmq_client_cancel(llmq_client* client, uint64_t request_id) {
    return guarded("llmq_client_cancel", [&]() -> llmq_client_error* {
        if (client == nullptr) return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_cancel: client is NULL");
        auto ok = client->client->cancel(request_id);
        return ok ? nullptr : from(ok.error());
    });
}

llmq_client_error* llmq_client_next_event(llmq_client* client, uint32_t timeout_ms, llmq_event* event) {
    return guarded("llmq_client_next_event", [&]() -> llmq_client_error* {
        if (client == nullptr || event == nullptr) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_next_event: client or event is NULL");
        }
        if (event->struct_size < offsetof(llmq_event, request_id)) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_next_event: event->struct_size is not set; use LLMQ_EVENT_INIT");
        }
        auto e = client->client->next_event(std::chrono::milliseconds(timeout_ms));
        if (!e) return from(e.error());
        client->event_text = std::move(e->text);
        llmq_event full = LLMQ_EVENT_INIT;
        full.struct_size = event->struct_size;
        full.kind = static_cast<uint32_t>(e->kind);
        full.request_id = e->request_id;
        full.token_id = e->token_id;
        full.logprob = e->logprob;
        full.has_logprob = e->has_logprob ? 1 : 0;
        full.code = e->code;
        full.text = client->event_text.c_str();
        full.text_length = client->event_text.size();
        full.prompt_tokens = e->prompt_tokens;
        full.generated_tokens = e->generated_tokens;
        full.queued_us = e->queued_us;
        full.prefill_us = e->prefill_us;
        full.decode_us = e->decode_us;
        std::memcpy(event, &full, std::min<std::size_t>(event->struct_size, sizeof full));
        return nullptr;
    });
}

llmq_client_error* llmq_client_ping(llmq_client* client, uint32_t timeout_ms, uint64_t* round_trip_ns) {
    return guarded("llmq_client_ping", [&]() -> llmq_client_error* {
        if (client == nullptr) return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_ping: client is NULL");
        auto rtt = client->client->ping(std::chrono::milliseconds(timeout_ms));
        if (!rtt) return from(rtt.error());
        if (round_trip_ns) *round_trip_ns = static_cast<uint64_t>(rtt->count());
        return nullptr;
    });
}

llmq_client_error* llmq_client_control(llmq_client* client, const char* command, const char* args_json,
                                uint32_t timeout_ms, char** result_json) {
    return guarded("llmq_client_control", [&]() -> llmq_client_error* {
        if (result_json) *result_json = nullptr;
        if (client == nullptr || command == nullptr) {
            return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_control: client or command is NULL");
        }
        nlohmann::json args = nlohmann::json::object();
        if (args_json != nullptr) {
            args = nlohmann::json::parse(args_json, nullptr, false);
            if (args.is_discarded() || !args.is_object()) {
                return make(LLMQ_CLIENT_ERR_INVALID_ARGUMENT, "llmq_client_control: args_json is not a JSON object");
            }
        }
        auto result = client->client->control(command, args, std::chrono::milliseconds(timeout_ms));
        if (!result) return from(result.error());
        if (result_json) {
            const std::string text = result->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            char* copy = new char[text.size() + 1];
            std::memcpy(copy, text.c_str(), text.size() + 1);
            *result_json = copy;
        }
        return nullptr;
    });
}

}  // extern "C"
