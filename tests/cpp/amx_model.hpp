// A plain C++ model of the AMX instructions pydfn's tile product uses, from the Intel SDM's
// descriptions (LDTILECFG, STTILECFG, TILELOADD, TILESTORED, TILEZERO, TDPBF16PS), to run
// csrc/pydfn/kernels/bf16gemm_tiles.inc on any CPU: core_check compares it, so built,
// with the reference. It checks what the hardware would fault on (a tile used before a
// configuration, operand shapes that do not fit) and stops the test there.
//
// Include it from one file only (it defines the kernel's functions). TDPBF16PS as the SDM writes it: per row of C, two float sums (the pairs' low and high
// products, each an FMA with denormals flushed), added together, then to C. Where the
// hardware rounds differently in the last bits, this model is still a valid oracle for
// everything the kernel decides: which data, in which tile, padded how, stored where.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "pydfn/kernels/kernels.hpp"

namespace amx_model {

struct Registers {
    uint8_t config[64] = {};  // as loaded: palette 0 (none) until LDTILECFG
    uint8_t tiles[8][16][64] = {};
};
inline thread_local Registers registers;

inline int tile_rows(int t) { return registers.config[48 + t]; }
inline int tile_colsb(int t) {
    uint16_t colsb;
    std::memcpy(&colsb, registers.config + 16 + 2 * t, sizeof colsb);
    return colsb;
}
[[noreturn]] inline void fault(const char* why) {
    std::fprintf(stderr, "amx_model: the CPU would fault here: %s\n", why);
    std::abort();
}
inline void require(bool ok, const char* why) {
    if (!ok) fault(why);
}
inline void require_configured(int t) {
    require(registers.config[0] == 1, "a tile instruction before LDTILECFG (palette 1)");
    require(tile_rows(t) >= 1 && tile_rows(t) <= 16 && tile_colsb(t) >= 4 && tile_colsb(t) <= 64,
            "a tile the configuration leaves unused");
}

inline void tile_config_load(const void* config) {
    std::memcpy(registers.config, config, 64);
    require(registers.config[0] == 1, "LDTILECFG of a palette other than 1");
    for (int at = 2; at < 64; at++) {  // reserved: bytes 2-15, tiles 8-15's colsb (32-47) and rows (56-63)
        const bool reserved = at < 16 || (at >= 32 && at < 48) || at >= 56;
        require(!reserved || registers.config[at] == 0, "LDTILECFG with a reserved byte set");
    }
    for (int t = 0; t < 8; t++) {
        require(tile_rows(t) <= 16 && tile_colsb(t) <= 64 && tile_colsb(t) % 4 == 0, "LDTILECFG of a bad tile shape");
        require((tile_rows(t) == 0) == (tile_colsb(t) == 0), "LDTILECFG of a tile with rows but no bytes, or bytes but no rows");
    }
    std::memset(registers.tiles, 0, sizeof registers.tiles);  // loading a configuration zeroes the tiles
}
inline void tile_config_store(void* config) { std::memcpy(config, registers.config, 64); }

template <int T>
void tile_load(const void* rows, size_t stride) {
    require_configured(T);
    std::memset(registers.tiles[T], 0, sizeof registers.tiles[T]);
    for (int r = 0; r < tile_rows(T); r++)
        std::memcpy(registers.tiles[T][r], static_cast<const uint8_t*>(rows) + r * stride, size_t(tile_colsb(T)));
}
template <int T>
void tile_store(void* rows, size_t stride) {
    require_configured(T);
    for (int r = 0; r < tile_rows(T); r++)
        std::memcpy(static_cast<uint8_t*>(rows) + r * stride, registers.tiles[T][r], size_t(tile_colsb(T)));
}
template <int T>
void tile_zero() {
    require_configured(T);
    std::memset(registers.tiles[T], 0, sizeof registers.tiles[T]);
}

inline float bf16_at(const uint8_t* row, int index) {  // index: bf16 number in the row
    uint16_t half;
    std::memcpy(&half, row + 2 * index, sizeof half);
    const uint32_t bits = uint32_t(half) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f;  // denormals are zero
}
inline float flushed(float f) { return std::fpclassify(f) == FP_SUBNORMAL ? std::copysign(0.0f, f) : f; }

template <int C, int A, int B>
void tile_dot() {
    require_configured(C);
    require_configured(A);
    require_configured(B);
    const int m_rows = tile_rows(C), n = tile_colsb(C) / 4, k = tile_colsb(A) / 4;
    require(tile_rows(A) == m_rows && tile_rows(B) == k && tile_colsb(B) == tile_colsb(C),
            "TDPBF16PS of tiles whose shapes do not fit");
    require(C != A && C != B && A != B, "TDPBF16PS naming one tile twice");
    for (int m = 0; m < m_rows; m++) {
        float low[16] = {}, high[16] = {};
        for (int p = 0; p < k; p++)
            for (int j = 0; j < n; j++) {
                low[j] = flushed(std::fma(bf16_at(registers.tiles[A][m], 2 * p), bf16_at(registers.tiles[B][p], 2 * j), low[j]));
                high[j] = flushed(
                    std::fma(bf16_at(registers.tiles[A][m], 2 * p + 1), bf16_at(registers.tiles[B][p], 2 * j + 1), high[j]));
            }
        for (int j = 0; j < n; j++) {
            float c;
            std::memcpy(&c, registers.tiles[C][m] + 4 * j, sizeof c);
            c = flushed(flushed(c) + flushed(low[j] + high[j]));
            std::memcpy(registers.tiles[C][m] + 4 * j, &c, sizeof c);
        }
    }
}

using pydfn::Bf16Gemm;
using pydfn::Kernels;
using pydfn::Product;
using pydfn::Scratch;
using pydfn::thread_scratch;
#include "pydfn/kernels/bf16gemm_tiles.inc"

// The generic kernels with the tile product on this model: a kernel set to test like the others.
inline size_t scratch_floats(Scratch use, Product p, int N, int K) {
    return scratch_floats_with_tiles(pydfn::kernels_generic(), use, p, N, K);
}
inline const pydfn::Kernels& kernels() {
    static const pydfn::Kernels k = [] {
        pydfn::Kernels model = pydfn::kernels_generic();
        model.isa = "amx (C++ model)";
        model.scratch_floats = scratch_floats;
        model.bf16gemm = bf16gemm_tiles;
        return model;
    }();
    return k;
}

}  // namespace amx_model
