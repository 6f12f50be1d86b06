#include "pydfn/dense.hpp"

#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "pydfn/threads.hpp"

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
}

bool has_elementwise_pass(Activation f) { return f == Activation::tanh || f == Activation::sigmoid; }

// The products of the backward pass, which read only dy, x, h and W: dx (without a
// tanh/sigmoid derivative) and dW; the caller adds db.
void backward_products(const Kernels& kernels, float* dx, float* dW, const float* dy,
                       const float* x, const float* h, const float* W, Activation f_x, int B,
                       int in, int out, const Bf16Operands& bf16) {
    const float* mask = f_x == Activation::relu ? h : nullptr;
    if (!bf16.dy_pairs) {
        if (dx) kernels.sgemm_nt_mask(dx, dy, W, mask, B, in, out);
        kernels.sgemm_tn(dW, x, dy, in, out, B);
        return;
    }
    const int ld_in = bf16_ld(in);
    if (dx)  // dx (B,in) = dy (B,out) · Wᵀ: K = out
        kernels.bf16gemm({dx, in, bf16.dy_rows, (out + 1) / 2, 1, bf16.Wt_pairs, ld_in, nullptr,
                          false, mask, B, in, (out + 1) / 2, false});
    // dW (in,out) = xᵀ (in,B) · dy (B,out): K = B
    kernels.bf16gemm({dW, out, bf16.x_pairs, 1, ld_in, bf16.dy_pairs, bf16_ld(out), nullptr, false,
                      nullptr, in, out, (B + 1) / 2, true});
}

}  // namespace

Activation activation_named(const std::string& name) {
    if (name == "relu") return Activation::relu;
    if (name == "tanh") return Activation::tanh;
    if (name == "sigmoid") return Activation::sigmoid;
    throw std::invalid_argument("activation must be 'relu', 'tanh' or 'sigmoid', got '" + name + "'");
}

void dense_forward(const Kernels& kernels, float* y, const float* x, const float* W,
                   const float* b, Activation f, int B, int in, int out, const Bf16Operands& bf16,
                   const float* W_packed) {
    if (bf16.x_rows)
        kernels.bf16gemm({y, out, bf16.x_rows, (in + 1) / 2, 1, bf16.W_pairs, bf16_ld(out), b,
                          f == Activation::relu, nullptr, B, out, (in + 1) / 2, false});
    else if (W_packed)
        kernels.sgemm_nn_packed_bias_relu(y, x, W_packed, b, f == Activation::relu, B, out, in);
    else
        kernels.sgemm_nn_bias_relu(y, x, W, b, f == Activation::relu, B, out, in);
    if (has_elementwise_pass(f)) {
        sync_threads();  // the product's tiles are not the pass's rows
        activation_forward(y, f, B, out);
    }
}

void dense_backward(const Kernels& kernels, float* dx, float* dW, float* db, const float* dy,
                    const float* x, const float* h, const float* W, Activation f_x, int B, int in,
                    int out, const Bf16Operands& bf16) {
    backward_products(kernels, dx, dW, dy, x, h, W, f_x, B, in, out, bf16);
    kernels.column_sums(db, dy, B, out, nullptr);
    sync_threads();
    if (dx && has_elementwise_pass(f_x)) {
        activation_backward(dx, h, f_x, B, in);
        sync_threads();
    }
}

void dense_backward_opt(const Kernels& kernels, float* dx, float* W, float* b, float* dW_scratch,
                        const OptTarget& opt_W, const OptTarget& opt_b, const float* dy,
                        const float* x, const float* h, Activation f_x, int B, int in, int out,
                        const Bf16Operands& bf16) {
    backward_products(kernels, dx, dW_scratch, dy, x, h, W, f_x, B, in, out, bf16);
    kernels.column_sums(b, dy, B, out, &opt_b);
    sync_threads();  // dW is whole, and dx's reads of W are done
    if (bf16.dy_pairs)
        kernels.opt_update_pack_bf16(W, opt_W.s1, opt_W.s2, dW_scratch, in, out, opt_W.step,
                                     bf16.W_pairs, bf16_ld(out), dx ? bf16.Wt_pairs : nullptr, bf16_ld(in));
    else
        kernels.opt_update(W, opt_W.s1, opt_W.s2, dW_scratch, int64_t(in) * out, opt_W.step);
    if (dx && has_elementwise_pass(f_x)) {
        activation_backward(dx, h, f_x, B, in);
        sync_threads();
    }
}

}  // namespace pydfn
