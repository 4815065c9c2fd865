// GGUF reader: a memory-mapped, validated view of a GGUF v2/v3 file (metadata, tensor table,
// tensor data).
//
// Everything a file declares is checked against the real file size before it is used: a
// malformed file is refused with a corrupt/unsupported Status naming the file and the problem,
// never a crash or an allocation the file's own bytes cannot back.
//
// Ownership and threads: GgufFile::open returns a shared, immutable object that owns the
// mapping (read-only, MAP_PRIVATE). Every pointer and reference it hands out (tensor data,
// GgufTensor, GgufValue) stays valid while the GgufFile lives. All const methods may be called
// from any thread at the same time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

// ------------------------------------------------------------------ tensor types

// GGML tensor type ids as GGUF stores them.
enum class GgmlType : uint32_t {
    f32 = 0,
    f16 = 1,
    q4_0 = 2,
    q4_1 = 3,
    q5_0 = 6,
    q5_1 = 7,
    q8_0 = 8,
    q8_1 = 9,
    q2_k = 10,
    q3_k = 11,
    q4_k = 12,
    q5_k = 13,
    q6_k = 14,
    q8_k = 15,
    iq2_xxs = 16,
    iq2_xs = 17,
    iq3_xxs = 18,
    iq1_s = 19,
    iq4_nl = 20,
    iq3_s = 21,
    iq2_s = 22,
    iq4_xs = 23,
    i8 = 24,
    i16 = 25,
    i32 = 26,
    i64 = 27,
    f64 = 28,
    iq1_m = 29,
    bf16 = 30,
    tq1_0 = 34,
    tq2_0 = 35,
};

// Layout of a GGML type: `block_values` values are stored in `block_bytes` bytes.
struct GgmlTypeTraits {
    const char* name;  // "F32", "Q8_0", ...
    int64_t block_values;
    int64_t block_bytes;
};

// Traits of a type id; nullopt for an id this build does not know.
std::optional<GgmlTypeTraits> ggml_type_traits(uint32_t ggml_type);
// "F16", "Q4_K", or "unknown(77)".
std::string ggml_type_name(uint32_t ggml_type);
// The kernel dtype llmq computes with for this GGML type (a weight row of the dtype table in
// llmq/kernels/dtype.hpp: F32, F16, BF16, Q8_0, ...), or nullopt.
std::optional<kernels::dtype> ggml_type_to_dtype(uint32_t ggml_type);
// The GGML type id of a weight dtype, or nullopt for a dtype that is no weight (i32, u8).
std::optional<uint32_t> dtype_to_ggml_type(kernels::dtype t);

// ------------------------------------------------------------------ metadata values

// GGUF metadata value type ids as the file stores them.
enum class GgufType : uint32_t {
    u8 = 0,
    i8 = 1,
    u16 = 2,
    i16 = 3,
    u32 = 4,
    i32 = 5,
    f32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    u64 = 10,
    i64 = 11,
    f64 = 12,
};

const char* gguf_type_name(GgufType t);  // "u32", "string", "array", ...

// One metadata value: a scalar, a string, or an array (of scalars, strings or arrays).
// Numeric and bool arrays are kept packed (little-endian, as in the file), so a large array
// costs what the file spends on it.
class GgufValue {
public:
    GgufValue() = default;  // an u8 zero

    // ---- construction (the writer and tests build values with these)
    static GgufValue u8(uint8_t v);
    static GgufValue i8(int8_t v);
    static GgufValue u16(uint16_t v);
    static GgufValue i16(int16_t v);
    static GgufValue u32(uint32_t v);
    static GgufValue i32(int32_t v);
    static GgufValue u64(uint64_t v);
    static GgufValue i64(int64_t v);
    static GgufValue f32(float v);
    static GgufValue f64(double v);
    static GgufValue boolean(bool v);
    static GgufValue string(std::string v);
    // Numeric array of element type `elem` (u8..f64 or boolean); `raw` holds
    // count * element size bytes, little-endian.
    static GgufValue numeric_array(GgufType elem, std::vector<uint8_t> raw);
    static GgufValue array_u8(std::span<const uint8_t> v);
    static GgufValue array_i32(std::span<const int32_t> v);
    static GgufValue array_u32(std::span<const uint32_t> v);
    static GgufValue array_i64(std::span<const int64_t> v);
    static GgufValue array_f32(std::span<const float> v);
    static GgufValue array_f64(std::span<const double> v);
    static GgufValue array_bool(const std::vector<bool>& v);
    static GgufValue string_array(std::vector<std::string> v);
    // Array of arrays (each element must itself be an array).
    static GgufValue array_of_arrays(std::vector<GgufValue> v);

