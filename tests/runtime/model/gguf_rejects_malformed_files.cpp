// One handcrafted bad file per defect: each must be refused with a Status whose message names
// the file and the problem. None may crash or allocate what the file cannot back.
#include <doctest/doctest.h>

#include <limits>

#include "handcrafted_gguf.hpp"
#include "llmq/runtime/gguf.hpp"
#include "llmq/runtime/gguf_writer.hpp"

using namespace llmq;
using llmq::test::contains;
using llmq::test::RawGguf;
using llmq::test::ScratchDir;

namespace {

constexpr uint32_t f32_type = static_cast<uint32_t>(GgmlType::f32);

void expect_refused(const std::vector<uint8_t>& bytes, status_code code,
                    std::vector<std::string> needles, GgufFile::Options options = {}) {
    ScratchDir dir;
    Status s = test::open_status(dir, bytes, options);
    REQUIRE_FALSE(s.ok());
    INFO(s.to_string());
    CHECK(s.code() == code);
    CHECK(contains(s.message(), "case.gguf"));
    for (const std::string& n : needles) CHECK(contains(s.message(), n));
}

// A valid file with one f32 tensor of `n` values, to start defects from.
RawGguf one_tensor_file(uint64_t n = 8) {
    RawGguf f;
    f.header(1, 1).kv_string("general.architecture", "llama");
    f.tensor_info("t", {n}, f32_type, 0).pad_to(32).zeros(n * 4);
    return f;
}

}  // namespace

TEST_CASE("gguf_accepts_the_baseline_file_used_by_these_cases") {
    ScratchDir dir;
    Status s = test::open_status(dir, one_tensor_file().bytes);
    CHECK_MESSAGE(s.ok(), s.to_string());
}

TEST_CASE("gguf_rejects_missing_file") {
    auto f = GgufFile::open("/nonexistent/dir/model.gguf");
    REQUIRE_FALSE(f.ok());
    CHECK(f.status().code() == status_code::not_found);
    CHECK(contains(f.status().message(), "/nonexistent/dir/model.gguf"));
}

TEST_CASE("gguf_rejects_empty_file") {
    expect_refused({}, status_code::corrupt, {"empty"});
}

TEST_CASE("gguf_rejects_bad_magic") {
    RawGguf f = one_tensor_file();
    std::memcpy(f.bytes.data(), "GGML", 4);
    expect_refused(f.bytes, status_code::corrupt, {"bad magic", "GGML", "not a GGUF"});
}

TEST_CASE("gguf_rejects_unsupported_version") {
    for (uint32_t v : {1u, 4u, 0x03000000u}) {
        RawGguf f;
        f.header(0, 0, v);
        expect_refused(f.bytes, status_code::unsupported, {"unsupported version " + std::to_string(v)});
    }
}

TEST_CASE("gguf_rejects_truncated_header") {
    RawGguf f;
    f.u32(gguf_magic).u32(3).u32(0);  // tensor count cut in half
    expect_refused(f.bytes, status_code::corrupt, {"truncated", "tensor count"});
}

TEST_CASE("gguf_rejects_truncated_file") {
    // Every proper prefix of a valid file is refused: with data required all of them; in
    // header-only mode those that end inside the header or tensor table.
    GgufWriter w;
    w.add("general.architecture", GgufValue::string("llama"));
    w.add("a.scores", GgufValue::array_f32(std::vector<float>{1, 2, 3}));
    w.add("a.words", GgufValue::string_array({"x", "yz"}));
    REQUIRE(w.add_tensor("t", f32_type, {8}, std::vector<uint8_t>(32, 0)).ok());
    auto bytes = w.to_bytes();
    REQUIRE(bytes.ok());
    ScratchDir dir;
    size_t header_end = 0;
    {
        GgufWriter h(GgufWriter::Options{.header_only = true});
        h.add("general.architecture", GgufValue::string("llama"));
        h.add("a.scores", GgufValue::array_f32(std::vector<float>{1, 2, 3}));
        h.add("a.words", GgufValue::string_array({"x", "yz"}));
        REQUIRE(h.add_tensor("t", f32_type, {8}, std::vector<uint8_t>{}).ok());
        header_end = h.to_bytes()->size();
    }
    for (size_t n = 0; n < bytes->size(); ++n) {
        std::vector<uint8_t> prefix(bytes->begin(), bytes->begin() + static_cast<long>(n));
        Status s = test::open_status(dir, prefix);
        INFO("prefix of " << n << " bytes: " << s.to_string());
        REQUIRE_FALSE(s.ok());
        CHECK((contains(s.message(), "truncated") || contains(s.message(), "empty")));
        Status lenient = test::open_status(dir, prefix, GgufFile::Options{.require_data = false});
        CHECK(lenient.ok() == (n >= header_end));
    }
}

