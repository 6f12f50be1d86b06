// A network as a front end holds it (the Python bindings, the C API): the
// network, the lock that lets predictions share it while a call that writes
// it holds it alone, the optimizer its training calls step with, and what
// predictions reuse from call to call (packed weights, scratch).
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "pydfn/mlp.hpp"
#include "pydfn/optim.hpp"

namespace pydfn {

class Model {
  public:
    Model(const std::vector<int>& sizes, Activation activation, Loss loss, Precision precision)
        : net_(sizes, activation, loss, precision) {}

    MLP& net() { return net_; }
    const MLP& net() const { return net_; }

    // A call that writes the network holds it alone; reads (predictions, copies
    // of the state) share it. Each waits for the other kind to end. A write makes
    // the packed weights stale.
    std::unique_lock<std::shared_mutex> lock_for_write() {
        std::unique_lock lock(*mutex_);
        std::lock_guard<std::mutex> serving(serving_->mutex);
        serving_->packed.reset();
        return lock;
    }
    std::shared_lock<std::shared_mutex> lock_for_read() const { return std::shared_lock(*mutex_); }
    // In a child process after fork(): a thread that held the lock does not exist there, and
    // no other thread may unlock it. The child gets a fresh lock; the old one is left as it
    // is, never destroyed (destroying a held mutex is undefined): a few bytes per fork, and
    // the serving state (the packed weights and idle scratch: up to the weights' size).
    void replace_lock_after_fork();

    // The optimizer apply_update and train_batches step with (none: nullopt).
    // Its state buffers are kept: MLP::reset_optimizer clears them.
    void bind_optimizer(std::optional<OptConfig> config);
    const OptConfig& bound_optimizer() const;  // throws when none is bound
    // The bound optimizer's state buffers (none when no optimizer is bound).
    std::vector<OptStateSlot> optimizer_state_slots() const;
    float* optimizer_state(const OptStateSlot& slot);
    // Sets the state: buffers must name exactly the bound optimizer's slots,
    // each num_params() floats; 0 <= step <= kMaxOptStep. Checked before anything changes.
    void set_optimizer_state(const std::vector<std::pair<std::string, const float*>>& buffers,
                             int64_t step);

    // What one prediction works in: the network's buffers for its rows, and floats the
    // caller may use (e.g. the C API's rows of a strided x). Kept for the next call.
    struct CallScratch {
        Workspace ws;
        std::vector<float> x, logits;
    };
    // A call's scratch, taken from those of calls not running now (made when more calls run at
    // once than ever before) and given back when it ends: once warm, a call allocates nothing.
    class BorrowedScratch {
      public:
        explicit BorrowedScratch(const Model& m);
        ~BorrowedScratch();
        BorrowedScratch(const BorrowedScratch&) = delete;
        BorrowedScratch& operator=(const BorrowedScratch&) = delete;
        CallScratch& operator*() { return *s_; }
        CallScratch* operator->() { return s_.get(); }

      private:
        const Model& m_;
        std::unique_ptr<CallScratch> s_;
    };
    // MLP::predict in scratch s, from the weights packed once after they last changed
    // (made by the first call that needs them: fp32's one row reads W in place).
    // The caller holds lock_for_read(), or nothing writes the model (the C API's).
    void predict(CallScratch& s, float* out, const float* X, int64_t n, int batch_size, MLP::Output what) const;

  private:
    MLP net_;
    std::unique_ptr<std::shared_mutex> mutex_ = std::make_unique<std::shared_mutex>();
    // The serving state predictions share; held by pointer so the model stays movable.
    struct Serving {
        std::mutex mutex;  // guards both
        std::shared_ptr<const MLP::PackedWeights> packed;  // null: none, or stale
        std::vector<std::unique_ptr<CallScratch>> idle;
    };
    std::unique_ptr<Serving> serving_ = std::make_unique<Serving>();
    std::optional<OptConfig> optimizer_;
};

}  // namespace pydfn
