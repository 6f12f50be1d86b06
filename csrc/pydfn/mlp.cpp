#include "pydfn/mlp.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>

#include "pydfn/softmax_xent.hpp"
#include "pydfn/threads.hpp"

namespace pydfn {

Precision precision_named(const std::string& name) {
    if (name == "fp32") return Precision::fp32;
    if (name == "bf16") return Precision::bf16;
    throw std::invalid_argument("precision must be 'fp32' or 'bf16', got '" + name + "'");
}

namespace {

// Whether a float's bits are inf or NaN (all-ones exponent): integer tests, so loops over
// them vectorize without fast-math.
inline uint32_t non_finite(uint32_t bits) { return uint32_t((bits & 0x7f800000u) == 0x7f800000u); }

// Whether any of p[0..n) is NaN or infinite.
bool any_non_finite(const float* p, int64_t n) {
    const uint32_t* bits = reinterpret_cast<const uint32_t*>(p);
    uint32_t bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= non_finite(bits[i]);
    return bad != 0;
}

// max |p[i]| over p[0..n), for a message ("3.9", "7.2e+19").
std::string largest_magnitude(const float* p, int64_t n) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; i++) m = std::max(m, std::fabs(p[i]));
    char text[32];
    std::snprintf(text, sizeof text, "%.3g", double(m));
    return text;
}

// X (n rows of `in`) must be finite: the first NaN or infinity is named.
void check_finite_inputs(const float* X, int64_t n, int in) {
    constexpr int64_t kRowsPerScan = 256;  // rows scanned at once, without a branch per element
    for (int64_t r0 = 0; r0 < n; r0 += kRowsPerScan) {
        const int64_t rows = std::min(kRowsPerScan, n - r0);
        if (!any_non_finite(X + r0 * in, rows * in)) continue;
        for (int64_t i = r0 * in;; i++)
            if (!std::isfinite(X[i]))
                throw std::invalid_argument("x contains NaN or infinity (row " + std::to_string(i / in) +
                                            ", column " + std::to_string(i % in) + ")");
    }
}

constexpr int64_t kPenaltyBlock = 1 << 14;  // fixed, so the sum's order ignores the thread count

uint32_t* pairs(Buffer& b, int64_t at) { return reinterpret_cast<uint32_t*>(b.data()) + at; }
const uint32_t* pairs(const Buffer& b, int64_t at) { return reinterpret_cast<const uint32_t*>(b.data()) + at; }
int64_t half_up(int64_t n) { return (n + 1) / 2; }
}

MLP::MLP(const std::vector<int>& sizes, Activation activation, Loss loss, Precision precision)
    : sizes_(sizes), activation_(activation), loss_(loss), precision_(precision),
      kernels_(kernels_best()) {
    check(sizes.size() >= 2, "an MLP needs at least an input and an output size");
    for (size_t l = 0; l < sizes.size(); l++)
        check(sizes[l] >= 1, "layer size " + std::to_string(l) + " must be >= 1, got " +
                                 std::to_string(sizes[l]));
    int64_t width_sum = 0;
    for (int l = 0; l < num_layers(); l++) {
        offsets_.push_back(num_params_);
        const int64_t weights = int64_t(sizes_[l]) * sizes_[l + 1];
        for (int64_t s = 0; s < weights; s += kPenaltyBlock)
            penalty_blocks_.insert(penalty_blocks_.end(),
                                   {num_params_ + s, num_params_ + std::min(weights, s + kPenaltyBlock)});
        num_params_ += weights + sizes_[l + 1];
        act_offsets_.push_back(width_sum);
        width_sum += sizes_[l + 1];
    }
    act_offsets_.push_back(width_sum);
    if (bf16()) {
        int64_t w_at = 0, wt_at = 0, xr_at = 0, xp_at = 0;
        for (int l = 0; l < num_layers(); l++) {
            const int in = sizes_[l], out = sizes_[l + 1];
            w_pairs_at_.push_back(w_at);
            wt_pairs_at_.push_back(wt_at);
            x_rows_at_.push_back(xr_at);
            x_pairs_at_.push_back(xp_at);
            w_at += half_up(in) * bf16_ld(out);
            if (l > 0) wt_at += half_up(out) * bf16_ld(in);  // the input layer has no dx
            xr_at += half_up(in);
            xp_at += bf16_ld(in);
        }
        w_pairs_at_.push_back(w_at);
        x_rows_at_.push_back(xr_at);
        x_pairs_at_.push_back(xp_at);
        wt_pairs_.grow_to(size_t(std::max<int64_t>(wt_at, 1)));
    }
    penalty_parts_.resize(penalty_blocks_.size() / 2);
    dropout_.assign(size_t(num_layers() - 1), 0.0f);
    // The gradient buffers hold dy and dx of layers past the input: never the input's width.
    max_width_ = *std::max_element(sizes_.begin() + 1, sizes_.end());
    for (Buffer* b : {&params_, &grads_, &s1_, &s2_}) {
        b->grow_to(size_t(num_params_));
        std::fill(b->data(), b->data() + num_params_, 0.0f);
    }
}

