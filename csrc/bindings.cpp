// pybind11 bindings of the core: argument checks, NumPy buffers <-> raw
// pointers, GIL release, C++ exceptions -> Python exceptions. Nothing else.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <cstring>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <map>
#include <optional>
#include <shared_mutex>
#include <tuple>

#include "pydfn/optim.hpp"
#include "pydfn/common.hpp"
#include "pydfn/cpu.hpp"
#include "pydfn/dense.hpp"
#include "pydfn/dropout.hpp"
#include "pydfn/kernels/kernels.hpp"
#include "pydfn/mlp.hpp"
#include "pydfn/regression_loss.hpp"
#include "pydfn/softmax_xent.hpp"
#include "pydfn/threads.hpp"

namespace py = pybind11;
using pydfn::check;

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;
using LabelArray = py::array_t<int32_t, py::array::c_style>;
using IndexArray = py::array_t<int64_t, py::array::c_style>;

void check_shape(const py::array& a, const char* name, std::initializer_list<py::ssize_t> shape) {
    bool ok = a.ndim() == py::ssize_t(shape.size());
    std::string want, got;
    py::ssize_t d = 0;
    for (py::ssize_t s : shape) {
        want += (d ? ", " : "") + (s < 0 ? std::string("any") : std::to_string(s));
        ok = ok && (s < 0 || a.shape(d) == s);
        d++;
    }
    for (d = 0; d < a.ndim(); d++) got += (d ? ", " : "") + std::to_string(a.shape(d));
    check(ok, std::string(name) + " must have shape (" + want + "), got (" + got + ")");
}

void check_labels(const LabelArray& y, int classes) {
    const int32_t* p = y.data();
    for (py::ssize_t i = 0; i < y.size(); i++)
        check(p[i] >= 0 && p[i] < classes, "labels must be in [0, " + std::to_string(classes) +
                                               "), got " + std::to_string(p[i]) + " at index " +
                                               std::to_string(i));
}

constexpr pydfn::Isa kIsas[] = {pydfn::Isa::generic, pydfn::Isa::avx2, pydfn::Isa::avx512,
                                 pydfn::Isa::avx512bf16};

// "reference", "best", or an ISA's name; an ISA this CPU lacks is refused.
const pydfn::Kernels& kernels_named(const std::string& name) {
    if (name == "reference") return pydfn::kernels_ref();
    if (name == "best") return pydfn::kernels_best();
    for (pydfn::Isa isa : kIsas)
        if (name == pydfn::isa_name(isa)) {
            const pydfn::Kernels* k = pydfn::kernels_for(isa);
            check(k && int(isa) <= int(pydfn::hardware_isa()),
                  "kernels '" + name + "' cannot run on this CPU or build");
            return *k;
        }
    throw std::invalid_argument("unknown kernels '" + name + "'");
}

// The kernel sets this CPU and build can run, the reference first.
std::vector<std::string> kernel_names() {
    std::vector<std::string> names{"reference"};
    for (pydfn::Isa isa : kIsas)
        if (pydfn::kernels_for(isa) && int(isa) <= int(pydfn::hardware_isa()))
            names.push_back(pydfn::isa_name(isa));
    return names;
}

// A matrix product f runs: which, and C's columns N and the inner dimension K.
struct ProductShape {
    pydfn::Product p;
    int N, K;
};

// Runs fast kernels the way training does: inside one parallel region, with
// scratch for `products`. The reference kernels are serial.
template <class F>
void run_kernels(const pydfn::Kernels& k, std::initializer_list<ProductShape> products, F&& f) {
    py::gil_scoped_release release;
    if (&k == &pydfn::kernels_ref()) {
        f();
        return;
    }
    pydfn::ScratchNeed need;
    for (const ProductShape& s : products) need.add(k, s.p, s.N, s.K);
    pydfn::KernelScratch scratch;
    pydfn::parallel_region(scratch, need, f);
}

pydfn::OptKind opt_kind_named(const std::string& kind) {
    if (kind == "adam") return pydfn::OptKind::adam;
    if (kind == "adamw") return pydfn::OptKind::adamw;
    if (kind == "sgd") return pydfn::OptKind::sgd;
    if (kind == "rmsprop") return pydfn::OptKind::rmsprop;
    throw std::invalid_argument("unknown optimizer '" + kind + "'");
}

const char* opt_kind_name(pydfn::OptKind kind) {
    switch (kind) {
        case pydfn::OptKind::adam: return "adam";
        case pydfn::OptKind::adamw: return "adamw";
        case pydfn::OptKind::sgd: return "sgd";
        case pydfn::OptKind::rmsprop: return "rmsprop";
    }
    return "?";
}

