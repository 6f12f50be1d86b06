// A C++ test of the core library alone (no Python), for any CPU; .ci/cross-aarch64
// runs it on aarch64 under qemu and natively on x86-64.
//
//   core_check                  every fast kernel set this CPU runs against the
//                               reference kernels, on awkward shapes, and the AMX
//                               tile product on a C++ model of the tiles (amx_model.hpp)
//   core_check --dump FILE      ... then train two small networks a few steps and
//                               write their losses and parameters to FILE
//   core_check --compare FILE   ... then train them and compare with FILE (written
//                               by --dump on another machine) to rounding
// Exit status 0 when every check passes, 1 otherwise.
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "amx_model.hpp"
#include "pydfn/cpu.hpp"
#include "pydfn/dense.hpp"
#include "pydfn/kernels/kernels.hpp"
#include "pydfn/mlp.hpp"
#include "pydfn/optim.hpp"
#include "pydfn/threads.hpp"

namespace {

int failures = 0;

// Deterministic values on every platform: a hash of (stream, index) as a float in
// [-0.5, 0.5) with 16 bits, exact in float32 (unlike std:: distributions, whose
// output the standard leaves to the library).
uint32_t hash32(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return uint32_t(x);
}
float value(uint64_t stream, uint64_t i) {
    return float(hash32(stream * 0x9e3779b97f4a7c15ULL + i) & 0xffff) / 65536.0f - 0.5f;
}
std::vector<float> values(uint64_t stream, size_t n) {
    std::vector<float> v(n);
    for (size_t i = 0; i < n; i++) v[i] = value(stream, i);
    return v;
}

// Largest |got − want| over the scale of the sum that made each element
// (Σ|terms|, given per element), and fails the check when above tol.
double compare(const char* what, const std::vector<float>& got, const std::vector<float>& want,
               const std::vector<double>& scale, double tol) {
    double worst = 0;
    for (size_t i = 0; i < got.size(); i++) {
        const double err = std::fabs(double(got[i]) - want[i]) / (scale[i] + 1e-30);
        if (!(err <= worst)) worst = err;  // NaN counts as the worst
    }
    if (!(worst <= tol)) {
        std::printf("FAIL %s: relative error %.3g > %.1g\n", what, worst, tol);
        failures++;
    }
    return worst;
}

// Runs a fast kernel as training does: in a parallel region with its scratch reserved first.
template <class F>
void run_fast(const pydfn::Kernels& k, pydfn::Product p, int N, int K, F&& f) {
    pydfn::ScratchNeed need;
    need.add(k, p, N, K);
    pydfn::KernelScratch scratch;
    pydfn::parallel_region(scratch, need, f);
}

// opt_update_into writes what opt_update computes, bit for bit, leaves its inputs as
// they were, and says whether the results are finite: for each optimizer, sizes around
// vectors and blocks, an overflow at the first, a middle or the last element (or none),
// and eps = 0, which makes a vector's padding lanes 0/0.
void check_update_into(const pydfn::Kernels& fast) {
    using pydfn::OptKind;
    for (OptKind kind : {OptKind::adam, OptKind::adamw, OptKind::sgd, OptKind::rmsprop})
        for (float eps : {1e-8f, 0.0f})
            for (int64_t n : {1, 7, 16, 4097, 8200})
                for (int64_t bad_at : {int64_t(-1), int64_t(0), n / 2, n - 1}) {
                    pydfn::OptConfig config;
                    config.kind = kind;
                    config.eps = eps;
                    config.lr = 1.0f;  // so that 3e38 steps SGD past the largest float
                    config.momentum = 0.9f;
                    config.weight_decay = 0.01f;
                    const pydfn::OptStep step = pydfn::opt_step(config, 3);
                    std::vector<float> w = values(30, size_t(n)), m = values(31, size_t(n)),
                                       v = values(32, size_t(n)), g = values(33, size_t(n));
                    for (float& x : v) x *= x;
                    // g² overflows in Adam's and RMSProp's v; a huge step overflows SGD's w
                    if (bad_at >= 0) g[size_t(bad_at)] = kind == OptKind::sgd ? 3e38f : 1e30f;
                    if (bad_at >= 0 && kind == OptKind::sgd) w[size_t(bad_at)] = -3e38f;
                    const std::vector<float> w0 = w, m0 = m, v0 = v;
                    std::vector<float> w1(w.size()), m1(w.size()), v1(w.size());
                    const bool said = fast.opt_update_into(w.data(), m.data(), v.data(), g.data(), n, step,
                                                           w1.data(), m1.data(), v1.data());
                    const bool kept = w == w0 && m == m0 && v == v0;
                    fast.opt_update(w.data(), m.data(), v.data(), g.data(), n, step);
                    bool finite = true, same = true;
                    for (const std::vector<float>* b : {&w, &m, &v})
                        for (float x : *b) finite = finite && std::isfinite(x);
                    for (size_t i = 0; i < size_t(n); i++)  // bits: NaN != NaN
                        same = same && std::memcmp(&w[i], &w1[i], 4) == 0 && std::memcmp(&m[i], &m1[i], 4) == 0 &&
                               std::memcmp(&v[i], &v1[i], 4) == 0;
                    if (said != finite || finite != (bad_at < 0) || !kept || !same) {
                        std::printf("FAIL opt_update_into (%s, kind %d, eps %g, n %lld, overflow at %lld): "
                                    "said %d, the step gave %s; inputs %s, results %s\n", fast.isa, int(kind),
                                    double(eps), (long long)n, (long long)bad_at, int(said),
                                    finite ? "finite" : "non-finite", kept ? "kept" : "changed",
                                    same ? "the same" : "different");
                        failures++;
                    }
                }
}

// float32 bits -> bf16 bits as Intel's pseudo-code for VCVTNEPS2BF16 defines them:
// zero and subnormals to a signed zero, NaN quieted (bit 22 set), otherwise
// round to nearest even.
uint32_t bf16_oracle(uint32_t u) {
    if ((u & 0x7f800000u) == 0) return (u & 0x80000000u) >> 16;
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u | 0x00400000u) >> 16;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}

