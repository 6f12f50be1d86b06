// The dispatch table: the kernels of the best ISA this CPU runs, chosen once;
// and the kernels' per-thread scratch (here, compiled for any CPU).
#include "pydfn/common.hpp"
#include "pydfn/kernels/kernels.hpp"

namespace pydfn {

const Kernels* kernels_for(Isa isa) {
#ifdef PYDFN_X86_KERNELS
    if (isa == Isa::avx512bf16) return &kernels_avx512bf16();
    if (isa == Isa::avx512) return &kernels_avx512();
    if (isa == Isa::avx2) return &kernels_avx2();
#endif
    return isa == Isa::generic ? &kernels_generic() : nullptr;
}

const Kernels& kernels_best() {
    static const Kernels& best = *kernels_for(best_isa());
    return best;
}

float* thread_scratch(Scratch use, size_t floats) {
    thread_local Buffer scratch[2];  // each grows to the largest panel, then is reused
    Buffer& buffer = scratch[use == Scratch::a_rows];
    buffer.grow_to(floats);
    return buffer.data();
}

}  // namespace pydfn