int64_t MLP::bias_offset(int layer) const {
    return offsets_[layer] + int64_t(sizes_[layer]) * sizes_[layer + 1];
}

void MLP::set_opt_step_count(int64_t t) {
    check(t >= 0 && t <= kMaxOptStep, "the optimizer step must be in [0, " +
                                          std::to_string(kMaxOptStep) + "], got " + std::to_string(t));
    step_ = t;
}

void MLP::reset_optimizer() {
    std::fill(s1_.data(), s1_.data() + num_params_, 0.0f);
    std::fill(s2_.data(), s2_.data() + num_params_, 0.0f);
    step_ = 0;
}

void MLP::set_penalty(float l1, float l2) {
    check(l1 >= 0 && std::isfinite(l1), "l1 must be a finite number >= 0");
    check(l2 >= 0 && std::isfinite(l2), "l2 must be a finite number >= 0");
    l1_ = l1;
    l2_ = l2;
}

void MLP::set_label_smoothing(float eps) {
    check(eps >= 0 && eps <= 1, "label_smoothing must be in [0, 1]");
    check(eps == 0 || loss_ == Loss::softmax_xent, "label_smoothing applies to the softmax_xent loss only");
    label_smoothing_ = eps;
}

void MLP::penalty_parts(std::vector<double>& parts) const {
    const float* p = params_.data();
#pragma omp for schedule(static) nowait
    for (size_t b = 0; b < parts.size(); b++) {
        double abs_sum = 0.0, sq_sum = 0.0;
        for (int64_t i = penalty_blocks_[2 * b]; i < penalty_blocks_[2 * b + 1]; i++) {
            abs_sum += std::fabs(p[i]);
            sq_sum += double(p[i]) * p[i];
        }
        parts[b] = double(l1_) * abs_sum + double(l2_) * sq_sum;
    }
}

double MLP::sum_penalty_parts(const std::vector<double>& parts) {
    double s = 0.0;
    for (double part : parts) s += part;
    return s;
}

double MLP::penalty() const {
    if (l1_ == 0.0f && l2_ == 0.0f) return 0.0;
    std::vector<double> parts(penalty_parts_.size());  // this call's own: penalty() only reads
    parallel_region(threads_for_region(), [&] { penalty_parts(parts); });  // no kernels: no scratch
    return sum_penalty_parts(parts);
}

void MLP::set_dropout(const std::vector<float>& rates, uint64_t seed) {
    check(rates.size() == dropout_.size(), "dropout needs one rate per hidden layer (" +
                                               std::to_string(dropout_.size()) + "), got " +
                                               std::to_string(rates.size()));
    for (float r : rates) check(r >= 0.0f && r < 1.0f, "dropout rates must be in [0, 1)");
    dropout_ = rates;
    dropout_seed_ = seed;
    ws_.capacity = 0;  // the next reserve() sizes the dropped buffer too
}

