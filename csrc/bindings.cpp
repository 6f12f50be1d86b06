// pybind11 bindings of the core: argument checks, NumPy buffers <-> raw
// pointers, GIL release, C++ exceptions -> Python exceptions. Nothing else:
// the rules (names, ranges, the model's lock) are the core's.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstring>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bindings.hpp"
#include "pydfn/cpu.hpp"
#include "pydfn/kernels/kernels.hpp"
#include "pydfn/model.hpp"
#include "pydfn/optim.hpp"
#include "pydfn/threads.hpp"

namespace py = pybind11;
using pydfn::check;
using namespace pydfn_bindings;

namespace {

// The model's locks, taken without the GIL, so a thread waiting for one never
// blocks the thread holding it.
std::unique_lock<std::shared_mutex> lock_for_write(pydfn::Model& m) {
    py::gil_scoped_release release;
    return m.lock_for_write();
}
std::shared_lock<std::shared_mutex> lock_for_read(const pydfn::Model& m) {
    py::gil_scoped_release release;
    return m.lock_for_read();
}

py::array_t<float> copy_params(const pydfn::Model& m, const float* p) {
    py::array_t<float> out(m.net().num_params());
    std::memcpy(out.mutable_data(), p, sizeof(float) * size_t(m.net().num_params()));
    return out;
}

// x (N,in) and y: int32 labels (N) for softmax_xent, float32 targets (N,out) for a
// regression loss; optional per-row loss weights (N). Their values are checked by the core.
pydfn::Targets targets_of(const pydfn::Model& m, const FloatArray& x, const py::array& y,
                          const std::optional<FloatArray>& sample_weight = std::nullopt) {
    const pydfn::MLP& net = m.net();
    check_shape(x, "x", {-1, net.sizes().front()});
    pydfn::Targets t;
    check(bool(y.flags() & py::array::c_style), "y must be C-contiguous");
    if (net.loss() == pydfn::Loss::softmax_xent) {
        check(y.dtype().is(py::dtype::of<int32_t>()), "y must hold int32 class labels");
        check_shape(y, "y", {x.shape(0)});
        t.labels = static_cast<const int32_t*>(y.data());
    } else {
        check(y.dtype().is(py::dtype::of<float>()), "y must hold float32 regression targets");
        check_shape(y, "y", {x.shape(0), net.sizes().back()});
        t.values = static_cast<const float*>(y.data());
    }
    if (sample_weight) {
        check_shape(*sample_weight, "sample_weight", {x.shape(0)});
        t.weights = sample_weight->data();
    }
    net.check_targets(t, x.shape(0));
    return t;
}

py::array_t<float> predict(const pydfn::Model& m, const FloatArray& X, int batch_size, pydfn::MLP::Output what) {
    check_shape(X, "x", {-1, m.net().sizes().front()});
    const int64_t rows = X.shape(0);
    py::array_t<float> out({rows, int64_t(m.net().sizes().back())});
    float* o = out.mutable_data();
    const auto lock = lock_for_read(m);
    py::gil_scoped_release release;
    pydfn::Model::BorrowedScratch s(m);
    m.predict(*s, o, X.data(), rows, batch_size, what);
    return out;
}

pydfn::OptConfig opt_config(const std::string& kind, float lr, float beta1, float beta2, float alpha,
                            float eps, float weight_decay, float momentum, bool nesterov) {
    pydfn::OptConfig c;
    c.kind = pydfn::opt_kind_named(kind);
    c.lr = lr;
    c.beta1 = beta1;
    c.beta2 = beta2;
    c.alpha = alpha;
    c.eps = eps;
    c.weight_decay = weight_decay;
    c.momentum = momentum;
    c.nesterov = nesterov;
    pydfn::check_opt_config(c);
    return c;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pydfn's C++ core: kernels and the network, and its optimizers";
    m.attr("__version__") = PYDFN_VERSION;
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const std::invalid_argument& e) {
            PyErr_SetString(PyExc_ValueError, e.what());
        } catch (const pydfn::OutputOverflow& e) {  // NumPy's name for a float overflow
            PyErr_SetString(PyExc_FloatingPointError, e.what());
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
                               [](const pydfn::OptConfig& c) { return std::string(pydfn::opt_kind_name(c.kind)); })
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
                for (const pydfn::OptStateSlot& s : pydfn::opt_state_slots(c)) names.push_back(s.name);
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
    m.def("kernel_names", &pydfn::kernel_names,
          "The kernel sets this CPU can run: 'reference' and ISA names.");
    m.def("hardware_isa", [] { return std::string(pydfn::isa_name(pydfn::hardware_isa())); },
          "The best ISA of this CPU, ignoring PYDFN_MAX_ISA.");
    m.def("isa_note",
          []() -> std::optional<std::string> {
              const std::string note = pydfn::isa_note();
              if (note.empty()) return std::nullopt;
              return note;
          },
          "Why this CPU's AMX tiles go unused (no tile kernels in this build, the OS does not enable them or refused them), or None.");

