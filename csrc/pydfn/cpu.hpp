// Which SIMD instruction sets this CPU and OS can run, detected once.
#pragma once
#include <string>

namespace pydfn {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3, amx = 4 };

// The best ISA the CPU supports (CPUID) and the OS saves the registers of
// (XGETBV), capped by the environment variable PYDFN_MAX_ISA=generic|avx2|avx512|avx512bf16|amx
// (any case; avx512bf16: AVX-512 plus AVX512_BF16's bf16 dot products; amx: those, with
// the bf16 products on AMX tiles). Another value caps nothing (see max_isa_problem()).
Isa best_isa();
// The ISA PYDFN_MAX_ISA names, or null when it is unset or names none.
const char* max_isa();
// What is wrong with PYDFN_MAX_ISA, as a sentence saying what pydfn does
// instead, or "" when nothing is.
std::string max_isa_problem();
// What the hardware supports, ignoring PYDFN_MAX_ISA. On a CPU with AMX, the first
// call asks Linux for the tile state (arch_prctl(ARCH_REQ_XCOMP_PERM)), which a process
// must have before its first tile instruction.
Isa hardware_isa();
const char* isa_name(Isa isa);
// Why this CPU's AMX tiles go unused (the OS does not enable them, or Linux refused
// them), as a sentence; "" when they are used or the CPU has none.
std::string isa_note();

// What decides whether the AMX tiles can be used, as detected.
struct TileSupport {
    bool cpu = false;          // CPUID: AMX-TILE and AMX-BF16
    bool os = false;           // XCR0: the OS saves the tile configuration and data
    int refused_errno = 0;     // asked for when cpu and os: 0 when granted, else why not
};
// `below` (the ISA without tiles), or amx when `tiles` allow them; *why_not says why
// tiles the CPU has go unused. Pure, for tests of every case.
Isa isa_with_tiles(Isa below, const TileSupport& tiles, std::string* why_not);

}  // namespace pydfn
