// The kernel conformance harness: which ISA variants to run, deterministic inputs, and a
// comparison that names the ISA, the case and the first element out of tolerance.
#pragma once

#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "llmq/kernels/cpu.hpp"

namespace llmq::kernels::testing {

// Every ISA variant this CPU and build can run, scalar first.
inline std::vector<isa> supported_isas() {
    std::vector<isa> out;
    for (isa candidate : {isa::scalar, isa::avx2, isa::avx512, isa::avx512_bf16, isa::amx})
        if (isa_supported(candidate)) out.push_back(candidate);
    return out;
}

// Deterministic uniform values in [lo, hi) (a 64-bit LCG; no dependency on <random>'s
// implementation-defined distributions, so failures reproduce on any library).
class random_source {
public:
    explicit random_source(uint64_t seed) : state_(seed * 0x9e3779b97f4a7c15ull + 1) {}
    double uniform(double lo, double hi) {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        return lo + (hi - lo) * double(state_ >> 11) * (1.0 / 9007199254740992.0);
    }
    uint32_t bits() {
        state_ = state_ * 6364136223846793005ull + 1442695040888963407ull;
        return uint32_t(state_ >> 32);
    }
    std::vector<float> floats(std::size_t n, double lo, double hi) {
        std::vector<float> v(n);
        for (float& x : v) x = float(uniform(lo, hi));
        return v;
    }

private:
    uint64_t state_;
};

// Checks |actual[i] - expected[i]| <= bound[i] for all i: one doctest assertion, which on
// failure names the context and the first element out of bounds. Returns whether all passed.
inline bool check_within(const float* actual, const double* expected, const double* bound,
                         std::size_t n, const std::string& context) {
    std::string failure;
    for (std::size_t i = 0; i < n && failure.empty(); ++i) {
        const double error = std::fabs(double(actual[i]) - expected[i]);
        if (!(error <= bound[i])) {  // also catches NaN
            std::ostringstream message;
            message << context << ": element " << i << " is " << actual[i] << ", expected "
                    << expected[i] << " (error " << error << " > bound " << bound[i] << ")";
            failure = message.str();
        }
    }
    CHECK_MESSAGE(failure.empty(), failure);
    return failure.empty();
}

// f32 unit roundoff.
inline constexpr double f32_unit = 5.9604644775390625e-8;

}  // namespace llmq::kernels::testing
