// Kernels for x86-64 with AVX2 and FMA (compiled with -mavx2 -mfma): 8-float vectors, 16 registers.
#define PYDFN_ISA_NAME "avx2"
#define PYDFN_KERNELS_FN kernels_avx2
#define PYDFN_VEC_BYTES 32
#define PYDFN_MR 6
#define PYDFN_NRV 2
#define PYDFN_PACK_A 0
#define PYDFN_BF16GEMM bf16gemm_6x16_emulated_avx2
#include "pydfn/kernels/kernels_impl.inc"
