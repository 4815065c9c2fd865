#include "llmq/runtime/model_file.hpp"

#include <sys/stat.h>

#include "llmq/runtime/safetensors.hpp"

namespace llmq {

Expected<std::shared_ptr<const GgufFile>> open_model_file(const std::string& path, GgufFile::Options options) {
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) return open_safetensors_directory(path, options);
    return GgufFile::open(path, options);
}

}  // namespace llmq
