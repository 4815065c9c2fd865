// GgufWriter: the header is built from the declared metadata and tensors, then tensor data is
// streamed through a fixed-size buffer, so writing a model never costs more memory than the
// buffer and the largest single row.
#include "llmq/runtime/gguf_writer.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <thread>
#include <unordered_set>

#include "checked_arith.hpp"

namespace llmq {
namespace {

constexpr size_t stream_buffer_bytes = size_t{8} << 20;

// Rows r0 .. r0 + n - 1 into dst, row_bytes apart: on this thread, or split into contiguous
// parts over `threads` threads (this one takes the first). A filler's exception is rethrown
// here once every thread has ended.
template <typename Fill>
void fill_rows(const Fill& fill, size_t row_bytes, int64_t r0, int64_t n, uint8_t* dst, int threads) {
    const int64_t parts = std::clamp<int64_t>(threads, 1, n);
    auto part = [&](int64_t p) {
        for (int64_t r = n * p / parts; r < n * (p + 1) / parts; ++r)
            fill(r0 + r, dst + static_cast<size_t>(r) * row_bytes);
    };
    if (parts == 1) return part(0);
    std::vector<std::exception_ptr> errors(static_cast<size_t>(parts));
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(parts - 1));
    for (int64_t p = 1; p < parts; ++p)
        pool.emplace_back([&, p] {
            try {
                part(p);
            } catch (...) {
                errors[static_cast<size_t>(p)] = std::current_exception();
            }
        });
    try {
        part(0);
    } catch (...) {
        errors[0] = std::current_exception();
    }
    for (std::thread& t : pool) t.join();
    for (const std::exception_ptr& e : errors)
        if (e) std::rethrow_exception(e);
}

// Sinks: append bytes somewhere. write() returns a Status so a full disk stops the writer.
class MemorySink {
public:
    explicit MemorySink(std::vector<uint8_t>& out) : out_(out) {}
    Status write(const void* p, size_t n) {
        size_t at = out_.size();
        out_.resize(at + n);
        if (n > 0) std::memcpy(out_.data() + at, p, n);
        return Status();
    }
    Status flush() { return Status(); }

private:
    std::vector<uint8_t>& out_;
};

class FileSink {
public:
    FileSink(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
        buf_.reserve(stream_buffer_bytes);
    }
    Status write(const void* p, size_t n) {
        auto b = static_cast<const uint8_t*>(p);
        if (buf_.size() + n > stream_buffer_bytes) LLMQ_TRY(flush());
        if (n >= stream_buffer_bytes) return write_all(b, n);
        buf_.insert(buf_.end(), b, b + n);
        return Status();
    }
    Status flush() {
        Status s = write_all(buf_.data(), buf_.size());
        buf_.clear();
        return s;
    }

private:
    Status write_all(const uint8_t* p, size_t n) {
        while (n > 0) {
            ssize_t w = ::write(fd_, p, n);
            if (w < 0) {
                if (errno == EINTR) continue;
                return io_error("writing GGUF file " + path_ + ": " + std::strerror(errno));
            }
            p += w;
            n -= static_cast<size_t>(w);
        }
        return Status();
    }
    int fd_;
    std::string path_;
    std::vector<uint8_t> buf_;
};

template <typename Sink>
Status put_u32(Sink& s, uint32_t v) { return s.write(&v, 4); }
template <typename Sink>
Status put_u64(Sink& s, uint64_t v) { return s.write(&v, 8); }
template <typename Sink>
Status put_string(Sink& s, const std::string& v) {
    LLMQ_TRY(put_u64(s, v.size()));
    return s.write(v.data(), v.size());
}
template <typename Sink>
Status put_zeros(Sink& s, uint64_t n) {
    static const uint8_t zeros[256] = {};
    while (n > 0) {
        uint64_t k = n < sizeof zeros ? n : sizeof zeros;
        LLMQ_TRY(s.write(zeros, k));
        n -= k;
    }
    return Status();
}

// The payload of a value (its type tag is written by the caller).
template <typename Sink>
Status put_value(Sink& s, const GgufValue& v) {
    if (const std::string* str = v.as_string()) return put_string(s, *str);
    if (!v.is_array()) {
        uint64_t bits = 0;
        if (v.type() == GgufType::f32) {
            float f = static_cast<float>(*v.as_f64());
            std::memcpy(&bits, &f, 4);
        } else if (v.type() == GgufType::f64) {
            double d = *v.as_f64();
            std::memcpy(&bits, &d, 8);
        } else if (v.type() == GgufType::boolean) {
            bits = *v.as_bool() ? 1 : 0;
        } else if (auto i = v.as_i64()) {
            bits = static_cast<uint64_t>(*i);
        } else {
            bits = *v.as_u64();
        }
        return s.write(&bits, gguf_scalar_size(v.type()));  // little-endian: low bytes first
    }
    LLMQ_TRY(put_u32(s, static_cast<uint32_t>(v.array_type())));
    LLMQ_TRY(put_u64(s, v.array_size()));
    if (v.array_type() == GgufType::string) {
        for (const std::string& str : v.strings()) LLMQ_TRY(put_string(s, str));
    } else if (v.array_type() == GgufType::array) {
        for (const GgufValue& inner : v.arrays()) LLMQ_TRY(put_value(s, inner));
    } else {
        LLMQ_TRY(s.write(v.raw_elements().data(), v.raw_elements().size()));
    }
    return Status();
}

}  // namespace

