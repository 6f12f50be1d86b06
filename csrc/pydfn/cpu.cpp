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

// What detect() found: the ISA, and the tiles' support before any request.
struct Detected {
    Isa isa;
    TileSupport tiles;
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

// The CPU's, the OS's and the build's tile support (nothing asked yet).
TileSupport detect_tiles() {
    TileSupport tiles;
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return tiles;
    tiles.cpu = (d & (1u << 24)) && (d & (1u << 22));  // AMX-TILE, AMX-BF16
    tiles.os = (xgetbv0() & 0x60000) == 0x60000;       // XTILECFG and XTILEDATA state
#ifdef PYDFN_AMX_KERNELS
    tiles.build = true;
#endif
    return tiles;
}

Detected detect() {
    Detected found{detect_vectors(), {}};
    if (found.isa == Isa::avx512bf16) {
        found.tiles = detect_tiles();
        if (found.tiles.cpu && found.tiles.os && found.tiles.build) found.isa = Isa::amx;
    }
    return found;
}
#else
Detected detect() { return {Isa::generic, {}}; }
#endif

// Asks Linux for the tile state: 0 when granted, else errno (-1 elsewhere than Linux).
int request_tiles() {
#if defined(__linux__) && defined(__x86_64__)
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtileData = 18;  // <asm/prctl.h>
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtileData) == 0 ? 0 : errno;
#else
    return -1;
#endif
}

const Detected& detected() {
    static const Detected found = detect();
    return found;
}

// The tiles' support, with the answer to the request (made once, here, on the first call).
const TileSupport& asked_tiles() {
    static const TileSupport tiles = [] {
        TileSupport asked = detected().tiles;
        asked.refused_errno = hardware_isa() == Isa::amx ? request_tiles() : 0;
        return asked;
    }();
    return tiles;
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

bool tiles_granted() { return hardware_isa() == Isa::amx && asked_tiles().refused_errno == 0; }

std::string tiles_note(const TileSupport& tiles) {
    if (!tiles.cpu) return "";
    const std::string unused = "this CPU's AMX tiles go unused: ";
    if (!tiles.build) return unused + "this build of pydfn has no tile kernels (its compiler had no AMX)";
    if (!tiles.os) return unused + "the OS does not enable their state (XCR0; Linux does from 5.16)";
    if (tiles.refused_errno == -1) return unused + "pydfn asks the OS for them on Linux only";
    if (tiles.refused_errno != 0)
        return unused + "the OS refused them to this process (arch_prctl(ARCH_REQ_XCOMP_PERM): " +
               std::strerror(tiles.refused_errno) + ")";
    return "";
}

Isa isa_to_run(Isa capped, const TileSupport& tiles) {
    const bool usable = tiles.cpu && tiles.os && tiles.build && tiles.refused_errno == 0;
    return capped == Isa::amx && !usable ? Isa::avx512bf16 : capped;
}

namespace {
// The hardware's ISA capped by PYDFN_MAX_ISA, read once: best_isa() and isa_note() agree.
Isa capped_isa() {
    static const Isa capped = cap_from_env(hardware_isa());
    return capped;
}
}  // namespace

// Asks for the tiles only when pydfn would run them: a cap below amx leaves the process as it was.
std::string isa_note() { return tiles_note(capped_isa() == Isa::amx ? asked_tiles() : detected().tiles); }

Isa best_isa() {
    static const Isa isa = capped_isa() == Isa::amx ? isa_to_run(Isa::amx, asked_tiles()) : capped_isa();
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
