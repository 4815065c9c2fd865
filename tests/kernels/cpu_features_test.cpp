// ISA detection and choice. With LLMQ_EXPECT_ISA set (the meson test that also sets
// LLMQ_CPU_ISA), best_isa() must honour the cap.
#include <cstdlib>
#include <string>

#include "conformance.hpp"
#include "llmq/kernels/gemm_units.hpp"

using namespace llmq::kernels;

TEST_SUITE("kernels") {
    TEST_CASE("isa_support_follows_the_cpu_features") {
        const cpu_features& f = detect_cpu_features();
        CHECK(isa_supported(isa::scalar));
        if (isa_supported(isa::avx2)) CHECK((f.avx2 && f.fma && f.f16c));
        if (isa_supported(isa::avx512)) CHECK((f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq));
        if (isa_supported(isa::avx512_bf16)) CHECK((f.avx512_bf16 && f.avx512_vnni));
        // Each level implies the ones below it.
        if (isa_supported(isa::avx512)) CHECK(isa_supported(isa::avx2));
        if (isa_supported(isa::avx512_bf16)) CHECK(isa_supported(isa::avx512));
        if (isa_supported(isa::amx)) CHECK((f.amx_tile && f.amx_int8 && f.amx_bf16 && isa_supported(isa::avx512_bf16)));
        MESSAGE("best ISA: ", std::string(isa_name(best_isa())));
    }

    TEST_CASE("dot_product_unit_probes_run_exactly_where_the_isa_has_the_unit") {
        // The benchmarks hold bf16 and Q8_0 prefill to these peaks; a probe that ran on an ISA
        // without the instruction would fault, and one that returned 0 where it exists would
        // leave a figure without its bound. (No figure is checked: probes are not timed tests.)
        for (isa which : testing::supported_isas()) {
            const bool has = which >= isa::avx512_bf16;  // amx keeps avx512_bf16's probes
            CHECK_MESSAGE((measure_bf16_dot_peak_gflops(which, 1) > 0.0) == has, isa_name(which));
            CHECK_MESSAGE((measure_int8_dot_peak_gops(which, 1) > 0.0) == has, isa_name(which));
        }
    }

    TEST_CASE("usable_isa_never_exceeds_what_the_cpu_runs") {
        for (isa which : {isa::scalar, isa::avx2, isa::avx512, isa::avx512_bf16, isa::amx}) {
            const isa got = usable_isa(which);
            CHECK(isa_supported(got));
            CHECK(static_cast<int>(got) <= static_cast<int>(which));
            if (isa_supported(which)) CHECK(got == which);
        }
    }

    TEST_CASE("isa_names_parse_back") {
        for (isa which : {isa::scalar, isa::avx2, isa::avx512, isa::avx512_bf16, isa::amx}) {
            isa parsed = isa::scalar;
            CHECK(parse_isa(isa_name(which), &parsed));
            CHECK(parsed == which);
        }
        isa unused;
        CHECK_FALSE(parse_isa("avx1024", &unused));
        CHECK_FALSE(parse_isa("", &unused));
        CHECK_FALSE(parse_isa(nullptr, &unused));
    }

    TEST_CASE("best_isa_honours_the_environment_cap") {
        const char* expect = std::getenv("LLMQ_EXPECT_ISA");
        if (expect == nullptr) {
            const char* cap = std::getenv("LLMQ_CPU_ISA");
            if (cap == nullptr) {
                isa best = isa::scalar;
                for (isa which : {isa::avx2, isa::avx512, isa::avx512_bf16})  // amx: opt-in
                    if (isa_supported(which)) best = which;
                CHECK(best_isa() == best);
            }
            return;
        }
        isa cap = isa::scalar;
        REQUIRE(parse_isa(expect, &cap));
        CHECK(best_isa() == usable_isa(cap));
    }
}