// Rounding to bf16 gives the oracle's bits on every kernel set: every sign, exponent
// and top 7 mantissa bits, each with low halves around the rounding's ties, so
// subnormals, infinities and NaNs too.
void check_bf16_rounding(const pydfn::Kernels& fast) {
    const uint32_t lows[] = {0x0000, 0x0001, 0x7fff, 0x8000, 0x8001, 0xffff, 0x1234, 0xc000};
    std::vector<uint32_t> bits;
    for (uint32_t high = 0; high < 0x10000; high++)
        for (uint32_t low : lows) bits.push_back(high << 16 | low);
    const int n = int(bits.size());  // even: every pair whole
    std::vector<float> x(bits.size());
    std::memcpy(x.data(), bits.data(), 4 * bits.size());
    std::vector<uint32_t> got(size_t(n) / 2);
    fast.pack_bf16_rows(got.data(), n / 2, x.data(), 1, n);
    for (int p = 0; p < n / 2; p++)
        if (got[size_t(p)] != (bf16_oracle(bits[size_t(2 * p)]) | bf16_oracle(bits[size_t(2 * p + 1)]) << 16)) {
            std::printf("FAIL %s rounds %08x or %08x to bf16 unlike VCVTNEPS2BF16\n", fast.isa,
                        unsigned(bits[size_t(2 * p)]), unsigned(bits[size_t(2 * p + 1)]));
            failures++;
            return;
        }
}