void MLP::reserve(Workspace& ws, int B, bool training) const {
    if (B <= ws.capacity) return;
    const size_t rows = size_t(B);
    ws.acts.grow_to(rows * act_offsets_.back());
    if (training && std::any_of(dropout_.begin(), dropout_.end(), [](float r) { return r > 0.0f; }))
        ws.dropped.grow_to(rows * act_offsets_.back());
    if (loss_ == Loss::softmax_xent) ws.probs.grow_to(rows * sizes_.back());
    ws.losses.grow_to(rows);
    if (bf16()) {
        ws.w_pairs.grow_to(size_t(w_pairs_at_.back()));
        ws.x_rows.grow_to(rows * x_rows_at_.back());
        ws.x_pairs.grow_to(size_t(half_up(B)) * x_pairs_at_.back());
    }
    ScratchNeed need;  // of dense_forward's products, and dense_backward's when training
    for (int l = 0; l < num_layers(); l++) {
        const int in = sizes_[l], out = sizes_[l + 1];
        need.add(kernels_, Product::nn, out, in);
        if (training && l > 0) need.add(kernels_, Product::nt, in, out);
        if (training) need.add(kernels_, Product::tn, out, B);
    }
    ws.scratch_need = need;
    ws.capacity = B;
}

void MLP::reserve(int B) {
    if (B <= ws_.capacity) return;
    const size_t rows = size_t(B);
    if (loss_ != Loss::softmax_xent) t_batch_.grow_to(rows * sizes_.back());
    dbuf_a_.grow_to(rows * max_width_);
    dbuf_b_.grow_to(rows * max_width_);
    x_batch_.grow_to(rows * sizes_[0]);
    if (loss_ == Loss::softmax_xent) y_batch_.resize(rows);
    w_batch_.resize(rows);
    if (bf16()) {
        dy_rows_.grow_to(rows * half_up(max_width_));
        dy_pairs_.grow_to(size_t(half_up(B)) * bf16_ld(max_width_));
    }
    reserve(ws_, B, true);
}

void MLP::pack_weights(Buffer& w_pairs) const {
    for (int l = 0; l < num_layers(); l++) {
        const int in = sizes_[l], out = sizes_[l + 1];
        const float* W = params_.data() + weight_offset(l);
        kernels_.pack_bf16_pairs(pairs(w_pairs, w_pairs_at_[l]), bf16_ld(out), W, in, out, false);
    }
}

void MLP::pack_weights_for_training() {
    pack_weights(ws_.w_pairs);
    for (int l = 1; l < num_layers(); l++) {
        const int in = sizes_[l], out = sizes_[l + 1];
        kernels_.pack_bf16_pairs(pairs(wt_pairs_, wt_pairs_at_[l]), bf16_ld(in),
                                 params() + weight_offset(l), out, in, true);
    }
}

uint32_t* MLP::x_rows_of(Workspace& ws, int layer) const {
    return pairs(ws.x_rows, x_rows_at_[layer] * ws.capacity);
}
uint32_t* MLP::x_pairs_of(Workspace& ws, int layer) const {
    return pairs(ws.x_pairs, x_pairs_at_[layer] * half_up(ws.capacity));
}

Bf16Operands MLP::bf16_operands(Workspace& ws, int layer, const PackedWeights* packed) const {
    if (!bf16()) return {};
    Bf16Operands ops;
    ops.x_rows = x_rows_of(ws, layer);
    ops.x_pairs = x_pairs_of(ws, layer);
    // The forward only reads W_pairs (training's optimizer writes through the field).
    ops.W_pairs = packed ? const_cast<uint32_t*>(pairs(packed->w_pairs, w_pairs_at_[layer]))
                         : pairs(ws.w_pairs, w_pairs_at_[layer]);
    return ops;
}

Bf16Operands MLP::bf16_training_operands(int layer) {
    Bf16Operands ops = bf16_operands(ws_, layer);
    if (!bf16()) return ops;
    ops.Wt_pairs = pairs(wt_pairs_, wt_pairs_at_[layer]);
    ops.dy_rows = pairs(dy_rows_, 0);
    ops.dy_pairs = pairs(dy_pairs_, 0);
    return ops;
}

