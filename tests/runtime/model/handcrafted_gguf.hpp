// Handcrafted GGUF bytes for the model tests: a builder that writes fields one by one (so a
// test can put any defect anywhere) and a scratch directory to open them from.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "llmq/runtime/gguf.hpp"

namespace llmq::test {

// Appends little-endian GGUF fields.
struct RawGguf {
    std::vector<uint8_t> bytes;

    RawGguf& u8(uint8_t v) { return put(&v, 1); }
    RawGguf& u32(uint32_t v) { return put(&v, 4); }
    RawGguf& u64(uint64_t v) { return put(&v, 8); }
    RawGguf& f32(float v) { return put(&v, 4); }
    RawGguf& str(const std::string& s) {
        u64(s.size());
        return put(s.data(), s.size());
    }
    // magic, version, tensor count, kv count
    RawGguf& header(uint64_t tensors, uint64_t kvs, uint32_t version = 3) {
        u32(gguf_magic).u32(version).u64(tensors).u64(kvs);
        return *this;
    }
    RawGguf& kv_u32(const std::string& key, uint32_t v) {
        str(key).u32(static_cast<uint32_t>(GgufType::u32));
        return u32(v);
    }
    RawGguf& kv_string(const std::string& key, const std::string& v) {
        str(key).u32(static_cast<uint32_t>(GgufType::string));
        return str(v);
    }
    RawGguf& tensor_info(const std::string& name, const std::vector<uint64_t>& dims,
                         uint32_t ggml_type, uint64_t offset) {
        str(name).u32(static_cast<uint32_t>(dims.size()));
        for (uint64_t d : dims) u64(d);
        return u32(ggml_type).u64(offset);
    }
    RawGguf& pad_to(uint64_t alignment) {
        while (bytes.size() % alignment != 0) bytes.push_back(0);
        return *this;
    }
    RawGguf& zeros(size_t n) {
        bytes.insert(bytes.end(), n, 0);
        return *this;
    }
    RawGguf& put(const void* p, size_t n) {
        auto b = static_cast<const uint8_t*>(p);
        bytes.insert(bytes.end(), b, b + n);
        return *this;
    }
};

// A fresh directory under TMPDIR, removed with everything in it at scope exit.
class ScratchDir {
public:
    ScratchDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "llmq-model-test-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path_ = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    std::string file(const std::string& name) const { return (path_ / name).string(); }

    std::string write(const std::string& name, const std::vector<uint8_t>& bytes) const {
        std::string p = file(name);
        std::ofstream out(p, std::ios::binary | std::ios::trunc);
        out.write(reinterpret_cast<const char*>(bytes.data()),
                  static_cast<std::streamsize>(bytes.size()));
        REQUIRE(out.good());
        return p;
    }

private:
    std::filesystem::path path_;
};

// Opens `bytes` as a file and returns the Status (ok when it opened).
inline Status open_status(const ScratchDir& dir, const std::vector<uint8_t>& bytes,
                          GgufFile::Options options = {}) {
    std::string p = dir.write("case.gguf", bytes);
    auto f = GgufFile::open(p, options);
    return f.status();
}

inline bool contains(const std::string& haystack, const std::string& needle) {
    return haystack.find(needle) != std::string::npos;
}

}  // namespace llmq::test