TEST_CASE("gguf_rejects_string_longer_than_file") {
    RawGguf f;
    f.header(0, 1).str("general.name").u32(static_cast<uint32_t>(GgufType::string));
    f.u64(1000).put("abc", 3);
    expect_refused(f.bytes, status_code::corrupt, {"truncated", "general.name", "1000"});
}

TEST_CASE("gguf_rejects_key_longer_than_file") {
    RawGguf f;
    f.header(0, 1).u64(std::numeric_limits<uint64_t>::max()).put("k", 1).zeros(16);
    expect_refused(f.bytes, status_code::corrupt, {"truncated", "key of metadata entry 0"});
}

TEST_CASE("gguf_rejects_absurd_array_length") {
    RawGguf f;
    f.header(0, 1).str("tokenizer.ggml.tokens").u32(static_cast<uint32_t>(GgufType::array));
    f.u32(static_cast<uint32_t>(GgufType::string)).u64(uint64_t{1} << 60).str("a");
    expect_refused(f.bytes, status_code::corrupt, {"tokenizer.ggml.tokens", "1152921504606846976", "absurd"});
}

TEST_CASE("gguf_rejects_absurd_numeric_array_length") {
    RawGguf f;
    f.header(0, 1).str("scores").u32(static_cast<uint32_t>(GgufType::array));
    f.u32(static_cast<uint32_t>(GgufType::f64)).u64(std::numeric_limits<uint64_t>::max() / 4).zeros(16);
    expect_refused(f.bytes, status_code::corrupt, {"scores", "absurd"});
}

TEST_CASE("gguf_rejects_absurd_tensor_count") {
    RawGguf f;
    f.header(std::numeric_limits<uint64_t>::max(), 0).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"absurd tensor count"});
}

TEST_CASE("gguf_rejects_absurd_metadata_count") {
    RawGguf f;
    f.header(0, uint64_t{1} << 62).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"absurd metadata count"});
}

TEST_CASE("gguf_rejects_unknown_metadata_type") {
    RawGguf f;
    f.header(0, 1).str("general.x").u32(13).u32(0);
    expect_refused(f.bytes, status_code::corrupt, {"general.x", "unknown value type 13"});
}

TEST_CASE("gguf_rejects_unknown_array_element_type") {
    RawGguf f;
    f.header(0, 1).str("general.x").u32(static_cast<uint32_t>(GgufType::array)).u32(99).u64(1).u32(0);
    expect_refused(f.bytes, status_code::corrupt, {"general.x", "unknown element type 99"});
}

TEST_CASE("gguf_rejects_bool_that_is_neither_0_nor_1") {
    RawGguf f;
    f.header(0, 1).str("tokenizer.ggml.add_bos_token").u32(static_cast<uint32_t>(GgufType::boolean)).u8(7);
    expect_refused(f.bytes, status_code::corrupt, {"add_bos_token", "byte value 7"});
}

TEST_CASE("gguf_rejects_arrays_nested_too_deep") {
    RawGguf f;
    f.header(0, 1).str("deep").u32(static_cast<uint32_t>(GgufType::array));
    for (int i = 0; i < 40; ++i) f.u32(static_cast<uint32_t>(GgufType::array)).u64(1);
    f.u32(static_cast<uint32_t>(GgufType::u8)).u64(0);
    expect_refused(f.bytes, status_code::corrupt, {"deep", "nests arrays deeper"});
}

