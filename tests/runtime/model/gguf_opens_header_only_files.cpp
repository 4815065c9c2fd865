// Header-only files (no data section, or a short one) open for planning when asked, and are
// refused as truncated otherwise.
#include <doctest/doctest.h>

#include "handcrafted_gguf.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"

using namespace llmq;
using llmq::test::contains;
using llmq::test::ScratchDir;

namespace {

void declare(GgufWriter& w) {
    w.add("general.architecture", GgufValue::string("llama"));
    REQUIRE(w.add_tensor("token_embd.weight", static_cast<uint32_t>(GgmlType::bf16), {4096, 1000},
                         GgufWriter::RowFill{})
                .ok());
    REQUIRE(w.add_tensor("output_norm.weight", static_cast<uint32_t>(GgmlType::f32), {4096},
                         GgufWriter::RowFill{})
                .ok());
}

}  // namespace

TEST_CASE("gguf_opens_header_only_file_for_planning") {
    GgufWriter w(GgufWriter::Options{.header_only = true});
    declare(w);
    ScratchDir dir;
    std::string path = dir.file("header.gguf");
    REQUIRE(w.write(path).ok());

    auto strict = GgufFile::open(path);
    REQUIRE_FALSE(strict.ok());
    CHECK(strict.status().code() == status_code::corrupt);
    CHECK(contains(strict.status().message(), "truncated"));
    CHECK(contains(strict.status().message(), "header.gguf"));
    CHECK(contains(strict.status().message(), "header-only"));

    auto f = GgufFile::open(path, GgufFile::Options{.require_data = false});
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    CHECK_FALSE((*f)->has_data());
    CHECK((*f)->tensors().size() == 2);
    for (const GgufTensor& t : (*f)->tensors()) CHECK(t.data == nullptr);
    const GgufTensor* e = (*f)->tensor("token_embd.weight");
    CHECK(e->size_bytes == 4096ull * 1000 * 2);
    CHECK((*f)->data_bytes() == (*f)->tensor("output_norm.weight")->offset + 4096 * 4);
    CHECK((*f)->file_size() < 1024);
}

TEST_CASE("gguf_opens_file_with_short_data_section_only_for_planning") {
    GgufWriter w;
    w.add("general.architecture", GgufValue::string("llama"));
    REQUIRE(w.add_tensor("a", static_cast<uint32_t>(GgmlType::f32), {64}, std::vector<uint8_t>(256, 7)).ok());
    REQUIRE(w.add_tensor("b", static_cast<uint32_t>(GgmlType::f32), {64}, std::vector<uint8_t>(256, 9)).ok());
    auto bytes = w.to_bytes();
    REQUIRE(bytes.ok());
    bytes->resize(bytes->size() - 100);  // cut into tensor b
    ScratchDir dir;
    std::string path = dir.write("short.gguf", *bytes);

    auto strict = GgufFile::open(path);
    REQUIRE_FALSE(strict.ok());
    CHECK(contains(strict.status().message(), "'b'"));
    auto f = GgufFile::open(path, GgufFile::Options{.require_data = false});
    REQUIRE(f.ok());
    CHECK_FALSE((*f)->has_data());
    CHECK((*f)->tensor("a")->data == nullptr);
}
