#include "pydfn/cpu.hpp"

#include <cctype>
#include <cstdlib>

#include "pydfn/common.hpp"

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

constexpr Isa kIsas[] = {Isa::generic, Isa::avx2, Isa::avx512, Isa::avx512bf16};

bool same_ignoring_case(const char* a, const char* b) {
    for (; *a && *b; a++, b++)
        if (std::tolower(static_cast<unsigned char>(*a)) != std::tolower(static_cast<unsigned char>(*b)))
            return false;
    return *a == *b;
}

// PYDFN_MAX_ISA, or null when it is unset or empty.
const char* max_isa_env() {
    const char* cap = std::getenv("PYDFN_MAX_ISA");
    return cap != nullptr && *cap != '\0' ? cap : nullptr;
}

// The ISA PYDFN_MAX_ISA names; false when it is unset or names none.
bool isa_from_env(Isa* isa) {
    const char* cap = max_isa_env();
    if (cap == nullptr) return false;
    for (Isa named : kIsas)
        if (same_ignoring_case(cap, isa_name(named))) {
            *isa = named;
            return true;
        }
    return false;
}

Isa cap_from_env(Isa isa) {
    Isa cap;
    return isa_from_env(&cap) && int(cap) < int(isa) ? cap : isa;
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

const char* max_isa() {
    Isa cap;
    return isa_from_env(&cap) ? isa_name(cap) : nullptr;
}

std::string max_isa_problem() {
    const char* cap = max_isa_env();
    if (cap == nullptr || max_isa() != nullptr) return "";
    return "PYDFN_MAX_ISA='" + shown(cap) + "' is not one of generic, avx2, avx512, avx512bf16: " +
           "ignored, pydfn runs its " + isa_name(best_isa()) + " kernels";
}

}  // namespace pydfn