TEST_CASE("gguf_rejects_duplicate_key") {
    GgufWriter w;
    w.add("general.name", GgufValue::string("a"));
    w.add("general.name", GgufValue::string("b"));
    expect_refused(*w.to_bytes(), status_code::corrupt, {"duplicate metadata key", "general.name"});
}

TEST_CASE("gguf_rejects_empty_key") {
    RawGguf f;
    f.header(0, 1).kv_u32("", 1);
    expect_refused(f.bytes, status_code::corrupt, {"empty key"});
}

TEST_CASE("gguf_rejects_alignment_that_is_not_a_power_of_two") {
    for (uint32_t a : {0u, 3u, 48u}) {
        RawGguf f;
        f.header(0, 1).kv_u32("general.alignment", a);
        expect_refused(f.bytes, status_code::corrupt, {"general.alignment", "power of two"});
    }
    RawGguf s;
    s.header(0, 1).kv_string("general.alignment", "32");
    expect_refused(s.bytes, status_code::corrupt, {"general.alignment"});
}

TEST_CASE("gguf_rejects_alignment_stored_as_int32") {
    // 32 would be a fine alignment, but the specification's type is u32.
    RawGguf f;
    f.header(0, 1).str("general.alignment").u32(static_cast<uint32_t>(GgufType::i32)).u32(32);
    expect_refused(f.bytes, status_code::corrupt, {"'general.alignment'", "is i32", "u32"});
}

namespace {
constexpr uint32_t array_type = static_cast<uint32_t>(GgufType::array);

// A three-token vocabulary, then `extra` more key-value pairs written by `add`.
template <typename Add>
std::vector<uint8_t> vocab_file(uint64_t extra, Add add) {
    RawGguf f;
    f.header(0, 1 + extra).str("tokenizer.ggml.tokens").u32(array_type);
    f.u32(static_cast<uint32_t>(GgufType::string)).u64(3).str("<unk>").str("<s>").str("</s>");
    add(f);
    return f.bytes;
}
}  // namespace

TEST_CASE("gguf_rejects_special_token_id_outside_the_vocabulary") {
    // 2^32 - 1 is not "no token": a model without one leaves the key out.
    expect_refused(vocab_file(1, [](RawGguf& f) { f.kv_u32("tokenizer.ggml.eos_token_id", 0xFFFFFFFFu); }),
                   status_code::corrupt, {"'tokenizer.ggml.eos_token_id'", "4294967295", "3 entries"});
    expect_refused(vocab_file(1, [](RawGguf& f) { f.kv_u32("tokenizer.ggml.bos_token_id", 3); }),
                   status_code::corrupt, {"'tokenizer.ggml.bos_token_id'", "= 3", "not a token"});
    expect_refused(vocab_file(1, [](RawGguf& f) { f.kv_u32("tokenizer.ggml.padding_token_id", 1000); }),
                   status_code::corrupt, {"'tokenizer.ggml.padding_token_id'", "= 1000"});
    // A signed -1 is not a token id either.
    expect_refused(vocab_file(1,
                              [](RawGguf& f) {
                                  f.str("tokenizer.ggml.unknown_token_id")
                                      .u32(static_cast<uint32_t>(GgufType::i32))
                                      .u32(0xFFFFFFFFu);
                              }),
                   status_code::corrupt, {"'tokenizer.ggml.unknown_token_id'", "is i32", "u32"});
    // The last token is a token.
    ScratchDir dir;
    Status ok = test::open_status(dir, vocab_file(1, [](RawGguf& f) { f.kv_u32("tokenizer.ggml.eos_token_id", 2); }));
    CHECK_MESSAGE(ok.ok(), ok.to_string());
}

TEST_CASE("gguf_rejects_scores_stored_as_int8") {
    auto bytes = vocab_file(1, [](RawGguf& f) {
        f.str("tokenizer.ggml.scores").u32(array_type).u32(static_cast<uint32_t>(GgufType::i8)).u64(3);
        f.u8(0).u8(0xFF).u8(3);
    });
    expect_refused(bytes, status_code::corrupt, {"'tokenizer.ggml.scores'", "array of i8", "array of f32"});
}

