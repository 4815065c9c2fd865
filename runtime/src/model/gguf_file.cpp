// GgufFile: maps a GGUF file and validates every byte of its header before handing anything out.
//
// File layout (little-endian):
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count  x { string key | u32 type | value }
//   tensor_count x { string name | u32 n_dims | u64 dims[n_dims] | u32 ggml_type | u64 offset }
//   padding to general.alignment | data section (tensor offsets are relative to its start)
// string = u64 length + bytes; array = u32 element type + u64 count + elements.
//
// Invariant of the parser: the cursor never passes the end of the mapping. Every count read
// from the file is compared with the bytes that remain before anything is allocated for it,
// and every size or offset is computed with checked arithmetic.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <limits>

#include "checked_arith.hpp"
#include "gguf_known_keys.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/model_file_fault.hpp"

namespace llmq {
namespace {

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader copies little-endian fields as they are");

constexpr int max_array_depth = 8;
constexpr uint32_t max_dims = 4;
// Smallest encodings, used to bound counts by the bytes left: a key-value pair is at least a
// length, a type and one byte of value; a tensor info at least a name length, n_dims, one dim,
// a type and an offset.
constexpr uint64_t min_kv_bytes = 8 + 4 + 1;
constexpr uint64_t min_tensor_info_bytes = 8 + 4 + 8 + 4 + 8;

std::string quote(std::string_view s) {
    std::string out = "'";
    out.append(s.substr(0, 80));
    if (s.size() > 80) out += "...";
    return out + "'";
}

}  // namespace

class GgufParser {
public:
    GgufParser(GgufFile& file, const uint8_t* base, uint64_t size)
        : file_(file), base_(base), size_(size) {}

    Status parse(const GgufFile::Options& options);

private:
    Status fail(const std::string& problem) const {
        return corrupt("GGUF file " + file_.path_ + ": " + problem);
    }
    // The next n bytes exist, else "truncated" naming what was being read and where.
    Status need(uint64_t n, const std::string& what) const {
        if (n <= size_ - pos_) return Status();
        return fail("truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                    std::to_string(pos_) + " but the file ends at " + std::to_string(size_) +
                    "; the file is incomplete (interrupted download or copy?)");
    }
    uint64_t left() const { return size_ - pos_; }

    Status read_u32(uint32_t* out, const std::string& what) {
        LLMQ_TRY(need(4, what));
        std::memcpy(out, base_ + pos_, 4);
        pos_ += 4;
        return Status();
    }
    Status read_u64(uint64_t* out, const std::string& what) {
        LLMQ_TRY(need(8, what));
        std::memcpy(out, base_ + pos_, 8);
        pos_ += 8;
        return Status();
    }
    Status read_string(std::string* out, const std::string& what) {
        uint64_t len = 0;
        LLMQ_TRY(read_u64(&len, "the length of " + what));
        if (len > left()) {
            return fail("truncated: " + what + " declares " + std::to_string(len) +
                        " bytes at offset " + std::to_string(pos_) + " but only " +
                        std::to_string(left()) + " remain in the file");
        }
        out->assign(reinterpret_cast<const char*>(base_ + pos_), len);
        pos_ += len;
        return Status();
    }
    Status read_value(GgufType type, GgufValue* out, int depth, const std::string& what);
    Status read_array(GgufValue* out, int depth, const std::string& what);
    Status read_tensor_info(uint64_t index, const GgufFile::Options& options);
    Status check_layout(const GgufFile::Options& options);

