// Conversions between f32 and f16 / bf16 / Q8_0: known values, every f16 bit pattern, and
// bit-identical results of every ISA's row conversions with the scalar reference.
#include <cstring>

#include "conformance.hpp"

using namespace llmq::kernels;
using namespace llmq::kernels::testing;

namespace {

float from_bits(uint32_t u) {
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

// f32 values that exercise every rounding path: ties, subnormal halves, overflow edges, NaN.
std::vector<float> edge_floats() {
    std::vector<float> v = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f, 65536.0f, 1e10f,
                            -1e10f, 5.9604645e-8f /* 2^-24 */, 2.9802322e-8f /* 2^-25: tie to 0 */,
                            8.940697e-8f /* 1.5 * 2^-24: tie to 2 */, 6.097555e-5f /* < 2^-14 */,
                            6.1035156e-5f /* 2^-14 */, 1.0009766f /* 1 + 2^-10 */, 1.00048828125f /* tie */,
                            1.00146484375f /* tie to even up */, 3.14159265f, 1e-40f /* f32 subnormal */,
                            INFINITY, -INFINITY, from_bits(0x7fc00000u), from_bits(0x7f800001u),
                            from_bits(0xffc12345u), from_bits(0x3f808000u) /* bf16 tie */, from_bits(0x3f818000u)};
    random_source rng(11);
    for (int i = 0; i < 20000; ++i) v.push_back(from_bits(rng.bits()));
    for (int i = 0; i < 2000; ++i) v.push_back(float(rng.uniform(-70000.0, 70000.0)));
    return v;
}

}  // namespace

