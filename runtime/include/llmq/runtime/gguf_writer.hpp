// GGUF writer: builds a GGUF v3 (or v2) file from metadata and tensors, streaming tensor data
// row by row so that multi-gigabyte models are never held in memory.
//
// Used by the model maker (tools/make-model) and by tests that handcraft files. The writer
// checks what it is given (known tensor type, positive dims, rows a whole number of blocks,
// unique tensor names) but deliberately lets tests write some defects: a repeated metadata key
// (add() appends), any version number, a general.alignment key that lies.
//
// Ownership and threads: a GgufWriter owns copies of everything added to it; the row fillers
// it holds are called on the thread that calls write()/to_bytes(), in row order, unless
// Options::fill_threads asks for more threads. Not thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

class GgufWriter {
public:
    struct Options {
        uint32_t version = 3;  // written as is (2 and 3 are the readable ones)
        // Padding of the tensor table end and of every tensor's offset (a power of two). When
        // it is not 32 and no general.alignment key was added, the writer adds one (u32).
        uint64_t alignment = gguf_default_alignment;
        // Stop after the tensor table: no padding, no data (a file for planning).
        bool header_only = false;
        // Above 1, the rows of each chunk a filler produces (up to 8 MiB of them) are split
        // among this many threads, the calling one included: every filler must then be safe
        // to call at once for different rows. The bytes written are the same either way.
        int fill_threads = 1;
    };

    // Fills row `row` of a tensor (row_bytes bytes at dst). Called once per row, in order
    // (with Options::fill_threads > 1: once per row, in no set order, from several threads).
    using RowFill = std::function<void(int64_t row, uint8_t* dst)>;

    GgufWriter() : GgufWriter(Options{}) {}
    explicit GgufWriter(Options options);

    // Appends a metadata entry (a repeated key is written twice: the reader refuses that).
    void add(std::string key, GgufValue value);
    // Replaces the entry of `key` if present, else appends it.
    void set(std::string key, GgufValue value);
    const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return kv_; }

    // Declares a tensor with its bytes (size must match the shape and type).
    [[nodiscard]] Status add_tensor(std::string name, uint32_t ggml_type,
                                    std::vector<int64_t> shape, std::vector<uint8_t> data);
    // Declares a tensor whose rows `fill` produces at write time (may be empty when the
    // output is header-only).
    [[nodiscard]] Status add_tensor(std::string name, uint32_t ggml_type,
                                    std::vector<int64_t> shape, RowFill fill);

    size_t tensor_count() const { return tensors_.size(); }
    // Size of the data section as it will be written (tensors plus alignment padding).
    uint64_t data_bytes() const { return data_bytes_; }

    // Writes the file: to `path` + ".tmp", then renamed over `path`, so a failed write never
    // leaves a half file under the final name. io_error names the path and errno.
    [[nodiscard]] Status write(const std::string& path) const;
    // The whole file in memory (for small test files).
    [[nodiscard]] Expected<std::vector<uint8_t>> to_bytes() const;

private:
    struct PendingTensor {
        std::string name;
        uint32_t ggml_type;
        std::vector<int64_t> shape;
        uint64_t offset;
        uint64_t size_bytes;
        uint64_t row_bytes;
        int64_t rows;
        std::vector<uint8_t> data;  // or fill
        RowFill fill;
    };
    [[nodiscard]] Status declare(PendingTensor t);
    template <typename Sink>
    Status emit(Sink& sink) const;

    Options options_;
    std::vector<std::pair<std::string, GgufValue>> kv_;
    std::vector<PendingTensor> tensors_;
    uint64_t data_bytes_ = 0;
};

}  // namespace llmq