    GgufFile& file_;
    const uint8_t* base_;
    uint64_t size_;
    uint64_t pos_ = 0;
};

Status GgufParser::read_value(GgufType type, GgufValue* out, int depth, const std::string& what) {
    out->type_ = type;
    if (type == GgufType::string) return read_string(&out->string_, what);
    if (type == GgufType::array) return read_array(out, depth, what);
    size_t size = gguf_scalar_size(type);
    if (size == 0) {
        return fail(what + " has unknown value type " +
                    std::to_string(static_cast<uint32_t>(type)) + " at offset " +
                    std::to_string(pos_ - 4) + " (GGUF defines 0..12)");
    }
    LLMQ_TRY(need(size, what));
    const uint8_t* p = base_ + pos_;
    uint64_t bits = 0;
    std::memcpy(&bits, p, size);  // little-endian host: zero-extended payload
    switch (type) {
        case GgufType::i8: bits = static_cast<uint64_t>(int64_t{static_cast<int8_t>(bits)}); break;
        case GgufType::i16: bits = static_cast<uint64_t>(int64_t{static_cast<int16_t>(bits)}); break;
        case GgufType::i32: bits = static_cast<uint64_t>(int64_t{static_cast<int32_t>(bits)}); break;
        case GgufType::boolean:
            if (bits > 1) {
                return fail(what + " is a bool with byte value " + std::to_string(bits) +
                            " at offset " + std::to_string(pos_) + " (must be 0 or 1)");
            }
            break;
        default: break;
    }
    out->bits_ = bits;
    pos_ += size;
    return Status();
}

Status GgufParser::read_array(GgufValue* out, int depth, const std::string& what) {
    if (depth >= max_array_depth) {
        return fail(what + " nests arrays deeper than " + std::to_string(max_array_depth) +
                    " levels at offset " + std::to_string(pos_));
    }
    uint32_t elem_raw = 0;
    LLMQ_TRY(read_u32(&elem_raw, "the element type of " + what));
    auto elem = static_cast<GgufType>(elem_raw);
    uint64_t count = 0;
    LLMQ_TRY(read_u64(&count, "the length of " + what));
    uint64_t min_elem_bytes;
    if (elem == GgufType::string) min_elem_bytes = 8;
    else if (elem == GgufType::array) min_elem_bytes = 4 + 8;
    else min_elem_bytes = gguf_scalar_size(elem);
    if (min_elem_bytes == 0) {
        return fail(what + " has unknown element type " + std::to_string(elem_raw) +
                    " at offset " + std::to_string(pos_ - 12) + " (GGUF defines 0..12)");
    }
    if (count > left() / min_elem_bytes) {
        return fail(what + " declares " + std::to_string(count) + " " +
                    gguf_type_name(elem) + " elements at offset " + std::to_string(pos_) +
                    " but only " + std::to_string(left()) +
                    " bytes remain in the file (an absurd count, or the file is truncated)");
    }
    out->type_ = GgufType::array;
    out->elem_ = elem;
    out->count_ = count;
    if (elem == GgufType::string) {
        out->strings_.resize(count);
        for (uint64_t i = 0; i < count; ++i) {
            LLMQ_TRY(read_string(&out->strings_[i], what + " element " + std::to_string(i)));
        }
    } else if (elem == GgufType::array) {
        out->arrays_.resize(count);
        for (uint64_t i = 0; i < count; ++i) {
            LLMQ_TRY(read_array(&out->arrays_[i], depth + 1,
                                what + " element " + std::to_string(i)));
        }
    } else {
        uint64_t bytes = count * min_elem_bytes;  // cannot overflow: bounded by left() above
        if (elem == GgufType::boolean) {
            for (uint64_t i = 0; i < count; ++i) {
                if (base_[pos_ + i] > 1) {
                    return fail(what + " element " + std::to_string(i) +
                                " is a bool with byte value " + std::to_string(base_[pos_ + i]) +
                                " (must be 0 or 1)");
                }
            }
        }
        out->raw_.assign(base_ + pos_, base_ + pos_ + bytes);
        pos_ += bytes;
    }
    return Status();
}

Status GgufParser::read_tensor_info(uint64_t index, const GgufFile::Options& options) {
    std::string what = "tensor info " + std::to_string(index);
    GgufTensor t;
    LLMQ_TRY(read_string(&t.name, "the name of " + what));
    if (t.name.empty()) return fail(what + " has an empty name");
    what = "tensor " + quote(t.name);
    uint32_t n_dims = 0;
    LLMQ_TRY(read_u32(&n_dims, "the dimension count of " + what));
    if (n_dims == 0 || n_dims > max_dims) {
        return fail(what + " has " + std::to_string(n_dims) + " dimensions (must be 1.." +
                    std::to_string(max_dims) + ")");
    }
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t dim = 0;
        LLMQ_TRY(read_u64(&dim, "dimension " + std::to_string(d) + " of " + what));
        if (dim == 0 || dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return fail(what + " has dimension " + std::to_string(d) + " = " +
                        (dim == 0 ? std::string("0") : std::to_string(static_cast<int64_t>(dim))) +
                        " (every dimension must be positive)");
        }
        if (!checked::mul(elements, dim, &elements) ||
            elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
            return fail(what + " has an element count that overflows 64 bits (dimension " +
                        std::to_string(d) + " = " + std::to_string(dim) + ")");
        }
        t.shape.push_back(static_cast<int64_t>(dim));
    }
    LLMQ_TRY(read_u32(&t.ggml_type, "the type of " + what));
    LLMQ_TRY(read_u64(&t.offset, "the data offset of " + what));

