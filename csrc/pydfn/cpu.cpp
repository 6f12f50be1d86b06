#include "pydfn/cpu.hpp"

#include <cstdlib>
#include <cstring>
#include <initializer_list>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace pydfn {

namespace {

#if defined(__x86_64__) || defined(__i386__)
unsigned long long xgetbv0() {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}

Isa detect() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::generic;
    const bool fma = c & bit_FMA, osxsave = c & bit_OSXSAVE, avx = c & bit_AVX;
    if (!(fma && osxsave && avx)) return Isa::generic;
    const unsigned long long xcr0 = xgetbv0();
    const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
    const bool os_zmm = (xcr0 & 0xe6) == 0xe6;          // plus opmask and ZMM state
    if (!os_ymm || !__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::generic;
    const bool avx2 = b & bit_AVX2;
    const bool avx512 = (b & bit_AVX512F) && (b & bit_AVX512DQ) && (b & bit_AVX512BW) &&
                        (b & bit_AVX512VL);
    if (!(avx2 && avx512 && os_zmm)) return avx2 ? Isa::avx2 : Isa::generic;
    const bool bf16 = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));  // AVX512_BF16
    return bf16 ? Isa::avx512bf16 : Isa::avx512;
}
#else
Isa detect() { return Isa::generic; }
#endif

Isa cap_from_env(Isa isa) {
    const char* cap = std::getenv("PYDFN_MAX_ISA");
    if (cap == nullptr) return isa;
    for (Isa lower : {Isa::generic, Isa::avx2, Isa::avx512})
        if (std::strcmp(cap, isa_name(lower)) == 0 && int(lower) < int(isa)) return lower;
    return isa;  // "avx512bf16", or an unknown value: no cap
}

}  // namespace

Isa hardware_isa() {
    static const Isa isa = detect();
    return isa;
}

Isa best_isa() {
    static const Isa isa = cap_from_env(hardware_isa());
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::avx512bf16: return "avx512bf16";
        case Isa::avx512: return "avx512";
        case Isa::avx2: return "avx2";
        default: return "generic";
    }
}

}  // namespace pydfn