// AdamW decays each parameter as its own rounded product, then takes Adam's step from
// it, as PyTorch does (param.mul_(1 - lr·wd), then addcdiv_): a fused multiply-add of
// the decay into the step would round once, and FMA kernels once did.
void check_adamw_decay_rounds_alone(const pydfn::Kernels& fast) {
    pydfn::OptConfig config;
    config.kind = pydfn::OptKind::adamw;
    config.lr = 0.01f;
    config.weight_decay = 0.37f;
    const pydfn::OptStep adamw = pydfn::opt_step(config, 3);
    config.kind = pydfn::OptKind::adam;
    const pydfn::OptStep adam = pydfn::opt_step(config, 3);
    const size_t n = 1000;
    std::vector<float> w = values(50, n), m = values(51, n), v = values(52, n), g = values(53, n);
    for (float& x : v) x *= x;
    std::vector<float> decayed(n), m2 = m, v2 = v;
    volatile float decay = adamw.decay;  // one rounded product per parameter, whatever the flags
    for (size_t i = 0; i < n; i++) decayed[i] = w[i] * decay;
    fast.opt_update(w.data(), m.data(), v.data(), g.data(), int64_t(n), adamw);
    fast.opt_update(decayed.data(), m2.data(), v2.data(), g.data(), int64_t(n), adam);
    if (std::memcmp(w.data(), decayed.data(), 4 * n) != 0) {
        std::printf("FAIL %s: AdamW's decay is not rounded on its own before Adam's step\n", fast.isa);
        failures++;
    }
}

float from_bits(uint32_t bits) {
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}
float bf16_rounded(float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    return from_bits(bf16_oracle(bits) << 16);
}

// One bf16 product (Bf16Gemm) of kernels k as training runs it: its operands packed in a
// parallel region of `threads` threads, then multiplied. Layout "nn": A (M,K) in rows of
// pairs, B (K,N); "tn": A given as (K,M), paired along K as dW's x is; "nt": B given as (N,K).
std::vector<float> bf16_product(const pydfn::Kernels& k, const char* layout, const std::vector<float>& A,
                                const std::vector<float>& B, const float* bias, bool relu, const float* mask,
                                int M, int N, int K, int threads) {
    const bool ta = layout[0] == 't', tb = layout[1] == 't';
    const int P = (K + 1) / 2;
    std::vector<uint32_t> a_pairs(ta ? size_t(P) * pydfn::bf16_ld(M) : size_t(M) * P),
        b_pairs(size_t(P) * pydfn::bf16_ld(N));
    std::vector<float> C(size_t(M) * N);
    const pydfn::Bf16Gemm g{C.data(), N, a_pairs.data(), ta ? 1 : P, ta ? pydfn::bf16_ld(M) : 1, b_pairs.data(),
                            pydfn::bf16_ld(N), bias, relu, mask, M, N, P, ta};
    pydfn::ScratchNeed need;
    need.add(k, ta ? pydfn::Product::tn : tb ? pydfn::Product::nt : pydfn::Product::nn, N, K);
    pydfn::KernelScratch scratch;
    pydfn::parallel_region(scratch, need, [&] {
        if (ta)
            k.pack_bf16_pairs(a_pairs.data(), pydfn::bf16_ld(M), A.data(), K, M, false);
        else
            k.pack_bf16_rows(a_pairs.data(), P, A.data(), M, K);
        k.pack_bf16_pairs(b_pairs.data(), pydfn::bf16_ld(N), B.data(), K, N, tb);
        pydfn::sync_threads();
        k.bf16gemm(g);
    }, threads);
    return C;
}

// An inf in A makes its own row of C non-finite and no other: whatever pads the
// operands (a partial step of K, rows past M) must multiply as an exact zero.
void check_inf_stays_in_its_row(const pydfn::Kernels& k) {
    const int M = 40, N = 20, K = 33;  // 17 pairs: one past a whole tile; rows 32-39 a partial block
    for (const char* layout : {"nn", "tn"}) {
        const bool ta = layout[0] == 't';
        std::vector<float> A = values(41, size_t(M) * K);
        const std::vector<float> B = values(42, size_t(K) * N);
        const int inf_rows[] = {1, M - 1}, inf_ks[] = {0, K - 1};
        for (int e = 0; e < 2; e++)
            A[ta ? size_t(inf_ks[e]) * M + inf_rows[e] : size_t(inf_rows[e]) * K + inf_ks[e]] = INFINITY;
        const std::vector<float> C = bf16_product(k, layout, A, B, nullptr, false, nullptr, M, N, K, 0);
        for (int i = 0; i < M; i++) {
            const bool inf_row = i == inf_rows[0] || i == inf_rows[1];
            for (int j = 0; j < N; j++)
                if (std::isfinite(C[size_t(i) * N + j]) == inf_row) {
                    std::printf("FAIL %s bf16gemm %s: an inf in A's rows 1 and %d, C(%d, %d) = %g\n", k.isa, layout,
                                M - 1, i, j, double(C[size_t(i) * N + j]));
                    failures++;
                    return;
                }
        }
    }
}