    auto traits = ggml_type_traits(t.ggml_type);
    if (!traits) {
        return fail(what + " has unknown tensor type id " + std::to_string(t.ggml_type) +
                    "; the file is damaged or was written by a newer GGML");
    }
    if (auto dt = ggml_type_to_dtype(t.ggml_type)) {
        t.dtype = *dt;
    } else if (!options.allow_unsupported_types) {
        return unsupported("GGUF file " + file_.path_ + ": " + what + " has type " +
                           traits->name +
                           ", which llmq cannot compute with (it supports " + kernels::weight_dtype_names() +
                           "); convert the model to Q8_0 or F16, e.g. with llama-quantize");
    }
    if (static_cast<uint64_t>(t.shape[0]) % traits->block_values != 0) {
        return fail(what + " of type " + traits->name + " has rows of " +
                    std::to_string(t.shape[0]) + " values, not a multiple of its block of " +
                    std::to_string(traits->block_values));
    }
    if (!checked::mul(elements / traits->block_values, traits->block_bytes, &t.size_bytes)) {
        return fail(what + " has a byte size that overflows 64 bits");
    }
    if (t.offset % file_.alignment_ != 0) {
        return fail(what + " has data offset " + std::to_string(t.offset) +
                    ", not a multiple of the file's alignment " +
                    std::to_string(file_.alignment_));
    }
    uint64_t end;
    if (!checked::add(t.offset, t.size_bytes, &end)) {
        return fail(what + " has data offset " + std::to_string(t.offset) +
                    " whose end overflows 64 bits");
    }
    file_.tensors_.push_back(std::move(t));
    return Status();
}

Status GgufParser::check_layout(const GgufFile::Options& options) {
    GgufFile& f = file_;
    if (!checked::align_up(pos_, f.alignment_, &f.data_offset_)) {
        return fail("the data section start overflows 64 bits");
    }
    uint64_t data_end_needed = 0;
    const GgufTensor* last = nullptr;
    for (const GgufTensor& t : f.tensors_) {
        uint64_t end = t.offset + t.size_bytes;  // checked in read_tensor_info
        if (end > data_end_needed) {
            data_end_needed = end;
            last = &t;
        }
    }
    f.data_bytes_ = data_end_needed;

    // Overlaps: sort by offset and compare neighbours.
    std::vector<const GgufTensor*> by_offset;
    by_offset.reserve(f.tensors_.size());
    for (const GgufTensor& t : f.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const GgufTensor* a, const GgufTensor* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
        const GgufTensor* a = by_offset[i - 1];
        const GgufTensor* b = by_offset[i];
        if (a->offset + a->size_bytes > b->offset) {
            return fail("tensor " + quote(a->name) + " (bytes " + std::to_string(a->offset) +
                        ".." + std::to_string(a->offset + a->size_bytes) + " of the data section) overlaps tensor " +
                        quote(b->name) + " (starting at " + std::to_string(b->offset) + ")");
        }
    }

    uint64_t file_end_needed;
    bool fits = checked::add(f.data_offset_, data_end_needed, &file_end_needed) &&
                file_end_needed <= size_;
    if (f.tensors_.empty()) fits = true;  // a vocabulary-only file needs no data section
    f.has_data_ = fits;
    f.data_bytes_present_ =
        fits ? data_end_needed : std::min(data_end_needed, size_ > f.data_offset_ ? size_ - f.data_offset_ : 0);
    if (!fits && options.require_data) {
        return fail("truncated: tensor " + quote(last->name) + " ends at byte " +
                    std::to_string(data_end_needed) + " of the data section (file offset " +
                    std::to_string(f.data_offset_) + " + " + std::to_string(data_end_needed) +
                    ") but the file has only " + std::to_string(size_) +
                    " bytes; the tensor data is incomplete or missing (a header-only file "
                    "can be planned with, not loaded)");
    }
    if (fits) {
        for (GgufTensor& t : f.tensors_) t.data = base_ + f.data_offset_ + t.offset;
    }
    return Status();
}

