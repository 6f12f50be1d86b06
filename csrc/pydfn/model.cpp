#include "pydfn/model.hpp"

#include <algorithm>
#include <cstring>

#include "pydfn/common.hpp"

namespace pydfn {

void Model::replace_lock_after_fork() {
    (void)mutex_.release();
    mutex_ = std::make_unique<std::shared_mutex>();
    (void)serving_.release();  // its mutex too, and what it guards with it
    serving_ = std::make_unique<Serving>();
}

Model::BorrowedScratch::BorrowedScratch(const Model& m) : m_(m) {
    {
        std::lock_guard<std::mutex> lock(m_.serving_->mutex);
        if (!m_.serving_->idle.empty()) {
            s_ = std::move(m_.serving_->idle.back());
            m_.serving_->idle.pop_back();
        }
    }
    if (!s_) s_ = std::make_unique<CallScratch>();
}

Model::BorrowedScratch::~BorrowedScratch() {
    std::lock_guard<std::mutex> lock(m_.serving_->mutex);
    try {
        m_.serving_->idle.push_back(std::move(s_));
    } catch (...) {  // no room to keep it: it is freed, the next call makes another
    }
}

void Model::predict(CallScratch& s, float* out, const float* X, int64_t n, int batch_size,
                    MLP::Output what) const {
    std::shared_ptr<const MLP::PackedWeights> packed;
    if (n > 1 || net_.precision() == Precision::bf16) {
        std::lock_guard<std::mutex> lock(serving_->mutex);
        if (!serving_->packed) serving_->packed = std::make_shared<const MLP::PackedWeights>(net_.pack_for_inference());
        packed = serving_->packed;
    }
    net_.predict(s.ws, out, X, n, batch_size, what, packed.get());
}

void Model::bind_optimizer(std::optional<OptConfig> config) {
    if (config) check_opt_config(*config);
    optimizer_ = config;
}

const OptConfig& Model::bound_optimizer() const {
    check(optimizer_.has_value(), "no optimizer is bound to this network");
    return *optimizer_;
}

std::vector<OptStateSlot> Model::optimizer_state_slots() const {
    return optimizer_ ? opt_state_slots(*optimizer_) : std::vector<OptStateSlot>{};
}

float* Model::optimizer_state(const OptStateSlot& slot) {
    return slot.buffer == 0 ? net_.opt_s1() : net_.opt_s2();
}

void Model::set_optimizer_state(const std::vector<std::pair<std::string, const float*>>& buffers,
                                int64_t step) {
    const std::vector<OptStateSlot> slots = optimizer_state_slots();
    std::string want;
    for (const OptStateSlot& s : slots) want += (want.empty() ? "" : ", ") + s.name;
    bool same = buffers.size() == slots.size();
    for (const OptStateSlot& s : slots)
        same = same && std::any_of(buffers.begin(), buffers.end(),
                                   [&](const auto& b) { return b.first == s.name; });
    check(same, "the bound optimizer's state is [" + want + "], got other buffers");
    check(step >= 0 && step <= kMaxOptStep, "step must be in [0, " + std::to_string(kMaxOptStep) + "]");
    net_.reset_optimizer();
    for (const OptStateSlot& s : slots)
        for (const auto& [name, data] : buffers)
            if (name == s.name)
                std::memcpy(optimizer_state(s), data, sizeof(float) * size_t(net_.num_params()));
    net_.set_opt_step_count(step);
}

}  // namespace pydfn
