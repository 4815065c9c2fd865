#include "image_files.hpp"

#include <fstream>
#include <iterator>

namespace llmq::cli {

bool read_image_files(const std::vector<std::string>& paths, uint64_t max_total_bytes,
                      std::vector<std::vector<uint8_t>>& out, std::string& error) {
    uint64_t total = 0;
    for (const std::string& path : paths) {
        std::ifstream in(path, std::ios::binary);
        if (!in) {
            error = "--image " + path + ": cannot be read";
            return false;
        }
        std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        if (in.bad()) {
            error = "--image " + path + ": read error";
            return false;
        }
        total += bytes.size();
        if (max_total_bytes != 0 && total > max_total_bytes) {
            error = "--image " + path + ": the images add up to " + std::to_string(total) + " bytes, over the " +
                    std::to_string(max_total_bytes) + " of [ipc] max_image_bytes";
            return false;
        }
        out.push_back(std::move(bytes));
    }
    return true;
}

}  // namespace llmq::cli
