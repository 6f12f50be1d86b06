// The bf16 product on AMX tiles (bf16gemm_tiles.inc), compiled with -mamx-tile -mamx-bf16,
// for the kernel set "amx" (kernels_amx() in kernels_dispatch.cpp: avx512bf16's kernels
// with this product). Run only where the CPU has AMX and Linux granted this process the
// tile state (cpu.cpp).
//
// As in kernels_impl.inc, nothing here may use a template or inline function other files
// use too: the linker could keep this file's copy, which may hold AMX instructions.
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "pydfn/kernels/kernels.hpp"

namespace pydfn {
namespace {

// GCC's tile intrinsics paste the tile number into the instruction's text: each tile the
// product uses gets its own specialisation. They are asm statements that do not tell the
// compiler which memory they read (GCC 12: no "memory" clobber on tileloadd, 8 bytes for
// ldtilecfg), so it could move or drop the stores that fill a tile's rows: an empty asm
// with a "memory" clobber before each load, and after sttilecfg, keeps those in order.
inline void memory_barrier() { __asm__ __volatile__("" ::: "memory"); }
template <int T>
void tile_load(const void* rows, size_t stride);
template <int T>
void tile_store(void* rows, size_t stride);
template <int T>
void tile_zero();
template <int C, int A, int B>
void tile_dot();

#define PYDFN_OPERAND_TILE(T)                          \
    template <>                                        \
    void tile_load<T>(const void* rows, size_t stride) { \
        memory_barrier();                              \
        _tile_loadd(T, rows, stride);                  \
    }
#define PYDFN_SUM_TILE(T)                              \
    PYDFN_OPERAND_TILE(T)                              \
    template <>                                        \
    void tile_store<T>(void* rows, size_t stride) {    \
        _tile_stored(T, rows, stride);                 \
    }                                                  \
    template <>                                        \
    void tile_zero<T>() {                              \
        _tile_zero(T);                                 \
    }
PYDFN_SUM_TILE(0)
PYDFN_SUM_TILE(1)
PYDFN_SUM_TILE(2)
PYDFN_SUM_TILE(3)
PYDFN_OPERAND_TILE(4)
PYDFN_OPERAND_TILE(5)
PYDFN_OPERAND_TILE(6)
PYDFN_OPERAND_TILE(7)
#undef PYDFN_SUM_TILE
#undef PYDFN_OPERAND_TILE
#define PYDFN_TILE_DOT(C, A, B)     \
    template <>                     \
    void tile_dot<C, A, B>() {      \
        _tile_dpbf16ps(C, A, B);    \
    }
PYDFN_TILE_DOT(0, 4, 6)
PYDFN_TILE_DOT(1, 4, 7)
PYDFN_TILE_DOT(2, 5, 6)
PYDFN_TILE_DOT(3, 5, 7)
#undef PYDFN_TILE_DOT
void tile_config_store(void* config) {
    _tile_storeconfig(config);
    memory_barrier();
}
void tile_config_load(const void* config) {
    memory_barrier();
    _tile_loadconfig(config);
}

#include "pydfn/kernels/bf16gemm_tiles.inc"

}  // namespace

// avx512bf16's needs, and the tile product's.
size_t scratch_floats_amx(Scratch use, Product p, int N, int K) {
    return scratch_floats_with_tiles(kernels_avx512bf16(), use, p, N, K);
}

void bf16gemm_amx(const Bf16Gemm& g) { bf16gemm_tiles(g); }

}  // namespace pydfn
