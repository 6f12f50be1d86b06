// A dense layer y = relu?(x·W + b), its backward pass, and the ReLU mask.
// Like the kernels, these share work between the threads of a parallel_region().
#pragma once
#include "pydfn/kernels/kernels.hpp"

namespace pydfn {

// y (B,out) = x (B,in) · W (in,out) + b (out), ReLU applied if relu.
void dense_forward(const Kernels& kernels, float* y, const float* x, const float* W,
                   const float* b, bool relu, int B, int in, int out);

// Given dy (B,out), the gradient of the loss with respect to this layer's output
// (after its ReLU mask was applied by the layer above, or the logits' gradient):
//   dW (in,out) = xᵀ·dy,  db (out) = Σ_rows dy,
//   dx (B,in) = dy·Wᵀ, zeroed where x <= 0 when x is a ReLU output (mask_relu).
// dx may be null (the input layer needs no dx).
void dense_backward(const Kernels& kernels, float* dx, float* dW, float* db, const float* dy,
                    const float* x, const float* W, bool mask_relu, int B, int in, int out);

// The same backward pass with Adam fused in: W (in,out) and b (out) take one Adam
// step with dW and db as gradients while those are still in registers; they
// are never stored. Gives the same bits as dense_backward then an Adam update.
void dense_backward_adam(const Kernels& kernels, float* dx, float* W, float* b,
                         const AdamTarget& adam_W, const AdamTarget& adam_b, const float* dy,
                         const float* x, bool mask_relu, int B, int in, int out);

}  // namespace pydfn