TEST_CASE("gguf_rejects_token_types_stored_as_floats") {
    auto bytes = vocab_file(1, [](RawGguf& f) {
        f.str("tokenizer.ggml.token_type").u32(array_type).u32(static_cast<uint32_t>(GgufType::f32)).u64(3);
        f.f32(2).f32(3).f32(3);
    });
    expect_refused(bytes, status_code::corrupt, {"'tokenizer.ggml.token_type'", "array of f32", "array of i32"});
}

TEST_CASE("gguf_rejects_too_many_dimensions") {
    RawGguf f;
    f.header(1, 0).tensor_info("blk.0.attn_q.weight", {2, 2, 2, 2, 2}, f32_type, 0).pad_to(32).zeros(128);
    expect_refused(f.bytes, status_code::corrupt, {"blk.0.attn_q.weight", "5 dimensions"});
}

TEST_CASE("gguf_rejects_zero_dimensions") {
    RawGguf f;
    f.header(1, 0).str("t").u32(0).u32(f32_type).u64(0).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"'t'", "0 dimensions"});
}

TEST_CASE("gguf_rejects_non_positive_dimension") {
    for (uint64_t d : {uint64_t{0}, std::numeric_limits<uint64_t>::max()}) {
        RawGguf f;
        f.header(1, 0).tensor_info("t", {4, d}, f32_type, 0).pad_to(32).zeros(64);
        expect_refused(f.bytes, status_code::corrupt, {"'t'", "dimension 1", "positive"});
    }
}

TEST_CASE("gguf_rejects_element_count_overflow") {
    RawGguf f;
    f.header(1, 0).tensor_info("t", {uint64_t{1} << 32, uint64_t{1} << 32}, f32_type, 0).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"'t'", "overflows"});
}

TEST_CASE("gguf_rejects_byte_size_overflow") {
    // 2^62 f32 values fit in an element count but not in bytes.
    RawGguf f;
    f.header(1, 0).tensor_info("t", {uint64_t{1} << 62}, f32_type, 0).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"'t'", "overflows"});
}

TEST_CASE("gguf_rejects_unknown_tensor_type") {
    RawGguf f;
    f.header(1, 0).tensor_info("output.weight", {32}, 77, 0).pad_to(32).zeros(128);
    expect_refused(f.bytes, status_code::corrupt, {"output.weight", "unknown tensor type id 77"});
}

TEST_CASE("gguf_rejects_unsupported_tensor_type_unless_asked") {
    RawGguf f;
    f.header(1, 0).tensor_info("blk.0.ffn_up.weight", {256}, static_cast<uint32_t>(GgmlType::iq2_xxs), 0);
    f.pad_to(32).zeros(66);
    expect_refused(f.bytes, status_code::unsupported, {"blk.0.ffn_up.weight", "IQ2_XXS", "convert"});

    ScratchDir dir;
    auto file = GgufFile::open(dir.write("iq2.gguf", f.bytes),
                               GgufFile::Options{.allow_unsupported_types = true});
    REQUIRE_MESSAGE(file.ok(), file.status().to_string());
    const GgufTensor* t = (*file)->tensor("blk.0.ffn_up.weight");
    REQUIRE(t != nullptr);
    CHECK_FALSE(t->supported());
    CHECK(t->size_bytes == 66);
}

TEST_CASE("gguf_rejects_row_that_is_not_whole_blocks") {
    RawGguf f;
    f.header(1, 0).tensor_info("t", {33}, static_cast<uint32_t>(GgmlType::q8_0), 0).pad_to(32).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"'t'", "Q8_0", "multiple of its block of 32"});
}

TEST_CASE("gguf_rejects_duplicate_tensor_name") {
    RawGguf f;
    f.header(2, 0).tensor_info("t", {8}, f32_type, 0).tensor_info("t", {8}, f32_type, 32);
    f.pad_to(32).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"duplicate tensor name", "'t'"});
}

TEST_CASE("gguf_rejects_empty_tensor_name") {
    RawGguf f;
    f.header(1, 0).tensor_info("", {8}, f32_type, 0).pad_to(32).zeros(32);
    expect_refused(f.bytes, status_code::corrupt, {"empty name"});
}

