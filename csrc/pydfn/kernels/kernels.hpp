// The dispatch table of the hot kernels, one per ISA, filled once.
//
// The three matrix products of training, all row-major float32:
//   forward   Y(M,N)  = X(M,K) · W(K,N) + bias, then ReLU       (nn)
//   backward  dX(M,N) = dY(M,K) · W(N,K)ᵀ, zeroed where mask<=0  (nt)
//   backward  dW(M,N) = X(K,M)ᵀ · dY(K,N)                        (tn)
// and the Adam update over a flat buffer.
//
// Fast kernels share their work through `omp for nowait` loops, each followed by
// sync_threads(): call them from inside parallel_region() (threads.hpp), where
// every thread calls them, or from serial code. Each output element is
// computed by one thread in a fixed order, so results do not depend on the
// thread count. The reference kernels are naive loops,
// serial only, kept as the oracle for tests.
#pragma once
#include <cstddef>
#include <cstdint>

#include "pydfn/adam.hpp"
#include "pydfn/cpu.hpp"

namespace pydfn {

// Where Adam applies a gradient a kernel has just computed, instead of storing
// it, while it is still in registers: m and v are laid out like the parameters.
struct AdamTarget {
    float* m;
    float* v;
    AdamStep step;
};

struct Kernels {
    const char* isa;
    // C(M,N) = A(M,K)·B(K,N) + bias(N) (bias may be null), ReLU applied if relu.
    void (*sgemm_nn_bias_relu)(float* C, const float* A, const float* B, const float* bias,
                               bool relu, int M, int N, int K);
    // C(M,N) = A(M,K)·B(N,K)ᵀ, and C = 0 where mask(M,N) <= 0 (mask may be null).
    void (*sgemm_nt_mask)(float* C, const float* A, const float* B, const float* mask, int M,
                          int N, int K);
    // C(M,N) = A(K,M)ᵀ·B(K,N); with adam, C holds parameters that take one Adam
    // step with that product as their gradient.
    void (*sgemm_tn)(float* C, const float* A, const float* B, int M, int N, int K,
                     const AdamTarget* adam);
    // db(N) = Σ_rows dy(B,N), in row order; with adam, db holds parameters that
    // take one Adam step with that sum as their gradient.
    void (*column_sums)(float* db, const float* dy, int B, int N, const AdamTarget* adam);
    // One Adam step (see adam.hpp) over n parameters.
    void (*adam_update)(float* params, float* m, float* v, const float* grads, int64_t n,
                        const AdamStep& step);
};

const Kernels& kernels_ref();
const Kernels& kernels_generic();
const Kernels& kernels_avx2();    // x86-64 builds only; call only when the CPU has the ISA
const Kernels& kernels_avx512();
// The kernels of one ISA, or null when this build has none for it.
const Kernels* kernels_for(Isa isa);
// The kernels training uses: the best this CPU runs (see best_isa()).
const Kernels& kernels_best();

// The barrier of the current parallel region (threads.hpp; declared here so
// the ISA files include nothing with inline code).
void sync_threads();

// A buffer of at least `floats` floats owned by the calling thread, valid
// until its next call; it only grows, so steady-state training allocates nothing.
float* thread_scratch(size_t floats);

}  // namespace pydfn
