#include "pydfn/optim.hpp"

#include <cmath>

namespace pydfn {

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