    // ---- inspection
    GgufType type() const { return type_; }
    bool is_array() const { return type_ == GgufType::array; }
    bool is_integer() const;  // u8..i64 (not bool)
    bool is_float() const;    // f32, f64

    // Scalars. Each returns nullopt when the value has another type or does not fit.
    std::optional<uint64_t> as_u64() const;  // any integer type, value >= 0
    std::optional<int64_t> as_i64() const;   // any integer type, value <= INT64_MAX
    std::optional<double> as_f64() const;    // f32, f64 or any integer type
    std::optional<bool> as_bool() const;     // boolean only
    const std::string* as_string() const;    // string only, else nullptr

    // Arrays (0 / empty for a non-array).
    GgufType array_type() const { return elem_; }  // meaningful when is_array()
    size_t array_size() const;
    // Packed elements of a numeric or bool array (array_size() * element size bytes).
    std::span<const uint8_t> raw_elements() const { return raw_; }
    // Element i of a numeric/bool array as the scalar accessors above convert it.
    std::optional<int64_t> int_at(size_t i) const;
    std::optional<uint64_t> uint_at(size_t i) const;
    std::optional<double> float_at(size_t i) const;
    const std::vector<std::string>& strings() const { return strings_; }  // string arrays
    const std::vector<GgufValue>& arrays() const { return arrays_; }      // arrays of arrays

    // Short human-readable form for logs and `llmq inspect` (long arrays are abbreviated).
    std::string to_display_string(size_t max_elements = 8) const;

    // Bytes this value occupies in a GGUF file (v3), excluding its key and type tag.
    uint64_t encoded_size() const;

private:
    GgufType type_ = GgufType::u8;
    GgufType elem_ = GgufType::u8;  // array element type
    uint64_t bits_ = 0;             // scalar payload: integer bits, float/double bits, bool
    std::string string_;
    std::vector<uint8_t> raw_;           // numeric / bool arrays
    std::vector<std::string> strings_;   // string arrays
    std::vector<GgufValue> arrays_;      // arrays of arrays
    size_t count_ = 0;                   // element count of an array

    friend class GgufParser;
};

// Size in bytes of one scalar of type t (0 for string/array).
size_t gguf_scalar_size(GgufType t);

// ------------------------------------------------------------------ tensors

struct GgufTensor {
    std::string name;
    uint32_t ggml_type = 0;      // as in the file (see GgmlType)
    kernels::dtype dtype = kernels::dtype::f32;  // meaningful only when supported()
    std::vector<int64_t> shape;  // GGUF order: shape[0] is the innermost (contiguous) dimension
    uint64_t offset = 0;         // from the start of the data section
    uint64_t size_bytes = 0;
    const uint8_t* data = nullptr;  // into the mapping; nullptr for a header-only file
    // Where the tensor came from when the file was assembled from another format
    // ("model.layers.0.self_attn.q_proj.weight in model-00001-of-00002.safetensors"); empty
    // for a GGUF file. Error messages name it beside `name`.
    std::string origin;

    // F32, F16, BF16 or Q8_0: llmq can compute with it.
    bool supported() const;
    int64_t elements() const;     // product of the shape
    int64_t rows() const;         // product of shape[1..]
    int64_t row_length() const;   // shape[0]
    size_t row_bytes() const;     // bytes of one row (size_bytes / rows())
    // "[4096, 32000]"
    std::string shape_string() const;
};

// ------------------------------------------------------------------ the file

class GgufFile {
public:
    struct Options {
        // false: a file whose data section is absent or short opens anyway (has_data() false,
        // every tensor's data nullptr) so the memory planner can read the header of a model
        // that is not on this machine. true: such a file is refused as truncated.
        bool require_data = true;
        // true: tensors of known but unsupported types (Q4_K, ...) are kept with
        // supported() false instead of refusing the file (for `llmq inspect` and planning).
        bool allow_unsupported_types = false;
    };

    // Opens and validates `path`. Errors: not_found / io_error (open, stat, mmap), corrupt
    // (malformed: the message names the file, the offset or item and the problem),
    // unsupported (version, tensor types).
    [[nodiscard]] static Expected<std::shared_ptr<const GgufFile>> open(const std::string& path,
                                                                        Options options);
    [[nodiscard]] static Expected<std::shared_ptr<const GgufFile>> open(const std::string& path) {
        return open(path, Options{});
    }

