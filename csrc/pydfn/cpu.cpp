#include "pydfn/cpu.hpp"

#include <cctype>
#include <cstdlib>

#include "pydfn/common.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__linux__) && defined(__x86_64__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <cerrno>
#include <cstring>

namespace pydfn {

namespace {

// What detect() found: the ISA, and why AMX tiles the CPU has go unused ("" if they do not).
struct Detected {
    Isa isa;
    std::string tile_note;
};

#if defined(__x86_64__) || defined(__i386__)
unsigned long long xgetbv0() {
    unsigned eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return (static_cast<unsigned long long>(edx) << 32) | eax;
}

Isa detect_vectors() {
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

// The CPU's and the OS's tile support; on Linux, asks for the tile state when both have it.
TileSupport detect_tiles() {
    TileSupport tiles;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return tiles;
    tiles.cpu = (d & (1u << 24)) && (d & (1u << 22));  // AMX-TILE, AMX-BF16
    tiles.os = (xgetbv0() & 0x60000) == 0x60000;       // XTILECFG and XTILEDATA state
    if (!(tiles.cpu && tiles.os)) return tiles;
#if defined(__linux__) && defined(__x86_64__)
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;  // <asm/prctl.h>
    tiles.refused_errno = syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0 ? 0 : errno;
#else
    tiles.refused_errno = ENOSYS;  // no other OS is known to need (or offer) the request
#endif
    return tiles;
}

Detected detect() {
    Detected found{detect_vectors(), ""};
    if (found.isa == Isa::avx512bf16) found.isa = isa_with_tiles(found.isa, detect_tiles(), &found.tile_note);
    return found;
}
#else
Detected detect() { return {Isa::generic, ""}; }
#endif

const Detected& detected() {
    static const Detected found = detect();
    return found;
}

constexpr Isa kIsas[] = {Isa::generic, Isa::avx2, Isa::avx512, Isa::avx512bf16, Isa::amx};

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

Isa hardware_isa() { return detected().isa; }

std::string isa_note() { return detected().tile_note; }

Isa isa_with_tiles(Isa below, const TileSupport& tiles, std::string* why_not) {
    why_not->clear();
    if (!tiles.cpu) return below;
    if (!tiles.os) {
        *why_not = std::string("AMX tiles unused: the OS does not enable their state (XCR0; Linux does from 5.16); ") +
                   "pydfn runs its " + isa_name(below) + " kernels";
        return below;
    }
    if (tiles.refused_errno != 0) {
        *why_not = std::string("AMX tiles unused: the OS refused them to this process (arch_prctl(ARCH_REQ_XCOMP_PERM): ") +
                   std::strerror(tiles.refused_errno) + "); pydfn runs its " + isa_name(below) + " kernels";
        return below;
    }
    return Isa::amx;
}

Isa best_isa() {
    static const Isa isa = cap_from_env(hardware_isa());
    return isa;
}

const char* isa_name(Isa isa) {
    switch (isa) {
        case Isa::amx: return "amx";
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
    return "PYDFN_MAX_ISA='" + shown(cap) + "' is not one of generic, avx2, avx512, avx512bf16, amx: " +
           "ignored, pydfn runs its " + isa_name(best_isa()) + " kernels";
}

}  // namespace pydfn