// The bf16 products of kernels k against sums in double of the same bf16-rounded inputs, on
// shapes around the vector kernels' tiles and AMX's (16 rows, 16 columns, 16 pairs of K; C
// in blocks of 32 x 32), in each layout, with bias + ReLU or a mask. Float sums in any order
// are within (K + 2)·2⁻²⁴ of Σ|terms|; the bound holds for every kernel set.
void check_bf16_products(const pydfn::Kernels& k) {
    const int ms[] = {1, 5, 16, 17, 32, 33, 64, 70}, ns[] = {1, 10, 16, 17, 31, 32, 33, 130},
              ks[] = {1, 2, 31, 32, 33, 64, 97, 784};
    double worst = 0;
    int shapes = 0;
    for (int M : ms)
        for (int N : ns)
            for (int K : ks) {
                if (size_t(M) * N * K > size_t(1) << 21) continue;
                shapes++;
                const std::vector<float> bias = values(21, N), mask = values(22, size_t(M) * N);
                for (const char* layout : {"nn", "tn", "nt"}) {
                    const bool ta = layout[0] == 't', tb = layout[1] == 't';
                    const std::vector<float> A = values(23, size_t(M) * K), B = values(24, size_t(K) * N);
                    std::vector<double> exact(size_t(M) * N), scale(size_t(M) * N);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < N; j++) {
                            double sum = 0, abs_sum = 0;
                            for (int kk = 0; kk < K; kk++) {
                                const double t = double(bf16_rounded(A[ta ? size_t(kk) * M + i : size_t(i) * K + kk])) *
                                                 bf16_rounded(B[tb ? size_t(j) * K + kk : size_t(kk) * N + j]);
                                sum += t;
                                abs_sum += std::fabs(t);
                            }
                            exact[size_t(i) * N + j] = sum;
                            scale[size_t(i) * N + j] = abs_sum + std::fabs(bias[j]);
                        }
                    const bool relu_with_bias = (M + N + K) % 2 == 0;  // each shape tries one epilogue
                    const std::vector<float> got = bf16_product(k, layout, A, B, relu_with_bias ? bias.data() : nullptr,
                                                                relu_with_bias, relu_with_bias ? nullptr : mask.data(),
                                                                M, N, K, 0);
                    std::vector<float> want(got.size());
                    for (size_t e = 0; e < got.size(); e++) {
                        const double v = relu_with_bias ? std::fmax(exact[e] + bias[e % size_t(N)], 0.0)
                                                        : (mask[e] > 0 ? exact[e] : 0.0);
                        want[e] = float(v);
                    }
                    char what[96];
                    std::snprintf(what, sizeof what, "%s bf16gemm %s %dx%dx%d", k.isa, layout, M, N, K);
                    worst = std::fmax(worst, compare(what, got, want, scale, (K + 2) * std::ldexp(1.0, -24)));
                }
            }
    check_inf_stays_in_its_row(k);
    std::printf("bf16 products of %s vs double sums: %d shapes x 3 layouts, max error %.2g of the sum of |terms|\n",
                k.isa, shapes, worst);
}

