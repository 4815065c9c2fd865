// Writes a GGUF file from trained weights: a JSON manifest (metadata entries and a tensor
// table) beside one little-endian float32 blob, as tools/train-demo/train_demo.py writes them.
//
//   {"data": "weights.f32",                       blob path, relative to the manifest
//    "metadata": [{"key": K, "type": T, "value": V}, ...],
//        T: string, u32, i32, f32, bool, string_array, f32_array, i32_array
//    "tensors": [{"name": N, "shape": [ne0, ne1, ...], "offset": O}, ...]}
//        shape lists the row length first (GGUF order); offset counts floats into the blob
//
// Tensors of one dimension stay F32; the others are converted to `dtype` row by row.
#pragma once

#include <string>

#include "llmq/kernels/cpu.hpp"
#include "llmq/runtime/status.hpp"

namespace llmq {

[[nodiscard]] Status import_manifest(const std::string& manifest_path, kernels::dtype dtype,
                                     const std::string& out_path);

}  // namespace llmq
