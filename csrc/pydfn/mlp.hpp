// The network: dense layers with a hidden activation (ReLU, tanh, sigmoid)
// between them, a linear output, and a loss (softmax cross-entropy on the
// output as logits, or mse/mae regression), trained with one of the
// optimizers of optim.hpp, with optional l1/l2 weight penalties. Parameters,
// gradients and the optimizer's two state buffers each live in one flat
// allocation laid out as [W1 (in,out), b1, W2, b2, …]; activations are sized
// for the largest batch seen, so a step allocates nothing.
//
// Threads: predict and evaluate only read the network's state (each
// call has its own forward buffers), so any number may run at once; every
// other non-const method writes it and must run alone.
#pragma once
#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "pydfn/common.hpp"
#include "pydfn/dense.hpp"
#include "pydfn/dropout.hpp"
#include "pydfn/kernels/kernels.hpp"
#include "pydfn/optim.hpp"
#include "pydfn/regression_loss.hpp"

namespace pydfn {

// The precision of the matrix products. bf16: their inputs (activations,
// weights, the gradients they multiply) are rounded to bf16 and multiplied in
// pairs (kernels.hpp, Bf16Gemm); sums, the parameters, the optimizer state,
// the loss and softmax stay float32.
enum class Precision : int { fp32 = 0, bf16 = 1 };
// A precision by name: "fp32", "bf16" (std::invalid_argument otherwise).
Precision precision_named(const std::string& name);

// The buffers of a forward pass, grown to the largest batch seen: the
// activations, the losses, and for bf16 the packed operands. Training keeps
// one in the network; each prediction makes its own.
struct Workspace {
    int max_threads = 0;  // > 0: the most threads its calls use (else the core's count)
    int capacity = 0;
    Buffer acts, dropped, probs, losses, w_pairs, x_rows, x_pairs;
    ScratchNeed scratch_need;  // the kernels' per-thread scratch, for capacity rows
    KernelScratch scratch;
};

// What the output is compared with: class labels (N) for softmax_xent, or
// float targets (N,out) for a regression loss. Exactly one is set.
struct Targets {
    const int32_t* labels = nullptr;
    const float* values = nullptr;
    // Optional per-row weights (N) of the loss (Keras's sample_weight): the batch's
    // loss is Σ w_i·l_i / B. Used in training only; evaluate ignores them.
    const float* weights = nullptr;
};

// The number of minibatches of batch_size (>= 1, else std::invalid_argument)
// rows in n rows, the last one holding the remainder.
int64_t batch_count(int64_t n, int batch_size);

// Finite inputs whose outputs overflowed float32 inside the network.
struct OutputOverflow : std::overflow_error {
    using std::overflow_error::overflow_error;
};

class MLP {
  public:
    MLP(const std::vector<int>& sizes, Activation activation = Activation::relu,
        Loss loss = Loss::softmax_xent, Precision precision = Precision::fp32);

    const std::vector<int>& sizes() const { return sizes_; }
    Activation activation() const { return activation_; }
    Loss loss() const { return loss_; }
    Precision precision() const { return precision_; }
    int num_layers() const { return int(sizes_.size()) - 1; }
    int64_t num_params() const { return num_params_; }
    int64_t weight_offset(int layer) const { return offsets_[layer]; }
    int64_t bias_offset(int layer) const;

    float* params() { return params_.data(); }
    float* grads() { return grads_.data(); }
    float* opt_s1() { return s1_.data(); }
    float* opt_s2() { return s2_.data(); }
    int64_t opt_step_count() const { return step_; }
    void set_opt_step_count(int64_t t);  // 0 <= t <= kMaxOptStep
    void reset_optimizer();  // s1 = s2 = 0, t = 0

    // Penalties on the weights (never the biases): the cost is
    // mean loss + l1·Σ|W| + l2·ΣW².
    void set_penalty(float l1, float l2);
    float l1() const { return l1_; }
    float l2() const { return l2_; }
    // l1·Σ|W| + l2·ΣW² of the current weights, summed in a fixed order.
    double penalty() const;

    // Label smoothing eps in [0, 1] of the softmax_xent loss (softmax_xent.hpp),
    // in training and evaluation alike, as PyTorch's CrossEntropyLoss reports it.
    void set_label_smoothing(float eps);
    float label_smoothing() const { return label_smoothing_; }

    // Inverted dropout on each hidden layer's output (rates[l] for hidden
    // layer l, each in [0, 1)), in training only: train_batches and
    // compute_gradients. Step t's masks come from (seed, t, layer, row, col),
    // t the optimizer step the gradients are for.
    void set_dropout(const std::vector<float>& rates, uint64_t seed);