    pydfn_bindings::bind_testing(m);

    py::class_<pydfn::Model>(m, "Network",
                             "The network's parameters, optimizer state, penalties and workspace.")
        .def(py::init([](const std::vector<int>& sizes, const std::string& activation, const std::string& loss,
                         const std::string& precision) {
                 return new pydfn::Model(sizes, pydfn::activation_named(activation), pydfn::loss_named(loss),
                                         pydfn::precision_named(precision));
             }),
             py::arg("sizes"), py::arg("activation") = "relu", py::arg("loss") = "softmax_xent",
             py::arg("precision") = "fp32")
        .def_property_readonly("sizes", [](const pydfn::Model& n) { return n.net().sizes(); })
        .def_property_readonly("num_params", [](const pydfn::Model& n) { return n.net().num_params(); })
        .def("get_params",
             [](pydfn::Model& n) {
                 const auto lock = lock_for_read(n);
                 return copy_params(n, n.net().params());
             })
        .def("set_params",
             [](pydfn::Model& n, const FloatArray& p) {
                 check_shape(p, "params", {n.net().num_params()});
                 const auto lock = lock_for_write(n);
                 std::memcpy(n.net().params(), p.data(), sizeof(float) * size_t(n.net().num_params()));
             })
        .def("get_grads",
             [](pydfn::Model& n) {
                 const auto lock = lock_for_read(n);
                 return copy_params(n, n.net().grads());
             })
        .def("grads_view",
             [](py::object self) {
                 pydfn::Model& n = self.cast<pydfn::Model&>();
                 // A view of the gradient buffer itself (kept alive by the network),
                 // so an MPI allreduce can average it in place between
                 // compute_gradients and apply_update.
                 return py::array_t<float>(n.net().num_params(), n.net().grads(), self);
             },
             "A writable NumPy view of the flat gradient buffer (no copy).")
        .def("bind_optimizer",
             [](pydfn::Model& n, std::optional<pydfn::OptConfig> config) {
                 const auto lock = lock_for_write(n);
                 n.bind_optimizer(config);
             },
             py::arg("config"),
             "The optimizer apply_update and train_batches step with (None: none). Its state "
             "is kept: reset_optimizer clears it.")
        .def_property_readonly(
            "optimizer_step",
            [](pydfn::Model& n) {
                const auto lock = lock_for_read(n);
                return n.net().opt_step_count();
            },
            "Optimizer steps taken since the state was last cleared (no copy).")
        .def("get_optimizer_state",
             [](pydfn::Model& n) {
                 const auto lock = lock_for_read(n);
                 py::dict out;
                 for (const pydfn::OptStateSlot& s : n.optimizer_state_slots())
                     out[py::str(s.name)] = copy_params(n, n.optimizer_state(s));
                 return out;
             },
             "Copies of the bound optimizer's state buffers, by name (its state_names).")
        .def("set_optimizer_state",
             [](pydfn::Model& n, const std::map<std::string, FloatArray>& buffers, int64_t step) {
                 std::vector<std::pair<std::string, const float*>> data;
                 for (const auto& [name, a] : buffers) {
                     check_shape(a, name.c_str(), {n.net().num_params()});
                     data.emplace_back(name, a.data());
                 }
                 const auto lock = lock_for_write(n);
                 n.set_optimizer_state(data, step);
             },
             py::arg("buffers"), py::arg("step"),
             "Set the bound optimizer's state buffers (exactly its state_names) and step count.")
        .def("reset_optimizer",
             [](pydfn::Model& n) {
                 const auto lock = lock_for_write(n);
                 n.net().reset_optimizer();
             },
             "Clear the optimizer's state: buffers to zero, step count to 0.")
        .def("set_penalty",
             [](pydfn::Model& n, float l1, float l2) {
                 const auto lock = lock_for_write(n);
                 n.net().set_penalty(l1, l2);
             },
             py::arg("l1"), py::arg("l2"), "Weight penalties: cost = mean loss + l1·Σ|W| + l2·ΣW².")
        .def_property(
            "label_smoothing", [](const pydfn::Model& n) { return n.net().label_smoothing(); },
            [](pydfn::Model& n, float eps) {
                const auto lock = lock_for_write(n);
                n.net().set_label_smoothing(eps);
            },
            "softmax_xent's label smoothing eps in [0, 1]: targets (1-eps)·onehot + eps/C.")
        .def("set_dropout",
             [](pydfn::Model& n, const std::vector<float>& rates, uint64_t seed) {
                 const auto lock = lock_for_write(n);
                 n.net().set_dropout(rates, seed);
             },
             py::arg("rates"), py::arg("seed"),
             "Inverted dropout on the hidden layers' outputs in training, one rate per hidden layer.")
        .def("penalty",
             [](pydfn::Model& n) {
                 const auto lock = lock_for_read(n);
                 py::gil_scoped_release release;
                 return n.net().penalty();
             },
             "l1·Σ|W| + l2·ΣW² of the current weights.")
        .def("compute_gradients",
             [](pydfn::Model& n, const FloatArray& x, const py::array& y) {
                 const pydfn::Targets t = targets_of(n, x, y);
                 check(x.shape(0) >= 1, "x must have at least one row");
                 const auto lock = lock_for_write(n);
                 py::gil_scoped_release release;
                 return n.net().compute_gradients(x.data(), t, int(x.shape(0)));
             },
             py::arg("x"), py::arg("y"),
             "Gradients of the cost (mean loss + penalty) into the grads; returns the cost.")
        .def("apply_update",
             [](pydfn::Model& n) {
                 const auto lock = lock_for_write(n);
                 const pydfn::OptConfig config = n.bound_optimizer();
                 py::gil_scoped_release release;
                 return n.net().apply_update(config);
             },
             "One step of the bound optimizer from the grads; False, with nothing changed, when "
             "the step would make the parameters or the optimizer state non-finite.")
        .def("release_after_fork", &pydfn::Model::replace_lock_after_fork,
             "Frees the model in a forked child, where the thread that was using it is gone "
             "(call only there: pydfn registers it with os.register_at_fork).")
        .def("train_batches",
             [](pydfn::Model& n, const FloatArray& X, const py::array& y, const IndexArray& order,
                int batch_size, const std::optional<FloatArray>& sample_weight,
                const std::optional<FloatArray>& lr) {
                 const pydfn::Targets t = targets_of(n, X, y, sample_weight);
                 check_shape(order, "order", {-1});
                 const int64_t num_batches = pydfn::batch_count(order.size(), batch_size);
                 if (lr) check_shape(*lr, "lr", {num_batches});
                 py::array_t<float> batch_loss(num_batches);
                 py::array_t<int64_t> batch_correct(num_batches);
                 float* pl = batch_loss.mutable_data();
                 int64_t* pc = batch_correct.mutable_data();
                 const auto lock = lock_for_write(n);
                 const pydfn::OptConfig config = n.bound_optimizer();
                 int64_t applied;
                 {
                     py::gil_scoped_release release;
                     applied = n.net().train_batches(X.data(), X.shape(0), t, order.data(), order.size(),
                                                     batch_size, config, pl, pc, lr ? lr->data() : nullptr);
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
             [](pydfn::Model& n, const FloatArray& X, int batch_size) {
                 return predict(n, X, batch_size, pydfn::MLP::Output::logits);
             },
             py::arg("x"), py::arg("batch_size"), "The output layer (N, out) of x (N, in).")
        .def("predict_proba",
             [](pydfn::Model& n, const FloatArray& X, int batch_size) {
                 return predict(n, X, batch_size, pydfn::MLP::Output::probabilities);
             },
             py::arg("x"), py::arg("batch_size"),
             "The softmax of the output layer (N, classes) of x (N, in), as the C API computes it.")
        .def("evaluate",
             [](pydfn::Model& n, const FloatArray& X, const py::array& y, int batch_size) {
                 const pydfn::Targets t = targets_of(n, X, y);
                 double loss_sum;
                 int64_t correct;
                 const auto lock = lock_for_read(n);
                 {
                     py::gil_scoped_release release;
                     n.net().evaluate(&loss_sum, &correct, X.data(), t, X.shape(0), batch_size);
                 }
                 return std::make_tuple(loss_sum, correct);
             },
             py::arg("x"), py::arg("y"), py::arg("batch_size"),
             "(sum of the rows' losses without penalty, number of correct predictions).");
}
