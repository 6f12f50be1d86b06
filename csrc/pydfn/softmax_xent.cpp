#include "pydfn/softmax_xent.hpp"

#include <cmath>
#include <string>
#include <utility>

#include "pydfn/common.hpp"

namespace pydfn {

void check_labels(const int32_t* y, int64_t n, int C) {
    for (int64_t i = 0; i < n; i++)
        check(y[i] >= 0 && y[i] < C, "labels must be in [0, " + std::to_string(C) + "), got " +
                                         std::to_string(y[i]) + " at index " + std::to_string(i));
}

namespace {

// p (C) = softmax(z) with the row's max subtracted first; returns (max, sum of the exponentials).
std::pair<float, float> softmax_row(float* p, const float* z, int C) {
    float zmax = z[0];
    for (int j = 1; j < C; j++) zmax = z[j] > zmax ? z[j] : zmax;
    float sum = 0.0f;
    for (int j = 0; j < C; j++) {
        p[j] = std::exp(z[j] - zmax);
        sum += p[j];
    }
    const float inv = 1.0f / sum;
    for (int j = 0; j < C; j++) p[j] *= inv;
    return {zmax, sum};
}

}  // namespace

void softmax_rows(float* probs, const float* logits, int B, int C) {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) softmax_row(probs + int64_t(i) * C, logits + int64_t(i) * C, C);
}

void softmax_xent_forward(float* losses, float* probs, const float* logits, const int32_t* y,
                          int B, int C, float label_smoothing) {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        const float* z = logits + int64_t(i) * C;
        const auto [zmax, sum] = softmax_row(probs + int64_t(i) * C, z, C);
        losses[i] = std::log(sum) - (z[y[i]] - zmax);
        if (label_smoothing != 0.0f) {
            // -Σ_j t_j·log p_j = log(sum) - (1-eps)(z_y - zmax) - (eps/C)·Σ_j (z_j - zmax), as Σ_j t_j = 1
            float zsum = 0.0f;
            for (int j = 0; j < C; j++) zsum += z[j] - zmax;
            losses[i] = std::log(sum) - (1.0f - label_smoothing) * (z[y[i]] - zmax) -
                        label_smoothing / float(C) * zsum;
        }
    }
}

void softmax_xent_backward(float* dlogits, const float* probs, const int32_t* y, float scale,
                           int B, int C, float label_smoothing) {
    const float off = label_smoothing / float(C);  // t_j off the label; (1-eps) + eps/C on it
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        const float* p = probs + int64_t(i) * C;
        float* d = dlogits + int64_t(i) * C;
        if (label_smoothing == 0.0f) {  // the plain loss's exact operations
            for (int j = 0; j < C; j++) d[j] = p[j] * scale;
            d[y[i]] -= scale;
        } else {
            for (int j = 0; j < C; j++) d[j] = (p[j] - off) * scale;
            d[y[i]] -= (1.0f - label_smoothing) * scale;
        }
    }
}

double sum_in_order(const float* values, int64_t n) {
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) s += values[i];
    return s;
}

}  // namespace pydfn
