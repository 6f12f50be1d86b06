#include "pydfn/optim.hpp"

#include <cmath>
#include <stdexcept>

#include "pydfn/common.hpp"

namespace pydfn {

OptKind opt_kind_named(const std::string& name) {
    if (name == "adam") return OptKind::adam;
    if (name == "adamw") return OptKind::adamw;
    if (name == "sgd") return OptKind::sgd;
    if (name == "rmsprop") return OptKind::rmsprop;
    throw std::invalid_argument("unknown optimizer '" + name + "'");
}

const char* opt_kind_name(OptKind kind) {
    switch (kind) {
        case OptKind::adam: return "adam";
        case OptKind::adamw: return "adamw";
        case OptKind::sgd: return "sgd";
        case OptKind::rmsprop: return "rmsprop";
    }
    return "?";
}

void check_opt_config(const OptConfig& c) {
    check(std::isfinite(c.lr) && c.lr >= 0, "lr must be a finite number >= 0");  // 0: a schedule may decay to zero
    check(c.beta1 >= 0 && c.beta1 < 1, "beta1 must be in [0, 1)");
    check(c.beta2 >= 0 && c.beta2 < 1, "beta2 must be in [0, 1)");
    check(c.alpha >= 0 && c.alpha < 1, "alpha must be in [0, 1)");
    check(c.eps > 0, "eps must be > 0");
    check(c.weight_decay >= 0, "weight_decay must be >= 0");
    check(c.momentum >= 0 && c.momentum < 1, "momentum must be in [0, 1)");
    check(!c.nesterov || c.momentum > 0, "nesterov needs momentum > 0");
}

std::vector<OptStateSlot> opt_state_slots(const OptConfig& c) {
    switch (c.kind) {
        case OptKind::adam:
        case OptKind::adamw: return {{"m", 0}, {"v", 1}};
        case OptKind::sgd:
            if (c.momentum > 0) return {{"momentum", 0}};
            return {};
        case OptKind::rmsprop:
            if (c.momentum > 0) return {{"square_avg", 1}, {"momentum", 0}};
            return {{"square_avg", 1}};
    }
    return {};
}

OptStep opt_step(const OptConfig& c, int64_t t) {
    // RMSProp's square average decays like Adam's second moment: the kernels read alpha as beta2.
    const float beta2 = c.kind == OptKind::rmsprop ? c.alpha : c.beta2;
    // In double, as PyTorch computes the bias corrections.
    const double bc1 = 1.0 - std::pow(double(c.beta1), double(t));
    const double bc2 = 1.0 - std::pow(double(beta2), double(t));
    return {c.kind,
            c.beta1,
            beta2,
            c.eps,
            float(c.lr / bc1),
            float(1.0 / std::sqrt(bc2)),
            float(1.0 - double(c.lr) * c.weight_decay),
            c.lr,
            c.momentum,
            c.nesterov,
            0.0f,
            0.0f};
}

}  // namespace pydfn