void MLP::forward(Workspace& ws, const float* x, int B, int64_t mask_step, const PackedWeights* packed) const {
    for (int l = 0; l < num_layers(); l++) {
        const float* input = layer_input(ws, l, x, mask_step);
        const Bf16Operands ops = bf16_operands(ws, l, packed);
        if (bf16()) {
            const int in = sizes_[l];
            kernels_.pack_bf16_rows(x_rows_of(ws, l), int(half_up(in)), input, B, in);
            if (mask_step > 0)  // training: dW's product needs x paired along the batch
                kernels_.pack_bf16_pairs(x_pairs_of(ws, l), bf16_ld(in), input, B, in, false);
            sync_threads();
        }
        dense_forward(kernels_, layer_output(ws, l), input, params_.data() + weight_offset(l),
                      params_.data() + bias_offset(l), activation_of(l), B, sizes_[l], sizes_[l + 1], ops,
                      packed && !bf16() ? packed->layers[size_t(l)].data() : nullptr);
        sync_threads();
        if (drops(l, mask_step)) {
            dropout_forward(dropped_output(ws, l), layer_output(ws, l), mask_of(l, mask_step), B,
                            sizes_[l + 1]);
            sync_threads();
        }
    }
}

void MLP::loss_forward(Workspace& ws, Targets y, int B) const {
    const float* out = layer_output(ws, num_layers() - 1);
    if (loss_ == Loss::softmax_xent)
        softmax_xent_forward(ws.losses.data(), ws.probs.data(), out, y.labels, B, sizes_.back(),
                             label_smoothing_);
    else
        regression_loss_forward(ws.losses.data(), out, y.values, loss_, B, sizes_.back());
    if (y.weights) {
        // The same static split of the rows as the loss's: each thread scales its own rows.
#pragma omp for schedule(static) nowait
        for (int i = 0; i < B; i++) ws.losses.data()[i] *= y.weights[i];
    }
}

void MLP::loss_forward_backward(Targets y, int B) {
    loss_forward(ws_, y, B);
    // Row loops over the rows loss_forward gave this thread: no barrier between.
    if (loss_ == Loss::softmax_xent)
        softmax_xent_backward(dbuf_a_.data(), ws_.probs.data(), y.labels, 1.0f / float(B), B,
                              sizes_.back(), label_smoothing_);
    else
        regression_loss_backward(dbuf_a_.data(), layer_output(ws_, num_layers() - 1), y.values, loss_,
                                 1.0f / float(B), B, sizes_.back());
    if (y.weights) {  // d(Σ w_i·l_i / B) = w_i · (row i's gradient of the unweighted mean)
        const int n = sizes_.back();
#pragma omp for schedule(static) nowait
        for (int i = 0; i < B; i++)
            for (int j = 0; j < n; j++) dbuf_a_.data()[int64_t(i) * n + j] *= y.weights[i];
    }
}

void MLP::backward(const float* x, int B, int64_t mask_step, const OptStep* step) {
    float* dy = dbuf_a_.data();
    float* dx = dbuf_b_.data();
    OptStep step_W{}, step_b{};
    if (step) {
        step_W = step_b = *step;
        step_W.l1 = l1_;  // penalties on the weights only
        step_W.l2 = l2_;
    }
    for (int l = num_layers() - 1; l >= 0; l--) {
        const float* input = layer_input(ws_, l, x, mask_step);
        const float* h = l == 0 ? x : layer_output(ws_, l - 1);  // where f_x' is read from
        float* dx_or_null = l > 0 ? dx : nullptr;
        const Activation f_x = l > 0 ? activation_ : Activation::none;
        const int64_t w = weight_offset(l), b = bias_offset(l);
        const Bf16Operands ops = bf16_training_operands(l);
        if (bf16()) {
            const int out = sizes_[l + 1];
            kernels_.pack_bf16_pairs(pairs(dy_pairs_, 0), bf16_ld(out), dy, B, out, false);
            if (l > 0) kernels_.pack_bf16_rows(pairs(dy_rows_, 0), int(half_up(out)), dy, B, out);
            sync_threads();
        }
        if (step)
            dense_backward_opt(kernels_, dx_or_null, params() + w, params() + b, grads() + w,
                               {opt_s1() + w, opt_s2() + w, step_W},
                               {opt_s1() + b, opt_s2() + b, step_b}, dy, input, h, f_x, B, sizes_[l],
                               sizes_[l + 1], ops);
        else
            dense_backward(kernels_, dx_or_null, grads() + w, grads() + b, dy, input, h,
                           params() + w, f_x, B, sizes_[l], sizes_[l + 1], ops);
        if (l > 0 && drops(l - 1, mask_step)) {
            dropout_backward(dx, mask_of(l - 1, mask_step), B, sizes_[l]);
            sync_threads();
        }
        std::swap(dy, dx);
    }
}

