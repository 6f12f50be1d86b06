// Which SIMD instruction sets this CPU and OS can run, detected once.
#pragma once
#include <string>

namespace pydfn {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3 };

// The best ISA the CPU supports (CPUID) and the OS saves the registers of
// (XGETBV), capped by the environment variable PYDFN_MAX_ISA=generic|avx2|avx512|avx512bf16
// (any case; avx512bf16: AVX-512 plus AVX512_BF16's bf16 dot products). Another
// value caps nothing (see max_isa_problem()).
Isa best_isa();
// The ISA PYDFN_MAX_ISA names, or null when it is unset or names none.
const char* max_isa();
// What is wrong with PYDFN_MAX_ISA, as a sentence saying what pydfn does
// instead, or "" when nothing is.
std::string max_isa_problem();
// What the hardware supports, ignoring PYDFN_MAX_ISA.
Isa hardware_isa();
const char* isa_name(Isa isa);

}  // namespace pydfn