    // Gradients of the cost (mean loss + penalty) over a batch x (B,in) into
    // grads(); returns the cost. Parameters are not changed.
    double compute_gradients(const float* x, Targets y, int B);
    // One optimizer step from grads(): t += 1, then the update. Returns false,
    // with nothing changed, when the update would leave the parameters or the
    // optimizer state non-finite (an overflow).
    bool apply_update(const OptConfig& config);

    // Throws std::invalid_argument unless y suits rows rows: labels in
    // [0, classes) for softmax_xent, sample weights (if any) finite and >= 0.
    void check_targets(Targets y, int64_t rows) const;

    // Trains on the rows order[0..n) of X (rows,in), y (checked by
    // check_targets) in minibatches of batch_size (the last may be smaller):
    // an epoch, or a slice of one. batch_loss and batch_correct, if not null,
    // receive each batch's cost and number of correct predictions (0 for
    // regression). lr, if not null, holds one learning rate per batch
    // (finite, >= 0), used instead of config.lr: a schedule with no call per
    // batch. Stops before any update whose cost is not finite; returns how
    // many batches were applied. Either every batch is applied and the
    // parameters and optimizer state end finite, or the call is undone:
    // parameters, state and step as before it (last_call_undone() says which).
    // batch_size, order and lr are checked before anything changes.
    int64_t train_batches(const float* X, int64_t rows, Targets y, const int64_t* order, int64_t n,
                          int batch_size, const OptConfig& config, float* batch_loss,
                          int64_t* batch_correct, const float* lr = nullptr);

    // What a prediction writes: the output layer, or its softmax (classifiers).
    enum class Output { logits, probabilities };
    // The weights packed for the forward products, once per change of the parameters
    // (Model keeps them until a write): predictions given it pack nothing, with the same bits.
    // fp32: each layer's W in panels (kernels.pack_b), read contiguously; bf16: the
    // rounded pairs a prediction would otherwise pack on every call.
    struct PackedWeights {
        std::vector<Buffer> layers;  // fp32
        Buffer w_pairs;              // bf16, at w_pairs_at_
    };
    PackedWeights pack_for_inference() const;
    // outputs (N,out) of X (N,in), computed batch_size rows at a time, in ws
    // (grown to min(n, batch_size) rows; a call that fits it allocates nothing).
    // packed, if given, is pack_for_inference() of the current parameters.
    // X holding NaN or infinity is an invalid_argument naming its first such element
    // (through a ReLU it could come out as finite garbage); finite inputs that overflow
    // inside the network throw OutputOverflow: the outputs are never NaN or infinite.
    void predict(Workspace& ws, float* out, const float* X, int64_t n, int batch_size, Output what,
                 const PackedWeights* packed = nullptr) const;
    // The same in a workspace of the call's own.
    void predict(float* out, const float* X, int64_t n, int batch_size, Output what) const;
    // Sum of the rows' losses (no penalty) and number of correct predictions
    // (0 for regression) over X (N,in), y.
    void evaluate(double* loss_sum, int64_t* correct, const float* X, Targets y, int64_t n,
                  int batch_size) const;

    bool last_call_undone() const { return undone_; }

