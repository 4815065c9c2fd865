#include "import_manifest.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"

namespace llmq {
namespace {

using nlohmann::json;

// The blob, mapped read-only for the writer's row fillers.
class Blob {
public:
    static Expected<std::shared_ptr<Blob>> map(const std::string& path) {
        int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return io_error("cannot open " + path + ": " + std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size % 4 != 0) {
            ::close(fd);
            return invalid_argument(path + " is not a regular file of float32 values");
        }
        auto blob = std::make_shared<Blob>();
        blob->floats_ = static_cast<uint64_t>(st.st_size) / 4;
        if (st.st_size > 0) {
            void* p = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
            if (p == MAP_FAILED) {
                ::close(fd);
                return io_error("cannot map " + path + ": " + std::strerror(errno));
            }
            blob->data_ = static_cast<const float*>(p);
        }
        ::close(fd);
        return blob;
    }
    Blob() = default;
    Blob(const Blob&) = delete;
    Blob& operator=(const Blob&) = delete;
    ~Blob() {
        if (data_) ::munmap(const_cast<float*>(data_), floats_ * 4);
    }
    const float* data() const { return data_; }
    uint64_t floats() const { return floats_; }

private:
    const float* data_ = nullptr;
    uint64_t floats_ = 0;
};

Expected<GgufValue> metadata_value(const json& entry, const std::string& where) {
    if (!entry.is_object() || !entry.contains("key") || !entry["key"].is_string() ||
        !entry.contains("type") || !entry["type"].is_string() || !entry.contains("value")) {
        return invalid_argument(where + ": needs string \"key\", string \"type\" and \"value\"");
    }
    const std::string type = entry["type"];
    const json& v = entry["value"];
    const std::string what = where + " (" + entry["key"].get<std::string>() + ")";
    try {
        if (type == "string") return GgufValue::string(v.get<std::string>());
        if (type == "u32") return GgufValue::u32(v.get<uint32_t>());
        if (type == "i32") return GgufValue::i32(v.get<int32_t>());
        if (type == "f32") return GgufValue::f32(v.get<float>());
        if (type == "bool") return GgufValue::boolean(v.get<bool>());
        if (type == "string_array") return GgufValue::string_array(v.get<std::vector<std::string>>());
        if (type == "f32_array") {
            auto a = v.get<std::vector<float>>();
            return GgufValue::array_f32(a);
        }
        if (type == "i32_array") {
            auto a = v.get<std::vector<int32_t>>();
            return GgufValue::array_i32(a);
        }
    } catch (const json::exception& e) {
        return invalid_argument(what + ": value does not fit type " + type + ": " + e.what());
    }
    return invalid_argument(what + ": unknown type \"" + type + "\"");
}

}  // namespace

Status import_manifest(const std::string& manifest_path, kernels::dtype dtype,
                       const std::string& out_path) {
    json m;
    {
        std::ifstream in(manifest_path);
        if (!in) return io_error("cannot read the manifest " + manifest_path);
        try {
            m = json::parse(in);
        } catch (const json::exception& e) {
            return invalid_argument(manifest_path + ": not JSON: " + e.what());
        }
    }
    if (!m.is_object() || !m.contains("data") || !m["data"].is_string() ||
        !m.contains("metadata") || !m["metadata"].is_array() || !m.contains("tensors") ||
        !m["tensors"].is_array()) {
        return invalid_argument(manifest_path + ": needs \"data\", \"metadata\" and \"tensors\"");
    }
    const auto blob_path =
        (std::filesystem::path(manifest_path).parent_path() / m["data"].get<std::string>()).string();
    auto blob = Blob::map(blob_path);
    if (!blob) return blob.status();

    GgufWriter w;
    for (size_t i = 0; i < m["metadata"].size(); ++i) {
        const std::string where = manifest_path + ": metadata[" + std::to_string(i) + "]";
        auto value = metadata_value(m["metadata"][i], where);
        if (!value) return value.status();
        w.set(m["metadata"][i]["key"].get<std::string>(), std::move(*value));
    }

    const uint32_t f32_type = *dtype_to_ggml_type(kernels::dtype::f32);
    for (size_t i = 0; i < m["tensors"].size(); ++i) {
        const json& t = m["tensors"][i];
        const std::string where = manifest_path + ": tensors[" + std::to_string(i) + "]";
        if (!t.is_object() || !t.contains("name") || !t["name"].is_string() ||
            !t.contains("shape") || !t["shape"].is_array() || t["shape"].empty() ||
            !t.contains("offset") || !t["offset"].is_number_unsigned()) {
            return invalid_argument(where + ": needs \"name\", a non-empty \"shape\" and \"offset\"");
        }
        const std::string name = t["name"];
        std::vector<int64_t> shape;
        uint64_t count = 1;
        for (const json& d : t["shape"]) {
            if (!d.is_number_unsigned() || d.get<uint64_t>() == 0 || d.get<uint64_t>() > (1ull << 32)) {
                return invalid_argument(where + " (" + name + "): dimensions must be positive integers");
            }
            shape.push_back(d.get<int64_t>());
            count *= d.get<uint64_t>();
        }
        const uint64_t offset = t["offset"];
        if (offset > blob.value()->floats() || count > blob.value()->floats() - offset) {
            return invalid_argument(where + " (" + name + "): " + std::to_string(count) +
                                    " floats at offset " + std::to_string(offset) + " pass the end of " +
                                    blob_path + " (" + std::to_string(blob.value()->floats()) + " floats)");
        }
        const kernels::dtype dt = shape.size() == 1 ? kernels::dtype::f32 : dtype;
        const int64_t row = shape[0];
        std::shared_ptr<Blob> keep = *blob;
        const float* base = keep->data() + offset;
        Status s = w.add_tensor(name, shape.size() == 1 ? f32_type : *dtype_to_ggml_type(dt), shape,
                                [keep, base, row, dt](int64_t r, uint8_t* dst) {
                                    kernels::row_from_f32(dt, base + r * row, dst, row);
                                });
        if (!s.ok()) return s.with_context(where);
    }
    return w.write(out_path);
}

}  // namespace llmq
