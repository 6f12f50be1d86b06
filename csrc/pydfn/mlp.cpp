#include "pydfn/mlp.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "pydfn/dense.hpp"
#include "pydfn/softmax_xent.hpp"
#include "pydfn/threads.hpp"

namespace pydfn {

MLP::MLP(const std::vector<int>& sizes) : sizes_(sizes), kernels_(kernels_best()) {
    check(sizes.size() >= 2, "an MLP needs at least an input and an output size");
    for (size_t l = 0; l < sizes.size(); l++)
        check(sizes[l] >= 1, "layer size " + std::to_string(l) + " must be >= 1, got " +
                                 std::to_string(sizes[l]));
    int64_t width_sum = 0;
    for (int l = 0; l < num_layers(); l++) {
        offsets_.push_back(num_params_);
        num_params_ += int64_t(sizes_[l]) * sizes_[l + 1] + sizes_[l + 1];
        act_offsets_.push_back(width_sum);
        width_sum += sizes_[l + 1];
    }
    act_offsets_.push_back(width_sum);
    max_width_ = *std::max_element(sizes_.begin(), sizes_.end());
    for (Buffer* b : {&params_, &grads_, &m_, &v_}) {
        b->grow_to(size_t(num_params_));
        std::fill(b->data(), b->data() + num_params_, 0.0f);
    }
}

int64_t MLP::bias_offset(int layer) const {
    return offsets_[layer] + int64_t(sizes_[layer]) * sizes_[layer + 1];
}

void MLP::set_adam_step(int64_t t) {
    check(t >= 0, "the Adam step must be >= 0, got " + std::to_string(t));
    adam_step_ = t;
}

void MLP::reset_adam() {
    std::fill(m_.data(), m_.data() + num_params_, 0.0f);
    std::fill(v_.data(), v_.data() + num_params_, 0.0f);
    adam_step_ = 0;
}

void MLP::reserve(int B) {
    if (B <= capacity_) return;
    const size_t rows = size_t(B);
    acts_.grow_to(rows * act_offsets_.back());
    probs_.grow_to(rows * sizes_.back());
    losses_.grow_to(rows);
    dbuf_a_.grow_to(rows * max_width_);
    dbuf_b_.grow_to(rows * max_width_);
    x_batch_.grow_to(rows * sizes_[0]);
    y_batch_.resize(rows);
    capacity_ = B;
}

void MLP::forward(const float* x, int B) {
    const float* input = x;
    for (int l = 0; l < num_layers(); l++) {
        const bool relu = l + 1 < num_layers();
        dense_forward(kernels_, layer_output(l), input, params() + weight_offset(l),
                      params() + bias_offset(l), relu, B, sizes_[l], sizes_[l + 1]);
        input = layer_output(l);
    }
}

void MLP::loss_forward(const int32_t* y, int B) {
    softmax_xent_forward(losses_.data(), probs_.data(), layer_output(num_layers() - 1), y, B,
                         sizes_.back());
}

void MLP::backward(const float* x, const int32_t* y, int B, const AdamStep* adam) {
    float* dy = dbuf_a_.data();
    float* dx = dbuf_b_.data();
    softmax_xent_backward(dy, probs_.data(), y, 1.0f / float(B), B, sizes_.back());
    for (int l = num_layers() - 1; l >= 0; l--) {
        const float* input = l == 0 ? x : layer_output(l - 1);
        float* dx_or_null = l > 0 ? dx : nullptr;
        const int64_t w = weight_offset(l), b = bias_offset(l);
        if (adam)
            dense_backward_adam(kernels_, dx_or_null, params() + w, params() + b,
                                {adam_m() + w, adam_v() + w, *adam},
                                {adam_m() + b, adam_v() + b, *adam}, dy, input,
                                /*mask_relu=*/l > 0, B, sizes_[l], sizes_[l + 1]);
        else
            dense_backward(kernels_, dx_or_null, grads() + w, grads() + b, dy, input,
                           params() + w, /*mask_relu=*/l > 0, B, sizes_[l], sizes_[l + 1]);
        std::swap(dy, dx);
    }
}

void MLP::gather(const float* X, const int32_t* y, const int64_t* rows, int B) {
    const int in = sizes_[0];
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        std::memcpy(x_batch_.data() + int64_t(i) * in, X + rows[i] * in, sizeof(float) * in);
        y_batch_[i] = y[rows[i]];
    }
    sync_threads();
}

