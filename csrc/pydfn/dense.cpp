#include "pydfn/dense.hpp"

namespace pydfn {

void dense_forward(const Kernels& kernels, float* y, const float* x, const float* W,
                   const float* b, bool relu, int B, int in, int out) {
    kernels.sgemm_nn_bias_relu(y, x, W, b, relu, B, out, in);
}

void dense_backward(const Kernels& kernels, float* dx, float* dW, float* db, const float* dy,
                    const float* x, const float* W, bool mask_relu, int B, int in, int out) {
    kernels.sgemm_tn(dW, x, dy, in, out, B, nullptr);
    kernels.column_sums(db, dy, B, out, nullptr);
    if (dx) kernels.sgemm_nt_mask(dx, dy, W, mask_relu ? x : nullptr, B, in, out);
}

void dense_backward_adam(const Kernels& kernels, float* dx, float* W, float* b,
                         const AdamTarget& adam_W, const AdamTarget& adam_b, const float* dy,
                         const float* x, bool mask_relu, int B, int in, int out) {
    // dx first: it needs W before this step's update.
    if (dx) kernels.sgemm_nt_mask(dx, dy, W, mask_relu ? x : nullptr, B, in, out);
    kernels.sgemm_tn(W, x, dy, in, out, B, &adam_W);
    kernels.column_sums(b, dy, B, out, &adam_b);
}

}  // namespace pydfn
