// Naive reference kernels: plain loops, never optimised, in double.
#include <cmath>

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

void ref_nt(float* C, const float* A, const float* B, const float* mask, int M, int N, int K) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += double(A[i * K + k]) * B[j * K + k];
            C[i * N + j] = mask && mask[i * N + j] <= 0 ? 0.0f : float(s);
        }
}

void ref_tn(float* C, const float* A, const float* B, int M, int N, int K) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += double(A[k * M + i]) * B[k * N + j];
            C[i * N + j] = float(s);
        }
}

void ref_adam(float* params, float* m, float* v, const float* grads, int64_t n,
              const AdamStep& s) {
    for (int64_t i = 0; i < n; i++) {
        const double g = grads[i];
        m[i] = float(s.beta1 * double(m[i]) + (1.0 - s.beta1) * g);
        v[i] = float(s.beta2 * double(v[i]) + (1.0 - s.beta2) * g * g);
        params[i] = float(params[i] - double(s.step_size) * m[i] /
                                          (std::sqrt(double(v[i])) * s.inv_bc2_sqrt + s.eps));
    }
}

}  // namespace

const Kernels& kernels_ref() {
    static const Kernels kernels{"reference", ref_nn, ref_nt, ref_tn, ref_adam};
    return kernels;
}

}  // namespace pydfn
