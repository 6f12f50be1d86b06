// Kernels for x86-64 with AVX-512 and AVX512_BF16 (compiled with -mavx512bf16 …):
// avx512's float kernels, and the bf16 product on vdpbf16ps (see dot_pairs).
#define PYDFN_ISA_NAME "avx512bf16"
#define PYDFN_KERNELS_FN kernels_avx512bf16
#define PYDFN_VEC_BYTES 64
#define PYDFN_MR 6
#define PYDFN_NRV 4
#define PYDFN_PACK_A 0
#define PYDFN_BF16GEMM bf16gemm_6x64_avx512bf16
// GCC 12 warns, wrongly, that _mm512_sqrt_ps reads an uninitialised value (its
// "undefined" source vector is deliberately so).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "pydfn/kernels/kernels_impl.inc"