int64_t MLP::count_correct(const int32_t* y, int B) const {
    const int classes = sizes_.back();
    const float* logits = layer_output(num_layers() - 1);
    int64_t correct = 0;
    for (int i = 0; i < B; i++) {
        const float* z = logits + int64_t(i) * classes;
        correct += int(std::max_element(z, z + classes) - z) == y[i];
    }
    return correct;
}

double MLP::compute_gradients(const float* x, const int32_t* y, int B) {
    reserve(B);
    parallel_region([&] {
        forward(x, B);
        loss_forward(y, B);
        backward(x, y, B, nullptr);
    });
    return sum_in_order(losses_.data(), B) / B;
}

void MLP::apply_adam(const AdamConfig& config) {
    const AdamStep step = pydfn::adam_step(config, adam_step_ + 1);
    adam_step_++;
    parallel_region([&] {
        kernels_.adam_update(params(), adam_m(), adam_v(), grads(), num_params_, step);
    });
}

int64_t MLP::train_epoch(const float* X, const int32_t* y, const int64_t* order, int64_t n,
                         int batch_size, const AdamConfig& config, float* batch_loss,
                         int64_t* batch_correct) {
    check(batch_size >= 1, "batch_size must be >= 1");
    if (n == 0) return 0;
    reserve(int(std::min<int64_t>(batch_size, n)));
    const int64_t num_batches = (n + batch_size - 1) / batch_size;
    int64_t applied = 0;
    bool diverged = false;
    AdamStep step{};
    // One parallel region for the whole epoch: the threads meet at the
    // worksharing loops' barriers, never fork or join per batch.
    parallel_region([&] {
        for (int64_t b = 0; b < num_batches; b++) {
            const int64_t start = b * batch_size;
            const int B = int(std::min<int64_t>(batch_size, n - start));
            gather(X, y, order + start, B);
            forward(x_batch_.data(), B);
            loss_forward(y_batch_.data(), B);
            if (thread_index() == 0) {
                const double loss = sum_in_order(losses_.data(), B) / B;
                if (batch_loss) batch_loss[b] = float(loss);
                if (batch_correct) batch_correct[b] = count_correct(y_batch_.data(), B);
                if (std::isfinite(loss)) {
                    step = pydfn::adam_step(config, ++adam_step_);
                    applied++;
                } else {
                    diverged = true;
                }
            }
            sync_threads();  // the barrier here publishes step and diverged to every thread
            if (diverged) break;
            backward(x_batch_.data(), y_batch_.data(), B, &step);
        }
    });
    return applied;
}

void MLP::predict_logits(float* logits, const float* X, int64_t n, int batch_size) {
    check(batch_size >= 1, "batch_size must be >= 1");
    if (n == 0) return;
    reserve(int(std::min<int64_t>(batch_size, n)));
    const int in = sizes_[0], classes = sizes_.back();
    parallel_region([&] {
        for (int64_t start = 0; start < n; start += batch_size) {
            const int B = int(std::min<int64_t>(batch_size, n - start));
            forward(X + start * in, B);
            const float* out = layer_output(num_layers() - 1);
#pragma omp for schedule(static) nowait
            for (int i = 0; i < B; i++)
                std::memcpy(logits + (start + i) * classes, out + int64_t(i) * classes,
                            sizeof(float) * classes);
            sync_threads();
        }
    });
}

void MLP::evaluate(double* loss_sum, int64_t* correct, const float* X, const int32_t* y,
                   int64_t n, int batch_size) {
    check(batch_size >= 1, "batch_size must be >= 1");
    *loss_sum = 0.0;
    *correct = 0;
    if (n == 0) return;
    reserve(int(std::min<int64_t>(batch_size, n)));
    const int in = sizes_[0];
    parallel_region([&] {
        for (int64_t start = 0; start < n; start += batch_size) {
            const int B = int(std::min<int64_t>(batch_size, n - start));
            forward(X + start * in, B);
            loss_forward(y + start, B);
            if (thread_index() == 0) {
                *loss_sum += sum_in_order(losses_.data(), B);
                *correct += count_correct(y + start, B);
            }
            sync_threads();
        }
    });
}

}  // namespace pydfn
