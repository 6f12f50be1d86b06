// Adam as PyTorch defines it: hyper-parameters, and the factors of one step.
// The elementwise update is a kernel (kernels/kernels.hpp), one per ISA.
#pragma once
#include <cstdint>

namespace pydfn {

struct AdamConfig {
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;
};

// Step t (t >= 1) of Adam over every parameter θ with gradient g:
//   m = b1·m + (1−b1)·g;  v = b2·v + (1−b2)·g²
//   θ −= step_size · m / (sqrt(v)·inv_bc2_sqrt + eps)
// with step_size = lr/(1−b1^t) and inv_bc2_sqrt = 1/sqrt(1−b2^t): the bias
// corrections, computed once per step.
struct AdamStep {
    float beta1, beta2, eps, step_size, inv_bc2_sqrt;
};

AdamStep adam_step(const AdamConfig& config, int64_t t);  // t >= 1

}  // namespace pydfn
