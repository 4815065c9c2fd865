// GgufFile's typed metadata getters and GgufTensor's shape helpers.
#include <cmath>
#include <limits>

#include "llmq/runtime/gguf.hpp"

namespace llmq {
namespace {

std::string describe(const GgufValue& v) {
    std::string type = gguf_type_name(v.type());
    if (v.is_array()) type = std::string("array of ") + gguf_type_name(v.array_type());
    return type + " " + v.to_display_string(4);
}

}  // namespace

// All getters share these two messages so a user sees the same wording for every key.
#define LLMQ_MISSING(key)                                                                   \
    not_found(describe() + ": metadata key '" + std::string(key) +             \
              "' is missing")
#define LLMQ_WRONG(key, value, expected)                                                   \
    corrupt(describe() + ": metadata key '" + std::string(key) + "' is " +     \
            llmq::describe(value) + ", expected " + (expected))

Expected<uint32_t> GgufFile::get_u32(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    auto u = v->as_u64();
    if (!u || *u > std::numeric_limits<uint32_t>::max()) {
        return LLMQ_WRONG(key, *v, "an unsigned integer below 2^32");
    }
    return static_cast<uint32_t>(*u);
}

Expected<uint64_t> GgufFile::get_u64(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    auto u = v->as_u64();
    if (!u) return LLMQ_WRONG(key, *v, "an unsigned integer");
    return *u;
}

Expected<int64_t> GgufFile::get_i64(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    auto i = v->as_i64();
    if (!i) return LLMQ_WRONG(key, *v, "an integer");
    return *i;
}

Expected<float> GgufFile::get_f32(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    auto d = v->as_f64();
    if (!d || !std::isfinite(static_cast<float>(*d))) return LLMQ_WRONG(key, *v, "a finite number");
    return static_cast<float>(*d);
}

Expected<bool> GgufFile::get_bool(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    auto b = v->as_bool();
    if (!b) return LLMQ_WRONG(key, *v, "a bool");
    return *b;
}

Expected<std::string> GgufFile::get_string(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    const std::string* s = v->as_string();
    if (!s) return LLMQ_WRONG(key, *v, "a string");
    return *s;
}

Expected<std::vector<std::string>> GgufFile::get_string_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    if (!v->is_array() || v->array_type() != GgufType::string) {
        return LLMQ_WRONG(key, *v, "an array of strings");
    }
    return v->strings();
}

Expected<std::vector<float>> GgufFile::get_f32_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    if (!v->is_array() || v->array_type() == GgufType::string ||
        v->array_type() == GgufType::array || v->array_type() == GgufType::boolean) {
        return LLMQ_WRONG(key, *v, "an array of numbers");
    }
    std::vector<float> out(v->array_size());
    for (size_t i = 0; i < out.size(); ++i) out[i] = static_cast<float>(*v->float_at(i));
    return out;
}

Expected<std::vector<int32_t>> GgufFile::get_i32_array(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    GgufType t = v->array_type();
    if (!v->is_array() || t == GgufType::string || t == GgufType::array ||
        t == GgufType::boolean || t == GgufType::f32 || t == GgufType::f64) {
        return LLMQ_WRONG(key, *v, "an array of integers");
    }
    std::vector<int32_t> out(v->array_size());
    for (size_t i = 0; i < out.size(); ++i) {
        auto x = v->int_at(i);
        if (!x || *x < std::numeric_limits<int32_t>::min() ||
            *x > std::numeric_limits<int32_t>::max()) {
            return corrupt(describe() + ": metadata key '" + std::string(key) +
                           "' element " + std::to_string(i) + " does not fit in 32 bits");
        }
        out[i] = static_cast<int32_t>(*x);
    }
    return out;
}

Expected<uint64_t> GgufFile::get_array_size(std::string_view key) const {
    const GgufValue* v = find(key);
    if (!v) return LLMQ_MISSING(key);
    if (!v->is_array()) return LLMQ_WRONG(key, *v, "an array");
    return static_cast<uint64_t>(v->array_size());
}

Expected<uint32_t> GgufFile::get_u32_or(std::string_view key, uint32_t fallback) const {
    return has(key) ? get_u32(key) : Expected<uint32_t>(fallback);
}
Expected<float> GgufFile::get_f32_or(std::string_view key, float fallback) const {
    return has(key) ? get_f32(key) : Expected<float>(fallback);
}
Expected<bool> GgufFile::get_bool_or(std::string_view key, bool fallback) const {
    return has(key) ? get_bool(key) : Expected<bool>(fallback);
}
Expected<std::string> GgufFile::get_string_or(std::string_view key, std::string fallback) const {
    return has(key) ? get_string(key) : Expected<std::string>(std::move(fallback));
}

#undef LLMQ_MISSING
#undef LLMQ_WRONG

// ------------------------------------------------------------------ GgufTensor

bool GgufTensor::supported() const { return ggml_type_to_dtype(ggml_type).has_value(); }

int64_t GgufTensor::elements() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;  // validated at open: cannot overflow
    return n;
}

int64_t GgufTensor::rows() const {
    int64_t n = 1;
    for (size_t i = 1; i < shape.size(); ++i) n *= shape[i];
    return n;
}

int64_t GgufTensor::row_length() const { return shape.empty() ? 0 : shape[0]; }

size_t GgufTensor::row_bytes() const {
    int64_t r = rows();
    return r > 0 ? static_cast<size_t>(size_bytes / static_cast<uint64_t>(r)) : 0;
}

std::string GgufTensor::shape_string() const {
    std::string out = "[";
    for (size_t i = 0; i < shape.size(); ++i) {
        if (i) out += ", ";
        out += std::to_string(shape[i]);
    }
    return out + "]";
}

}  // namespace llmq
