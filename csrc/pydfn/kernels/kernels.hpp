// The dispatch table of the hot kernels, one per ISA, filled once.
//
// The three matrix products of training, all row-major float32:
//   forward   Y(M,N)  = X(M,K) · W(K,N) + bias, then ReLU       (nn)
//   backward  dX(M,N) = dY(M,K) · W(N,K)ᵀ, zeroed where mask<=0  (nt)
//   backward  dW(M,N) = X(K,M)ᵀ · dY(K,N)                        (tn)
// and the optimizer update (optim.hpp) over a flat buffer.
//
// Fast kernels share their work through `omp for nowait` loops and do not wait
// for the other threads at the end: call them from inside parallel_region()
// (threads.hpp), where every thread calls them, then sync_threads() before any
// thread reads what they wrote (or call them from serial code). Each output
// element is computed by one thread in a fixed order, so results do not depend
// on the thread count. The reference kernels are naive loops, serial only,
// kept as the oracle for tests.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "pydfn/common.hpp"
#include "pydfn/cpu.hpp"
#include "pydfn/optim.hpp"
#include "pydfn/threads.hpp"

namespace pydfn {

// Where an optimizer applies a gradient a kernel has just computed, instead of
// storing it, while it is still in registers: its state s1 and s2 are laid out
// like the parameters.
struct OptTarget {
    float* s1;
    float* s2;
    OptStep step;
};

// The uses of a kernel thread's scratch memory (see thread_scratch()).
enum class Scratch { b_panel, a_rows };
constexpr int kScratchUses = 2;
// The three matrix products, named by which operand is transposed.
enum class Product { nn, nt, tn };

// A product in bf16 (precision "bf16"): C(M,N) = A·B (+ bias, ReLU, mask as in
// the float kernels) from operands rounded to bf16 and packed two per uint32
// along K: the pair p holds k = 2p in its low half, k = 2p+1 in its high half
// (an odd K is padded with a zero). Each pair's two products are added to the
// float32 sum as AVX512_BF16's vdpbf16ps adds them (k = 2p+1 first); CPUs
// without it run the same sums with float instructions. On AMX tiles (kernel set
// "amx") the sums are grouped as tdpbf16ps groups them, 16 pairs at a time: the
// results agree with the others' to rounding, not bit for bit.
struct Bf16Gemm {
    float* C;
    int ldc;
    const uint32_t* A;  // the pair (row i, pair p) at A[i*a_si + p*a_sp]
    ptrdiff_t a_si, a_sp;
    const uint32_t* B;  // the pair (pair p, column j) at B[p*ldb + j]; ldb >= N rounded up to 16
    int ldb;
    const float* bias;  // or null
    bool relu;
    const float* mask;  // C zeroed where mask <= 0 (laid out like C), or null
    int M, N, P;        // P = pairs along K
    bool by_row;        // tile order: by row (A's rows reused) or by column panel (B's)
};

struct Kernels {
    const char* isa;
    // The floats of scratch `use` one thread needs in product p with C(·,N)
    // and inner dimension K.
    size_t (*scratch_floats)(Scratch use, Product p, int N, int K);
    // C(M,N) = A(M,K)·B(K,N) + bias(N) (bias may be null), ReLU applied if relu.
    void (*sgemm_nn_bias_relu)(float* C, const float* A, const float* B, const float* bias,
                               bool relu, int M, int N, int K);
    // C(M,N) = A(M,K)·B(N,K)ᵀ, and C = 0 where mask(M,N) <= 0 (mask may be null).
    void (*sgemm_nt_mask)(float* C, const float* A, const float* B, const float* mask, int M,
                          int N, int K);
    // C(M,N) = A(K,M)ᵀ·B(K,N).
    void (*sgemm_tn)(float* C, const float* A, const float* B, int M, int N, int K);
    // db(N) = Σ_rows dy(B,N), in row order; with opt, db holds parameters that
    // take one optimizer step with that sum as their gradient.
    void (*column_sums)(float* db, const float* dy, int B, int N, const OptTarget* opt);
    // One optimizer step (see optim.hpp) over n parameters, penalty included.
    void (*opt_update)(float* params, float* s1, float* s2, const float* grads, int64_t n,
                       const OptStep& step);
    // opt_update with its results in out_params, out_s1 and out_s2 (params, s1 and s2
    // unchanged), the same arithmetic and bits, over this thread's share (opt_update's
    // own); returns whether that share's results are all finite, checked in registers.
    // The caller combines the threads' answers.
    bool (*opt_update_into)(const float* params, const float* s1, const float* s2, const float* grads,
                            int64_t n, const OptStep& step, float* out_params, float* out_s1, float* out_s2);
    // grads(n) += l1·sign(params) + 2·l2·params: the penalty's gradient, computed
    // exactly as a fused optimizer step computes it.
    void (*add_penalty)(float* grads, const float* params, int64_t n, float l1, float l2);
    // The bf16 product described at Bf16Gemm.
    void (*bf16gemm)(const Bf16Gemm& g);
    // Rounding to bf16 (nearest even; subnormals to zero and NaNs quieted, as the
    // AVX512_BF16 conversions do), the same bits on every ISA:
    // dst(rows, ld) = the pairs of each row of src(rows, cols): dst[i*ld + p] = (src[i,2p], src[i,2p+1]).
    void (*pack_bf16_rows)(uint32_t* dst, int ld, const float* src, int rows, int cols);
    // dst(⌈K/2⌉, ld) = S(K,N) paired along K: dst[p*ld + j] = (S[2p,j], S[2p+1,j]), zero
    // where j >= N (up to ld); S is src(K,N), or src(N,K) transposed.
    void (*pack_bf16_pairs)(uint32_t* dst, int ld, const float* src, int K, int N, bool transposed);
    // opt_update on W (rows, cols), then W packed as pack_bf16_pairs packs it for the
    // next forward product (w_pairs, stride ld) and, if wt_pairs, Wᵀ for dx (stride
    // ldt; its padding columns are left as they are): the same bits as opt_update
    // and the packs, without reading W again. A thread per pair of rows.
    void (*opt_update_pack_bf16)(float* W, float* s1, float* s2, const float* grads, int rows,
                                 int cols, const OptStep& step, uint32_t* w_pairs, int ld,
                                 uint32_t* wt_pairs, int ldt);
    // B(K,N) as sgemm_nn_packed_bias_relu reads it: packed_b_floats(N, K) floats, written
    // once (serial code) for many products, e.g. a model's weights for serving.
    size_t (*packed_b_floats)(int N, int K);
    void (*pack_b)(float* dst, const float* B, int N, int K);
    // sgemm_nn_bias_relu from B packed by pack_b: the same sums in the same order, the same
    // bits, without packing or reading B's strided columns again (no scratch for B).
    void (*sgemm_nn_packed_bias_relu)(float* C, const float* A, const float* B_packed, const float* bias,
                                      bool relu, int M, int N, int K);
};

const Kernels& kernels_ref();
const Kernels& kernels_generic();
const Kernels& kernels_avx2();    // x86-64 builds only; call only when the CPU has the ISA
const Kernels& kernels_avx512();
const Kernels& kernels_avx512bf16();  // avx512's, with bf16gemm on vdpbf16ps
const Kernels& kernels_amx();         // avx512bf16's, with bf16gemm on AMX tiles (builds with PYDFN_AMX_KERNELS;
                                      // call only where tiles_granted())
// kernels_amx()'s own entries (kernels_amx.cpp).
void bf16gemm_amx(const Bf16Gemm& g);
size_t scratch_floats_amx(Scratch use, Product p, int N, int K);
// The kernels of one ISA, or null when this build has none for it (call the ones the CPU
// runs only: amx's also need tiles_granted(); kernel_names() lists those).
const Kernels* kernels_for(Isa isa);
// The kernels training uses: the best this CPU runs (see best_isa()).
const Kernels& kernels_best();
// "reference", "best", or an ISA's name; an unknown name, or an ISA this CPU or
// build cannot run, throws std::invalid_argument.
const Kernels& kernels_named(const std::string& name);
// The kernel sets this CPU and build can run: "reference", then ISA names.
std::vector<std::string> kernel_names();

// The scratch floats each thread needs for every use, over some products.
struct ScratchNeed {
    size_t floats[kScratchUses] = {};
    // Makes room for product p of `kernels` with C(·,N) and inner dimension K.
    void add(const Kernels& kernels, Product p, int N, int K);
};

// The fast kernels' scratch memory for each thread of a parallel region,
// allocated before the region: a std::bad_alloc inside one would end the
// process (std::terminate), so nothing in a region allocates. Whoever runs
// kernels owns one (a network, for its lifetime) and runs them through
// parallel_region(scratch, need, body).
class KernelScratch {
  public:
    // Room for `threads` threads, each with need.floats[use] floats for each
    // use. Only grows; may throw std::bad_alloc (call it outside a region).
    void reserve(int threads, const ScratchNeed& need);