Targets MLP::gather(const float* X, Targets y, const int64_t* rows, int B) {
    const int in = sizes_[0], out = sizes_.back();
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        std::memcpy(x_batch_.data() + int64_t(i) * in, X + rows[i] * in, sizeof(float) * in);
        if (y.labels)
            y_batch_[i] = y.labels[rows[i]];
        else
            std::memcpy(t_batch_.data() + int64_t(i) * out, y.values + rows[i] * out,
                        sizeof(float) * out);
        if (y.weights) w_batch_[i] = y.weights[rows[i]];
    }
    sync_threads();
    Targets batch;
    if (y.weights) batch.weights = w_batch_.data();
    if (y.labels)
        batch.labels = y_batch_.data();
    else
        batch.values = t_batch_.data();
    return batch;
}

void MLP::prefetch_rows(const float* X, const int64_t* rows, int B) const {
    const int64_t bytes = int64_t(sizes_[0]) * sizeof(float);
#pragma omp for schedule(static) nowait
    for (int i = 0; i < B; i++) {
        const char* row = reinterpret_cast<const char*>(X + rows[i] * sizes_[0]);
        for (int64_t at = 0; at < bytes; at += 64) __builtin_prefetch(row + at, 0, 2);
    }
}

int64_t MLP::count_correct(const Workspace& ws, const int32_t* y, int B) const {
    if (!y) return 0;
    const int classes = sizes_.back();
    const float* logits = layer_output(ws, num_layers() - 1);
    int64_t correct = 0;
    for (int i = 0; i < B; i++) {
        const float* z = logits + int64_t(i) * classes;
        correct += int(std::max_element(z, z + classes) - z) == y[i];
    }
    return correct;
}

double MLP::compute_gradients(const float* x, Targets y, int B) {
    reserve(B);
    const bool penalized = l1_ != 0.0f || l2_ != 0.0f;
    run_parallel(ws_, [&] {
        if (penalized) penalty_parts(penalty_parts_);
        if (bf16()) pack_weights_for_training();
        forward(ws_, x, B, step_ + 1);
        loss_forward_backward(y, B);
        sync_threads();
        backward(x, B, step_ + 1, nullptr);
        if (penalized)
            for (int l = 0; l < num_layers(); l++)
                kernels_.add_penalty(grads() + weight_offset(l), params() + weight_offset(l),
                                     int64_t(sizes_[l]) * sizes_[l + 1], l1_, l2_);
    });
    return sum_in_order(ws_.losses.data(), B) / B + (penalized ? sum_penalty_parts(penalty_parts_) : 0.0);
}

void MLP::save_undo() {
    const size_t bytes = sizeof(float) * size_t(num_params_);
    for (auto [state, copy] : undo_pairs()) {
        copy->grow_to(size_t(num_params_));
        std::memcpy(copy->data(), state->data(), bytes);
    }
    undo_step_ = step_;
    undone_ = false;
}

void MLP::undo() {
    const size_t bytes = sizeof(float) * size_t(num_params_);
    for (auto [state, copy] : undo_pairs()) std::memcpy(state->data(), copy->data(), bytes);
    step_ = undo_step_;
    undone_ = true;
}

bool MLP::state_finite() const {
    for (const Buffer* b : {&params_, &s1_, &s2_})
        if (any_non_finite(b->data(), num_params_)) return false;
    return true;
}

