// Naive reference kernels: plain loops, never optimised, in double.
#include <algorithm>
#include <cmath>
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

void ref_nt(float* C, const float* A, const float* B, const float* mask, int M, int N, int K) {
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += double(A[i * K + k]) * B[j * K + k];
            C[i * N + j] = mask && mask[i * N + j] <= 0 ? 0.0f : float(s);
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

// The gradient g(n), then stored or applied by Adam to C.
void store_or_adam(float* C, const std::vector<float>& g, const AdamTarget* adam) {
    if (adam)
        ref_adam(C, adam->m, adam->v, g.data(), int64_t(g.size()), adam->step);
    else
        std::copy(g.begin(), g.end(), C);
}

void ref_tn(float* C, const float* A, const float* B, int M, int N, int K,
            const AdamTarget* adam) {
    std::vector<float> g(size_t(M) * N);
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += double(A[k * M + i]) * B[k * N + j];
            g[size_t(i) * N + j] = float(s);
        }
    store_or_adam(C, g, adam);
}

void ref_column_sums(float* db, const float* dy, int B, int N, const AdamTarget* adam) {
    std::vector<float> g(N);
    for (int j = 0; j < N; j++) {
        double s = 0;
        for (int i = 0; i < B; i++) s += dy[i * N + j];
        g[j] = float(s);
    }
    store_or_adam(db, g, adam);
}

}  // namespace

const Kernels& kernels_ref() {
    static const Kernels kernels{"reference", ref_nn, ref_nt, ref_tn, ref_column_sums, ref_adam};
    return kernels;
}

}  // namespace pydfn
