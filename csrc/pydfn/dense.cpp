#include "pydfn/dense.hpp"

#include <cmath>
#include <cstdint>

namespace pydfn {

namespace {

// y (B,n) = f(y), in place, for f = tanh or sigmoid.
void activation_forward(float* y, Activation f, int B, int n) {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        float* row = y + int64_t(i) * n;
        if (f == Activation::tanh)
            for (int j = 0; j < n; j++) row[j] = std::tanh(row[j]);
        else
            for (int j = 0; j < n; j++) row[j] = 1.0f / (1.0f + std::exp(-row[j]));
    }
    sync_threads();
}

// dx (B,n) ⊙= f'(z) written from y = f(z): tanh' = 1 − y², sigmoid' = y·(1 − y).
void activation_backward(float* dx, const float* y, Activation f, int B, int n) {
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        float* d = dx + int64_t(i) * n;
        const float* h = y + int64_t(i) * n;
        if (f == Activation::tanh)
            for (int j = 0; j < n; j++) d[j] *= 1.0f - h[j] * h[j];
        else
            for (int j = 0; j < n; j++) d[j] *= h[j] * (1.0f - h[j]);
    }
    sync_threads();
}

void backward_dx(const Kernels& kernels, float* dx, const float* dy, const float* h,
                 const float* W, Activation f_x, int B, int in, int out) {
    kernels.sgemm_nt_mask(dx, dy, W, f_x == Activation::relu ? h : nullptr, B, in, out);
    if (f_x == Activation::tanh || f_x == Activation::sigmoid) activation_backward(dx, h, f_x, B, in);
}

}  // namespace

void dense_forward(const Kernels& kernels, float* y, const float* x, const float* W,
                   const float* b, Activation f, int B, int in, int out) {
    kernels.sgemm_nn_bias_relu(y, x, W, b, f == Activation::relu, B, out, in);
    if (f == Activation::tanh || f == Activation::sigmoid) activation_forward(y, f, B, out);
}

void dense_backward(const Kernels& kernels, float* dx, float* dW, float* db, const float* dy,
                    const float* x, const float* h, const float* W, Activation f_x, int B, int in,
                    int out) {
    kernels.sgemm_tn(dW, x, dy, in, out, B);
    kernels.column_sums(db, dy, B, out, nullptr);
    if (dx) backward_dx(kernels, dx, dy, h, W, f_x, B, in, out);
}

void dense_backward_opt(const Kernels& kernels, float* dx, float* W, float* b, float* dW_scratch,
                        const OptTarget& opt_W, const OptTarget& opt_b, const float* dy,
                        const float* x, const float* h, Activation f_x, int B, int in, int out) {
    // dx first: it needs W before this step's update.
    if (dx) backward_dx(kernels, dx, dy, h, W, f_x, B, in, out);
    kernels.sgemm_tn(dW_scratch, x, dy, in, out, B);
    kernels.opt_update(W, opt_W.s1, opt_W.s2, dW_scratch, int64_t(in) * out, opt_W.step);
    kernels.column_sums(b, dy, B, out, &opt_b);
}

}  // namespace pydfn
