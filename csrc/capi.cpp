// The C API (include/pydfn.h): C types <-> core types, exceptions -> status codes and
// a thread-local message. Nothing else: the rules are the core's.
#include "pydfn.h"

#include <cstring>
#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "pydfn/checkpoint_reader.hpp"
#include "pydfn/mlp.hpp"
#include "pydfn/model.hpp"

#ifndef PYDFN_VERSION
#define PYDFN_VERSION "unknown"
#endif

namespace {

// Rows per forward pass: Python's default inference batch, so results match it bit for bit.
constexpr int kBatchRows = 1024;

thread_local std::string t_last_error;

struct ArgumentError : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

void need(bool ok, const char* message) {
    if (!ok) throw ArgumentError(message);
}

// Runs f; turns what it throws into a status (bad input to the core's rules gives
// `invalid`) and keeps the message for pydfn_last_error().
template <class F>
int guarded(int invalid, F&& f) noexcept {
    try {
        f();
        return PYDFN_OK;
    } catch (const ArgumentError& e) {
        t_last_error = e.what();
        return PYDFN_ERR_ARGUMENT;
    } catch (const pydfn::OutputOverflow& e) {
        t_last_error = e.what();
        return PYDFN_ERR_OVERFLOW;
    } catch (const std::invalid_argument& e) {
        t_last_error = e.what();
        return invalid;
    } catch (const std::bad_alloc&) {
        t_last_error = "out of memory";
        return PYDFN_ERR_MEMORY;
    } catch (const std::exception& e) {
        t_last_error = std::string("internal error: ") + e.what();
        return PYDFN_ERR_INTERNAL;
    } catch (...) {
        t_last_error = "internal error: an unknown exception";
        return PYDFN_ERR_INTERNAL;
    }
}

}  // namespace

struct pydfn_model {
    explicit pydfn_model(const pydfn::InferenceCheckpoint& c) : model(c.sizes, c.activation, c.loss, c.precision) {
        std::memcpy(model.net().params(), c.params.data(), sizeof(float) * c.params.size());
    }
    pydfn::Model model;  // never written after the load: calls take no lock
    int max_threads = 0;
};

namespace {

using CallScratch = pydfn::Model::CallScratch;

// x's rows packed (x itself when they already are), in s.
const float* packed_rows(CallScratch& s, const float* x, size_t rows, size_t stride, size_t width) {
    if (stride == width) return x;
    s.x.resize(rows * width);
    for (size_t i = 0; i < rows; i++) std::memcpy(&s.x[i * width], x + i * stride, sizeof(float) * width);
    return s.x.data();
}

void check_call(const pydfn_model* m, const float* x, size_t rows, size_t stride, const void* out) {
    need(m != nullptr, "model is NULL");
    need(x != nullptr, "x is NULL");
    need(out != nullptr, "the output array is NULL");
    need(rows >= 1, "rows must be >= 1");
    const size_t width = size_t(m->model.net().sizes().front()), outputs = size_t(m->model.net().sizes().back());
    need(stride >= width, "row_stride must be >= the model's input width");
    need(rows <= (size_t(1) << 62) / stride && rows <= (size_t(1) << 62) / outputs, "rows is too large");
}

// The outputs (rows x outputs) of x's packed rows, in out.
void predict_into(const pydfn_model* m, CallScratch& s, const float* x, size_t rows, size_t stride, float* out,
                  pydfn::MLP::Output what) {
    const size_t width = size_t(m->model.net().sizes().front());
    s.ws.max_threads = m->max_threads;
    m->model.predict(s, out, packed_rows(s, x, rows, stride, width), int64_t(rows), kBatchRows, what);
}

int predict_floats(const pydfn_model* m, const float* x, size_t rows, size_t stride, float* out,
                   pydfn::MLP::Output what) {
    return guarded(PYDFN_ERR_ARGUMENT, [&] {
        check_call(m, x, rows, stride, out);
        need(what == pydfn::MLP::Output::logits || m->model.net().loss() == pydfn::Loss::softmax_xent,
             "pydfn_predict_proba needs a classifier; this model is a regressor");
        pydfn::Model::BorrowedScratch s(m->model);
        predict_into(m, *s, x, rows, stride, out, what);
    });
}

}  // namespace

extern "C" {

const char* pydfn_version(void) { return PYDFN_VERSION; }

int pydfn_abi_version(void) { return PYDFN_ABI_VERSION; }

const char* pydfn_last_error(void) { return t_last_error.c_str(); }

int pydfn_model_load(const char* path, pydfn_model** out) {
    return guarded(PYDFN_ERR_FILE, [&] {
        need(out != nullptr, "out is NULL");
        *out = nullptr;
        need(path != nullptr, "path is NULL");
        const pydfn::InferenceCheckpoint c = pydfn::read_checkpoint(path);
        *out = new pydfn_model(c);
    });
}

void pydfn_model_free(pydfn_model* model) { delete model; }

size_t pydfn_model_input_width(const pydfn_model* model) {
    return model ? size_t(model->model.net().sizes().front()) : 0;
}

size_t pydfn_model_output_width(const pydfn_model* model) {
    return model ? size_t(model->model.net().sizes().back()) : 0;
}

int pydfn_model_is_classifier(const pydfn_model* model) {
    return model && model->model.net().loss() == pydfn::Loss::softmax_xent;
}

int pydfn_model_precision(const pydfn_model* model) {
    return model && model->model.net().precision() == pydfn::Precision::bf16 ? PYDFN_BF16 : PYDFN_FP32;
}

int pydfn_model_set_max_threads(pydfn_model* model, int threads) {
    return guarded(PYDFN_ERR_ARGUMENT, [&] {
        need(model != nullptr, "model is NULL");
        need(threads >= 0, "threads must be >= 0 (0: pydfn's thread count)");
        model->max_threads = threads;
    });
}

int pydfn_predict_proba(const pydfn_model* model, const float* x, size_t rows, size_t row_stride, float* out) {
    return predict_floats(model, x, rows, row_stride, out, pydfn::MLP::Output::probabilities);
}

int pydfn_predict_values(const pydfn_model* model, const float* x, size_t rows, size_t row_stride, float* out) {
    return predict_floats(model, x, rows, row_stride, out, pydfn::MLP::Output::logits);
}

int pydfn_predict(const pydfn_model* model, const float* x, size_t rows, size_t row_stride, int32_t* labels) {
    return guarded(PYDFN_ERR_ARGUMENT, [&] {
        check_call(model, x, rows, row_stride, labels);
        need(model->model.net().loss() == pydfn::Loss::softmax_xent, "pydfn_predict needs a classifier; this model is a "
                                                             "regressor (use pydfn_predict_values)");
        pydfn::Model::BorrowedScratch s(model->model);
        const size_t classes = size_t(model->model.net().sizes().back());
        s->logits.resize(rows * classes);
        predict_into(model, *s, x, rows, row_stride, s->logits.data(), pydfn::MLP::Output::logits);
        for (size_t i = 0; i < rows; i++) {
            const float* z = &s->logits[i * classes];
            size_t best = 0;
            for (size_t j = 1; j < classes; j++)
                if (z[j] > z[best]) best = j;
            labels[i] = int32_t(best);
        }
    });
}

}  // extern "C"