    // A GgufFile built in memory by the reader of another format (safetensors.hpp): `kv` and
    // `tensors` as open() would have read them from the GGUF file that format converts to,
    // tensor data pointing into memory that `backing` owns (kept alive, and released, with the
    // file). `path` and `format` ("safetensors") name it in messages. Checks what open() checks
    // of a header: duplicate keys and tensor names, the known keys' types and token ids.
    [[nodiscard]] static Expected<std::shared_ptr<const GgufFile>> assemble(
        std::string path, std::string format, std::vector<std::pair<std::string, GgufValue>> kv,
        std::vector<GgufTensor> tensors, bool has_data, std::shared_ptr<const void> backing);

    ~GgufFile();
    GgufFile(const GgufFile&) = delete;
    GgufFile& operator=(const GgufFile&) = delete;

    const std::string& path() const { return path_; }
    // "GGUF" for a file open() read, else the format assemble() was given.
    const std::string& format() const { return format_; }
    // "GGUF file PATH" or "safetensors directory PATH", to start error messages with.
    std::string describe() const;
    uint32_t version() const { return version_; }  // 0 for an assembled file
    uint64_t alignment() const { return alignment_; }
    uint64_t file_size() const { return file_size_; }
    // Absolute offset of the data section (aligned).
    uint64_t data_offset() const { return data_offset_; }
    // Size of all tensor data: the end of the last tensor, from the data section's start.
    uint64_t data_bytes() const { return data_bytes_; }
    // How many of those bytes the file holds: data_bytes() when has_data(); fewer for a
    // file cut short (or whose tensors lie past its end); 0 for a header-only file.
    uint64_t data_bytes_present() const { return data_bytes_present_; }
    bool has_data() const { return has_data_; }

    // ---- metadata (in file order)
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }
    const GgufValue* find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed getters: not_found when absent; corrupt with key, actual type and file when the
    // value has another type or does not fit.
    [[nodiscard]] Expected<uint32_t> get_u32(std::string_view key) const;  // any integer that fits
    [[nodiscard]] Expected<uint64_t> get_u64(std::string_view key) const;
    [[nodiscard]] Expected<int64_t> get_i64(std::string_view key) const;
    [[nodiscard]] Expected<float> get_f32(std::string_view key) const;  // f32, f64 or integer
    [[nodiscard]] Expected<bool> get_bool(std::string_view key) const;
    [[nodiscard]] Expected<std::string> get_string(std::string_view key) const;
    [[nodiscard]] Expected<std::vector<std::string>> get_string_array(std::string_view key) const;
    [[nodiscard]] Expected<std::vector<float>> get_f32_array(std::string_view key) const;
    [[nodiscard]] Expected<std::vector<int32_t>> get_i32_array(std::string_view key) const;
    // Length of an array value (any element type).
    [[nodiscard]] Expected<uint64_t> get_array_size(std::string_view key) const;

    // The same, but an absent key yields `fallback`; a present key of the wrong type is
    // still an error (a wrong file must not silently fall back to a default).
    [[nodiscard]] Expected<uint32_t> get_u32_or(std::string_view key, uint32_t fallback) const;
    [[nodiscard]] Expected<float> get_f32_or(std::string_view key, float fallback) const;
    [[nodiscard]] Expected<bool> get_bool_or(std::string_view key, bool fallback) const;
    [[nodiscard]] Expected<std::string> get_string_or(std::string_view key,
                                                      std::string fallback) const;

    // ---- tensors (in file order)
    const GgufTensor* tensor(std::string_view name) const;
    const std::vector<GgufTensor>& tensors() const { return tensors_; }

private:
    GgufFile() = default;
    friend class GgufParser;

    std::string path_;
    std::string format_ = "GGUF";
    std::shared_ptr<const void> backing_;  // what an assembled file's tensor data lives in
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t file_size_ = 0;
    uint64_t data_offset_ = 0;
    uint64_t data_bytes_ = 0;
    uint64_t data_bytes_present_ = 0;
    bool has_data_ = false;
    void* map_ = nullptr;
    size_t map_size_ = 0;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::unordered_map<std::string_view, size_t> kv_index_;
    std::vector<GgufTensor> tensors_;
    std::unordered_map<std::string_view, size_t> tensor_index_;
};

// GGUF magic "GGUF" as the little-endian u32 at offset 0.
inline constexpr uint32_t gguf_magic = 0x46554747u;
inline constexpr uint64_t gguf_default_alignment = 32;

}  // namespace llmq
