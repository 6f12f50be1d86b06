// Kernels for x86-64 with AVX-512 (compiled with -mavx512f …): 16-float vectors, 32 registers.
#define PYDFN_ISA_NAME "avx512"
#define PYDFN_KERNELS_FN kernels_avx512
#define PYDFN_VEC_BYTES 64
#define PYDFN_MR 6
#define PYDFN_NRV 4
#define PYDFN_PACK_A 0
#define PYDFN_BF16GEMM bf16gemm_6x64_emulated_avx512
// GCC 12 warns, wrongly, that _mm512_sqrt_ps reads an uninitialised value (its
// "undefined" source vector is deliberately so).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "pydfn/kernels/kernels_impl.inc"
