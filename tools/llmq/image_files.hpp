// Reading the image files of --image PATH (llmq run, llmq generate): the bytes as they are,
// for the runtime to decode (the client never decodes: llmqd checks every image itself).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace llmq::cli {

// Appends each file's bytes to `out`. False with `error` naming the file when one cannot be
// read, or when the files together pass max_total_bytes (0: no limit).
bool read_image_files(const std::vector<std::string>& paths, uint64_t max_total_bytes,
                      std::vector<std::vector<uint8_t>>& out, std::string& error);

}  // namespace llmq::cli
