// pydfn._core.testing: the core's kernels, optimizer steps and barriers one call
// at a time, for the tests and benchmarks. Not pydfn's API.
#include <pybind11/stl.h>

#include <cstring>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "bindings.hpp"
#include "pydfn/dense.hpp"
#include "pydfn/dropout.hpp"
#include "pydfn/kernels/kernels.hpp"
#include "pydfn/optim.hpp"
#include "pydfn/softmax_xent.hpp"
#include "pydfn/threads.hpp"

namespace pydfn_bindings {

namespace {

using pydfn::check;

// A matrix product f runs: which, and C's columns N and the inner dimension K.
struct ProductShape {
    pydfn::Product p;
    int N, K;
};

// Runs fast kernels the way training does: inside one parallel region, with
// scratch for `products`, kept between calls as a network keeps its own (the calling
// thread's: calls from several Python threads each have theirs). With a fresh 200 KB
// panel per call (mapped, faulted in and unmapped each time), the forward product
// timed alone (profile_epoch.py --kernels) ran slower on 2 threads than on 1.
// The reference kernels are serial.
pydfn::KernelScratch& calling_thread_scratch() {
    thread_local pydfn::KernelScratch scratch;
    return scratch;
}

template <class F>
void run_kernels(const pydfn::Kernels& k, std::initializer_list<ProductShape> products, F&& f) {
    py::gil_scoped_release release;
    if (&k == &pydfn::kernels_ref()) {
        f();
        return;
    }
    pydfn::ScratchNeed need;
    for (const ProductShape& s : products) need.add(k, s.p, s.N, s.K);
    pydfn::parallel_region(calling_thread_scratch(), need, f);
}

}  // namespace

void bind_testing(py::module_& m) {
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
              const auto& k = pydfn::kernels_named(kernels);
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
              const auto& k = pydfn::kernels_named(kernels);
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
              const auto& k = pydfn::kernels_named(kernels);
              run_kernels(k, {{pydfn::Product::tn, N, K}},
                          [&] { k.sgemm_tn(c, A.data(), B.data(), M, N, K); });
              return C;
          },
          py::arg("A"), py::arg("B"), py::arg("kernels") = "best", "C(M,N) = A(K,M)ᵀ·B(K,N).");
    testing.def("round_bf16",
          [](const FloatArray& x, const std::string& kernels) {
              const int n = int(x.size());
              std::vector<uint32_t> packed(size_t(n + 1) / 2);
              const auto& k = pydfn::kernels_named(kernels);
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
             std::optional<FloatArray> mask, const std::string& layout, const std::string& kernels, int repeat) {
              check(layout == "nn" || layout == "tn" || layout == "nt",
                    "layout must be 'nn', 'tn' or 'nt'");
              check(repeat >= 1, "repeat must be at least 1");
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
              const auto& k = pydfn::kernels_named(kernels);
              const pydfn::Bf16Gemm g{C.mutable_data(), N, a_pairs.data(), ta ? 1 : P,
                                      ta ? pydfn::bf16_ld(M) : 1, b_pairs.data(), pydfn::bf16_ld(N),
                                      bias ? bias->data() : nullptr, relu,
                                      mask ? mask->data() : nullptr, M, N, P, ta};
              const pydfn::Product product = ta ? pydfn::Product::tn : tb ? pydfn::Product::nt : pydfn::Product::nn;
              run_kernels(k, {{product, N, K}}, [&] {
                  if (ta)
                      k.pack_bf16_pairs(a_pairs.data(), pydfn::bf16_ld(M), A.data(), K, M, false);
                  else
                      k.pack_bf16_rows(a_pairs.data(), P, A.data(), M, K);
                  k.pack_bf16_pairs(b_pairs.data(), pydfn::bf16_ld(N), B.data(), K, N, tb);
                  if (&k != &pydfn::kernels_ref()) pydfn::sync_threads();
                  // Each repetition writes the same blocks from the same threads: no barrier needed.
                  for (int r = 0; r < repeat; r++) k.bf16gemm(g);
              });
              return C;
          },
          py::arg("A"), py::arg("B"), py::arg("bias") = py::none(), py::arg("relu") = false,
          py::arg("mask") = py::none(), py::arg("layout") = "nn", py::arg("kernels") = "best",
          py::arg("repeat") = 1,
          "C = op(A)·op(B) (+bias, ReLU, zero where mask <= 0) in bf16 with float32 sums, "
          "op transposing A (layout 'tn', A (K,M)) or B ('nt', B (N,K)), packed as training packs; "
          "the product runs `repeat` times after one packing (to time the product alone).");
    testing.def("column_sums",
          [](const FloatArray& dy, const std::string& kernels) {
              check_shape(dy, "dy", {-1, -1});
              const int B = int(dy.shape(0)), N = int(dy.shape(1));
              py::array_t<float> db(N);
              float* out = db.mutable_data();
              const auto& k = pydfn::kernels_named(kernels);
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
              const auto& k = pydfn::kernels_named(kernels);
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
              pydfn::check_labels(y.data(), B, C);
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
              pydfn::check_labels(y.data(), B, C);
              py::array_t<float> d({B, C});
              float* pd = d.mutable_data();
              run_kernels(pydfn::kernels_best(), {}, [&] {
                  pydfn::softmax_xent_backward(pd, probs.data(), y.data(), scale, B, C, label_smoothing);
              });
              return d;
          },
          py::arg("probs"), py::arg("y"), py::arg("scale"), py::arg("label_smoothing") = 0.0f);
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
              const auto& k = pydfn::kernels_named(kernels);
              run_kernels(k, {}, [&] { k.opt_update(pp, p1, p2, grads.data(), n, step); });
          },
          py::arg("params"), py::arg("s1"), py::arg("s2"), py::arg("grads"), py::arg("t"),
          py::arg("config"), py::arg("l1") = 0.0f, py::arg("l2") = 0.0f, py::arg("kernels") = "best",
          "One optimizer step t, in place on params, s1 and s2, with the penalty's gradient "
          "l1·sign(params) + 2·l2·params added to grads.");

    testing.def("barriers",
          [](int64_t n) {
              check(n >= 0, "n must be >= 0");
              py::gil_scoped_release release;
              pydfn::parallel_region(pydfn::threads_for_region(), [&] {
                  for (int64_t i = 0; i < n; i++) pydfn::sync_threads();
              });
          },
          py::arg("n"),
          "n barriers (sync_threads) in one parallel region of the current thread count, with "
          "nothing between them: what a step pays per barrier when its threads arrive together.");
    testing.def("set_barrier_accounting", &pydfn::set_barrier_accounting, py::arg("on"),
          "Count every barrier wait of pydfn's parallel regions and its time, from zero (off by "
          "default: profiling only).");
    testing.def("barrier_waits",
          [] {
              const pydfn::BarrierWaits w = pydfn::barrier_waits();
              return std::make_tuple(w.waits, w.seconds);
          },
          "(waits, seconds summed over the waiting threads) since set_barrier_accounting(True).");

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

}

}  // namespace pydfn_bindings