Status GgufParser::parse(const GgufFile::Options& options) {
    GgufFile& f = file_;
    uint32_t magic = 0;
    LLMQ_TRY(read_u32(&magic, "the magic number"));
    if (magic != gguf_magic) {
        char shown[5] = {};
        std::memcpy(shown, &magic, 4);
        for (char& c : shown) {
            if (c != 0 && (c < 32 || c > 126)) c = '?';
        }
        return fail(std::string("bad magic '") + shown +
                    "' (expected 'GGUF'); this is not a GGUF model file");
    }
    LLMQ_TRY(read_u32(&f.version_, "the version"));
    if (f.version_ != 2 && f.version_ != 3) {
        std::string hint = f.version_ == 1 ? " (GGUF v1 is obsolete; re-convert the model)"
                           : (f.version_ & 0xffff) == 0 ? " (a big-endian file?)" : "";
        return unsupported("GGUF file " + f.path_ + ": unsupported version " +
                           std::to_string(f.version_) + hint + "; llmq reads versions 2 and 3");
    }
    uint64_t tensor_count = 0, kv_count = 0;
    LLMQ_TRY(read_u64(&tensor_count, "the tensor count"));
    LLMQ_TRY(read_u64(&kv_count, "the metadata count"));
    if (kv_count > left() / min_kv_bytes) {
        return fail("absurd metadata count " + std::to_string(kv_count) + ": the remaining " +
                    std::to_string(left()) + " bytes cannot hold that many entries (the file is damaged or truncated)");
    }
    if (tensor_count > left() / min_tensor_info_bytes) {
        return fail("absurd tensor count " + std::to_string(tensor_count) + ": the remaining " +
                    std::to_string(left()) + " bytes cannot hold that many tensor infos (the file is damaged or truncated)");
    }

    f.kv_.reserve(kv_count);
    for (uint64_t i = 0; i < kv_count; ++i) {
        std::string what = "metadata entry " + std::to_string(i);
        std::string key;
        LLMQ_TRY(read_string(&key, "the key of " + what));
        if (key.empty()) return fail(what + " has an empty key");
        what = "metadata key " + quote(key);
        uint32_t type = 0;
        LLMQ_TRY(read_u32(&type, "the value type of " + what));
        GgufValue value;
        LLMQ_TRY(read_value(static_cast<GgufType>(type), &value, 0, what));
        f.kv_.emplace_back(std::move(key), std::move(value));
    }
    // Index after the vector stops growing: the views point into its strings.
    for (size_t i = 0; i < f.kv_.size(); ++i) {
        if (!f.kv_index_.emplace(f.kv_[i].first, i).second) {
            return fail("duplicate metadata key " + quote(f.kv_[i].first));
        }
    }

    LLMQ_TRY(check_known_keys(f));
    if (const GgufValue* a = f.find("general.alignment")) {
        auto v = a->as_u64();
        if (!v || *v == 0 || (*v & (*v - 1)) != 0 || *v > (uint64_t{1} << 30)) {
            return fail("general.alignment = " + a->to_display_string() + " (" +
                        gguf_type_name(a->type()) +
                        ") is not a power of two between 1 and 2^30");
        }
        f.alignment_ = *v;
    }

    f.tensors_.reserve(tensor_count);
    for (uint64_t i = 0; i < tensor_count; ++i) LLMQ_TRY(read_tensor_info(i, options));
    for (size_t i = 0; i < f.tensors_.size(); ++i) {
        if (!f.tensor_index_.emplace(f.tensors_[i].name, i).second) {
            return fail("duplicate tensor name " + quote(f.tensors_[i].name));
        }
    }
    return check_layout(options);
}

