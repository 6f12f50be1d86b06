/* Counts the heap allocations of pydfn's predict calls, to check the C API's promise: once a
 * model has served calls of n rows, a call of at most n rows allocates nothing.
 *
 *     alloc_check MODEL.npz THREADS
 *
 * This program defines malloc and its kin, so every allocation in the process (the library's,
 * libstdc++'s, OpenMP's) comes here; they count while `counting` is set, then forward to glibc.
 * Prints "warm-up allocations: A, allocations in N calls: B". */
#include <pydfn.h>

#include <stdio.h>
#include <stdlib.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static volatile int counting;
static volatile long allocations;

void *malloc(size_t n) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_malloc(n);
}
void *calloc(size_t k, size_t n) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_calloc(k, n);
}
void *realloc(void *p, size_t n) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_realloc(p, n);
}
void *aligned_alloc(size_t a, size_t n) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    return __libc_memalign(a, n);
}
int posix_memalign(void **out, size_t a, size_t n) {
    if (counting) __atomic_add_fetch(&allocations, 1, __ATOMIC_RELAXED);
    *out = __libc_memalign(a, n);
    return *out ? 0 : 12;
}
void free(void *p) { __libc_free(p); }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: alloc_check MODEL.npz THREADS\n");
        return 2;
    }
    pydfn_model *model = NULL;
    if (pydfn_model_load(argv[1], &model) != PYDFN_OK || pydfn_model_set_max_threads(model, atoi(argv[2])) != 0) {
        fprintf(stderr, "alloc_check: %s\n", pydfn_last_error());
        return 1;
    }
    const size_t width = pydfn_model_input_width(model), classes = pydfn_model_output_width(model), rows = 64;
    /* rows of width + 1 floats: the strided calls read that far */
    float *x = __libc_calloc(rows * (width + 1), sizeof(float)), *proba = __libc_calloc(rows * classes, sizeof(float));
    int32_t *labels = __libc_calloc(rows, sizeof(int32_t));
    for (size_t i = 0; i < rows * (width + 1); i++) x[i] = (float)(i % 17) / 17.0f;
    counting = 1;
    int status = pydfn_predict_proba(model, x, rows, width, proba) | pydfn_predict(model, x, rows, width + 1, labels) |
                 pydfn_predict_values(model, x, rows, width, proba);
    const long warm_up = allocations;
    allocations = 0;
    const int calls = 300;
    for (int c = 0; c < calls; c++) {
        const size_t n = 1 + (size_t)c % rows;  /* any count up to the warm-up's */
        status |= pydfn_predict_proba(model, x, n, width, proba);
        status |= pydfn_predict(model, x, n, width + (size_t)(c % 2), labels);
        status |= pydfn_predict_values(model, x, n, width, proba);
    }
    counting = 0;
    if (status != PYDFN_OK) {
        fprintf(stderr, "alloc_check: %s\n", pydfn_last_error());
        return 1;
    }
    printf("warm-up allocations: %ld, allocations in %d calls: %ld\n", warm_up, 3 * calls, allocations);
    pydfn_model_free(model);
    return 0;
}