// The tile product on the C++ model: the same bits for any thread count, and right after
// other code in the thread loaded a configuration of its own.
void check_tile_product_model() {
    const pydfn::Kernels& k = amx_model::kernels();
    check_bf16_products(k);
    const int M = 70, N = 130, K = 97;
    const std::vector<float> A = values(31, size_t(M) * K), B = values(32, size_t(K) * N), bias = values(33, N);
    const std::vector<float> one = bf16_product(k, "nn", A, B, bias.data(), true, nullptr, M, N, K, 1);
    const int saved = pydfn::get_num_threads();
    pydfn::set_num_threads(3);
    for (const char* layout : {"nn", "tn", "nt"}) {
        const std::vector<float> first =
            std::strcmp(layout, "nn") == 0 ? one : bf16_product(k, layout, A, B, bias.data(), true, nullptr, M, N, K, 1);
        for (int threads : {2, 3}) {
            const std::vector<float> many = bf16_product(k, layout, A, B, bias.data(), true, nullptr, M, N, K, threads);
            if (std::memcmp(many.data(), first.data(), 4 * first.size()) != 0) {
                std::printf("FAIL the tile product (%s) on %d threads differs from 1 thread\n", layout, threads);
                failures++;
            }
        }
    }
    pydfn::set_num_threads(saved);
    amx_model::TileConfig foreign = amx_model::pydfn_tile_config();
    for (int t = 0; t < 8; t++) foreign.rows[t] = 8;  // as another library might leave it
    amx_model::tile_config_load(&foreign);
    const std::vector<float> after = bf16_product(k, "nn", A, B, bias.data(), true, nullptr, M, N, K, 1);
    if (std::memcmp(after.data(), one.data(), 4 * one.size()) != 0) {
        std::printf("FAIL the tile product after another configuration was loaded\n");
        failures++;
    }
}

// Which kernels a CPU with AMX runs, and what pydfn says when its tiles go unused.
void check_tiles_fallback() {
    struct Case {
        pydfn::TileSupport tiles;  // cpu, os, build, refused_errno
        pydfn::Isa run;            // where PYDFN_MAX_ISA leaves amx
        const char* note;          // a part of the note, or "" for none
    } cases[] = {
        {{false, false, true, 0}, pydfn::Isa::avx512bf16, ""},
        {{false, true, true, 0}, pydfn::Isa::avx512bf16, ""},
        {{true, true, false, 0}, pydfn::Isa::avx512bf16, "this build of pydfn has no tile kernels"},
        {{true, false, true, 0}, pydfn::Isa::avx512bf16, "the OS does not enable their state (XCR0"},
        {{true, true, true, EPERM}, pydfn::Isa::avx512bf16, "refused them to this process (arch_prctl(ARCH_REQ_XCOMP_PERM): "},
        {{true, true, true, -1}, pydfn::Isa::avx512bf16, "on Linux only"},
        {{true, true, true, 0}, pydfn::Isa::amx, ""},
    };
    for (const Case& c : cases) {
        const std::string note = pydfn::tiles_note(c.tiles);
        const pydfn::Isa run = pydfn::isa_to_run(pydfn::Isa::amx, c.tiles);
        const bool note_ok = *c.note ? note.find(c.note) != std::string::npos : note.empty();
        // a cap below amx is kept whatever the tiles
        const bool cap_kept = pydfn::isa_to_run(pydfn::Isa::avx2, c.tiles) == pydfn::Isa::avx2 &&
                              pydfn::isa_to_run(pydfn::Isa::avx512bf16, c.tiles) == pydfn::Isa::avx512bf16;
        if (run != c.run || !note_ok || !cap_kept) {
            std::printf("FAIL tiles (cpu=%d, os=%d, build=%d, errno=%d): runs %s, note '%s'\n", c.tiles.cpu,
                        c.tiles.os, c.tiles.build, c.tiles.refused_errno, pydfn::isa_name(run), note.c_str());
            failures++;
        }
    }
}

