// The dispatch table: the kernels of the best ISA this CPU runs, chosen once.
#include "pydfn/cpu.hpp"
#include "pydfn/gemm/gemm.hpp"

namespace pydfn {

const GemmKernels* gemm_for(Isa isa) {
#ifdef PYDFN_X86_KERNELS
    if (isa == Isa::avx512) return &gemm_avx512();
    if (isa == Isa::avx2) return &gemm_avx2();
#endif
    return isa == Isa::generic ? &gemm_generic() : nullptr;
}

const GemmKernels& gemm_best() {
    static const GemmKernels& best = *gemm_for(best_isa());
    return best;
}

}  // namespace pydfn
