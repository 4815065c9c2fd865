// Files written by GgufWriter read back identically: every metadata type, nested arrays,
// tensors of every supported type with their bytes, alignment other than 32.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "handcrafted_gguf.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"

using namespace llmq;
using llmq::test::ScratchDir;

namespace {

std::shared_ptr<const GgufFile> write_and_open(const ScratchDir& dir, const GgufWriter& w,
                                               GgufFile::Options options = {}) {
    std::string path = dir.file("round_trip.gguf");
    Status s = w.write(path);
    REQUIRE_MESSAGE(s.ok(), s.to_string());
    auto f = GgufFile::open(path, options);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    return *f;
}

}  // namespace

TEST_CASE("gguf_round_trips_every_metadata_type") {
    GgufWriter w;
    w.add("k.u8", GgufValue::u8(250));
    w.add("k.i8", GgufValue::i8(-120));
    w.add("k.u16", GgufValue::u16(65000));
    w.add("k.i16", GgufValue::i16(-32000));
    w.add("k.u32", GgufValue::u32(4000000000u));
    w.add("k.i32", GgufValue::i32(-2000000000));
    w.add("k.u64", GgufValue::u64(std::numeric_limits<uint64_t>::max()));
    w.add("k.i64", GgufValue::i64(std::numeric_limits<int64_t>::min()));
    w.add("k.f32", GgufValue::f32(-1.5e-5f));
    w.add("k.f64", GgufValue::f64(3.141592653589793));
    w.add("k.true", GgufValue::boolean(true));
    w.add("k.false", GgufValue::boolean(false));
    w.add("k.string", GgufValue::string("héllo\n\xE2\x96\x81world"));
    w.add("k.empty_string", GgufValue::string(""));
    w.add("k.a_u8", GgufValue::array_u8(std::vector<uint8_t>{1, 2, 255}));
    w.add("k.a_i32", GgufValue::array_i32(std::vector<int32_t>{-1, 0, 7}));
    w.add("k.a_u32", GgufValue::array_u32(std::vector<uint32_t>{4000000000u}));
    w.add("k.a_i64", GgufValue::array_i64(std::vector<int64_t>{-5, 1ll << 40}));
    w.add("k.a_f32", GgufValue::array_f32(std::vector<float>{0.5f, -2.0f}));
    w.add("k.a_f64", GgufValue::array_f64(std::vector<double>{1e300}));
    w.add("k.a_bool", GgufValue::array_bool({true, false, true}));
    w.add("k.a_i16", GgufValue::numeric_array(GgufType::i16, {0xFF, 0xFF, 0x02, 0x00}));
    w.add("k.a_string", GgufValue::string_array({"a", "", "<0x0A>"}));
    w.add("k.a_empty", GgufValue::string_array({}));
    w.add("k.a_nested",
          GgufValue::array_of_arrays({GgufValue::array_i32(std::vector<int32_t>{1, 2}),
                                      GgufValue::string_array({"x"}),
                                      GgufValue::array_of_arrays({GgufValue::array_u8(std::vector<uint8_t>{9})})}));
    ScratchDir dir;
    auto f = write_and_open(dir, w);

    REQUIRE(f->metadata().size() == w.metadata().size());
    for (size_t i = 0; i < f->metadata().size(); ++i) {
        CHECK(f->metadata()[i].first == w.metadata()[i].first);  // file order kept
    }
    CHECK(f->find("k.u8")->type() == GgufType::u8);
    CHECK(*f->get_u32("k.u8") == 250);
    CHECK(*f->find("k.i8")->as_i64() == -120);
    CHECK(*f->get_u32("k.u16") == 65000);
    CHECK(*f->find("k.i16")->as_i64() == -32000);
    CHECK(*f->get_u32("k.u32") == 4000000000u);
    CHECK(*f->get_i64("k.i32") == -2000000000);
    CHECK(*f->get_u64("k.u64") == std::numeric_limits<uint64_t>::max());
    CHECK(*f->get_i64("k.i64") == std::numeric_limits<int64_t>::min());
    CHECK(*f->get_f32("k.f32") == -1.5e-5f);
    CHECK(*f->find("k.f64")->as_f64() == 3.141592653589793);
    CHECK(*f->get_bool("k.true") == true);
    CHECK(*f->get_bool("k.false") == false);
    CHECK(*f->get_string("k.string") == "héllo\n\xE2\x96\x81world");
    CHECK(f->get_string("k.empty_string")->empty());
    CHECK(f->find("k.a_u8")->array_type() == GgufType::u8);
    CHECK(*f->find("k.a_u8")->uint_at(2) == 255);
    CHECK(*f->get_i32_array("k.a_i32") == std::vector<int32_t>{-1, 0, 7});
    CHECK(*f->find("k.a_u32")->uint_at(0) == 4000000000u);
    CHECK(!f->get_i32_array("k.a_u32").ok());  // does not fit in i32
    CHECK(*f->find("k.a_i64")->int_at(1) == (1ll << 40));
    CHECK(*f->get_f32_array("k.a_f32") == std::vector<float>{0.5f, -2.0f});
    CHECK(*f->find("k.a_f64")->float_at(0) == 1e300);
    CHECK(f->find("k.a_bool")->array_size() == 3);
    CHECK(f->find("k.a_bool")->raw_elements()[1] == 0);
    CHECK(*f->find("k.a_i16")->int_at(0) == -1);
    CHECK(*f->find("k.a_i16")->int_at(1) == 2);
    CHECK(*f->get_string_array("k.a_string") == std::vector<std::string>{"a", "", "<0x0A>"});
    CHECK(f->get_string_array("k.a_empty")->empty());
    const GgufValue* nested = f->find("k.a_nested");
    REQUIRE(nested->array_type() == GgufType::array);
    REQUIRE(nested->arrays().size() == 3);
    CHECK(*nested->arrays()[0].int_at(1) == 2);
    CHECK(nested->arrays()[1].strings()[0] == "x");
    CHECK(*nested->arrays()[2].arrays()[0].uint_at(0) == 9);
    CHECK(*f->get_array_size("k.a_string") == 3);
    CHECK(f->find("k.missing") == nullptr);
}

