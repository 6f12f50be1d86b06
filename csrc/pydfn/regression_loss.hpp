// Regression losses on a linear output z (B,n) with float targets t (B,n):
//   mse: loss_i = mean_j (z_ij − t_ij)²;   mae: loss_i = mean_j |z_ij − t_ij|
// and the batch loss is the mean of the rows' losses, i.e. the mean over all
// B·n elements (as PyTorch's MSELoss/L1Loss and Keras define it).
// Rows are shared between the threads of a parallel_region(), which sync_threads()
// before reading the results (threads.hpp).
#pragma once
#include <cstdint>
#include <string>

namespace pydfn {

enum class Loss : int { softmax_xent = 0, mse = 1, mae = 2 };
// A loss by name: "softmax_xent", "mse", "mae" (std::invalid_argument otherwise).
Loss loss_named(const std::string& name);

// losses (B) of z (B,n) against t (B,n); loss is mse or mae.
void regression_loss_forward(float* losses, const float* z, const float* t, Loss loss, int B, int n);

// dz (B,n) = scale/n · 2(z − t) for mse, scale/n · sign(z − t) for mae, with
// sign(0) = 0 (the subgradient PyTorch uses); scale = 1/B for the mean loss.
void regression_loss_backward(float* dz, const float* z, const float* t, Loss loss, float scale,
                              int B, int n);

}  // namespace pydfn