bool MLP::apply_update(const OptConfig& config) {
    check(step_ < kMaxOptStep, "the optimizer step count is at its limit");
    const OptStep step = opt_step(config, step_ + 1);
    // The step is written to the undo buffers, the state left as it was; where it is all
    // finite, the buffers change places: one pass, no copy (checking first, then stepping,
    // took two passes; stepping after a copy, three).
    for (auto [state, copy] : undo_pairs()) copy->grow_to(size_t(num_params_));
    std::atomic<bool> finite{true};
    run_parallel(ws_, [&] {
        if (!kernels_.opt_update_into(params(), opt_s1(), opt_s2(), grads(), num_params_, step,
                                      undo_params_.data(), undo_s1_.data(), undo_s2_.data()))
            finite.store(false, std::memory_order_relaxed);
    });
    undone_ = !finite;
    if (!finite) return false;
    for (auto [state, copy] : undo_pairs()) std::swap(*state, *copy);
    step_++;
    return true;
}

int64_t batch_count(int64_t n, int batch_size) {
    check(batch_size >= 1, "batch_size must be >= 1");
    return (n + batch_size - 1) / batch_size;
}

void MLP::check_targets(Targets y, int64_t rows) const {
    if (y.labels) check_labels(y.labels, rows, sizes_.back());
    if (y.weights)
        check(std::all_of(y.weights, y.weights + rows, [](float w) { return w >= 0 && std::isfinite(w); }),
              "sample_weight must be finite and >= 0");
}

int64_t MLP::train_batches(const float* X, int64_t rows, Targets y, const int64_t* order, int64_t n,
                           int batch_size, const OptConfig& config, float* batch_loss,
                           int64_t* batch_correct, const float* lr) {
    const int64_t num_batches = batch_count(n, batch_size);
    check(std::all_of(order, order + n, [&](int64_t r) { return r >= 0 && r < rows; }),
          "order must index rows of x");
    if (lr)
        check(std::all_of(lr, lr + num_batches, [](float v) { return v >= 0 && std::isfinite(v); }),
              "lr must be finite and >= 0");
    undone_ = false;
    if (n == 0) return 0;
    check(num_batches <= kMaxOptStep - step_,
          "the optimizer step count would pass its limit of " + std::to_string(kMaxOptStep));
    reserve(int(std::min<int64_t>(batch_size, n)));
    const bool penalized = l1_ != 0.0f || l2_ != 0.0f;
    const int64_t first_step = step_;
    int64_t applied = 0;
    save_undo();
    // One parallel region for the whole epoch: the threads meet at
    // sync_threads(), never fork or join per batch.
    run_parallel(ws_, [&] {
        // bf16: packed here once (the first gather's barrier comes before any read), then
        // by each layer's optimizer step as it updates W.
        if (bf16()) pack_weights_for_training();
        for (int64_t b = 0; b < num_batches; b++) {
            const int64_t start = b * batch_size;
            const int B = int(std::min<int64_t>(batch_size, n - start));
            const Targets batch = gather(X, y, order + start, B);
            const int64_t t = first_step + b + 1;  // this batch's optimizer step, if it is taken
            if (penalized) penalty_parts(penalty_parts_);  // of the weights this batch's cost is measured at
            forward(ws_, x_batch_.data(), B, t);
            loss_forward_backward(batch, B);
            sync_threads();
            // Every thread sums the losses, in the same order: all reach the same
            // decision without another barrier.
            double loss = sum_in_order(ws_.losses.data(), B) / B;
            if (penalized) loss += sum_penalty_parts(penalty_parts_);
            if (thread_index() == 0) {
                if (batch_loss) batch_loss[b] = float(loss);
                if (batch_correct) batch_correct[b] = count_correct(ws_, batch.labels, B);
            }
            if (!std::isfinite(loss)) break;
            if (thread_index() == 0) applied++;
            OptConfig batch_config = config;
            if (lr) batch_config.lr = lr[b];
            const OptStep step = opt_step(batch_config, t);
            if (b + 1 < num_batches)
                prefetch_rows(X, order + start + B, int(std::min<int64_t>(batch_size, n - start - B)));
            backward(x_batch_.data(), B, t, &step);
        }
    });
    step_ = first_step + applied;
    if (applied < num_batches || !state_finite()) undo();
    return applied;
}

