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
// What the hardware supports, ignoring PYDFN_MAX_ISA: amx where the CPU has AMX-BF16,
// the OS saves the tile state and this build has tile kernels (the process may still be
// refused the tiles: see tiles_granted()).
Isa hardware_isa();
const char* isa_name(Isa isa);
// Whether this process may run tile instructions. The first call on a CPU with AMX asks
// Linux for the tile state (arch_prctl(ARCH_REQ_XCOMP_PERM), needed before the first tile
// instruction, and permanent: it makes signal frames larger). best_isa() and isa_note()
// call it only when PYDFN_MAX_ISA does not cap pydfn below amx; kernel_names() and
// kernels_named() call it to list or run the set amx.
bool tiles_granted();
// Why this CPU's AMX tiles go unused (no tile kernels in this build, the OS does not enable
// them, or, unless PYDFN_MAX_ISA caps pydfn below amx, refused them), as a sentence; ""
// when they are used or the CPU has none.
std::string isa_note();

// What decides whether the AMX tiles can be used.
struct TileSupport {
    bool cpu = false;       // CPUID: AMX-TILE and AMX-BF16
    bool os = false;        // XCR0: the OS saves the tile configuration and data
    bool build = false;     // this build has tile kernels (its compiler had AMX)
    int refused_errno = 0;  // once asked: 0 when granted, else why not (-1: pydfn asks on Linux only)
};
// The note isa_note() gives for `tiles`, and the ISA to run where PYDFN_MAX_ISA leaves
// `capped`: avx512bf16 instead of amx when the tiles are refused. Pure, for tests.
std::string tiles_note(const TileSupport& tiles);
Isa isa_to_run(Isa capped, const TileSupport& tiles);

}  // namespace pydfn