TEST_SUITE("kernels") {
    TEST_CASE("fp16_known_values_round_to_nearest_even") {
        CHECK(fp32_to_fp16(1.0f) == 0x3c00);
        CHECK(fp32_to_fp16(-2.0f) == 0xc000);
        CHECK(fp32_to_fp16(65504.0f) == 0x7bff);
        CHECK(fp32_to_fp16(65519.99f) == 0x7bff);
        CHECK(fp32_to_fp16(65520.0f) == 0x7c00);  // halfway to 65536 rounds to even: inf
        CHECK(fp32_to_fp16(5.9604645e-8f) == 0x0001);
        CHECK(fp32_to_fp16(2.9802322e-8f) == 0x0000);  // 2^-25: tie, rounds to even 0
        CHECK(fp32_to_fp16(8.940697e-8f) == 0x0002);   // 1.5 * 2^-24: tie, rounds to even 2
        CHECK(fp32_to_fp16(1.00048828125f) == 0x3c00);  // 1 + 2^-11: tie to even (down)
        CHECK(fp32_to_fp16(1.00146484375f) == 0x3c02);  // 1 + 3 * 2^-11: tie to even (up)
        CHECK(fp32_to_fp16(INFINITY) == 0x7c00);
        CHECK((fp32_to_fp16(NAN) & 0x7e00) == 0x7e00);
        CHECK(fp16_to_fp32(0x0001) == 5.9604645e-8f);
        CHECK(fp16_to_fp32(0x03ff) == 6.097555e-5f);
        CHECK(fp16_to_fp32(0xfbff) == -65504.0f);
        CHECK(std::isinf(fp16_to_fp32(0x7c00)));
        CHECK(std::isnan(fp16_to_fp32(0x7e01)));
    }

    TEST_CASE("fp16_round_trips_every_non_nan_half") {
        for (uint32_t h = 0; h < 0x10000u; ++h) {
            const float f = fp16_to_fp32(uint16_t(h));
            if (std::isnan(f)) continue;
            REQUIRE_MESSAGE(fp32_to_fp16(f) == h, "half 0x", std::hex, h);
        }
    }

    TEST_CASE("fp16_widening_is_bit_identical_on_every_isa_for_every_half") {
        // All 65536 bit patterns, NaN payloads included, against the scalar conversion (which
        // the AVX2 / AVX-512 rows do with vcvtph2ps).
        std::vector<uint16_t> halves(0x10000);
        for (uint32_t h = 0; h < 0x10000u; ++h) halves[h] = uint16_t(h);
        std::vector<float> expected(halves.size());
        for (uint32_t h = 0; h < 0x10000u; ++h) expected[h] = fp16_to_fp32(uint16_t(h));
        for (isa which : supported_isas()) {
            std::vector<float> wide(halves.size());
            row_to_f32(which, dtype::f16, halves.data(), wide.data(), int64_t(halves.size()));
            CHECK_MESSAGE(std::memcmp(wide.data(), expected.data(), wide.size() * 4) == 0, std::string(isa_name(which)));
        }
    }

    TEST_CASE("bf16_known_values_round_to_nearest_even") {
        CHECK(fp32_to_bf16(1.0f) == 0x3f80);
        CHECK(fp32_to_bf16(from_bits(0x3f808000u)) == 0x3f80);  // tie, even stays
        CHECK(fp32_to_bf16(from_bits(0x3f818000u)) == 0x3f82);  // tie, odd rounds up
        CHECK(fp32_to_bf16(from_bits(0x3f808001u)) == 0x3f81);
        CHECK(fp32_to_bf16(from_bits(0x7f7fffffu)) == 0x7f80);  // FLT_MAX rounds to inf
        CHECK((fp32_to_bf16(NAN) & 0x7fc0) == 0x7fc0);
        CHECK(bf16_to_fp32(0xc040) == -3.0f);
    }

    TEST_CASE("row_conversions_are_bit_identical_on_every_isa") {
        const std::vector<float> values = edge_floats();
        const int64_t n = int64_t(values.size());
        for (dtype t : {dtype::f16, dtype::bf16}) {
            std::vector<uint16_t> reference(values.size());
            row_from_f32(isa::scalar, t, values.data(), reference.data(), n);
            // Row-wise reference agrees with the single-value functions.
            for (std::size_t i = 0; i < values.size(); ++i)
                REQUIRE(reference[i] == (t == dtype::f16 ? fp32_to_fp16(values[i]) : fp32_to_bf16(values[i])));
            std::vector<float> widened(values.size());
            row_to_f32(isa::scalar, t, reference.data(), widened.data(), n);
            for (isa which : supported_isas()) {
                for (int64_t len : {n, int64_t(1), int64_t(7), int64_t(17), int64_t(33)}) {
                    std::vector<uint16_t> narrow(std::size_t(len), 0xdead);
                    row_from_f32(which, t, values.data(), narrow.data(), len);
                    CHECK_MESSAGE(std::memcmp(narrow.data(), reference.data(), std::size_t(len) * 2) == 0,
                                  "row_from_f32 ", std::string(dtype_name(t)), " ", std::string(isa_name(which)), " n=", len);
                    std::vector<float> wide(static_cast<std::size_t>(len));
                    row_to_f32(which, t, reference.data(), wide.data(), len);
                    CHECK_MESSAGE(std::memcmp(wide.data(), widened.data(), std::size_t(len) * 4) == 0,
                                  "row_to_f32 ", std::string(dtype_name(t)), " ", std::string(isa_name(which)), " n=", len);
                }
            }
        }
    }

    TEST_CASE("q8_0_quantises_as_gguf_and_identically_on_every_isa") {
        random_source rng(12);
        const int64_t n = 32 * 64;
        std::vector<float> x = rng.floats(std::size_t(n), -3.0, 3.0);
        for (int i = 32; i < 64; ++i) x[i] = 0.0f;  // an all-zero block: d = 0, q = 0
        for (int i = 64; i < 96; ++i) x[i] *= 1e-6f;
        std::vector<uint8_t> reference(row_bytes(dtype::q8_0, n));
        row_from_f32(isa::scalar, dtype::q8_0, x.data(), reference.data(), n);
        for (int64_t b = 0; b < n / 32; ++b) {
            const uint8_t* block = &reference[std::size_t(b * 34)];
            float amax = 0.0f;
            for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[b * 32 + i]));
            const float d = amax / 127.0f;
            REQUIRE(uint16_t(block[0] | (block[1] << 8)) == fp32_to_fp16(d));
            const auto* q = reinterpret_cast<const int8_t*>(block + 2);
            for (int i = 0; i < 32; ++i) {
                const float id = d != 0.0f ? 1.0f / d : 0.0f;
                REQUIRE(int(q[i]) == int(std::nearbyint(x[b * 32 + i] * id)));
            }
        }
        std::vector<float> reference_back(static_cast<std::size_t>(n));
        row_to_f32(isa::scalar, dtype::q8_0, reference.data(), reference_back.data(), n);
        for (int64_t i = 0; i < n; ++i) {
            const uint8_t* block = &reference[std::size_t(i / 32 * 34)];
            const float d = fp16_to_fp32(uint16_t(block[0] | (block[1] << 8)));
            REQUIRE(reference_back[i] == d * float(reinterpret_cast<const int8_t*>(block + 2)[i % 32]));
        }
        for (isa which : supported_isas()) {
            std::vector<uint8_t> q(reference.size());
            row_from_f32(which, dtype::q8_0, x.data(), q.data(), n);
            CHECK_MESSAGE(q == reference, "q8_0 quantise ", std::string(isa_name(which)));
            std::vector<float> back(static_cast<std::size_t>(n));
            row_to_f32(which, dtype::q8_0, reference.data(), back.data(), n);
            CHECK_MESSAGE(back == reference_back, "q8_0 dequantise ", std::string(isa_name(which)));
        }
    }

    TEST_CASE("row_bytes_and_names_describe_each_dtype") {
        CHECK(row_bytes(dtype::f32, 10) == 40);
        CHECK(row_bytes(dtype::f16, 10) == 20);
        CHECK(row_bytes(dtype::bf16, 10) == 20);
        CHECK(row_bytes(dtype::q8_0, 64) == 68);
        CHECK(row_bytes(dtype::i32, 3) == 12);
        CHECK(row_bytes(dtype::u8, 3) == 3);
        CHECK(std::string(dtype_name(dtype::q8_0)) == "q8_0");
    }
}
