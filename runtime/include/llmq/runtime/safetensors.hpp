// Safetensors: the tensor files of Hugging Face model directories, and the directories
// themselves as llmq loads them.
//
// A safetensors file is a little-endian u64 N, then N bytes of a JSON object, then the data:
//   {"__metadata__": {"k": "v", ...},            (optional, strings only)
//    "model.norm.weight": {"dtype": "BF16", "shape": [4096], "data_offsets": [BEGIN, END]}, ...}
// where BEGIN..END are byte offsets into the data that follows the header.
//
// A model directory (config.json, tokenizer.json, tokenizer_config.json, model.safetensors or
// model-0000K-of-0000N.safetensors shards listed by model.safetensors.index.json) opens as the
// GgufFile it would convert to: the metadata keys and tensor names of llama.cpp's converter,
// so the layout, planner, tokenizer and `llmq inspect` read it like any GGUF file. Matmul
// weights and embeddings are views of the shards' mappings (no copy); only the 1-D tensors
// (norms, biases), which llmq keeps in F32, are widened into memory the file owns, and Llama
// 3.1's rope_scaling becomes the rope_freqs.weight tensor the converter would write. Hugging
// Face Llama checkpoints keep q_proj/k_proj rows in the half-split rotary order that the
// converter permutes away; llmq leaves the rows as they are and sets the metadata key
// `llmq.rope.neox` = true, which makes the layout rotate (i, i + head_dim/2) pairs (see
// docs/model-files.md).
//
// Ownership and threads: as GgufFile (gguf.hpp). Pure functions, any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

struct SafetensorsTensor {
    std::string name;
    std::string dtype;           // "BF16", "F16", "F32", ... (a dtype the format defines)
    uint32_t element_bytes = 0;  // of dtype
    std::vector<int64_t> shape;  // row-major, outermost first (PyTorch order)
    uint64_t begin = 0;          // byte offsets into the data section
    uint64_t end = 0;
};

struct SafetensorsHeader {
    uint64_t data_offset = 0;  // 8 + N: where the data section starts in the file
    uint64_t data_bytes = 0;   // bytes of the file after the header
    std::vector<SafetensorsTensor> tensors;  // sorted by name
    std::vector<std::pair<std::string, std::string>> metadata;  // "__metadata__", sorted by key
};

// Header limits: the format's own 100 MB cap on N, and a nesting depth no real header needs.
inline constexpr uint64_t safetensors_max_header_bytes = 100'000'000;
inline constexpr int safetensors_max_header_depth = 8;

// Parses and checks the header of the safetensors file whose bytes (the whole file, or at
// least its header when `file_size` says more follow) are `bytes`: N within the file and the
// cap, valid JSON no deeper than the cap, an object of tensor entries with a known dtype, a
// shape of non-negative integers and data_offsets [BEGIN, END] with BEGIN <= END <= the data
// bytes, END - BEGIN equal to the shape's element count times the dtype's size, no two
// tensors overlapping, every tensor aligned to its element size in the file. Every error
// (corrupt) names `path` and the tensor.
[[nodiscard]] Expected<SafetensorsHeader> parse_safetensors_header(std::span<const uint8_t> bytes,
                                                                   uint64_t file_size,
                                                                   const std::string& path);

// Opens the Hugging Face model directory `dir` as described above. With
// options.require_data false a directory without any .safetensors file still opens (metadata
// and tokenizer only, no tensors), for `llmq tokenize`. Errors (each naming the file, key or
// tensor): not_found for a missing config.json / tokenizer.json / shard, corrupt for malformed
// JSON, a key of the wrong type, a bad safetensors header, a tensor missing from its shard or
// of the wrong shape, unsupported for an architecture, dtype, rope_scaling, normalizer or
// pre-tokenizer llmq does not handle.
[[nodiscard]] Expected<std::shared_ptr<const GgufFile>> open_safetensors_directory(
    const std::string& dir, GgufFile::Options options);

}  // namespace llmq
