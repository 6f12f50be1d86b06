// Softmax cross-entropy computed from logits (max subtracted, log-sum-exp:
// never softmax then log). Rows are shared between the threads of a parallel_region(), which sync_threads()
// before reading the results (threads.hpp).
#pragma once
#include <cstdint>

namespace pydfn {

// With label smoothing eps in [0, 1] (PyTorch's CrossEntropyLoss(label_smoothing=eps)) the
// target of row i is t = (1-eps)·onehot(y[i]) + eps/C; eps = 0 is the plain loss, bit for bit.
// losses (B) = -Σ_j t_j·log softmax(logits)_j;  probs (B,C) = softmax(logits).
// Labels must be in [0, C): callers check them.
void softmax_xent_forward(float* losses, float* probs, const float* logits, const int32_t* y,
                          int B, int C, float label_smoothing = 0.0f);

// probs (B,C) = softmax(logits) row by row, computed as softmax_xent_forward computes it.
void softmax_rows(float* probs, const float* logits, int B, int C);

// dlogits (B,C) = (probs - t) * scale; scale = 1/B for the mean loss.
void softmax_xent_backward(float* dlogits, const float* probs, const int32_t* y, float scale,
                           int B, int C, float label_smoothing = 0.0f);

// Throws std::invalid_argument unless every label y[0..n) is in [0, C), naming the first that is not.
void check_labels(const int32_t* y, int64_t n, int C);

// Serial sum of losses (B) in double, in row order: the same for any thread count.
double sum_in_order(const float* values, int64_t n);

}  // namespace pydfn
