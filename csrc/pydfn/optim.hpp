// The optimizers, as PyTorch defines them: hyper-parameters, and the factors
// of one step. The elementwise update is a kernel (kernels/kernels.hpp), one
// per ISA; every optimizer keeps at most two state buffers s1, s2 laid out
// like the parameters, and a step count t starting at 1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace pydfn {

enum class OptKind : int { adam = 0, adamw = 1, sgd = 2, rmsprop = 3 };

// "adam", "adamw", "sgd", "rmsprop"; another name throws std::invalid_argument.
OptKind opt_kind_named(const std::string& name);
const char* opt_kind_name(OptKind kind);

struct OptConfig {
    OptKind kind = OptKind::adam;
    float lr = 1e-3f, beta1 = 0.9f, beta2 = 0.999f, eps = 1e-8f;  // Adam and AdamW (eps: RMSProp too)
    float alpha = 0.99f;                                           // RMSProp only
    float weight_decay = 0.0f;                                     // AdamW only (decoupled)
    float momentum = 0.0f;                                         // SGD and RMSProp
    bool nesterov = false;                                         // SGD only
};

// Throws std::invalid_argument naming the first hyper-parameter out of its range.
void check_opt_config(const OptConfig& config);

// One of an optimizer's state buffers: its name (as PyTorch names it) and which
// of the network's two buffers holds it (0: s1, 1: s2).
struct OptStateSlot {
    std::string name;
    int buffer;
};
// The state buffers an optimizer keeps, besides its step count; a buffer it
// never touches (SGD's without momentum) has no slot.
std::vector<OptStateSlot> opt_state_slots(const OptConfig& config);

// Step t of each optimizer over a parameter θ with gradient g (g already
// holds the penalty's gradient l1·sign(θ) + 2·l2·θ when l1 or l2 is set):
//   adam:    s1 = b1·s1 + (1−b1)·g;  s2 = b2·s2 + (1−b2)·g²
//            θ −= step_size · s1 / (sqrt(s2)·inv_bc2_sqrt + eps)
//            with step_size = lr/(1−b1^t), inv_bc2_sqrt = 1/sqrt(1−b2^t)
//   adamw:   θ = θ·decay with decay = 1 − lr·weight_decay, then as adam
//   sgd:     with momentum μ: s1 = μ·s1 + g;  g = nesterov ? g + μ·s1 : s1
//            θ −= lr · g      (s1 starts at 0, so step 1 gives s1 = g as PyTorch)
//   rmsprop: s2 = α·s2 + (1−α)·g²;  a = sqrt(s2) + eps
//            with momentum μ: s1 = μ·s1 + g/a;  θ −= lr·s1;  else θ −= lr·(g/a)
struct OptStep {  // beta2 holds RMSProp's alpha: its square average decays as Adam's v
    OptKind kind;
    float beta1, beta2, eps, step_size, inv_bc2_sqrt, decay, lr, momentum;
    bool nesterov;
    float l1, l2;  // weight penalties (0 for biases)
};

OptStep opt_step(const OptConfig& config, int64_t t);  // 1 <= t <= kMaxOptStep, no penalty

// The largest step count: exact in a double (the bias corrections), and beyond
// any training (2^53 steps at one per microsecond take 285 years). A count
// that would pass it is refused before anything changes.
constexpr int64_t kMaxOptStep = int64_t(1) << 53;

}  // namespace pydfn