TEST_CASE("gguf_round_trips_tensor_data_of_every_supported_type") {
    GgufWriter w(GgufWriter::Options{.alignment = 64});
    std::vector<uint8_t> f32_bytes(4 * 6), f16_bytes(2 * 10), bf16_bytes(2 * 3), q8_bytes(34 * 2);
    for (size_t i = 0; i < f32_bytes.size(); ++i) f32_bytes[i] = static_cast<uint8_t>(i + 1);
    for (size_t i = 0; i < f16_bytes.size(); ++i) f16_bytes[i] = static_cast<uint8_t>(100 + i);
    for (size_t i = 0; i < bf16_bytes.size(); ++i) bf16_bytes[i] = static_cast<uint8_t>(200 + i);
    for (size_t i = 0; i < q8_bytes.size(); ++i) q8_bytes[i] = static_cast<uint8_t>(i * 3);
    REQUIRE(w.add_tensor("a.f32", static_cast<uint32_t>(GgmlType::f32), {3, 2}, f32_bytes).ok());
    REQUIRE(w.add_tensor("b.f16", static_cast<uint32_t>(GgmlType::f16), {5, 1, 2}, f16_bytes).ok());
    REQUIRE(w.add_tensor("c.bf16", static_cast<uint32_t>(GgmlType::bf16), {3}, bf16_bytes).ok());
    // Filled row by row at write time.
    REQUIRE(w.add_tensor("d.q8_0", static_cast<uint32_t>(GgmlType::q8_0), {32, 2},
                         [&](int64_t row, uint8_t* dst) {
                             std::memcpy(dst, q8_bytes.data() + row * 34, 34);
                         })
                .ok());
    // The writer refuses inconsistent declarations.
    CHECK_FALSE(w.add_tensor("a.f32", static_cast<uint32_t>(GgmlType::f32), {1}, std::vector<uint8_t>(4)).ok());
    CHECK_FALSE(w.add_tensor("e", static_cast<uint32_t>(GgmlType::f32), {2}, std::vector<uint8_t>(4)).ok());
    CHECK_FALSE(w.add_tensor("e", static_cast<uint32_t>(GgmlType::q8_0), {31}, std::vector<uint8_t>(34)).ok());
    CHECK_FALSE(w.add_tensor("e", 4, {1}, std::vector<uint8_t>(4)).ok());

    ScratchDir dir;
    auto f = write_and_open(dir, w);
    CHECK(f->version() == 3);
    CHECK(f->alignment() == 64);
    CHECK(*f->get_u32("general.alignment") == 64);
    CHECK(f->has_data());
    CHECK(f->data_offset() % 64 == 0);
    REQUIRE(f->tensors().size() == 4);
    CHECK(f->tensors()[0].name == "a.f32");  // file order kept

    struct Expect {
        const char* name;
        kernels::dtype dtype;
        std::vector<int64_t> shape;
        const std::vector<uint8_t>* bytes;
        int64_t rows;
        size_t row_bytes;
    };
    for (const Expect& e : {Expect{"a.f32", kernels::dtype::f32, {3, 2}, &f32_bytes, 2, 12},
                            Expect{"b.f16", kernels::dtype::f16, {5, 1, 2}, &f16_bytes, 2, 10},
                            Expect{"c.bf16", kernels::dtype::bf16, {3}, &bf16_bytes, 1, 6},
                            Expect{"d.q8_0", kernels::dtype::q8_0, {32, 2}, &q8_bytes, 2, 34}}) {
        INFO(e.name);
        const GgufTensor* t = f->tensor(e.name);
        REQUIRE(t != nullptr);
        CHECK(t->supported());
        CHECK(t->dtype == e.dtype);
        CHECK(t->shape == e.shape);
        CHECK(t->rows() == e.rows);
        CHECK(t->row_bytes() == e.row_bytes);
        CHECK(t->size_bytes == e.bytes->size());
        CHECK(t->offset % 64 == 0);
        REQUIRE(t->data != nullptr);
        CHECK(reinterpret_cast<uintptr_t>(t->data) % 64 == 0);
        CHECK(std::memcmp(t->data, e.bytes->data(), e.bytes->size()) == 0);
    }
    CHECK(f->data_bytes() == f->tensor("d.q8_0")->offset + 68);
}