// One kernel set against the reference on M x N x K shapes around its tiles.
void check_kernels(const pydfn::Kernels& fast) {
    const pydfn::Kernels& ref = pydfn::kernels_ref();
    const int dims[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33, 64, 65, 127};
    const double tol = 1e-5;  // of Σ|a·b|: float32 sums in another order
    double worst = 0;
    int shapes = 0;
    for (int M : dims)
        for (int N : dims)
            for (int K : {1, 3, 8, 17, 64, 129}) {
                shapes++;
                const std::vector<float> A = values(1, size_t(M) * K), B = values(2, size_t(K) * N),
                                         bias = values(3, N), mask = values(4, size_t(M) * N);
                // nn: C(M,N) = A(M,K)·B(K,N) + bias, ReLU
                std::vector<float> got(size_t(M) * N), want(size_t(M) * N);
                std::vector<double> scale(size_t(M) * N);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = std::fabs(bias[j]);
                        for (int k = 0; k < K; k++) s += std::fabs(double(A[i * K + k]) * B[k * N + j]);
                        scale[i * N + j] = s;
                    }
                std::vector<float> packed(fast.packed_b_floats(N, K)), from_packed(size_t(M) * N);
                fast.pack_b(packed.data(), B.data(), N, K);
                for (bool relu : {false, true}) {
                    run_fast(fast, pydfn::Product::nn, N, K, [&] { fast.sgemm_nn_bias_relu(got.data(), A.data(), B.data(), bias.data(), relu, M, N, K); });
                    ref.sgemm_nn_bias_relu(want.data(), A.data(), B.data(), bias.data(), relu, M, N, K);
                    worst = std::fmax(worst, compare("sgemm_nn_bias_relu", got, want, scale, tol));
                    // from B packed once: the same bits
                    run_fast(fast, pydfn::Product::nn, N, K, [&] { fast.sgemm_nn_packed_bias_relu(from_packed.data(), A.data(), packed.data(), bias.data(), relu, M, N, K); });
                    if (std::memcmp(from_packed.data(), got.data(), sizeof(float) * got.size()) != 0) {
                        std::printf("FAIL sgemm_nn_packed_bias_relu (%s, %dx%dx%d): not the bits of sgemm_nn_bias_relu\n",
                                    fast.isa, M, N, K);
                        failures++;
                    }
                }
                // nt: C(M,N) = A(M,K)·Bt(N,K)ᵀ, zeroed where mask <= 0
                const std::vector<float> Bt = values(5, size_t(N) * K);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = 0;
                        for (int k = 0; k < K; k++) s += std::fabs(double(A[i * K + k]) * Bt[j * K + k]);
                        scale[i * N + j] = s;
                    }
                for (const float* m : {static_cast<const float*>(nullptr), mask.data()}) {
                    run_fast(fast, pydfn::Product::nt, N, K, [&] { fast.sgemm_nt_mask(got.data(), A.data(), Bt.data(), m, M, N, K); });
                    ref.sgemm_nt_mask(want.data(), A.data(), Bt.data(), m, M, N, K);
                    worst = std::fmax(worst, compare("sgemm_nt_mask", got, want, scale, tol));
                }
                // tn: C(M,N) = At(K,M)ᵀ·B(K,N)
                const std::vector<float> At = values(6, size_t(K) * M);
                for (int i = 0; i < M; i++)
                    for (int j = 0; j < N; j++) {
                        double s = 0;
                        for (int k = 0; k < K; k++) s += std::fabs(double(At[k * M + i]) * B[k * N + j]);
                        scale[i * N + j] = s;
                    }
                run_fast(fast, pydfn::Product::tn, N, K, [&] { fast.sgemm_tn(got.data(), At.data(), B.data(), M, N, K); });
                ref.sgemm_tn(want.data(), At.data(), B.data(), M, N, K);
                worst = std::fmax(worst, compare("sgemm_tn", got, want, scale, tol));
            }
    // column sums (B rows summed in order: the same bits) and an Adam step
    for (int B : {1, 3, 17, 64})
        for (int N : {1, 5, 8, 33, 130}) {
            const std::vector<float> dy = values(7, size_t(B) * N);
            std::vector<float> got(N), want(N);
            std::vector<double> scale(N);
            for (int j = 0; j < N; j++) {
                scale[j] = 0;
                for (int i = 0; i < B; i++) scale[j] += std::fabs(dy[i * N + j]);
            }
            fast.column_sums(got.data(), dy.data(), B, N, nullptr);
            ref.column_sums(want.data(), dy.data(), B, N, nullptr);
            worst = std::fmax(worst, compare("column_sums", got, want, scale, tol));
        }
    for (int64_t n : {1, 7, 64, 1001}) {
        const pydfn::OptStep step = pydfn::opt_step(pydfn::OptConfig{}, 3);
        std::vector<float> w1 = values(8, n), w2 = w1, g = values(9, n);
        std::vector<float> m1 = values(10, n), m2 = m1, v1 = values(11, n);
        for (float& v : v1) v *= v;
        std::vector<float> v2 = v1;
        fast.opt_update(w1.data(), m1.data(), v1.data(), g.data(), n, step);
        ref.opt_update(w2.data(), m2.data(), v2.data(), g.data(), n, step);
        std::vector<double> scale(size_t(n), 1.0);
        worst = std::fmax(worst, compare("opt_update (adam) weights", w1, w2, scale, tol));
        worst = std::fmax(worst, compare("opt_update (adam) m", m1, m2, scale, tol));
        worst = std::fmax(worst, compare("opt_update (adam) v", v1, v2, scale, tol));
    }
    check_update_into(fast);
    check_bf16_rounding(fast);
    check_adamw_decay_rounds_alone(fast);
    std::printf("kernels %s vs reference: %d matrix shapes + column sums + adam, max relative error %.2g\n",
                fast.isa, shapes, worst);
}