// ------------------------------------------------------------------ GgufFile

Expected<std::shared_ptr<const GgufFile>> GgufFile::open(const std::string& path,
                                                         Options options) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        std::string msg = "opening GGUF file " + path + ": " + std::strerror(err);
        return err == ENOENT ? not_found(msg + "; check the model path") : io_error(msg);
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return io_error("opening GGUF file " + path + ": not a regular file");
    }
    std::shared_ptr<GgufFile> file(new GgufFile());
    file->path_ = path;
    file->file_size_ = static_cast<uint64_t>(st.st_size);
    if (file->file_size_ == 0) {
        ::close(fd);
        return corrupt("GGUF file " + path + ": the file is empty");
    }
    void* map = ::mmap(nullptr, file->file_size_, PROT_READ, MAP_PRIVATE, fd, 0);
    int map_err = errno;
    ::close(fd);
    if (map == MAP_FAILED) {
        return io_error("mapping GGUF file " + path + ": " + std::strerror(map_err));
    }
    file->map_ = map;
    file->map_size_ = file->file_size_;
    register_model_mapping(map, file->map_size_, path);

    GgufParser parser(*file, static_cast<const uint8_t*>(map), file->file_size_);
    Status s = parser.parse(options);
    if (!s.ok()) return s;  // ~GgufFile unmaps
    return std::shared_ptr<const GgufFile>(std::move(file));
}

Expected<std::shared_ptr<const GgufFile>> GgufFile::assemble(
    std::string path, std::string format, std::vector<std::pair<std::string, GgufValue>> kv,
    std::vector<GgufTensor> tensors, bool has_data, std::shared_ptr<const void> backing) {
    std::shared_ptr<GgufFile> file(new GgufFile());
    file->path_ = std::move(path);
    file->format_ = std::move(format);
    file->backing_ = std::move(backing);
    file->has_data_ = has_data;
    file->kv_ = std::move(kv);
    file->tensors_ = std::move(tensors);
    for (const GgufTensor& t : file->tensors_) file->data_bytes_ += t.size_bytes;
    file->data_bytes_present_ = has_data ? file->data_bytes_ : 0;
    for (size_t i = 0; i < file->kv_.size(); ++i) {
        if (!file->kv_index_.emplace(file->kv_[i].first, i).second)
            return corrupt(file->describe() + ": duplicate metadata key " + quote(file->kv_[i].first));
    }
    for (size_t i = 0; i < file->tensors_.size(); ++i) {
        if (!file->tensor_index_.emplace(file->tensors_[i].name, i).second)
            return corrupt(file->describe() + ": duplicate tensor " + quote(file->tensors_[i].name));
    }
    LLMQ_TRY(check_known_keys(*file));
    return std::shared_ptr<const GgufFile>(std::move(file));
}

std::string GgufFile::describe() const {
    return format_ == "GGUF" ? "GGUF file " + path_ : format_ + " directory " + path_;
}

GgufFile::~GgufFile() {
    if (map_ == nullptr) return;
    unregister_model_mapping(map_);
    ::munmap(map_, map_size_);
}

const GgufValue* GgufFile::find(std::string_view key) const {
    auto it = kv_index_.find(key);
    return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GgufTensor* GgufFile::tensor(std::string_view name) const {
    auto it = tensor_index_.find(name);
    return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace llmq
