// Which SIMD instruction sets this CPU and OS can run, detected once.
#pragma once

namespace pydfn {

enum class Isa { generic = 0, avx2 = 1, avx512 = 2, avx512bf16 = 3 };

// The best ISA the CPU supports (CPUID) and the OS saves the registers of
// (XGETBV), capped by the environment variable PYDFN_MAX_ISA=generic|avx2|avx512|avx512bf16
// (avx512bf16: AVX-512 plus AVX512_BF16's bf16 dot products).
Isa best_isa();
// What the hardware supports, ignoring PYDFN_MAX_ISA.
Isa hardware_isa();
const char* isa_name(Isa isa);

}  // namespace pydfn
