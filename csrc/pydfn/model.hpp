// A network as a front end holds it (the Python bindings, the C API): the
// network, the lock that lets predictions share it while a call that writes
// it holds it alone, and the optimizer its training calls step with.
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
    // of the state) share it. Each waits for the other kind to end.
    std::unique_lock<std::shared_mutex> lock_for_write() { return std::unique_lock(*mutex_); }
    std::shared_lock<std::shared_mutex> lock_for_read() const { return std::shared_lock(*mutex_); }
    // In a child process after fork(): a thread that held the lock does not exist there, and
    // no other thread may unlock it. The child gets a fresh lock; the old one is left as it
    // is, never destroyed (destroying a held mutex is undefined): a few bytes per fork.
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

  private:
    MLP net_;
    std::unique_ptr<std::shared_mutex> mutex_ = std::make_unique<std::shared_mutex>();
    std::optional<OptConfig> optimizer_;
};

}  // namespace pydfn