    // Makes `scratch` the one thread_scratch() hands out in this thread while it lives.
    class Use {
      public:
        explicit Use(KernelScratch& scratch);
        ~Use();
        Use(const Use&) = delete;
        Use& operator=(const Use&) = delete;

      private:
        KernelScratch* previous_;
    };

  private:
    friend float* thread_scratch(Scratch use, size_t floats);
    std::vector<Buffer> buffers_;  // [thread][use]
    ScratchNeed reserved_;         // what every buffer holds
};

// Scratch `use` of the calling thread in the current region: at least `floats`
// floats, valid until that use's next call. Never allocates; asking for more
// than was reserved is a bug in a kernel's scratch_floats and aborts.
float* thread_scratch(Scratch use, size_t floats);

// parallel_region(threads_for_region(), body), with `scratch` reserved for
// `need` first, and in use in every thread of the region; at most max_threads
// threads when it is > 0.
template <class Body>
void parallel_region(KernelScratch& scratch, const ScratchNeed& need, Body&& body, int max_threads = 0) {
    int threads = threads_for_region();
    if (max_threads > 0 && max_threads < threads) threads = max_threads;
    scratch.reserve(threads, need);
    parallel_region(threads, [&] {
        KernelScratch::Use use(scratch);
        body();
    });
}

}  // namespace pydfn