// A few minibatches of training from fixed weights and data; the named
// results are the batch losses and the parameters after the steps.
std::map<std::string, std::vector<float>> train(const char* name, std::vector<int> sizes,
                                                pydfn::Activation activation, pydfn::Loss loss,
                                                pydfn::OptConfig config) {
    pydfn::MLP net(sizes, activation, loss);
    for (int64_t i = 0; i < net.num_params(); i++) net.params()[i] = 0.5f * value(20, i);
    const int n = 100, batch = 16, in = sizes.front(), out = sizes.back();
    const std::vector<float> X = values(21, size_t(n) * in);
    std::vector<int32_t> labels(n);
    for (int i = 0; i < n; i++) labels[i] = int32_t(hash32(22 * 1000003ULL + i) % uint32_t(out));
    const std::vector<float> targets = values(23, size_t(n) * out);
    pydfn::Targets y;
    if (loss == pydfn::Loss::softmax_xent)
        y.labels = labels.data();
    else
        y.values = targets.data();
    std::vector<int64_t> order(n);
    for (int i = 0; i < n; i++) order[i] = (i * 37) % n;  // a fixed shuffle (37 is prime to 100)
    std::vector<float> losses;
    for (int epoch = 0; epoch < 2; epoch++) {
        std::vector<float> batch_loss(pydfn::batch_count(n, batch));
        const int64_t applied = net.train_batches(X.data(), n, y, order.data(), n, batch, config,
                                                  batch_loss.data(), nullptr);
        if (applied != int64_t(batch_loss.size())) {
            std::printf("FAIL %s: %lld of %zu batches applied\n", name, (long long)applied, batch_loss.size());
            failures++;
        }
        losses.insert(losses.end(), batch_loss.begin(), batch_loss.end());
    }
    std::vector<float> logits(size_t(n) * out);
    net.predict(logits.data(), X.data(), n, 64, pydfn::MLP::Output::logits);
    return {{std::string(name) + ".losses", losses},
            {std::string(name) + ".params", std::vector<float>(net.params(), net.params() + net.num_params())},
            {std::string(name) + ".outputs", logits}};
}

std::map<std::string, std::vector<float>> train_all() {
    pydfn::OptConfig adam;
    adam.lr = 1e-2f;
    pydfn::OptConfig sgd;
    sgd.kind = pydfn::OptKind::sgd;
    sgd.lr = 0.05f;
    sgd.momentum = 0.9f;
    auto results = train("relu_softmax_adam", {37, 29, 17, 5}, pydfn::Activation::relu,
                         pydfn::Loss::softmax_xent, adam);
    for (auto& kv : train("tanh_mse_sgd", {23, 65, 3}, pydfn::Activation::tanh, pydfn::Loss::mse, sgd))
        results.insert(kv);
    for (auto& kv : train("sigmoid_softmax_adam", {9, 8, 7, 6, 4}, pydfn::Activation::sigmoid,
                          pydfn::Loss::softmax_xent, adam))
        results.insert(kv);
    return results;
}

