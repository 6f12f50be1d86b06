/* pydfn's C API: load a model that pydfn's model.save() wrote and predict with it,
 * from C, C++ or any language with a C FFI, without Python.
 *
 * Every function that can fail returns 0 on success and a PYDFN_* status otherwise;
 * pydfn_last_error() then says why, in a message of the calling thread's own. Nothing
 * here aborts, exits or throws. A loaded model is read-only: any number of threads may
 * predict with one model at once. A predict call allocates nothing once the model has
 * served calls of at least as many rows from as many threads at once.
 *
 * Arrays are float32, row-major. x holds `rows` rows of pydfn_model_input_width()
 * values each, `row_stride` floats apart (>= the input width; the width itself for a
 * packed array). Outputs are packed: rows x pydfn_model_output_width() floats.
 * The results equal Python's for the same model, kernels (ISA) and threads, bit for bit:
 * pydfn_predict_proba is model.predict_proba(x), pydfn_predict_values model.predict_logits(x).
 */
#ifndef PYDFN_H
#define PYDFN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define PYDFN_API __attribute__((visibility("default")))
#else
#define PYDFN_API
#endif

/* Bumped when a function changes its meaning or signature; adding functions keeps it. */
#define PYDFN_ABI_VERSION 1

enum pydfn_status {
    PYDFN_OK = 0,
    PYDFN_ERR_ARGUMENT = 1, /* a NULL pointer, rows = 0, a stride below the width, NaN or infinity in x, a regressor asked for classes */
    PYDFN_ERR_FILE = 2,     /* the file cannot be read, or is not a checkpoint this version reads */
    PYDFN_ERR_MEMORY = 3,   /* out of memory */
    PYDFN_ERR_OVERFLOW = 4, /* finite inputs overflowed float32 inside the network (outputs not finite) */
    PYDFN_ERR_INTERNAL = 5  /* a bug in pydfn: please report it with the message */
};

enum pydfn_precision { PYDFN_FP32 = 0, PYDFN_BF16 = 1 };

typedef struct pydfn_model pydfn_model;

/* The version of pydfn this library was built from, e.g. "0.1.0". */
PYDFN_API const char *pydfn_version(void);
/* PYDFN_ABI_VERSION of the library itself (compare with the header's). */
PYDFN_API int pydfn_abi_version(void);
/* The message of this thread's last failure ("" if none). Valid until its next pydfn call. */
PYDFN_API const char *pydfn_last_error(void);

/* Reads path (an .npz that model.save() wrote); *out is the model, or NULL on failure. */
PYDFN_API int pydfn_model_load(const char *path, pydfn_model **out);
/* Frees a model (NULL: nothing). No call may be using it. */
PYDFN_API void pydfn_model_free(pydfn_model *model);

/* Features per row, and outputs per row (classes, or regression values); 0 for NULL. */
PYDFN_API size_t pydfn_model_input_width(const pydfn_model *model);
PYDFN_API size_t pydfn_model_output_width(const pydfn_model *model);
/* 1 for a classifier (softmax cross-entropy), 0 for a regressor (or NULL). */
PYDFN_API int pydfn_model_is_classifier(const pydfn_model *model);
/* PYDFN_FP32 or PYDFN_BF16: the precision of its matrix products. */
PYDFN_API int pydfn_model_precision(const pydfn_model *model);
/* The most threads this model's calls use (0: pydfn's count: its cores, or OMP_NUM_THREADS).
 * Results do not depend on it. Set it before sharing the model between threads. */
PYDFN_API int pydfn_model_set_max_threads(pydfn_model *model, int threads);

/* Class probabilities, out: rows x output_width (classifiers). */
PYDFN_API int pydfn_predict_proba(const pydfn_model *model, const float *x, size_t rows, size_t row_stride,
                                  float *out);
/* Class ids (the most probable class; the first on ties), labels: rows (classifiers). */
PYDFN_API int pydfn_predict(const pydfn_model *model, const float *x, size_t rows, size_t row_stride,
                            int32_t *labels);
/* The output layer, out: rows x output_width: a regressor's predictions, a classifier's logits. */
PYDFN_API int pydfn_predict_values(const pydfn_model *model, const float *x, size_t rows, size_t row_stride,
                                   float *out);

#ifdef __cplusplus
}
#endif

#endif /* PYDFN_H */
