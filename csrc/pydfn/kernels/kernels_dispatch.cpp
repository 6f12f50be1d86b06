// The dispatch table: the kernels of the best ISA this CPU runs, chosen once;
// and the kernels' per-thread scratch (here, compiled for any CPU).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "pydfn/common.hpp"
#include "pydfn/kernels/kernels.hpp"

namespace pydfn {

#ifdef PYDFN_AMX_KERNELS
// Built here, with plain flags: copying avx512bf16's table in kernels_amx.cpp, whose flags
// allow AVX-512, compiled to AVX-512 moves that kernel_names() ran on every CPU (SIGILL).
const Kernels& kernels_amx() {
    static const Kernels kernels = [] {
        Kernels k = kernels_avx512bf16();
        k.isa = "amx";
        k.scratch_floats = scratch_floats_amx;
        k.bf16gemm = bf16gemm_amx;
        return k;
    }();
    return kernels;
}
#endif

const Kernels* kernels_for(Isa isa) {
#ifdef PYDFN_AMX_KERNELS
    if (isa == Isa::amx) return &kernels_amx();
#endif
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

namespace {
constexpr Isa kIsas[] = {Isa::generic, Isa::avx2, Isa::avx512, Isa::avx512bf16, Isa::amx};

// The hardware first: a kernel set's table may only be touched on a CPU that runs it.
bool runs_here(Isa isa) {
    return int(isa) <= int(hardware_isa()) && (isa != Isa::amx || tiles_granted()) && kernels_for(isa) != nullptr;
}
}  // namespace

const Kernels& kernels_named(const std::string& name) {
    if (name == "reference") return kernels_ref();
    if (name == "best") return kernels_best();
    for (Isa isa : kIsas)
        if (name == isa_name(isa)) {
            check(runs_here(isa), "kernels '" + name + "' cannot run on this CPU or build");
            return *kernels_for(isa);
        }
    throw std::invalid_argument("unknown kernels '" + name + "'");
}

std::vector<std::string> kernel_names() {
    std::vector<std::string> names{"reference"};
    for (Isa isa : kIsas)
        if (runs_here(isa)) names.push_back(isa_name(isa));
    return names;
}

namespace {
thread_local KernelScratch* tl_scratch = nullptr;  // of the region this thread is in
}

void ScratchNeed::add(const Kernels& kernels, Product p, int N, int K) {
    for (int u = 0; u < kScratchUses; u++)
        floats[u] = std::max(floats[u], kernels.scratch_floats(Scratch(u), p, N, K));
}

void KernelScratch::reserve(int threads, const ScratchNeed& need) {
    ScratchNeed target = reserved_;
    for (int u = 0; u < kScratchUses; u++) target.floats[u] = std::max(target.floats[u], need.floats[u]);
    if (buffers_.size() < size_t(threads) * kScratchUses) buffers_.resize(size_t(threads) * kScratchUses);
    for (size_t b = 0; b < buffers_.size(); b++) buffers_[b].grow_to(target.floats[b % kScratchUses]);
    reserved_ = target;  // only now that every buffer has it: a failed reserve promises nothing new
}

KernelScratch::Use::Use(KernelScratch& scratch) : previous_(tl_scratch) { tl_scratch = &scratch; }

KernelScratch::Use::~Use() { tl_scratch = previous_; }

float* thread_scratch(Scratch use, size_t floats) {
    const size_t at = size_t(thread_index()) * kScratchUses + size_t(use);
    const KernelScratch* scratch = tl_scratch;
    if (scratch == nullptr || at >= scratch->buffers_.size() || floats > scratch->reserved_.floats[int(use)]) {
        std::fprintf(stderr, "pydfn: internal error: kernel scratch not reserved (%zu floats)\n", floats);
        std::abort();
    }
    return tl_scratch->buffers_[at].data();
}

}  // namespace pydfn
