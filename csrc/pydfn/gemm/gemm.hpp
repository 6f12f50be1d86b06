// The three matrix products of training, all row-major float32:
//   forward   Y(M,N)  = X(M,K) · W(K,N) + bias, then ReLU       (nn)
//   backward  dX(M,N) = dY(M,K) · W(N,K)ᵀ, zeroed where mask<=0  (nt)
//   backward  dW(M,N) = X(K,M)ᵀ · dY(K,N)                        (tn)
// Fast kernels share their work through orphaned `omp for` loops: call them
// from inside a parallel region that every thread enters, or from serial code.
// Each output element is computed by one thread in a fixed order, so results
// do not depend on the thread count. The reference kernels are naive loops,
// serial only, kept as the oracle for tests.
#pragma once
#include "pydfn/cpu.hpp"

namespace pydfn {

struct GemmKernels {
    const char* isa;
    // C(M,N) = A(M,K)·B(K,N) + bias(N) (bias may be null), ReLU applied if relu.
    void (*sgemm_nn_bias_relu)(float* C, const float* A, const float* B, const float* bias,
                               bool relu, int M, int N, int K);
    // C(M,N) = A(M,K)·B(N,K)ᵀ, and C = 0 where mask(M,N) <= 0 (mask may be null).
    void (*sgemm_nt_mask)(float* C, const float* A, const float* B, const float* mask, int M,
                          int N, int K);
    // C(M,N) = A(K,M)ᵀ·B(K,N).
    void (*sgemm_tn)(float* C, const float* A, const float* B, int M, int N, int K);
};

const GemmKernels& gemm_ref();
const GemmKernels& gemm_generic();
const GemmKernels& gemm_avx2();    // x86-64 builds only; call only when the CPU has the ISA
const GemmKernels& gemm_avx512();
// The kernels of one ISA, or null when this build has none for it.
const GemmKernels* gemm_for(Isa isa);
// The kernels training uses: the best this CPU runs (see best_isa()).
const GemmKernels& gemm_best();

}  // namespace pydfn
