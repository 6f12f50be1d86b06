// Kernels for any x86-64 (SSE2) or other CPU: 4-float vectors, 16 registers.
#define PYDFN_ISA_NAME "generic"
#define PYDFN_KERNELS_FN kernels_generic
#define PYDFN_VEC_BYTES 16
#define PYDFN_MR 4
#define PYDFN_NRV 2
#define PYDFN_PACK_A 1
#define PYDFN_BF16GEMM bf16gemm_4x8_emulated_generic
#include "pydfn/kernels/kernels_impl.inc"
