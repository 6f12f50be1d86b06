// Naive reference products: plain loops, never optimised, accumulate in double.
#include "pydfn/gemm/gemm.hpp"

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

}  // namespace

const GemmKernels& gemm_ref() {
    static const GemmKernels kernels{"reference", ref_nn, ref_nt, ref_tn};
    return kernels;
}

}  // namespace pydfn
