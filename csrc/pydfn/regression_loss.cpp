#include "pydfn/regression_loss.hpp"

#include <cmath>
#include <stdexcept>

namespace pydfn {

Loss loss_named(const std::string& name) {
    if (name == "softmax_xent") return Loss::softmax_xent;
    if (name == "mse") return Loss::mse;
    if (name == "mae") return Loss::mae;
    throw std::invalid_argument("loss must be 'softmax_xent', 'mse' or 'mae', got '" + name + "'");
}

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
