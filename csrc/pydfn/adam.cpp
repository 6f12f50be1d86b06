#include "pydfn/adam.hpp"

#include <cmath>

namespace pydfn {

void adam_update(float* params, float* m, float* v, const float* grads, int64_t n,
                 const AdamConfig& c, int64_t t) {
    // Bias corrections once per step, in double as PyTorch computes them.
    const float step_size = float(c.lr / (1.0 - std::pow(double(c.beta1), double(t))));
    const float inv_bc2_sqrt = float(1.0 / std::sqrt(1.0 - std::pow(double(c.beta2), double(t))));
    const float b1 = c.beta1, b2 = c.beta2, eps = c.eps;
#pragma omp for simd schedule(static)
    for (int64_t i = 0; i < n; i++) {
        const float g = grads[i];
        m[i] = b1 * m[i] + (1.0f - b1) * g;
        v[i] = b2 * v[i] + (1.0f - b2) * g * g;
        params[i] -= step_size * m[i] / (std::sqrt(v[i]) * inv_bc2_sqrt + eps);
    }
}

}  // namespace pydfn