  private:
    // The undo of train_batches: a copy of the parameters, the optimizer
    // state and the step taken before it (one pass each, O(params) per call,
    // not per batch), restored when the call ends non-finite.
    void save_undo();
    void undo();
    // What a training call may change, each with its undo copy.
    std::array<std::pair<Buffer*, Buffer*>, 3> undo_pairs() {
        return {{{&params_, &undo_params_}, {&s1_, &undo_s1_}, {&s2_, &undo_s2_}}};
    }
    bool state_finite() const;  // params, s1 and s2 hold no NaN or infinity
    void reserve(int B);  // training's buffers, ws_ included
    // ws's buffers for B rows (and dropout's and the backward's scratch, when training).
    void reserve(Workspace& ws, int B, bool training) const;
    // parallel_region(body) with ws's kernel scratch reserved first: a
    // std::bad_alloc leaves before any thread starts and anything changes.
    template <class Body>
    void run_parallel(Workspace& ws, Body&& body) const {
        parallel_region(ws.scratch, ws.scratch_need, body, ws.max_threads);
    }
    bool bf16() const { return precision_ == Precision::bf16; }
    // bf16: rounds and packs every layer's W into w_pairs (at w_pairs_at_) for the
    // forward products (for training: into ws_, and Wᵀ for the dx products too);
    // sync_threads() before they are read.
    void pack_weights(Buffer& w_pairs) const;
    void pack_weights_for_training();
    // bf16: where layer l's packed operands are (W's in packed, if given).
    Bf16Operands bf16_operands(Workspace& ws, int layer, const PackedWeights* packed = nullptr) const;  // forward's
    Bf16Operands bf16_training_operands(int layer);  // and the backward's
    uint32_t* x_rows_of(Workspace& ws, int layer) const;   // layer's input by rows
    uint32_t* x_pairs_of(Workspace& ws, int layer) const;  // and paired along the batch
    // The pieces of a step; each must be entered by every thread of a parallel region.
    // forward's outputs are complete on return, the losses' are not (sync_threads()
    // first); backward's gradients are, but not the input layer's W update.
    // mask_step: the step whose dropout masks apply (training), or 0 for none.
    void forward(Workspace& ws, const float* x, int B, int64_t mask_step,
                 const PackedWeights* packed = nullptr) const;
    void loss_forward(Workspace& ws, Targets y, int B) const;  // per-row losses (and probabilities)
    void loss_forward_backward(Targets y, int B);  // and the loss's gradient dy, into dbuf_a_
    // From dy in dbuf_a_: gradients into grads(), or, given a step, applied to
    // the parameters as soon as each is computed (never stored).
    void backward(const float* x, int B, int64_t mask_step, const OptStep* step);
    void penalty_parts(std::vector<double>& parts) const;  // per-block sums of the penalty
    static double sum_penalty_parts(const std::vector<double>& parts);
    Targets gather(const float* X, Targets y, const int64_t* rows, int B);
    // Asks the CPU to bring rows of X into cache ahead of their gather: a
    // minibatch's rows are scattered over the data, and waiting on memory for
    // each was most of the gather's time.
    void prefetch_rows(const float* X, const int64_t* rows, int B) const;
    int64_t count_correct(const Workspace& ws, const int32_t* y, int B) const;
    Activation activation_of(int layer) const {
        return layer + 1 < num_layers() ? activation_ : Activation::none;
    }
    const float* layer_output(const Workspace& ws, int layer) const {
        return ws.acts.data() + act_offsets_[layer] * ws.capacity;
    }
    float* layer_output(Workspace& ws, int layer) const {
        return ws.acts.data() + act_offsets_[layer] * ws.capacity;
    }
    bool drops(int layer, int64_t mask_step) const {
        return mask_step > 0 && layer + 1 < num_layers() && dropout_[layer] > 0.0f;
    }
    DropoutMask mask_of(int layer, int64_t mask_step) const {
        return dropout_mask(dropout_seed_, mask_step, layer, dropout_[layer]);
    }
    // Layer l's output after dropout: the next layer's input in training.
    float* dropped_output(Workspace& ws, int layer) const {
        return ws.dropped.data() + act_offsets_[layer] * ws.capacity;
    }
    // What layer l reads: x for the first, else the previous output (after dropout, if any).
    const float* layer_input(Workspace& ws, int layer, const float* x, int64_t mask_step) const {
        if (layer == 0) return x;
        return drops(layer - 1, mask_step) ? dropped_output(ws, layer - 1) : layer_output(ws, layer - 1);
    }

    std::vector<int> sizes_;
    Activation activation_;
    Loss loss_;
    float label_smoothing_ = 0.0f;
    Precision precision_;
    std::vector<int64_t> offsets_;  // where each layer's W starts in the flat buffers
    int64_t num_params_ = 0;
    Buffer params_, grads_, s1_, s2_;
    int64_t step_ = 0;
    Buffer undo_params_, undo_s1_, undo_s2_;  // allocated by the first training call
    int64_t undo_step_ = 0;
    bool undone_ = false;
    float l1_ = 0.0f, l2_ = 0.0f;
    std::vector<int64_t> penalty_blocks_;  // [start, end) pairs covering every W
    std::vector<double> penalty_parts_;
    std::vector<float> dropout_;  // per hidden layer; 0: none
    uint64_t dropout_seed_ = 0;
    const Kernels& kernels_;

    // Training's per-batch buffers, grown to the largest batch seen (ws_.capacity).
    Workspace ws_;
    std::vector<int64_t> act_offsets_;  // per layer, in units of capacity rows
    int max_width_ = 0;
    Buffer dbuf_a_, dbuf_b_, x_batch_, t_batch_;
    std::vector<int32_t> y_batch_;
    std::vector<float> w_batch_;
    // bf16 operands, as uint32 pairs (dense.hpp, Bf16Operands): per layer, W and Wᵀ
    // packed at these offsets (w_pairs_at_ ends with the total); x by rows (⌈in/2⌉ per
    // row) and paired along the batch (bf16_ld(in) per pair of rows), at offsets in
    // units of capacity rows / pairs. W's pairs are in a Workspace, Wᵀ's training's only.
    std::vector<int64_t> w_pairs_at_, wt_pairs_at_, x_rows_at_, x_pairs_at_;
    Buffer wt_pairs_, dy_rows_, dy_pairs_;
};

}  // namespace pydfn
