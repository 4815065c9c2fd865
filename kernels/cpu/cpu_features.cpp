// CPU feature detection (cpuid + xgetbv) and the choice of ISA.
//
// A feature counts only when the CPU reports it AND the OS saves the registers it needs:
// XCR0 bits 1-2 (SSE, AVX state) for AVX2, plus bits 5-7 (opmask, ZMM_Hi256, Hi16_ZMM) for
// AVX-512. A hypervisor may expose the cpuid bits without enabling the state.
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "kernel_table.hpp"
#include "llmq/kernels/cpu.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#define LLMQ_KERNELS_X86 1
#endif

namespace llmq::kernels {
namespace {

#if defined(LLMQ_KERNELS_X86)
uint64_t read_xcr0() {
    uint32_t eax = 0, edx = 0;
    // xgetbv with ecx = 0; written as bytes so no -mxsave is needed for this file.
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(eax), "=d"(edx) : "c"(0));
    return (uint64_t(edx) << 32) | eax;
}

bool request_tile_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
    constexpr long arch_req_xcomp_perm = 0x1023, xfeature_xtiledata = 18;
    return syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) == 0;
#else
    return false;
#endif
}

cpu_features probe() {
    cpu_features f;
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (__get_cpuid_max(0, nullptr) < 7) return f;
    __cpuid_count(1, 0, eax, ebx, ecx, edx);
    const bool osxsave = (ecx >> 27) & 1;
    const bool avx = (ecx >> 28) & 1;
    const bool fma = (ecx >> 12) & 1;
    const bool f16c = (ecx >> 29) & 1;
    if (!osxsave || !avx) return f;
    const uint64_t xcr0 = read_xcr0();
    const bool ymm_state = (xcr0 & 0x6) == 0x6;
    const bool zmm_state = (xcr0 & 0xe6) == 0xe6;
    if (!ymm_state) return f;

    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    f.avx2 = (ebx >> 5) & 1;
    f.fma = fma;
    f.f16c = f16c;
    if (zmm_state) {
        f.avx512f = (ebx >> 16) & 1;
        f.avx512dq = (ebx >> 17) & 1;
        f.avx512bw = (ebx >> 30) & 1;
        f.avx512vl = (ebx >> 31) & 1;
        f.avx512_vnni = (ecx >> 11) & 1;
        unsigned a1 = 0, b1 = 0, c1 = 0, d1 = 0;
        if (eax >= 1) {
            __cpuid_count(7, 1, a1, b1, c1, d1);
            f.avx512_bf16 = (a1 >> 5) & 1;
        }
        // AMX: the cpuid bits, XCR0 bits 17-18 (XTILECFG, XTILEDATA) and Linux's permission
        // for the tile data state, asked here once, before any tile instruction runs.
        const bool tile_state = (xcr0 & 0x60000) == 0x60000;
        if (tile_state && ((edx >> 24) & 1) && request_tile_permission()) {
            f.amx_tile = true;
            f.amx_int8 = (edx >> 25) & 1;
            f.amx_bf16 = (edx >> 22) & 1;
        }
    }
    return f;
}
#else
cpu_features probe() { return {}; }
#endif

bool compiled(isa which) {
    switch (which) {
        case isa::scalar: return true;
#if defined(LLMQ_KERNELS_HAVE_AVX2)
        case isa::avx2: return true;
#endif
#if defined(LLMQ_KERNELS_HAVE_AVX512)
        case isa::avx512: return true;
#endif
#if defined(LLMQ_KERNELS_HAVE_AVX512_BF16)
        case isa::avx512_bf16: return true;
#endif
#if defined(LLMQ_KERNELS_HAVE_AMX)
        case isa::amx: return true;
#endif
        default: return false;
    }
}

bool cpu_has(isa which) {
    const cpu_features& f = detect_cpu_features();
    const bool avx2 = f.avx2 && f.fma && f.f16c;
    const bool avx512 = avx2 && f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq;
    switch (which) {
        case isa::scalar: return true;
        case isa::avx2: return avx2;
        case isa::avx512: return avx512;
        case isa::avx512_bf16: return avx512 && f.avx512_bf16 && f.avx512_vnni;
        case isa::amx: return cpu_has(isa::avx512_bf16) && f.amx_tile && f.amx_int8 && f.amx_bf16;
    }
    return false;
}

isa compute_best_isa() {
    isa best = isa::scalar;
    // amx only when asked for (LLMQ_CPU_ISA=amx): its Q8_0 prefill tiles measured slower than
    // avx512_bf16's VNNI panels so far (docs/benchmarks.md, 2026-12-02).
    for (isa candidate : {isa::avx2, isa::avx512, isa::avx512_bf16})
        if (isa_supported(candidate)) best = candidate;
    // The cap from the environment: a test or benchmark can pin a lower ISA. An unknown
    // name is ignored rather than fatal (kernels have no way to report it).
    if (const char* cap = std::getenv("LLMQ_CPU_ISA"); cap != nullptr && *cap != '\0') {
        isa limit;
        if (parse_isa(cap, &limit) && (static_cast<int>(limit) < static_cast<int>(best) || limit == isa::amx))
            best = usable_isa(limit);
    }
    return best;
}

}  // namespace

const cpu_features& detect_cpu_features() {
    static const cpu_features features = probe();
    return features;
}

bool isa_supported(isa which) { return compiled(which) && cpu_has(which); }

isa best_isa() {
    static const isa best = compute_best_isa();
    return best;
}

isa usable_isa(isa which) {
    for (int i = static_cast<int>(which); i > 0; --i)
        if (isa_supported(static_cast<isa>(i))) return static_cast<isa>(i);
    return isa::scalar;
}

const char* isa_name(isa which) {
    switch (which) {
        case isa::scalar: return "scalar";
        case isa::avx2: return "avx2";
        case isa::avx512: return "avx512";
        case isa::avx512_bf16: return "avx512_bf16";
        case isa::amx: return "amx";
    }
    return "unknown";
}

bool parse_isa(const char* name, isa* out) {
    if (name == nullptr) return false;
    for (isa candidate : {isa::scalar, isa::avx2, isa::avx512, isa::avx512_bf16, isa::amx}) {
        if (std::strcmp(name, isa_name(candidate)) == 0) {
            *out = candidate;
            return true;
        }
    }
    return false;
}

namespace detail {

const kernel_table& table_for(isa which) {
    switch (usable_isa(which)) {
#if defined(LLMQ_KERNELS_HAVE_AMX)
        case isa::amx: return amx_table();
#endif
#if defined(LLMQ_KERNELS_HAVE_AVX512_BF16)
        case isa::avx512_bf16: return avx512_bf16_table();
#endif
#if defined(LLMQ_KERNELS_HAVE_AVX512)
        case isa::avx512: return avx512_table();
#endif
#if defined(LLMQ_KERNELS_HAVE_AVX2)
        case isa::avx2: return avx2_table();
#endif
        default: return scalar_table();
    }
}

}  // namespace detail
}  // namespace llmq::kernels
