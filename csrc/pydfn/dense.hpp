// A dense layer y = f(x·W + b), its backward pass, and the activations f.
// Like the kernels, these share work between the threads of a parallel_region()
// and do not wait for them at the end unless said so.
#pragma once
#include <cstdint>
#include <string>

#include "pydfn/kernels/kernels.hpp"

namespace pydfn {

// Hidden activations. ReLU is fused into the matrix product's epilogue (and
// its derivative into dx's); tanh and sigmoid are a separate elementwise pass
// over the product (and their derivatives a pass over dx), written with the
// standard library's tanh/exp for full float accuracy.
enum class Activation : int { none = 0, relu = 1, tanh = 2, sigmoid = 3 };
// A hidden activation by name: "relu", "tanh", "sigmoid" (std::invalid_argument otherwise).
Activation activation_named(const std::string& name);

// A layer's operands rounded to bf16 and packed (kernels.hpp, Bf16Gemm) for
// precision "bf16"; null pointers (the default) mean float32 products.
// Row strides in uint32 pairs: x_rows ⌈in/2⌉, dy_rows ⌈out/2⌉; the paired
// layouts' strides are bf16_ld() of their column count.
struct Bf16Operands {
    const uint32_t* x_rows = nullptr;    // x (B,in), pairs along in: forward's A
    const uint32_t* x_pairs = nullptr;   // x paired along the batch: dW's A
    uint32_t* W_pairs = nullptr;   // W (in,out) paired along in: forward's B (repacked by
    uint32_t* Wt_pairs = nullptr;  // Wᵀ (out,in) paired along out: dx's B  dense_backward_opt)
    const uint32_t* dy_rows = nullptr;   // dy (B,out), pairs along out: dx's A
    const uint32_t* dy_pairs = nullptr;  // dy paired along the batch: dW's B
};
// The stride of a paired layout with n columns: whole 16-float vectors.
inline int bf16_ld(int n) { return (n + 15) / 16 * 16; }

// y (B,out) = f(x (B,in) · W (in,out) + b (out)); sync_threads() before reading y.
// With bf16, the product reads bf16->x_rows and W_pairs instead of x and W; given
// W_packed (W as kernels.pack_b packs it), the float product reads it instead of W.
void dense_forward(const Kernels& kernels, float* y, const float* x, const float* W,
                   const float* b, Activation f, int B, int in, int out,
                   const Bf16Operands& bf16 = {}, const float* W_packed = nullptr);

// Given dy (B,out), the gradient of the loss with respect to this layer's
// pre-activation (the layer above applied its activation's derivative), x the
// layer's input and h = f_x(previous pre-activation) (x itself, unless dropout
// came between them):
//   dW (in,out) = xᵀ·dy,  db (out) = Σ_rows dy,
//   dx (B,in) = (dy·Wᵀ) ⊙ f_x'(h), f_x' written from f_x's output h (none: 1).
// dx may be null (the input layer needs no dx). dx, dW and db are complete
// for every thread on return. With bf16, the products read its operands (db
// is summed from the float dy).
void dense_backward(const Kernels& kernels, float* dx, float* dW, float* db, const float* dy,
                    const float* x, const float* h, const float* W, Activation f_x, int B, int in,
                    int out, const Bf16Operands& bf16 = {});

// The same backward pass with the optimizer step on W (in,out) and b (out):
// db is applied straight from registers; dW goes through dW_scratch (in,out),
// then one streaming pass updates W, which measured faster than applying it
// tile by tile. Gives the same bits as dense_backward, then add_penalty on W,
// then an optimizer update (with bf16, then W repacked into W_pairs and, with dx,
// Wᵀ into Wt_pairs). dx and b are complete for every thread on return;
// W's update is not (sync_threads() before reading W), so the layer below can
// start its products meanwhile.
void dense_backward_opt(const Kernels& kernels, float* dx, float* W, float* b, float* dW_scratch,
                        const OptTarget& opt_W, const OptTarget& opt_b, const float* dy,
                        const float* x, const float* h, Activation f_x, int B, int in, int out,
                        const Bf16Operands& bf16 = {});

}  // namespace pydfn