GgufWriter::GgufWriter(Options options) : options_(options) {
    if (options_.alignment != gguf_default_alignment) {
        set("general.alignment", GgufValue::u32(static_cast<uint32_t>(options_.alignment)));
    }
}

void GgufWriter::add(std::string key, GgufValue value) {
    kv_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::set(std::string key, GgufValue value) {
    for (auto& [k, v] : kv_) {
        if (k == key) {
            v = std::move(value);
            return;
        }
    }
    add(std::move(key), std::move(value));
}

Status GgufWriter::declare(PendingTensor t) {
    const std::string what = "GGUF writer: tensor '" + t.name + "'";
    if (t.name.empty()) return invalid_argument("GGUF writer: a tensor needs a name");
    for (const PendingTensor& other : tensors_) {
        if (other.name == t.name) return invalid_argument(what + " was added twice");
    }
    uint64_t a = options_.alignment;
    if (a == 0 || (a & (a - 1)) != 0) {
        return invalid_argument("GGUF writer: alignment " + std::to_string(a) +
                                " is not a power of two");
    }
    auto traits = ggml_type_traits(t.ggml_type);
    if (!traits) {
        return invalid_argument(what + " has unknown type id " + std::to_string(t.ggml_type));
    }
    if (t.shape.empty() || t.shape.size() > 4) {
        return invalid_argument(what + " needs 1 to 4 dimensions");
    }
    uint64_t elements = 1;
    for (int64_t d : t.shape) {
        if (d <= 0 || !checked::mul(elements, static_cast<uint64_t>(d), &elements)) {
            return invalid_argument(what + " has a non-positive or overflowing dimension");
        }
    }
    if (t.shape[0] % traits->block_values != 0) {
        return invalid_argument(what + " of type " + traits->name + " needs rows that are a multiple of " +
                                std::to_string(traits->block_values) + " values");
    }
    t.rows = static_cast<int64_t>(elements / static_cast<uint64_t>(t.shape[0]));
    t.row_bytes = static_cast<uint64_t>(t.shape[0] / traits->block_values) *
                  static_cast<uint64_t>(traits->block_bytes);
    if (!checked::mul(t.row_bytes, static_cast<uint64_t>(t.rows), &t.size_bytes) ||
        !checked::align_up(data_bytes_, a, &t.offset)) {
        return invalid_argument(what + " is too large");
    }
    uint64_t end;
    if (!checked::add(t.offset, t.size_bytes, &end) || !checked::align_up(end, a, &end)) {
        return invalid_argument(what + " is too large");
    }
    if (!t.fill && t.data.size() != t.size_bytes && !(options_.header_only && t.data.empty())) {
        return invalid_argument(what + " has " + std::to_string(t.data.size()) +
                                " bytes of data; its shape and type need " +
                                std::to_string(t.size_bytes));
    }
    data_bytes_ = end;
    tensors_.push_back(std::move(t));
    return Status();
}

Status GgufWriter::add_tensor(std::string name, uint32_t ggml_type, std::vector<int64_t> shape,
                              std::vector<uint8_t> data) {
    return declare(PendingTensor{std::move(name), ggml_type, std::move(shape), 0, 0, 0, 0,
                                 std::move(data), nullptr});
}

Status GgufWriter::add_tensor(std::string name, uint32_t ggml_type, std::vector<int64_t> shape,
                              RowFill fill) {
    if (!fill && !options_.header_only) {
        return invalid_argument("GGUF writer: tensor '" + name +
                                "' has no row filler and the output is not header-only");
    }
    return declare(PendingTensor{std::move(name), ggml_type, std::move(shape), 0, 0, 0, 0, {},
                                 std::move(fill)});
}

template <typename Sink>
Status GgufWriter::emit(Sink& sink) const {
    uint64_t pos = 0;
    auto count = [&pos](uint64_t n) { pos += n; };

    LLMQ_TRY(put_u32(sink, gguf_magic));
    LLMQ_TRY(put_u32(sink, options_.version));
    LLMQ_TRY(put_u64(sink, tensors_.size()));
    LLMQ_TRY(put_u64(sink, kv_.size()));
    count(24);
    for (const auto& [key, value] : kv_) {
        LLMQ_TRY(put_string(sink, key));
        LLMQ_TRY(put_u32(sink, static_cast<uint32_t>(value.type())));
        LLMQ_TRY(put_value(sink, value));
        count(8 + key.size() + 4 + value.encoded_size());
    }
    for (const PendingTensor& t : tensors_) {
        LLMQ_TRY(put_string(sink, t.name));
        LLMQ_TRY(put_u32(sink, static_cast<uint32_t>(t.shape.size())));
        for (int64_t d : t.shape) LLMQ_TRY(put_u64(sink, static_cast<uint64_t>(d)));
        LLMQ_TRY(put_u32(sink, t.ggml_type));
        LLMQ_TRY(put_u64(sink, t.offset));
        count(8 + t.name.size() + 4 + 8 * t.shape.size() + 4 + 8);
    }
    if (options_.header_only) return sink.flush();

    uint64_t data_start;
    if (!checked::align_up(pos, options_.alignment, &data_start)) {
        return internal_error("GGUF writer: header size overflows");
    }
    LLMQ_TRY(put_zeros(sink, data_start - pos));
    uint64_t data_pos = 0;
    std::vector<uint8_t> rows;
    for (const PendingTensor& t : tensors_) {
        LLMQ_TRY(put_zeros(sink, t.offset - data_pos));
        if (t.fill) {
            // Fill as many whole rows as fit in the stream buffer, then hand them on.
            int64_t rows_per_chunk = static_cast<int64_t>(stream_buffer_bytes / t.row_bytes);
            if (rows_per_chunk < 1) rows_per_chunk = 1;
            for (int64_t r0 = 0; r0 < t.rows; r0 += rows_per_chunk) {
                int64_t n = std::min<int64_t>(rows_per_chunk, t.rows - r0);
                rows.resize(static_cast<size_t>(n) * t.row_bytes);
                fill_rows(t.fill, t.row_bytes, r0, n, rows.data(), options_.fill_threads);
                LLMQ_TRY(sink.write(rows.data(), rows.size()));
            }
        } else {
            LLMQ_TRY(sink.write(t.data.data(), t.data.size()));
        }
        data_pos = t.offset + t.size_bytes;
    }
    LLMQ_TRY(put_zeros(sink, data_bytes_ - data_pos));
    return sink.flush();
}

Status GgufWriter::write(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return io_error("writing GGUF file " + tmp + ": " + std::strerror(errno) +
                        "; check that the directory exists and is writable");
    }
    FileSink sink(fd, tmp);
    Status s = emit(sink);
    if (::close(fd) != 0 && s.ok()) {
        s = io_error("writing GGUF file " + tmp + ": " + std::strerror(errno));
    }
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
        s = io_error("renaming " + tmp + " to " + path + ": " + std::strerror(errno));
    }
    if (!s.ok()) ::unlink(tmp.c_str());
    return s;
}

Expected<std::vector<uint8_t>> GgufWriter::to_bytes() const {
    std::vector<uint8_t> out;
    MemorySink sink(out);
    Status s = emit(sink);
    if (!s.ok()) return s;
    return out;
}

}  // namespace llmq
