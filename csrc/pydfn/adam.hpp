// Adam as PyTorch defines it, over one flat parameter buffer.
#pragma once
#include <cstdint>

namespace pydfn {

struct AdamConfig {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

// One step t (t >= 1) over n parameters:
//   m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
//   θ −= (lr / (1−b1^t)) · m / (sqrt(v) / sqrt(1−b2^t) + eps)
// Shares the elements through an orphaned `omp for` loop.
void adam_update(float* params, float* m, float* v, const float* grads, int64_t n,
                 const AdamConfig& config, int64_t t);

}  // namespace pydfn