// An optimizer's hyper-parameters, checked once, when Python builds its config.
pydfn::OptConfig opt_config(const std::string& kind, float lr, float beta1, float beta2, float alpha,
                            float eps, float weight_decay, float momentum, bool nesterov) {
    pydfn::OptConfig c;
    c.kind = opt_kind_named(kind);
    check(std::isfinite(lr) && lr >= 0, "lr must be a finite number >= 0");  // 0: a schedule may decay to zero
    check(beta1 >= 0 && beta1 < 1, "beta1 must be in [0, 1)");
    check(beta2 >= 0 && beta2 < 1, "beta2 must be in [0, 1)");
    check(alpha >= 0 && alpha < 1, "alpha must be in [0, 1)");
    check(eps > 0, "eps must be > 0");
    check(weight_decay >= 0, "weight_decay must be >= 0");
    check(momentum >= 0 && momentum < 1, "momentum must be in [0, 1)");
    check(!nesterov || momentum > 0, "nesterov needs momentum > 0");
    c.lr = lr;
    c.beta1 = beta1;
    c.beta2 = beta2;
    c.alpha = alpha;
    c.eps = eps;
    c.weight_decay = weight_decay;
    c.momentum = momentum;
    c.nesterov = nesterov;
    return c;
}

pydfn::OptConfig adam_config(float lr, float beta1, float beta2, float eps) {
    return opt_config("adam", lr, beta1, beta2, 0.99f, eps, 0.0f, 0.0f, false);
}

// The names of an optimizer's state buffers and which core buffer holds each
// (0: s1, 1: s2, as optim.hpp lays them out). A buffer the optimizer never
// touches (SGD's without momentum) has no name.
std::vector<std::pair<std::string, int>> state_slots(const pydfn::OptConfig& c) {
    switch (c.kind) {
        case pydfn::OptKind::adam:
        case pydfn::OptKind::adamw: return {{"m", 0}, {"v", 1}};
        case pydfn::OptKind::sgd:
            if (c.momentum > 0) return {{"momentum", 0}};
            return {};
        case pydfn::OptKind::rmsprop:
            if (c.momentum > 0) return {{"square_avg", 1}, {"momentum", 0}};
            return {{"square_avg", 1}};
    }
    return {};
}

pydfn::Activation activation_named(const std::string& name) {
    if (name == "relu") return pydfn::Activation::relu;
    if (name == "tanh") return pydfn::Activation::tanh;
    if (name == "sigmoid") return pydfn::Activation::sigmoid;
    throw std::invalid_argument("activation must be 'relu', 'tanh' or 'sigmoid', got '" + name + "'");
}

pydfn::Precision precision_named(const std::string& name) {
    if (name == "fp32") return pydfn::Precision::fp32;
    if (name == "bf16") return pydfn::Precision::bf16;
    throw std::invalid_argument("precision must be 'fp32' or 'bf16', got '" + name + "'");
}

pydfn::Loss loss_named(const std::string& name) {
    if (name == "softmax_xent") return pydfn::Loss::softmax_xent;
    if (name == "mse") return pydfn::Loss::mse;
    if (name == "mae") return pydfn::Loss::mae;
    throw std::invalid_argument("loss must be 'softmax_xent', 'mse' or 'mae', got '" + name + "'");
}

// A network plus its lock: predictions and other reads share it (each
// prediction has its own buffers in the core), a call that writes the network
// holds it alone. The lock is taken without the GIL, so a thread waiting for
// it never blocks the one holding it.
class Network {
  public:
    Network(const std::vector<int>& sizes, const std::string& activation, const std::string& loss,
            const std::string& precision)
        : net_(sizes, activation_named(activation), loss_named(loss), precision_named(precision)) {}
    pydfn::MLP& net() { return net_; }

    // Holds the network alone while it lives (waits for other calls to end).
    class Use {
      public:
        explicit Use(Network& n) : lock_(*n.mutex_, std::defer_lock) {
            py::gil_scoped_release release;
            lock_.lock();
        }

      private:
        std::unique_lock<std::shared_mutex> lock_;
    };
    // Shares the network with other reads while it lives (waits for a writer to end).
    class Read {
      public:
        explicit Read(Network& n) : lock_(*n.mutex_, std::defer_lock) {
            py::gil_scoped_release release;
            lock_.lock();
        }

      private:
        std::shared_lock<std::shared_mutex> lock_;
    };

    // In a child process after fork(): a thread that held the lock does not exist there, and
    // no other thread may unlock it. The child gets a fresh lock; the old one is left as it
    // is, never destroyed (destroying a held mutex is undefined): a few bytes per fork.
    void release_after_fork() {
        (void)mutex_.release();
        mutex_ = std::make_unique<std::shared_mutex>();
    }

    int in() const { return net_.sizes().front(); }
    int classes() const { return net_.sizes().back(); }

