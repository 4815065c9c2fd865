// GgufValue: one metadata value. Scalars keep their payload in 64 bits (integers sign- or
// zero-extended, floats as their bit pattern); numeric arrays stay packed as in the file.
#include <bit>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>

#include "llmq/runtime/gguf.hpp"

namespace llmq {
namespace {

bool is_signed_int(GgufType t) {
    return t == GgufType::i8 || t == GgufType::i16 || t == GgufType::i32 || t == GgufType::i64;
}
bool is_unsigned_int(GgufType t) {
    return t == GgufType::u8 || t == GgufType::u16 || t == GgufType::u32 || t == GgufType::u64;
}

// The 64-bit payload of a little-endian scalar of type t at p.
uint64_t load_bits(GgufType t, const uint8_t* p) {
    switch (t) {
        case GgufType::u8: return p[0];
        case GgufType::boolean: return p[0];
        case GgufType::i8: return static_cast<uint64_t>(static_cast<int64_t>(static_cast<int8_t>(p[0])));
        case GgufType::u16: { uint16_t v; std::memcpy(&v, p, 2); return v; }
        case GgufType::i16: { int16_t v; std::memcpy(&v, p, 2); return static_cast<uint64_t>(static_cast<int64_t>(v)); }
        case GgufType::u32: { uint32_t v; std::memcpy(&v, p, 4); return v; }
        case GgufType::i32: { int32_t v; std::memcpy(&v, p, 4); return static_cast<uint64_t>(static_cast<int64_t>(v)); }
        case GgufType::f32: { uint32_t v; std::memcpy(&v, p, 4); return v; }
        case GgufType::u64:
        case GgufType::i64:
        case GgufType::f64: { uint64_t v; std::memcpy(&v, p, 8); return v; }
        default: return 0;
    }
}

std::optional<uint64_t> bits_to_u64(GgufType t, uint64_t bits) {
    if (is_unsigned_int(t)) return bits;
    if (is_signed_int(t)) {
        if (static_cast<int64_t>(bits) < 0) return std::nullopt;
        return bits;
    }
    return std::nullopt;
}

std::optional<int64_t> bits_to_i64(GgufType t, uint64_t bits) {
    if (is_signed_int(t)) return static_cast<int64_t>(bits);
    if (is_unsigned_int(t)) {
        if (bits > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) return std::nullopt;
        return static_cast<int64_t>(bits);
    }
    return std::nullopt;
}

std::optional<double> bits_to_f64(GgufType t, uint64_t bits) {
    if (t == GgufType::f32) return static_cast<double>(std::bit_cast<float>(static_cast<uint32_t>(bits)));
    if (t == GgufType::f64) return std::bit_cast<double>(bits);
    if (is_signed_int(t)) return static_cast<double>(static_cast<int64_t>(bits));
    if (is_unsigned_int(t)) return static_cast<double>(bits);
    return std::nullopt;
}

std::string scalar_display(GgufType t, uint64_t bits) {
    char buf[64];
    if (t == GgufType::boolean) return bits ? "true" : "false";
    if (is_signed_int(t)) {
        std::snprintf(buf, sizeof buf, "%" PRId64, static_cast<int64_t>(bits));
    } else if (is_unsigned_int(t)) {
        std::snprintf(buf, sizeof buf, "%" PRIu64, bits);
    } else {
        std::snprintf(buf, sizeof buf, "%g", *bits_to_f64(t, bits));
    }
    return buf;
}

std::string quoted(const std::string& s, size_t max_chars) {
    std::string out = "\"";
    for (size_t i = 0; i < s.size() && i < max_chars; ++i) {
        char c = s[i];
        if (c == '\n') out += "\\n";
        else if (c == '"') out += "\\\"";
        else out += c;
    }
    if (s.size() > max_chars) out += "...";
    return out + "\"";
}

template <typename T>
std::vector<uint8_t> pack(std::span<const T> v) {
    std::vector<uint8_t> raw(v.size() * sizeof(T));
    if (!raw.empty()) std::memcpy(raw.data(), v.data(), raw.size());
    return raw;
}

}  // namespace

size_t gguf_scalar_size(GgufType t) {
    switch (t) {
        case GgufType::u8:
        case GgufType::i8:
        case GgufType::boolean: return 1;
        case GgufType::u16:
        case GgufType::i16: return 2;
        case GgufType::u32:
        case GgufType::i32:
        case GgufType::f32: return 4;
        case GgufType::u64:
        case GgufType::i64:
        case GgufType::f64: return 8;
        default: return 0;
    }
}

const char* gguf_type_name(GgufType t) {
    switch (t) {
        case GgufType::u8: return "u8";
        case GgufType::i8: return "i8";
        case GgufType::u16: return "u16";
        case GgufType::i16: return "i16";
        case GgufType::u32: return "u32";
        case GgufType::i32: return "i32";
        case GgufType::f32: return "f32";
        case GgufType::boolean: return "bool";
        case GgufType::string: return "string";
        case GgufType::array: return "array";
        case GgufType::u64: return "u64";
        case GgufType::i64: return "i64";
        case GgufType::f64: return "f64";
    }
    return "unknown";
}

// ---- construction

#define LLMQ_GGUF_SCALAR(fn, T, tag, expr)   \
    GgufValue GgufValue::fn(T v) {           \
        GgufValue out;                       \
        out.type_ = GgufType::tag;           \
        out.bits_ = (expr);                  \
        return out;                          \
    }
LLMQ_GGUF_SCALAR(u8, uint8_t, u8, v)
LLMQ_GGUF_SCALAR(i8, int8_t, i8, static_cast<uint64_t>(static_cast<int64_t>(v)))
LLMQ_GGUF_SCALAR(u16, uint16_t, u16, v)
LLMQ_GGUF_SCALAR(i16, int16_t, i16, static_cast<uint64_t>(static_cast<int64_t>(v)))
LLMQ_GGUF_SCALAR(u32, uint32_t, u32, v)
LLMQ_GGUF_SCALAR(i32, int32_t, i32, static_cast<uint64_t>(static_cast<int64_t>(v)))
LLMQ_GGUF_SCALAR(u64, uint64_t, u64, v)
LLMQ_GGUF_SCALAR(i64, int64_t, i64, static_cast<uint64_t>(v))
LLMQ_GGUF_SCALAR(f32, float, f32, std::bit_cast<uint32_t>(v))
LLMQ_GGUF_SCALAR(f64, double, f64, std::bit_cast<uint64_t>(v))
LLMQ_GGUF_SCALAR(boolean, bool, boolean, v ? 1u : 0u)
#undef LLMQ_GGUF_SCALAR

GgufValue GgufValue::string(std::string v) {
    GgufValue out;
    out.type_ = GgufType::string;
    out.string_ = std::move(v);
    return out;
}

GgufValue GgufValue::numeric_array(GgufType elem, std::vector<uint8_t> raw) {
    GgufValue out;
    out.type_ = GgufType::array;
    out.elem_ = elem;
    size_t size = gguf_scalar_size(elem);
    out.count_ = size ? raw.size() / size : 0;
    raw.resize(out.count_ * size);
    out.raw_ = std::move(raw);
    return out;
}

GgufValue GgufValue::array_u8(std::span<const uint8_t> v) { return numeric_array(GgufType::u8, pack(v)); }
GgufValue GgufValue::array_i32(std::span<const int32_t> v) { return numeric_array(GgufType::i32, pack(v)); }
GgufValue GgufValue::array_u32(std::span<const uint32_t> v) { return numeric_array(GgufType::u32, pack(v)); }
GgufValue GgufValue::array_i64(std::span<const int64_t> v) { return numeric_array(GgufType::i64, pack(v)); }
GgufValue GgufValue::array_f32(std::span<const float> v) { return numeric_array(GgufType::f32, pack(v)); }
GgufValue GgufValue::array_f64(std::span<const double> v) { return numeric_array(GgufType::f64, pack(v)); }

GgufValue GgufValue::array_bool(const std::vector<bool>& v) {
    std::vector<uint8_t> raw(v.size());
    for (size_t i = 0; i < v.size(); ++i) raw[i] = v[i] ? 1 : 0;
    return numeric_array(GgufType::boolean, std::move(raw));
}

GgufValue GgufValue::string_array(std::vector<std::string> v) {
    GgufValue out;
    out.type_ = GgufType::array;
    out.elem_ = GgufType::string;
    out.count_ = v.size();
    out.strings_ = std::move(v);
    return out;
}

GgufValue GgufValue::array_of_arrays(std::vector<GgufValue> v) {
    GgufValue out;
    out.type_ = GgufType::array;
    out.elem_ = GgufType::array;
    out.count_ = v.size();
    out.arrays_ = std::move(v);
    return out;
}

// ---- inspection

bool GgufValue::is_integer() const { return is_signed_int(type_) || is_unsigned_int(type_); }
bool GgufValue::is_float() const { return type_ == GgufType::f32 || type_ == GgufType::f64; }

std::optional<uint64_t> GgufValue::as_u64() const { return bits_to_u64(type_, bits_); }
std::optional<int64_t> GgufValue::as_i64() const { return bits_to_i64(type_, bits_); }
std::optional<double> GgufValue::as_f64() const { return bits_to_f64(type_, bits_); }

std::optional<bool> GgufValue::as_bool() const {
    if (type_ != GgufType::boolean) return std::nullopt;
    return bits_ != 0;
}

const std::string* GgufValue::as_string() const {
    return type_ == GgufType::string ? &string_ : nullptr;
}

size_t GgufValue::array_size() const { return type_ == GgufType::array ? count_ : 0; }

std::optional<int64_t> GgufValue::int_at(size_t i) const {
    size_t size = gguf_scalar_size(elem_);
    if (type_ != GgufType::array || size == 0 || i >= count_) return std::nullopt;
    return bits_to_i64(elem_, load_bits(elem_, raw_.data() + i * size));
}

std::optional<uint64_t> GgufValue::uint_at(size_t i) const {
    size_t size = gguf_scalar_size(elem_);
    if (type_ != GgufType::array || size == 0 || i >= count_) return std::nullopt;
    return bits_to_u64(elem_, load_bits(elem_, raw_.data() + i * size));
}

std::optional<double> GgufValue::float_at(size_t i) const {
    size_t size = gguf_scalar_size(elem_);
    if (type_ != GgufType::array || size == 0 || i >= count_) return std::nullopt;
    return bits_to_f64(elem_, load_bits(elem_, raw_.data() + i * size));
}

std::string GgufValue::to_display_string(size_t max_elements) const {
    if (type_ == GgufType::string) return quoted(string_, 120);
    if (type_ != GgufType::array) return scalar_display(type_, bits_);
    std::string out = "[";
    size_t shown = count_ < max_elements ? count_ : max_elements;
    size_t size = gguf_scalar_size(elem_);
    for (size_t i = 0; i < shown; ++i) {
        if (i) out += ", ";
        if (elem_ == GgufType::string) out += quoted(strings_[i], 40);
        else if (elem_ == GgufType::array) out += arrays_[i].to_display_string(max_elements);
        else out += scalar_display(elem_, load_bits(elem_, raw_.data() + i * size));
    }
    if (shown < count_) out += ", ... (" + std::to_string(count_) + " " + gguf_type_name(elem_) + ")";
    return out + "]";
}

uint64_t GgufValue::encoded_size() const {
    if (type_ == GgufType::string) return 8 + string_.size();
    if (type_ != GgufType::array) return gguf_scalar_size(type_);
    uint64_t total = 4 + 8;
    if (elem_ == GgufType::string) {
        for (const std::string& s : strings_) total += 8 + s.size();
    } else if (elem_ == GgufType::array) {
        for (const GgufValue& a : arrays_) total += a.encoded_size();
    } else {
        total += raw_.size();
    }
    return total;
}

}  // namespace llmq
