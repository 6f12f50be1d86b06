#include "pydfn/dense.hpp"

namespace pydfn {

void dense_forward(const Kernels& kernels, float* y, const float* x, const float* W,
                   const float* b, bool relu, int B, int in, int out) {
    kernels.sgemm_nn_bias_relu(y, x, W, b, relu, B, out, in);
}

void dense_backward(const Kernels& kernels, float* dx, float* dW, float* db, const float* dy,
                    const float* x, const float* W, bool mask_relu, int B, int in, int out) {
    kernels.sgemm_tn(dW, x, dy, in, out, B);
    // db: each thread owns a block of columns and sums its rows in order.
    constexpr int kCols = 16;
#pragma omp for schedule(static)
    for (int j0 = 0; j0 < out; j0 += kCols) {
        const int j1 = j0 + kCols < out ? j0 + kCols : out;
        for (int j = j0; j < j1; j++) db[j] = 0.0f;
        for (int i = 0; i < B; i++)
            for (int j = j0; j < j1; j++) db[j] += dy[i * out + j];
    }
    if (dx) kernels.sgemm_nt_mask(dx, dy, W, mask_relu ? x : nullptr, B, in, out);
}

}  // namespace pydfn