TEST_CASE("gguf_rejects_misaligned_tensor_offset") {
    RawGguf f;
    f.header(1, 0).tensor_info("t", {8}, f32_type, 4).pad_to(32).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"'t'", "offset 4", "alignment 32"});
}

TEST_CASE("gguf_rejects_tensor_past_end_of_file") {
    RawGguf f;
    f.header(1, 0).tensor_info("token_embd.weight", {8}, f32_type, 1024).pad_to(32).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"token_embd.weight", "truncated"});
}

TEST_CASE("gguf_rejects_offset_whose_end_overflows") {
    RawGguf f;
    f.header(1, 0).tensor_info("t", {8}, f32_type, std::numeric_limits<uint64_t>::max() - 31);
    f.pad_to(32).zeros(64);
    expect_refused(f.bytes, status_code::corrupt, {"'t'", "overflows"}, GgufFile::Options{.require_data = false});
}

TEST_CASE("gguf_rejects_overlapping_tensors") {
    RawGguf f;
    f.header(2, 0).tensor_info("a", {16}, f32_type, 0).tensor_info("b", {16}, f32_type, 32);
    f.pad_to(32).zeros(128);
    expect_refused(f.bytes, status_code::corrupt, {"'a'", "overlaps", "'b'"});
}

TEST_CASE("gguf_getters_name_key_and_file_on_wrong_type") {
    GgufWriter w;
    w.add("llama.block_count", GgufValue::string("two"));
    w.add("llama.negative", GgufValue::i32(-3));
    w.add("llama.big", GgufValue::u64(uint64_t{1} << 40));
    ScratchDir dir;
    auto file = GgufFile::open(dir.write("getters.gguf", *w.to_bytes()));
    REQUIRE(file.ok());
    const GgufFile& g = **file;

    auto s = g.get_u32("llama.block_count");
    REQUIRE_FALSE(s.ok());
    CHECK(s.status().code() == status_code::corrupt);
    CHECK(contains(s.status().message(), "llama.block_count"));
    CHECK(contains(s.status().message(), "getters.gguf"));
    CHECK(contains(s.status().message(), "string"));
    CHECK_FALSE(g.get_u32("llama.negative").ok());
    CHECK_FALSE(g.get_u32("llama.big").ok());
    CHECK(*g.get_u64("llama.big") == (uint64_t{1} << 40));
    CHECK(*g.get_i64("llama.negative") == -3);

    auto missing = g.get_f32("llama.rope.freq_base");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.status().code() == status_code::not_found);
    CHECK(contains(missing.status().message(), "llama.rope.freq_base"));
    CHECK(*g.get_f32_or("llama.rope.freq_base", 10000.0f) == 10000.0f);
    // A present key of the wrong type is an error even with a fallback.
    CHECK_FALSE(g.get_u32_or("llama.block_count", 2).ok());
}

TEST_CASE("gguf_rejects_k_quant_rows_that_are_not_whole_blocks") {
    RawGguf f;
    f.header(1, 0).tensor_info("blk.0.ffn_down.weight", {320, 2}, static_cast<uint32_t>(GgmlType::q4_k), 0);
    f.pad_to(32).zeros(2 * 144);
    expect_refused(f.bytes, status_code::corrupt, {"blk.0.ffn_down.weight", "Q4_K", "multiple of its block of 256"});
}

TEST_CASE("gguf_rejects_block_data_past_the_end_of_the_file") {
    // One Q6_K block whose scales and d (the last 18 of its 210 bytes) lie past the file's end.
    RawGguf f;
    f.header(1, 0).tensor_info("output.weight", {256}, static_cast<uint32_t>(GgmlType::q6_k), 0);
    f.pad_to(32).zeros(192);
    expect_refused(f.bytes, status_code::corrupt, {"output.weight"});
}

TEST_CASE("gguf_rejects_a_tensor_type_id_out_of_range") {
    RawGguf f;
    f.header(1, 0).tensor_info("blk.0.attn_q.weight", {256}, 4000, 0);
    f.pad_to(32).zeros(256);
    expect_refused(f.bytes, status_code::corrupt, {"blk.0.attn_q.weight", "unknown tensor type id 4000"});
}
