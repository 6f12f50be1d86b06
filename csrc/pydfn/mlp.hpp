// The network: dense layers with ReLU between them, logits out, softmax
// cross-entropy loss, trained with Adam. Parameters, gradients and Adam's m and
// v each live in one flat allocation laid out as [W1 (in,out), b1, W2, b2, …];
// activations are sized for the largest batch seen, so a step allocates nothing.
#pragma once
#include <cstdint>
#include <vector>

#include "pydfn/adam.hpp"
#include "pydfn/common.hpp"
#include "pydfn/kernels/kernels.hpp"

namespace pydfn {

class MLP {
  public:
    explicit MLP(const std::vector<int>& sizes);

    const std::vector<int>& sizes() const { return sizes_; }
    int num_layers() const { return int(sizes_.size()) - 1; }
    int64_t num_params() const { return num_params_; }
    int64_t weight_offset(int layer) const { return offsets_[layer]; }
    int64_t bias_offset(int layer) const;

    float* params() { return params_.data(); }
    float* grads() { return grads_.data(); }
    float* adam_m() { return m_.data(); }
    float* adam_v() { return v_.data(); }
    int64_t adam_step() const { return adam_step_; }
    void set_adam_step(int64_t t);
    void reset_adam();  // m = v = 0, t = 0

    // Gradients of the mean loss over a batch x (B,in), y (B) into grads();
    // returns the mean loss. Parameters are not changed.
    double compute_gradients(const float* x, const int32_t* y, int B);
    // One Adam step from grads(): t += 1, then the update.
    void apply_adam(const AdamConfig& config);

    // Trains on the rows order[0..n) of X (N,in), y (N) in minibatches of
    // batch_size (the last may be smaller). batch_loss and batch_correct, if not
    // null, receive each batch's mean loss and number of correct predictions.
    // Stops before any update whose loss is not finite; returns how many
    // batches were applied.
    int64_t train_epoch(const float* X, const int32_t* y, const int64_t* order, int64_t n,
                        int batch_size, const AdamConfig& config, float* batch_loss,
                        int64_t* batch_correct);

    // logits (N,classes) of X (N,in), computed batch_size rows at a time.
    void predict_logits(float* logits, const float* X, int64_t n, int batch_size);
    // Sum of the losses and number of correct predictions over X (N,in), y (N).
    void evaluate(double* loss_sum, int64_t* correct, const float* X, const int32_t* y, int64_t n,
                  int batch_size);

  private:
    void reserve(int B);
    // The pieces of a step; each must be entered by every thread of a parallel region.
    void forward(const float* x, int B);
    void loss_forward(const int32_t* y, int B);  // per-row losses and probabilities
    // Gradients into grads(), or, given an Adam step, applied to the
    // parameters as soon as each is computed (never stored).
    void backward(const float* x, const int32_t* y, int B, const AdamStep* adam);
    void gather(const float* X, const int32_t* y, const int64_t* rows, int B);
    int64_t count_correct(const int32_t* y, int B) const;
    const float* layer_output(int layer) const { return acts_.data() + act_offsets_[layer] * capacity_; }
    float* layer_output(int layer) { return acts_.data() + act_offsets_[layer] * capacity_; }

    std::vector<int> sizes_;
    std::vector<int64_t> offsets_;  // where each layer's W starts in the flat buffers
    int64_t num_params_ = 0;
    Buffer params_, grads_, m_, v_;
    int64_t adam_step_ = 0;
    const Kernels& kernels_;

    // Per-batch workspace, grown to the largest batch seen.
    int capacity_ = 0;
    std::vector<int64_t> act_offsets_;  // per layer, in units of capacity_ rows
    int max_width_ = 0;
    Buffer acts_, probs_, losses_, dbuf_a_, dbuf_b_, x_batch_;
    std::vector<int32_t> y_batch_;
};

}  // namespace pydfn
