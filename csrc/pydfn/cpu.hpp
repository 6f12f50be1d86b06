// Which SIMD instruction sets this CPU and OS can run, detected once.
#pragma once

namespace pydfn {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2 };

// The best ISA the CPU supports (CPUID) and the OS saves the registers of
// (XGETBV), capped by the environment variable PYDFN_MAX_ISA=generic|avx2|avx512.
Isa best_isa();
// What the hardware supports, ignoring PYDFN_MAX_ISA.
Isa hardware_isa();
const char* isa_name(Isa isa);

}  // namespace pydfn
