// parse_safetensors_header: every field of the JSON header checked against the real file size
// before anything uses it. Offsets are compared with the data section's size, never with
// another declared field; element counts and byte sizes go through checked arithmetic.
#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <string_view>

#include "bounded_json.hpp"
#include "checked_arith.hpp"
#include "llmq/runtime/safetensors.hpp"

namespace llmq {
namespace {

using json = nlohmann::json;

struct DtypeSize {
    std::string_view name;
    uint32_t bytes;
};

// The dtypes of the safetensors format (safetensors' Dtype enum).
constexpr std::array<DtypeSize, 15> dtypes{{
    {"BOOL", 1}, {"U8", 1}, {"I8", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    {"I16", 2}, {"U16", 2}, {"F16", 2}, {"BF16", 2},
    {"I32", 4}, {"U32", 4}, {"F32", 4},
    {"I64", 8}, {"U64", 8}, {"F64", 8},
}};

std::string quote(std::string_view s) {
    std::string out = "'";
    for (char c : s.substr(0, 200)) out += (static_cast<unsigned char>(c) < 32) ? '?' : c;
    if (s.size() > 200) out += "...";
    return out + "'";
}

}  // namespace

Expected<SafetensorsHeader> parse_safetensors_header(std::span<const uint8_t> bytes, uint64_t file_size,
                                                     const std::string& path) {
    auto fail = [&](const std::string& problem) { return corrupt("safetensors file " + path + ": " + problem); };
    if (file_size < 8 || bytes.size() < 8)
        return fail("the file has " + std::to_string(file_size) + " bytes, too few for the 8-byte header length");
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);  // little-endian host (as the GGUF reader)
    if (n > file_size - 8)
        return fail("the header length " + std::to_string(n) + " runs past the end of the file (" +
                    std::to_string(file_size) + " bytes; truncated, or not a safetensors file)");
    if (n > safetensors_max_header_bytes)
        return fail("the header length " + std::to_string(n) + " is above the format's limit of " +
                    std::to_string(safetensors_max_header_bytes) + " bytes");
    if (n < 2) return fail("the header length " + std::to_string(n) + " is too short for a JSON object");
    if (bytes.size() - 8 < n) return fail("only " + std::to_string(bytes.size()) + " bytes of the header were read");

    SafetensorsHeader h;
    h.data_offset = 8 + n;
    h.data_bytes = file_size - h.data_offset;
    const std::string_view text(reinterpret_cast<const char*>(bytes.data() + 8), n);
    auto parsed = parse_bounded_json(text, "safetensors file " + path + " header", safetensors_max_header_depth);
    if (!parsed) return parsed.status();
    const json& root = *parsed;
    if (!root.is_object()) return fail("the header is " + json_kind(root) + ", not a JSON object");

    for (const auto& [name, entry] : root.items()) {
        if (name == "__metadata__") {
            if (!entry.is_object()) return fail("__metadata__ is " + json_kind(entry) + ", not an object of strings");
            for (const auto& [k, v] : entry.items()) {
                if (!v.is_string())
                    return fail("__metadata__ key " + quote(k) + " is " + json_kind(v) + "; metadata values are strings");
                h.metadata.emplace_back(k, v.get_ref<const std::string&>());
            }
            continue;
        }
        const std::string what = "tensor " + quote(name);
        if (name.empty()) return fail("a tensor has an empty name");
        if (!entry.is_object()) return fail(what + " is " + json_kind(entry) + ", not an object");
        for (const auto& [k, v] : entry.items()) {
            (void)v;
            if (k != "dtype" && k != "shape" && k != "data_offsets")
                return fail(what + " has unknown field " + quote(k) + " (a tensor has dtype, shape and data_offsets)");
        }
        SafetensorsTensor t;
        t.name = name;
        auto dt = entry.find("dtype");
        if (dt == entry.end() || !dt->is_string()) return fail(what + " has no dtype string");
        t.dtype = dt->get_ref<const std::string&>();
        for (const DtypeSize& d : dtypes)
            if (t.dtype == d.name) t.element_bytes = d.bytes;
        if (t.element_bytes == 0) return fail(what + " has unknown dtype " + quote(t.dtype));

        auto shape = entry.find("shape");
        if (shape == entry.end() || !shape->is_array()) return fail(what + " has no shape array");
        if (shape->size() > 8) return fail(what + " has " + std::to_string(shape->size()) + " dimensions (at most 8)");
        uint64_t elements = 1;
        for (const json& d : *shape) {
            if (!d.is_number_unsigned() && !(d.is_number_integer() && d.get<int64_t>() >= 0))
                return fail(what + " has a shape entry that is " + json_kind(d) + ", not a non-negative integer");
            const uint64_t dim = d.get<uint64_t>();
            if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
                !checked::mul(elements, dim, &elements))
                return fail(what + " has a shape whose element count overflows 64 bits");
            t.shape.push_back(static_cast<int64_t>(dim));
        }
        uint64_t size = 0;
        if (!checked::mul(elements, t.element_bytes, &size)) return fail(what + " has a byte size that overflows 64 bits");

        auto offsets = entry.find("data_offsets");
        if (offsets == entry.end() || !offsets->is_array() || offsets->size() != 2 ||
            !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
            return fail(what + " has no data_offsets [BEGIN, END] of two non-negative integers");
        t.begin = (*offsets)[0].get<uint64_t>();
        t.end = (*offsets)[1].get<uint64_t>();
        if (t.begin > t.end)
            return fail(what + " has data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                        "] whose end is before its start");
        if (t.end > h.data_bytes)
            return fail(what + " has data_offsets [" + std::to_string(t.begin) + ", " + std::to_string(t.end) +
                        "] past the end of the data (" + std::to_string(h.data_bytes) +
                        " bytes follow the header; truncated file?)");
        if (t.end - t.begin != size)
            return fail(what + " of dtype " + t.dtype + " and shape " + std::to_string(elements) +
                        " elements needs " + std::to_string(size) + " bytes, but its data_offsets [" +
                        std::to_string(t.begin) + ", " + std::to_string(t.end) + "] span " +
                        std::to_string(t.end - t.begin));
        if ((h.data_offset + t.begin) % t.element_bytes != 0)
            return fail(what + " starts at file offset " + std::to_string(h.data_offset + t.begin) +
                        ", not a multiple of its element size " + std::to_string(t.element_bytes) +
                        " (misaligned data)");
        h.tensors.push_back(std::move(t));
    }

    std::vector<const SafetensorsTensor*> by_offset;
    for (const auto& t : h.tensors) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(), [](const SafetensorsTensor* a, const SafetensorsTensor* b) {
        return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const SafetensorsTensor* a = by_offset[i - 1];
        const SafetensorsTensor* b = by_offset[i];
        if (a->end > b->begin && b->begin != b->end && a->begin != a->end)
            return fail("tensor " + quote(a->name) + " (data bytes " + std::to_string(a->begin) + ".." +
                        std::to_string(a->end) + ") overlaps tensor " + quote(b->name) + " (from byte " +
                        std::to_string(b->begin) + ")");
    }
    return h;
}

}  // namespace llmq
