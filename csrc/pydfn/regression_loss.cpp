#include "pydfn/regression_loss.hpp"

#include <cmath>

namespace pydfn {

void regression_loss_forward(float* losses, const float* z, const float* t, Loss loss, int B, int n) {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        const float* zi = z + int64_t(i) * n;
        const float* ti = t + int64_t(i) * n;
        float sum = 0.0f;
        for (int j = 0; j < n; j++) {
            const float e = zi[j] - ti[j];
            sum += loss == Loss::mse ? e * e : std::fabs(e);
        }
        losses[i] = sum / float(n);
    }
}

void regression_loss_backward(float* dz, const float* z, const float* t, Loss loss, float scale,
                              int B, int n) {
    const float s = scale / float(n);
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        const float* zi = z + int64_t(i) * n;
        const float* ti = t + int64_t(i) * n;
        float* d = dz + int64_t(i) * n;
        for (int j = 0; j < n; j++) {
            const float e = zi[j] - ti[j];
            d[j] = loss == Loss::mse ? (2.0f * s) * e : (e > 0.0f ? s : (e < 0.0f ? -s : 0.0f));
        }
    }
}

}  // namespace pydfn
