// Inverted dropout on hidden activations, with masks from a counter-based
// hash: whether unit (row, col) of a layer is kept in a training step depends
// only on (seed, step, layer, row, col), never on the thread that computes it
// or on what ran before, so training stays bitwise identical for any thread
// count, reproducible from the seed, and a resumed run draws the same masks.
// Rows are shared between the threads of a parallel_region(), which sync_threads()
// before reading the results (threads.hpp).
#pragma once
#include <cstdint>

namespace pydfn {

// One layer's mask in one step. A unit is kept when the top 24 bits of its
// hash are >= threshold = round(rate·2^24); kept units are scaled by
// 1/(1 − rate) so the layer's expected output is unchanged.
struct DropoutMask {
    uint32_t key;
    uint32_t threshold;
    float scale;
};

DropoutMask dropout_mask(uint64_t seed, int64_t step, int layer, float rate);  // 0 <= rate < 1

inline uint32_t fmix32(uint32_t h) {  // MurmurHash3's finalizer: a bijection that mixes every bit
    h ^= h >> 16;
    h *= 0x85EBCA6Bu;
    h ^= h >> 13;
    h *= 0xC2B2AE35u;
    h ^= h >> 16;
    return h;
}

inline uint32_t dropout_row_key(const DropoutMask& mask, int64_t row) {
    return fmix32(mask.key ^ (uint32_t(row) * 0x9E3779B9u) ^ uint32_t(uint64_t(row) >> 32));
}

// All ones if unit col of the row is kept, else 0: a mask for the float's
// bits, a form compilers vectorize (the signed compare is exact below 2^24).
inline uint32_t dropout_keep_bits(uint32_t row_key, int col, uint32_t threshold) {
    const uint32_t top24 = fmix32(row_key ^ (uint32_t(col) * 0x85EBCA77u)) >> 8;
    return 0u - uint32_t(int32_t(top24) >= int32_t(threshold));
}

// out (B,n) = kept ? in·scale : 0.
void dropout_forward(float* out, const float* in, const DropoutMask& mask, int B, int n);

// d (B,n) = kept ? d·scale : 0, in place: the gradient through the same mask.
void dropout_backward(float* d, const DropoutMask& mask, int B, int n);

}  // namespace pydfn