TEST_CASE("gguf_reads_version_2_files") {
    GgufWriter w(GgufWriter::Options{.version = 2});
    w.add("general.name", GgufValue::string("v2"));
    REQUIRE(w.add_tensor("t", static_cast<uint32_t>(GgmlType::f32), {4}, std::vector<uint8_t>(16, 1)).ok());
    ScratchDir dir;
    auto f = write_and_open(dir, w);
    CHECK(f->version() == 2);
    CHECK(*f->get_string("general.name") == "v2");
}

TEST_CASE("gguf_writer_fills_rows_on_several_threads_with_the_same_bytes") {
    // A filler whose row bytes depend on the row only; a tensor of more rows than one 8 MiB
    // chunk (so chunks after the first are split too), one of fewer rows than threads, one row.
    auto fill = [](int64_t r, uint8_t* dst) {
        for (int i = 0; i < 64; ++i) dst[i] = static_cast<uint8_t>((r * 131 + i * 7) ^ (r >> 8));
    };
    auto file_with = [&](int threads) {
        GgufWriter w(GgufWriter::Options{.fill_threads = threads});
        const uint32_t f32 = static_cast<uint32_t>(GgmlType::f32);
        REQUIRE(w.add_tensor("big", f32, {16, 140000}, fill).ok());  // 8.5 MiB
        REQUIRE(w.add_tensor("few", f32, {16, 3}, fill).ok());
        REQUIRE(w.add_tensor("one", f32, {16}, fill).ok());
        auto bytes = w.to_bytes();
        REQUIRE(bytes.ok());
        return *bytes;
    };
    const std::vector<uint8_t> one = file_with(1);
    CHECK(file_with(4) == one);
    CHECK(file_with(7) == one);

    // Rows filled once each, by more than one thread.
    std::mutex lock;
    std::vector<int> calls(100000, 0);
    std::set<std::thread::id> threads;
    GgufWriter w(GgufWriter::Options{.fill_threads = 3});
    REQUIRE(w.add_tensor("t", static_cast<uint32_t>(GgmlType::f32), {4, 100000},
                         [&](int64_t r, uint8_t*) {
                             std::lock_guard<std::mutex> hold(lock);
                             ++calls[static_cast<size_t>(r)];
                             threads.insert(std::this_thread::get_id());
                         })
                .ok());
    REQUIRE(w.to_bytes().ok());
    CHECK(std::all_of(calls.begin(), calls.end(), [](int c) { return c == 1; }));
    CHECK(threads.size() == 3);

    // A filler's exception reaches the caller after every thread has ended.
    GgufWriter bad(GgufWriter::Options{.fill_threads = 4});
    REQUIRE(bad.add_tensor("t", static_cast<uint32_t>(GgmlType::f32), {4, 1000},
                           [](int64_t r, uint8_t*) {
                               if (r == 900) throw std::runtime_error("row 900");
                           })
                .ok());
    CHECK_THROWS_WITH(bad.to_bytes(), "row 900");
}

TEST_CASE("gguf_reads_the_shared_llama_vocabulary") {
    const char* dir = std::getenv("LLMQ_SHARED_VOCAB_DIR");
    std::string path = std::string(dir ? dir : "") + "/llama-spm.gguf";
    if (!dir || !std::filesystem::exists(path)) {
        MESSAGE("skipped: " << path << " is absent");
        return;
    }
    auto f = GgufFile::open(path);
    REQUIRE_MESSAGE(f.ok(), f.status().to_string());
    CHECK((*f)->tensors().empty());
    CHECK(*(*f)->get_string("tokenizer.ggml.model") == "llama");
    auto tokens = (*f)->get_string_array("tokenizer.ggml.tokens");
    REQUIRE(tokens.ok());
    CHECK(tokens->size() == 32000);
    CHECK((*tokens)[1] == "<s>");
    CHECK((*f)->get_f32_array("tokenizer.ggml.scores")->size() == 32000);
    CHECK(*(*f)->get_u32("tokenizer.ggml.bos_token_id") == 1);
}
