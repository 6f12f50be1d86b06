// Softmax cross-entropy computed from logits (max subtracted, log-sum-exp:
// never softmax then log). Rows are shared between the threads of a parallel_region(), which sync_threads()
// before reading the results (threads.hpp).
#pragma once
#include <cstdint>

namespace pydfn {

// losses (B) = -log softmax(logits)[y];  probs (B,C) = softmax(logits).
// Labels must be in [0, C): callers check them.
void softmax_xent_forward(float* losses, float* probs, const float* logits, const int32_t* y,
                          int B, int C);

// dlogits (B,C) = (probs - onehot(y)) * scale; scale = 1/B for the mean loss.
void softmax_xent_backward(float* dlogits, const float* probs, const int32_t* y, float scale,
                           int B, int C);

// Serial sum of losses (B) in double, in row order: the same for any thread count.
double sum_in_order(const float* values, int64_t n);

}  // namespace pydfn