    py::array_t<float> copy_out(const float* p) {
        py::array_t<float> out(net_.num_params());
        std::memcpy(out.mutable_data(), p, sizeof(float) * net_.num_params());
        return out;
    }
    void check_size(const FloatArray& a, const std::string& name) {
        check_shape(a, name.c_str(), {net_.num_params()});
    }
    void copy_in(float* p, const FloatArray& a, const char* name) {
        check_shape(a, name, {net_.num_params()});
        std::memcpy(p, a.data(), sizeof(float) * net_.num_params());
    }
    // Checks x (N,in) and y: int32 labels (N) for softmax_xent, float32
    // targets (N,out) for a regression loss.
    pydfn::Targets check_batch(const FloatArray& x, const py::array& y) {
        check_shape(x, "x", {-1, in()});
        pydfn::Targets t;
        check(bool(y.flags() & py::array::c_style), "y must be C-contiguous");
        if (net_.loss() == pydfn::Loss::softmax_xent) {
            check(y.dtype().is(py::dtype::of<int32_t>()), "y must hold int32 class labels");
            check_shape(y, "y", {x.shape(0)});
            const LabelArray labels = py::reinterpret_borrow<LabelArray>(y);
            check_labels(labels, classes());
            t.labels = labels.data();
        } else {
            check(y.dtype().is(py::dtype::of<float>()), "y must hold float32 regression targets");
            check_shape(y, "y", {x.shape(0), classes()});
            t.values = static_cast<const float*>(y.data());
        }
        return t;
    }

    // The optimizer the training methods step with: bound once, not passed per call.
    void bind(std::optional<pydfn::OptConfig> config) { config_ = config; }
    const pydfn::OptConfig& bound() const {
        check(config_.has_value(), "no optimizer is bound to this network");
        return *config_;
    }
    float* slot(int i) { return i == 0 ? net_.opt_s1() : net_.opt_s2(); }
    // The bound optimizer's state buffers by name (none when no optimizer is bound).
    std::vector<std::pair<std::string, int>> slots() const {
        return config_ ? state_slots(*config_) : std::vector<std::pair<std::string, int>>{};
    }