MLP::PackedWeights MLP::pack_for_inference() const {
    PackedWeights packed;
    if (bf16()) {
        packed.w_pairs.grow_to(size_t(w_pairs_at_.back()));
        pack_weights(packed.w_pairs);
        return packed;
    }
    for (int l = 0; l < num_layers(); l++) {
        const int in = sizes_[l], out = sizes_[l + 1];
        packed.layers.emplace_back();
        packed.layers.back().grow_to(kernels_.packed_b_floats(out, in));
        kernels_.pack_b(packed.layers.back().data(), params_.data() + weight_offset(l), out, in);
    }
    return packed;
}

void MLP::predict(Workspace& ws, float* out, const float* X, int64_t n, int batch_size, Output what,
                  const PackedWeights* packed) const {
    check(batch_size >= 1, "batch_size must be >= 1");
    check(what == Output::logits || loss_ == Loss::softmax_xent,
          "probabilities need a classifier (loss softmax_xent)");
    if (n == 0) return;
    check_finite_inputs(X, n, sizes_[0]);
    reserve(ws, int(std::min<int64_t>(batch_size, n)), false);
    const int in = sizes_[0], classes = sizes_.back();
    run_parallel(ws, [&] {
        if (bf16() && !packed) pack_weights(ws.w_pairs);  // the first forward's barrier comes before any read
        for (int64_t start = 0; start < n; start += batch_size) {
            const int B = int(std::min<int64_t>(batch_size, n - start));
            forward(ws, X + start * in, B, 0, packed);
            const float* z = layer_output(ws, num_layers() - 1);
            float* rows = out + start * classes;
            if (what == Output::probabilities) {
                softmax_rows(rows, z, B, classes);
            } else {
#pragma omp for schedule(static) nowait
                for (int i = 0; i < B; i++)
                    std::memcpy(rows + int64_t(i) * classes, z + int64_t(i) * classes, sizeof(float) * classes);
            }
            sync_threads();
        }
    });
    if (any_non_finite(out, n * classes))
        throw OutputOverflow("the network's outputs overflowed float32 for finite inputs (largest |x| " +
                             largest_magnitude(X, n * in) + ", largest |weight| " +
                             largest_magnitude(params_.data(), num_params_) +
                             "): scale the inputs (e.g. standardize them), or, if the weights diverged, "
                             "train with a smaller learning rate");
}

void MLP::predict(float* out, const float* X, int64_t n, int batch_size, Output what) const {
    Workspace ws;  // this call's own: predictions may run at once
    predict(ws, out, X, n, batch_size, what);
}

void MLP::evaluate(double* loss_sum, int64_t* correct, const float* X, Targets y, int64_t n,
                   int batch_size) const {
    check(batch_size >= 1, "batch_size must be >= 1");
    *loss_sum = 0.0;
    *correct = 0;
    if (n == 0) return;
    Workspace ws;  // this call's own: evaluations may run at once
    reserve(ws, int(std::min<int64_t>(batch_size, n)), false);
    const int in = sizes_[0], out = sizes_.back();
    run_parallel(ws, [&] {
        if (bf16()) pack_weights(ws.w_pairs);  // the first forward's barrier comes before any read
        for (int64_t start = 0; start < n; start += batch_size) {
            const int B = int(std::min<int64_t>(batch_size, n - start));
            Targets batch;
            if (y.labels)
                batch.labels = y.labels + start;
            else
                batch.values = y.values + start * out;
            forward(ws, X + start * in, B, 0);
            loss_forward(ws, batch, B);
            sync_threads();
            if (thread_index() == 0) {
                *loss_sum += sum_in_order(ws.losses.data(), B);
                *correct += count_correct(ws, batch.labels, B);
            }
            sync_threads();
        }
    });
}

}  // namespace pydfn
