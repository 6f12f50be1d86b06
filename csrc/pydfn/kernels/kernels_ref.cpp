// Naive reference kernels: plain loops, never optimised, in double.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "pydfn/kernels/kernels.hpp"

namespace pydfn {

namespace {

void ref_nn(float* C, const float* A, const float* B, const float* bias, bool relu, int M, int N,
            int K) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = bias ? bias[j] : 0.0;
            for (int k = 0; k < K; k++) s += double(A[i * K + k]) * B[k * N + j];
            C[i * N + j] = relu && s < 0 ? 0.0f : float(s);
        }
}

// The reference "packs" B as it is.
size_t ref_packed_b_floats(int N, int K) { return size_t(N) * size_t(K); }
void ref_pack_b(float* dst, const float* B, int N, int K) {
    for (size_t i = 0; i < size_t(N) * size_t(K); i++) dst[i] = B[i];
}

void ref_nt(float* C, const float* A, const float* B, const float* mask, int M, int N, int K) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += double(A[i * K + k]) * B[j * K + k];
            C[i * N + j] = mask && mask[i * N + j] <= 0 ? 0.0f : float(s);
        }
}

void store_epilogue(float* c, float s, bool relu, float mask) {
    *c = (relu && s < 0) || mask <= 0 ? 0.0f : s;
}

double ref_sign(double w) { return w > 0 ? 1.0 : (w < 0 ? -1.0 : 0.0); }

void ref_update(float* params, float* s1, float* s2, const float* grads, int64_t n,
                const OptStep& s) {
    for (int64_t i = 0; i < n; i++) {
        const double w = params[i];
        double g = double(grads[i]) + s.l1 * ref_sign(w) + 2.0 * double(s.l2) * w;
        switch (s.kind) {
            case OptKind::adam:
            case OptKind::adamw: {
                const double wd = s.kind == OptKind::adamw ? w * s.decay : w;
                s1[i] = float(s.beta1 * double(s1[i]) + (1.0 - s.beta1) * g);
                s2[i] = float(s.beta2 * double(s2[i]) + (1.0 - s.beta2) * g * g);
                params[i] = float(wd - double(s.step_size) * s1[i] /
                                           (std::sqrt(double(s2[i])) * s.inv_bc2_sqrt + s.eps));
                break;
            }
            case OptKind::sgd:
                if (s.momentum != 0.0f) {
                    s1[i] = float(s.momentum * double(s1[i]) + g);
                    g = s.nesterov ? g + s.momentum * double(s1[i]) : double(s1[i]);
                }
                params[i] = float(w - s.lr * g);
                break;
            case OptKind::rmsprop: {
                s2[i] = float(s.beta2 * double(s2[i]) + (1.0 - s.beta2) * g * g);
                const double scaled = g / (std::sqrt(double(s2[i])) + s.eps);
                if (s.momentum != 0.0f) {
                    s1[i] = float(s.momentum * double(s1[i]) + scaled);
                    params[i] = float(w - s.lr * double(s1[i]));
                } else {
                    params[i] = float(w - s.lr * scaled);
                }
                break;
            }
        }
    }
}

void ref_add_penalty(float* grads, const float* params, int64_t n, float l1, float l2) {
    for (int64_t i = 0; i < n; i++)
        grads[i] = float(grads[i] + l1 * ref_sign(params[i]) + 2.0 * double(l2) * params[i]);
}

// The gradient g(n), then stored or applied by the optimizer to C.
void store_or_update(float* C, const std::vector<float>& g, const OptTarget* opt) {
    if (opt)
        ref_update(C, opt->s1, opt->s2, g.data(), int64_t(g.size()), opt->step);
    else
        std::copy(g.begin(), g.end(), C);
}

void ref_tn(float* C, const float* A, const float* B, int M, int N, int K) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += double(A[k * M + i]) * B[k * N + j];
            C[size_t(i) * N + j] = float(s);
        }
}

void ref_column_sums(float* db, const float* dy, int B, int N, const OptTarget* opt) {
    std::vector<float> g(N);
    for (int j = 0; j < N; j++) {
        double s = 0;
        for (int i = 0; i < B; i++) s += dy[i * N + j];
        g[j] = float(s);
    }
    store_or_update(db, g, opt);
}

size_t ref_scratch_floats(Scratch, Product, int, int) { return 0; }  // serial loops, no packing

// The bf16 (low 16 bits of `bits`, or high if `high`) as a double.
double bf16_value(uint32_t bits, bool high) {
    const uint32_t f = high ? bits & 0xffff0000u : bits << 16;
    float x;
    std::memcpy(&x, &f, sizeof x);
    return x;
}

void ref_bf16gemm(const Bf16Gemm& g) {
    for (int i = 0; i < g.M; i++)
        for (int j = 0; j < g.N; j++) {
            double s = g.bias ? g.bias[j] : 0.0;
            for (int p = 0; p < g.P; p++) {
                const uint32_t a = g.A[i * g.a_si + p * g.a_sp], b = g.B[ptrdiff_t(p) * g.ldb + j];
                s += bf16_value(a, false) * bf16_value(b, false) + bf16_value(a, true) * bf16_value(b, true);
            }
            const ptrdiff_t at = ptrdiff_t(i) * g.ldc + j;
            store_epilogue(g.C + at, float(s), g.relu, g.mask ? g.mask[at] : 1.0f);
        }
}

bool ref_update_into(const float* params, const float* s1, const float* s2, const float* grads, int64_t n,
                     const OptStep& step, float* out_params, float* out_s1, float* out_s2) {
    std::copy(params, params + n, out_params);
    std::copy(s1, s1 + n, out_s1);
    std::copy(s2, s2 + n, out_s2);
    ref_update(out_params, out_s1, out_s2, grads, n, step);
    for (const float* b : {out_params, out_s1, out_s2})
        for (int64_t i = 0; i < n; i++)
            if (!std::isfinite(b[i])) return false;
    return true;
}

void ref_update_pack_bf16(float* W, float* s1, float* s2, const float* grads, int rows, int cols,
                          const OptStep& step, uint32_t* w_pairs, int ld, uint32_t* wt_pairs, int ldt) {
    ref_update(W, s1, s2, grads, int64_t(rows) * cols, step);
    kernels_generic().pack_bf16_pairs(w_pairs, ld, W, rows, cols, false);
    if (wt_pairs) kernels_generic().pack_bf16_pairs(wt_pairs, ldt, W, cols, rows, true);
}

}  // namespace

// The packing is a layout, not arithmetic: the reference uses the generic kernels' (its
// rounding is checked bit by bit against NumPy's in the tests).
const Kernels& kernels_ref() {
    static const Kernels kernels{"reference", ref_scratch_floats, ref_nn, ref_nt, ref_tn, ref_column_sums,
                                 ref_update, ref_update_into, ref_add_penalty, ref_bf16gemm, kernels_generic().pack_bf16_rows,
                                 kernels_generic().pack_bf16_pairs, ref_update_pack_bf16, ref_packed_b_floats,
                                 ref_pack_b, ref_nn};
    return kernels;
}

}  // namespace pydfn