  private:
    pydfn::MLP net_;
    std::unique_ptr<std::shared_mutex> mutex_ = std::make_unique<std::shared_mutex>();
    std::optional<pydfn::OptConfig> config_;
};

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pydfn's C++ core: kernels and the network, and its optimizers";
    m.attr("__version__") = PYDFN_VERSION;
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        }
    });

    m.attr("MAX_THREADS") = pydfn::kMaxThreads;
    m.attr("MAX_OPT_STEP") = pydfn::kMaxOptStep;
    py::class_<pydfn::OptConfig>(m, "OptimizerConfig",
                                 "An optimizer's kind and hyper-parameters, checked once: what "
                                 "Network.bind_optimizer takes.")
        .def(py::init(&opt_config), py::kw_only(), py::arg("kind"), py::arg("lr"),
             py::arg("beta1") = 0.9f, py::arg("beta2") = 0.999f, py::arg("alpha") = 0.99f,
             py::arg("eps") = 1e-8f, py::arg("weight_decay") = 0.0f, py::arg("momentum") = 0.0f,
             py::arg("nesterov") = false)
        .def_property_readonly("kind",
                               [](const pydfn::OptConfig& c) { return std::string(opt_kind_name(c.kind)); })
        .def_readonly("lr", &pydfn::OptConfig::lr)
        .def_readonly("beta1", &pydfn::OptConfig::beta1)
        .def_readonly("beta2", &pydfn::OptConfig::beta2)
        .def_readonly("alpha", &pydfn::OptConfig::alpha)
        .def_readonly("eps", &pydfn::OptConfig::eps)
        .def_readonly("weight_decay", &pydfn::OptConfig::weight_decay)
        .def_readonly("momentum", &pydfn::OptConfig::momentum)
        .def_readonly("nesterov", &pydfn::OptConfig::nesterov)
        .def_property_readonly(
            "state_names",
            [](const pydfn::OptConfig& c) {
                std::vector<std::string> names;
                for (const auto& [name, slot] : state_slots(c)) names.push_back(name);
                return names;
            },
            "The names of the state buffers this optimizer keeps, besides the step count.");

    m.def("has_openmp", &pydfn::has_openmp);
    m.def("get_num_threads", &pydfn::get_num_threads);
    m.def("set_num_threads", &pydfn::set_num_threads, py::arg("n"));
    m.def("environment_problems",
          [] {
              std::vector<std::string> problems;
              for (const std::string& p : {pydfn::omp_num_threads_problem(), pydfn::max_isa_problem()})
                  if (!p.empty()) problems.push_back(p);
              return problems;
          },
          "What is wrong with OMP_NUM_THREADS and PYDFN_MAX_ISA, one sentence each.");
    m.def("max_isa",
          []() -> std::optional<std::string> {
              const char* cap = pydfn::max_isa();
              if (cap == nullptr) return std::nullopt;
              return std::string(cap);
          },
          "The ISA PYDFN_MAX_ISA names, or None when it is unset or names none.");
    m.def("isa", [] { return std::string(pydfn::kernels_best().isa); },
          "The kernels training uses on this CPU.");
    m.def("kernel_names", &kernel_names,
          "The kernel sets this CPU can run: 'reference' and ISA names.");
    m.def("hardware_isa", [] { return std::string(pydfn::isa_name(pydfn::hardware_isa())); },
          "The best ISA of this CPU, ignoring PYDFN_MAX_ISA.");

    // Kernels and optimizer steps one call at a time, for the tests and benchmarks
    // (pydfn._core.testing): not the API.
    py::module_ testing = m.def_submodule("testing", "The core's kernels one call at a time, for tests and "
                                                     "benchmarks: not pydfn's API.");
    testing.def("sgemm_nn",
          [](const FloatArray& A, const FloatArray& B, std::optional<FloatArray> bias, bool relu,
             const std::string& kernels) {
              check_shape(A, "A", {-1, -1});
              check_shape(B, "B", {A.shape(1), -1});
              const int M = int(A.shape(0)), K = int(A.shape(1)), N = int(B.shape(1));
              if (bias) check_shape(*bias, "bias", {N});
              py::array_t<float> C({M, N});
              const float* b = bias ? bias->data() : nullptr;
              float* c = C.mutable_data();
              const auto& k = kernels_named(kernels);
              run_kernels(k, {{pydfn::Product::nn, N, K}},
                          [&] { k.sgemm_nn_bias_relu(c, A.data(), B.data(), b, relu, M, N, K); });
              return C;
          },
          py::arg("A"), py::arg("B"), py::arg("bias") = py::none(), py::arg("relu") = false,
          py::arg("kernels") = "best", "C(M,N) = A(M,K)·B(K,N) + bias, then ReLU if relu.");
    testing.def("sgemm_nt",
          [](const FloatArray& A, const FloatArray& B, std::optional<FloatArray> mask,
             const std::string& kernels) {
              check_shape(A, "A", {-1, -1});
              check_shape(B, "B", {-1, A.shape(1)});
              const int M = int(A.shape(0)), K = int(A.shape(1)), N = int(B.shape(0));
              if (mask) check_shape(*mask, "mask", {M, N});
              py::array_t<float> C({M, N});
              const float* mk = mask ? mask->data() : nullptr;
              float* c = C.mutable_data();
              const auto& k = kernels_named(kernels);
              run_kernels(k, {{pydfn::Product::nt, N, K}},
                          [&] { k.sgemm_nt_mask(c, A.data(), B.data(), mk, M, N, K); });
              return C;
          },
          py::arg("A"), py::arg("B"), py::arg("mask") = py::none(), py::arg("kernels") = "best",
          "C(M,N) = A(M,K)·B(N,K)ᵀ, zero where mask <= 0.");
    testing.def("sgemm_tn",
          [](const FloatArray& A, const FloatArray& B, const std::string& kernels) {
              check_shape(A, "A", {-1, -1});
              check_shape(B, "B", {A.shape(0), -1});
              const int K = int(A.shape(0)), M = int(A.shape(1)), N = int(B.shape(1));
              py::array_t<float> C({M, N});
              float* c = C.mutable_data();
              const auto& k = kernels_named(kernels);
              run_kernels(k, {{pydfn::Product::tn, N, K}},
                          [&] { k.sgemm_tn(c, A.data(), B.data(), M, N, K); });
              return C;
          },
          py::arg("A"), py::arg("B"), py::arg("kernels") = "best", "C(M,N) = A(K,M)ᵀ·B(K,N).");
    testing.def("round_bf16",
          [](const FloatArray& x, const std::string& kernels) {
              const int n = int(x.size());
              std::vector<uint32_t> packed(size_t(n + 1) / 2);
              const auto& k = kernels_named(kernels);
              run_kernels(k, {}, [&] { k.pack_bf16_rows(packed.data(), (n + 1) / 2, x.data(), 1, n); });
              py::array_t<float> out(x.size());
              float* o = out.mutable_data();
              for (int i = 0; i < n; i++) {
                  const uint32_t bits = i % 2 ? packed[i / 2] & 0xffff0000u : packed[i / 2] << 16;
                  std::memcpy(o + i, &bits, sizeof bits);
              }
              return out;
          },
          py::arg("x"), py::arg("kernels") = "best",
          "x (flattened) rounded to bf16 as the bf16 products' packing rounds it, as float32.");
    testing.def("bf16gemm",
          [](const FloatArray& A, const FloatArray& B, std::optional<FloatArray> bias, bool relu,
             std::optional<FloatArray> mask, const std::string& layout, const std::string& kernels) {
              check(layout == "nn" || layout == "tn" || layout == "nt",
                    "layout must be 'nn', 'tn' or 'nt'");
              const bool ta = layout == "tn", tb = layout == "nt";
              check_shape(A, "A", {-1, -1});
              const int M = int(A.shape(ta ? 1 : 0)), K = int(A.shape(ta ? 0 : 1));
              check_shape(B, "B", {tb ? -1 : K, tb ? K : -1});
              const int N = int(B.shape(tb ? 0 : 1)), P = (K + 1) / 2;
              if (bias) check_shape(*bias, "bias", {N});
              if (mask) check_shape(*mask, "mask", {M, N});
              std::vector<uint32_t> a_pairs(size_t(ta ? P * pydfn::bf16_ld(M) : M * P) + 1);
              std::vector<uint32_t> b_pairs(size_t(P) * pydfn::bf16_ld(N) + 1);
              py::array_t<float> C({M, N});
              const auto& k = kernels_named(kernels);
              const pydfn::Bf16Gemm g{C.mutable_data(), N, a_pairs.data(), ta ? 1 : P,
                                      ta ? pydfn::bf16_ld(M) : 1, b_pairs.data(), pydfn::bf16_ld(N),
                                      bias ? bias->data() : nullptr, relu,
                                      mask ? mask->data() : nullptr, M, N, P, ta};
              run_kernels(k, {}, [&] {
                  if (ta)
                      k.pack_bf16_pairs(a_pairs.data(), pydfn::bf16_ld(M), A.data(), K, M, false);
                  else
                      k.pack_bf16_rows(a_pairs.data(), P, A.data(), M, K);
                  k.pack_bf16_pairs(b_pairs.data(), pydfn::bf16_ld(N), B.data(), K, N, tb);
                  if (&k != &pydfn::kernels_ref()) pydfn::sync_threads();
                  k.bf16gemm(g);
              });
              return C;
          },
          py::arg("A"), py::arg("B"), py::arg("bias") = py::none(), py::arg("relu") = false,
          py::arg("mask") = py::none(), py::arg("layout") = "nn", py::arg("kernels") = "best",
          "C = op(A)·op(B) (+bias, ReLU, zero where mask <= 0) in bf16 with float32 sums, "
          "op transposing A (layout 'tn', A (K,M)) or B ('nt', B (N,K)), packed as training packs.");
    testing.def("column_sums",
          [](const FloatArray& dy, const std::string& kernels) {
              check_shape(dy, "dy", {-1, -1});
              const int B = int(dy.shape(0)), N = int(dy.shape(1));
              py::array_t<float> db(N);
              float* out = db.mutable_data();
              const auto& k = kernels_named(kernels);
              run_kernels(k, {}, [&] { k.column_sums(out, dy.data(), B, N, nullptr); });
              return db;
          },
          py::arg("dy"), py::arg("kernels") = "best", "db(N) = sum of the rows of dy(B,N).");
    testing.def("dense_backward",
          [](const FloatArray& dy, const FloatArray& x, const FloatArray& W, bool mask_relu,
             bool need_dx, const std::string& kernels) {
              check_shape(x, "x", {-1, -1});
              const int B = int(x.shape(0)), in = int(x.shape(1));
              check_shape(W, "W", {in, -1});
              const int out = int(W.shape(1));
              check_shape(dy, "dy", {B, out});
              py::array_t<float> dx({B, in}), dW({in, out}), db(out);
              float* pdx = need_dx ? dx.mutable_data() : nullptr;
              float *pdW = dW.mutable_data(), *pdb = db.mutable_data();
              const auto& k = kernels_named(kernels);
              run_kernels(k, {{pydfn::Product::nt, in, out}, {pydfn::Product::tn, out, B}}, [&] {
                  pydfn::dense_backward(k, pdx, pdW, pdb, dy.data(), x.data(), x.data(), W.data(),
                                        mask_relu ? pydfn::Activation::relu : pydfn::Activation::none,
                                        B, in, out);
              });
              return std::make_tuple(dx, dW, db);
          },
          py::arg("dy"), py::arg("x"), py::arg("W"), py::arg("mask_relu"),
          py::arg("need_dx") = true, py::arg("kernels") = "best",
          "(dx, dW, db) of a dense layer; dx is masked where x <= 0 if mask_relu.");
    testing.def("softmax_xent_forward",
          [](const FloatArray& logits, const LabelArray& y, float label_smoothing) {
              check(label_smoothing >= 0 && label_smoothing <= 1, "label_smoothing must be in [0, 1]");
              check_shape(logits, "logits", {-1, -1});
              const int B = int(logits.shape(0)), C = int(logits.shape(1));
              check_shape(y, "y", {B});
              check_labels(y, C);
              py::array_t<float> losses(B), probs({B, C});
              float *pl = losses.mutable_data(), *pp = probs.mutable_data();
              run_kernels(pydfn::kernels_best(), {}, [&] {
                  pydfn::softmax_xent_forward(pl, pp, logits.data(), y.data(), B, C, label_smoothing);
              });
              return std::make_tuple(losses, probs);
          },
          py::arg("logits"), py::arg("y"), py::arg("label_smoothing") = 0.0f,
          "(per-row losses (B,), probs (B,C)).");
    testing.def("softmax_xent_backward",
          [](const FloatArray& probs, const LabelArray& y, float scale, float label_smoothing) {
              check(label_smoothing >= 0 && label_smoothing <= 1, "label_smoothing must be in [0, 1]");
              check_shape(probs, "probs", {-1, -1});
              const int B = int(probs.shape(0)), C = int(probs.shape(1));
              check_shape(y, "y", {B});
              check_labels(y, C);
              py::array_t<float> d({B, C});
              float* pd = d.mutable_data();
              run_kernels(pydfn::kernels_best(), {}, [&] {
                  pydfn::softmax_xent_backward(pd, probs.data(), y.data(), scale, B, C, label_smoothing);
              });
              return d;
          },
          py::arg("probs"), py::arg("y"), py::arg("scale"), py::arg("label_smoothing") = 0.0f);
    testing.def("adam_update",
          [](FloatArray params, FloatArray m_, FloatArray v, const FloatArray& grads, int64_t t,
             float lr, float beta1, float beta2, float eps, const std::string& kernels) {
              const py::ssize_t n = params.size();
              check_shape(params, "params", {n});
              check_shape(m_, "m", {n});
              check_shape(v, "v", {n});
              check_shape(grads, "grads", {n});
              check(t >= 1, "t must be >= 1");
              const auto step = pydfn::opt_step(adam_config(lr, beta1, beta2, eps), t);
              float *pp = params.mutable_data(), *pm = m_.mutable_data(), *pv = v.mutable_data();
              const auto& k = kernels_named(kernels);
              run_kernels(k, {}, [&] { k.opt_update(pp, pm, pv, grads.data(), n, step); });
          },
          py::arg("params"), py::arg("m"), py::arg("v"), py::arg("grads"), py::arg("t"),
          py::arg("lr"), py::arg("beta1"), py::arg("beta2"), py::arg("eps"),
          py::arg("kernels") = "best", "One Adam step t, in place on params, m and v.");

    testing.def("opt_update",
          [](FloatArray params, FloatArray s1, FloatArray s2, const FloatArray& grads, int64_t t,
             const pydfn::OptConfig& config, float l1, float l2, const std::string& kernels) {
              const py::ssize_t n = params.size();
              check_shape(params, "params", {n});
              check_shape(s1, "s1", {n});
              check_shape(s2, "s2", {n});
              check_shape(grads, "grads", {n});
              check(t >= 1, "t must be >= 1");
              check(l1 >= 0 && l2 >= 0, "l1 and l2 must be >= 0");
              auto step = pydfn::opt_step(config, t);
              step.l1 = l1;
              step.l2 = l2;
              float *pp = params.mutable_data(), *p1 = s1.mutable_data(), *p2 = s2.mutable_data();
              const auto& k = kernels_named(kernels);
              run_kernels(k, {}, [&] { k.opt_update(pp, p1, p2, grads.data(), n, step); });
          },
          py::arg("params"), py::arg("s1"), py::arg("s2"), py::arg("grads"), py::arg("t"),
          py::arg("config"), py::arg("l1") = 0.0f, py::arg("l2") = 0.0f, py::arg("kernels") = "best",
          "One optimizer step t, in place on params, s1 and s2, with the penalty's gradient "
          "l1·sign(params) + 2·l2·params added to grads.");

    testing.def("dropout_keep_mask",
          [](uint64_t seed, int64_t step, int layer, float rate, int B, int n) {
              check(rate >= 0.0f && rate < 1.0f, "rate must be in [0, 1)");
              check(B >= 0 && n >= 0, "B and n must be >= 0");
              const pydfn::DropoutMask mask = pydfn::dropout_mask(seed, step, layer, rate);
              py::array_t<bool> keep({B, n});
              bool* out = keep.mutable_data();
              for (int i = 0; i < B; i++) {
                  const uint32_t row_key = pydfn::dropout_row_key(mask, i);
                  for (int j = 0; j < n; j++)
                      out[int64_t(i) * n + j] = pydfn::dropout_keep_bits(row_key, j, mask.threshold) != 0;
              }
              return py::make_tuple(keep, mask.scale);
          },
          py::arg("seed"), py::arg("step"), py::arg("layer"), py::arg("rate"), py::arg("B"), py::arg("n"),
          "(keep (B,n) bool, scale): the dropout mask of hidden layer `layer` in optimizer step `step`.");

    py::class_<Network>(m, "Network",
                        "The network's parameters, optimizer state, penalties and workspace.")
        .def(py::init<const std::vector<int>&, const std::string&, const std::string&,
                      const std::string&>(),
             py::arg("sizes"), py::arg("activation") = "relu", py::arg("loss") = "softmax_xent",
             py::arg("precision") = "fp32")
        .def_property_readonly("sizes", [](Network& n) { return n.net().sizes(); })
        .def_property_readonly("num_params", [](Network& n) { return n.net().num_params(); })
        .def("get_params",
             [](Network& n) {
                 Network::Read use(n);
                 return n.copy_out(n.net().params());
             })
        .def("set_params",
             [](Network& n, const FloatArray& p) {
                 Network::Use use(n);
                 n.copy_in(n.net().params(), p, "params");
             })
        .def("get_grads",
             [](Network& n) {
                 Network::Read use(n);
                 return n.copy_out(n.net().grads());
             })
        .def("grads_view",
             [](py::object self) {
                 Network& n = self.cast<Network&>();
                 // A view of the gradient buffer itself (kept alive by the network),
                 // so an MPI allreduce can average it in place between
                 // compute_gradients and apply_update.
                 return py::array_t<float>(n.net().num_params(), n.net().grads(), self);
             },
             "A writable NumPy view of the flat gradient buffer (no copy).")
        .def("bind_optimizer",
             [](Network& n, std::optional<pydfn::OptConfig> config) {
                 Network::Use use(n);
                 n.bind(config);
             },
             py::arg("config"),
             "The optimizer apply_update and train_batches step with (None: none). Its state "
             "is kept: reset_optimizer clears it.")
        .def_property_readonly(
            "optimizer_step",
            [](Network& n) {
                Network::Read use(n);
                return n.net().opt_step_count();
            },
            "Optimizer steps taken since the state was last cleared (no copy).")
        .def("get_optimizer_state",
             [](Network& n) {
                 Network::Read use(n);
                 py::dict out;
                 for (const auto& [name, slot] : n.slots()) out[py::str(name)] = n.copy_out(n.slot(slot));
                 return out;
             },
             "Copies of the bound optimizer's state buffers, by name (its state_names).")
        .def("set_optimizer_state",
             [](Network& n, const std::map<std::string, FloatArray>& buffers, int64_t step) {
                 Network::Use use(n);
                 const auto slots = n.slots();
                 std::string want;
                 for (const auto& [name, slot] : slots) want += (want.empty() ? "" : ", ") + name;
                 bool same = buffers.size() == slots.size();
                 for (const auto& [name, slot] : slots) same = same && buffers.count(name);
                 check(same, "the bound optimizer's state is [" + want + "], got other buffers");
                 check(step >= 0 && step <= pydfn::kMaxOptStep,
                       "step must be in [0, " + std::to_string(pydfn::kMaxOptStep) + "]");
                 for (const auto& [name, slot] : slots) n.check_size(buffers.at(name), name);
                 n.net().reset_optimizer();
                 for (const auto& [name, slot] : slots)
                     n.copy_in(n.slot(slot), buffers.at(name), name.c_str());
                 n.net().set_opt_step_count(step);
             },
             py::arg("buffers"), py::arg("step"),
             "Set the bound optimizer's state buffers (exactly its state_names) and step count.")
        .def("reset_optimizer",
             [](Network& n) {
                 Network::Use use(n);
                 n.net().reset_optimizer();
             },
             "Clear the optimizer's state: buffers to zero, step count to 0.")
        .def("set_penalty",
             [](Network& n, float l1, float l2) {
                 Network::Use use(n);
                 n.net().set_penalty(l1, l2);
             },
             py::arg("l1"), py::arg("l2"), "Weight penalties: cost = mean loss + l1·Σ|W| + l2·ΣW².")
        .def_property(
            "label_smoothing", [](Network& n) { return n.net().label_smoothing(); },
            [](Network& n, float eps) {
                Network::Use use(n);
                n.net().set_label_smoothing(eps);
            },
            "softmax_xent's label smoothing eps in [0, 1]: targets (1-eps)·onehot + eps/C.")
        .def("set_dropout",
             [](Network& n, const std::vector<float>& rates, uint64_t seed) {
                 Network::Use use(n);
                 n.net().set_dropout(rates, seed);
             },
             py::arg("rates"), py::arg("seed"),
             "Inverted dropout on the hidden layers' outputs in training, one rate per hidden layer.")
        .def("penalty",
             [](Network& n) {
                 Network::Read use(n);
                 py::gil_scoped_release release;
                 return n.net().penalty();
             },
             "l1·Σ|W| + l2·ΣW² of the current weights.")
        .def("compute_gradients",
             [](Network& n, const FloatArray& x, const py::array& y) {
                 const pydfn::Targets t = n.check_batch(x, y);
                 check(x.shape(0) >= 1, "x must have at least one row");
                 Network::Use use(n);
                 py::gil_scoped_release release;
                 return n.net().compute_gradients(x.data(), t, int(x.shape(0)));
             },
             py::arg("x"), py::arg("y"),
             "Gradients of the cost (mean loss + penalty) into the grads; returns the cost.")
        .def("apply_update",
             [](Network& n) {
                 Network::Use use(n);
                 const pydfn::OptConfig config = n.bound();
                 py::gil_scoped_release release;
                 return n.net().apply_update(config);
             },
             "One step of the bound optimizer from the grads; False, with nothing changed, when "
             "the step would make the parameters or the optimizer state non-finite.")
        .def("release_after_fork", &Network::release_after_fork,
             "Frees the model in a forked child, where the thread that was using it is gone "
             "(call only there: pydfn registers it with os.register_at_fork).")
        .def("train_batches",
             [](Network& n, const FloatArray& X, const py::array& y, const IndexArray& order,
                int batch_size, const std::optional<FloatArray>& sample_weight,
                const std::optional<FloatArray>& lr) {
                 pydfn::Targets t = n.check_batch(X, y);
                 if (sample_weight) {
                     check_shape(*sample_weight, "sample_weight", {X.shape(0)});
                     const float* w = sample_weight->data();
                     check(std::all_of(w, w + X.shape(0), [](float v) { return v >= 0 && std::isfinite(v); }),
                           "sample_weight must be finite and >= 0");
                     t.weights = w;
                 }
                 check_shape(order, "order", {-1});
                 check(batch_size >= 1, "batch_size must be >= 1");
                 const int64_t rows = X.shape(0), count = order.size();
                 const int64_t* o = order.data();
                 check(std::all_of(o, o + count, [&](int64_t r) { return r >= 0 && r < rows; }),
                       "order must index rows of x");
                 const int64_t num_batches = (count + batch_size - 1) / batch_size;
                 if (lr) {
                     check_shape(*lr, "lr", {num_batches});
                     const float* r = lr->data();
                     check(std::all_of(r, r + num_batches, [](float v) { return v >= 0 && std::isfinite(v); }),
                           "lr must be finite and >= 0");
                 }
                 py::array_t<float> batch_loss(num_batches);
                 py::array_t<int64_t> batch_correct(num_batches);
                 float* pl = batch_loss.mutable_data();
                 int64_t* pc = batch_correct.mutable_data();
                 Network::Use use(n);
                 const pydfn::OptConfig config = n.bound();
                 int64_t applied;
                 {
                     py::gil_scoped_release release;
                     applied = n.net().train_epoch(X.data(), t, o, count, batch_size, config, pl, pc,
                                                   lr ? lr->data() : nullptr);
                 }
                 return std::make_tuple(applied, n.net().last_call_undone(), batch_loss, batch_correct);
             },
             py::arg("x"), py::arg("y"), py::arg("order"), py::arg("batch_size"),
             py::arg("sample_weight") = py::none(), py::arg("lr") = py::none(),
             "Trains on rows order of x in minibatches with the bound optimizer (the fit loop "
             "gives it a slice of an epoch's order at a time); returns (batches applied, undone, "
             "per-batch cost, per-batch correct count). undone: a cost or the parameters or "
             "optimizer state became non-finite, and everything is as before the call. "
             "sample_weight (N): each row's loss weight, the batch's loss then Σ w_i·l_i / B. "
             "lr (batches): each batch's learning rate (finite, >= 0) in place of the bound one, "
             "which stays bound.")
        .def("predict_logits",
             [](Network& n, const FloatArray& X, int batch_size) {
                 check_shape(X, "x", {-1, n.in()});
                 const int64_t rows = X.shape(0);
                 py::array_t<float> logits({rows, int64_t(n.classes())});
                 float* out = logits.mutable_data();
                 Network::Read use(n);
                 py::gil_scoped_release release;
                 n.net().predict_logits(out, X.data(), rows, batch_size);
                 return logits;
             },
             py::arg("x"), py::arg("batch_size"))
        .def("evaluate",
             [](Network& n, const FloatArray& X, const py::array& y, int batch_size) {
                 const pydfn::Targets t = n.check_batch(X, y);
                 double loss_sum;
                 int64_t correct;
                 Network::Read use(n);
                 {
                     py::gil_scoped_release release;
                     n.net().evaluate(&loss_sum, &correct, X.data(), t, X.shape(0), batch_size);
                 }
                 return std::make_tuple(loss_sum, correct);
             },
             py::arg("x"), py::arg("y"), py::arg("batch_size"),
             "(sum of the rows' losses without penalty, number of correct predictions).");
}
