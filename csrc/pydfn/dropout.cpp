#include "pydfn/dropout.hpp"

#include <cmath>
#include <cstring>

namespace pydfn {

namespace {

uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

// dst (B,n) = kept ? src·scale : 0; src may be dst.
void apply_mask(float* dst, const float* src, const DropoutMask& mask, int B, int n) {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        const uint32_t row_key = dropout_row_key(mask, i);
        const float* s = src + int64_t(i) * n;
        float* d = dst + int64_t(i) * n;
        for (int j = 0; j < n; j++) {
            const float scaled = s[j] * mask.scale;
            uint32_t bits;
            std::memcpy(&bits, &scaled, sizeof bits);
            bits &= dropout_keep_bits(row_key, j, mask.threshold);  // dropped: +0.0f
            std::memcpy(d + j, &bits, sizeof bits);
        }
    }
}

}  // namespace

DropoutMask dropout_mask(uint64_t seed, int64_t step, int layer, float rate) {
    const uint64_t key = splitmix64(splitmix64(splitmix64(seed) ^ uint64_t(step)) ^ uint64_t(layer));
    return {uint32_t(key), uint32_t(std::lround(double(rate) * (1 << 24))),
            float(1.0 / (1.0 - double(rate)))};
}

void dropout_forward(float* out, const float* in, const DropoutMask& mask, int B, int n) {
    apply_mask(out, in, mask, B, n);
}

void dropout_backward(float* d, const DropoutMask& mask, int B, int n) { apply_mask(d, d, mask, B, n); }

}  // namespace pydfn