void dump(const std::string& path, const std::map<std::string, std::vector<float>>& results) {
    std::ofstream f(path);
    for (const auto& [name, v] : results) {
        f << name << ' ' << v.size();
        char buf[32];
        for (float x : v) {
            std::snprintf(buf, sizeof buf, " %.9g", double(x));  // round-trips float32 exactly
            f << buf;
        }
        f << '\n';
    }
    if (!f) {
        std::printf("FAIL cannot write %s\n", path.c_str());
        failures++;
    }
}

// Each result against the other machine's to tol of the result's largest
// magnitude: the kernels there sum in another order (and may fuse multiply-adds).
void compare_with(const std::string& path, const std::map<std::string, std::vector<float>>& results) {
    std::ifstream f(path);
    if (!f) {
        std::printf("FAIL cannot read %s\n", path.c_str());
        failures++;
        return;
    }
    const double tol = 1e-5;
    std::string line;
    size_t compared = 0;
    while (std::getline(f, line)) {
        std::istringstream in(line);
        std::string name;
        size_t n = 0;
        in >> name >> n;
        std::vector<float> want(n);
        for (float& x : want) in >> x;
        const auto it = results.find(name);
        if (!in || it == results.end() || it->second.size() != n) {
            std::printf("FAIL %s: missing or of another size here\n", name.c_str());
            failures++;
            continue;
        }
        double largest = 0, worst = 0;
        // A plain comparison: GCC 12 for aarch64 crashed (internal compiler error in
        // vect_transform_reduction) vectorising this loop as an fmax reduction.
        for (float x : want)
            if (std::fabs(x) > largest) largest = std::fabs(x);
        for (size_t i = 0; i < n; i++) {
            const double err = std::fabs(double(it->second[i]) - want[i]) / largest;
            if (!(err <= worst)) worst = err;
        }
        const bool ok = worst <= tol;
        std::printf("%s %-32s %5zu values, max relative difference %.2g\n", ok ? "ok  " : "FAIL",
                    name.c_str(), n, worst);
        failures += !ok;
        compared++;
    }
    if (compared != results.size()) {
        std::printf("FAIL %s holds %zu of the %zu results\n", path.c_str(), compared, results.size());
        failures++;
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    if (!(argc == 1 || (argc == 3 && (mode == "--dump" || mode == "--compare")))) {
        std::fprintf(stderr, "usage: %s [--dump FILE | --compare FILE]\n", argv[0]);
        return 2;
    }
    std::printf("core_check: CPU runs %s kernels; training uses %s; %d threads\n",
                pydfn::isa_name(pydfn::hardware_isa()), pydfn::kernels_best().isa, pydfn::get_num_threads());
    // As pydfn's tests start: listing the kernel sets may touch only those this CPU runs
    // (.ci/cross-aarch64 runs this on an emulated CPU without AVX-512).
    std::string names;
    for (const std::string& name : pydfn::kernel_names()) names += " " + name;
    std::printf("kernel sets this CPU runs:%s\n", names.c_str());
    for (const std::string& name : pydfn::kernel_names())  // amx only where Linux granted the tiles
        if (name != "reference") {
            check_kernels(pydfn::kernels_named(name));
            check_bf16_products(pydfn::kernels_named(name));
        }
    check_tile_product_model();
    check_tiles_fallback();
    if (argc == 3) {
        const auto results = train_all();
        if (mode == "--dump") {
            dump(argv[2], results);
            std::printf("training: %zu results written to %s\n", results.size(), argv[2]);
        } else {
            compare_with(argv[2], results);
        }
    }
    std::printf("core_check: %s\n", failures ? "FAILED" : "all checks passed");
    return failures ? 1 : 0;
}
