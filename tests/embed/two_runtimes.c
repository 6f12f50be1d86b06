/* pydfn (GNU OpenMP) in a process that also runs a second OpenMP runtime, LLVM's libomp:
 *
 *     two_runtimes MODEL.npz LIBOMP.so
 *
 * Loads libomp with dlopen, as a plugin built with clang would bring it, and checks that
 * pydfn's predictions on 2 threads equal the serial ones bit for bit (1) while another
 * thread keeps libomp's team busy, and (2) when called from inside libomp's parallel
 * regions. Each runtime keeps its own threads; neither needs a setting. Exit 0 when all
 * are equal, 1 otherwise, with a line saying what differed. .ci/embed runs it. */
#define _GNU_SOURCE /* RTLD_DEFAULT */
#include <pydfn.h>

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ROWS = 64, CALLS = 300, MAX_CLASSES = 64 };

static pydfn_model *model;
static float x[ROWS * 784], expected[ROWS * MAX_CLASSES];
static size_t width, classes;

/* libomp's entry points: the GNU ABI that gcc-compiled code calls, which libomp provides. */
static void (*llvm_parallel)(void (*fn)(void *), void *data, unsigned threads, unsigned flags);
static int (*llvm_team_size)(void);

static int largest_team;  /* of libomp's regions, as libomp reports it */
static int stop;
static int regions, mismatches;

static void note_team(void) {
    const int n = llvm_team_size();
    int seen = __atomic_load_n(&largest_team, __ATOMIC_RELAXED);
    while (n > seen && !__atomic_compare_exchange_n(&largest_team, &seen, n, 0, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
    }
}

static void busy(void *data) {
    (void)data;
    note_team();
    volatile float sum = 0.0f;
    for (int i = 0; i < 20000; i++) sum += (float)i;
}

static void *keep_libomp_busy(void *unused) {
    (void)unused;
    while (!__atomic_load_n(&stop, __ATOMIC_RELAXED)) {
        llvm_parallel(busy, NULL, 2, 0);
        __atomic_fetch_add(&regions, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static int predict_equals_expected(void) {
    float out[ROWS * MAX_CLASSES];
    if (pydfn_predict_proba(model, x, ROWS, width, out) != PYDFN_OK) {
        fprintf(stderr, "two_runtimes: %s\n", pydfn_last_error());
        return 0;
    }
    return memcmp(out, expected, sizeof(float) * ROWS * classes) == 0;
}

static void predict_in_region(void *data) {
    (void)data;
    note_team();
    for (int c = 0; c < 20; c++)
        if (!predict_equals_expected()) __atomic_fetch_add(&mismatches, 1, __ATOMIC_RELAXED);
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: two_runtimes MODEL.npz LIBOMP.so\n");
        return 2;
    }
    if (pydfn_model_load(argv[1], &model) != PYDFN_OK || pydfn_model_set_max_threads(model, 2) != PYDFN_OK) {
        fprintf(stderr, "two_runtimes: %s\n", pydfn_last_error());
        return 1;
    }
    width = pydfn_model_input_width(model);
    classes = pydfn_model_output_width(model);
    if (width > 784 || classes > MAX_CLASSES) {
        fprintf(stderr, "two_runtimes: the model must have <= 784 inputs and <= %d classes\n", MAX_CLASSES);
        return 1;
    }
    for (size_t i = 0; i < ROWS * width; i++) x[i] = (float)(i % 97) / 97.0f;
    if (pydfn_predict_proba(model, x, ROWS, width, expected) != PYDFN_OK) {  /* before libomp is loaded */
        fprintf(stderr, "two_runtimes: %s\n", pydfn_last_error());
        return 1;
    }

    /* dlopen("") would return the program itself, and libgomp's GOMP_parallel with it */
    void *libomp = argv[2][0] ? dlopen(argv[2], RTLD_NOW | RTLD_LOCAL) : NULL;
    if (!libomp) {
        fprintf(stderr, "two_runtimes: cannot load '%s': %s\n", argv[2], argv[2][0] ? dlerror() : "an empty path");
        return 1;
    }
    *(void **)&llvm_parallel = dlsym(libomp, "GOMP_parallel");
    *(void **)&llvm_team_size = dlsym(libomp, "omp_get_num_threads");
    if (!llvm_parallel || !llvm_team_size) {
        fprintf(stderr, "two_runtimes: %s has no GOMP_parallel or omp_get_num_threads\n", argv[2]);
        return 1;
    }
    if (*(void **)&llvm_parallel == dlsym(RTLD_DEFAULT, "GOMP_parallel")) {
        fprintf(stderr, "two_runtimes: %s is the GNU OpenMP pydfn already uses, not a second runtime\n", argv[2]);
        return 1;
    }

    pthread_t other;
    if (pthread_create(&other, NULL, keep_libomp_busy, NULL) != 0) return 1;
    while (__atomic_load_n(&regions, __ATOMIC_RELAXED) == 0) {  /* libomp's team is up */
    }
    int calls = 0;  /* at least CALLS, and for at least 20 of libomp's regions */
    for (; calls < CALLS || __atomic_load_n(&regions, __ATOMIC_RELAXED) < 20; calls++)
        if (!predict_equals_expected()) mismatches++;
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);
    pthread_join(other, NULL);
    const int beside = mismatches;

    llvm_parallel(predict_in_region, NULL, 2, 0);
    const int inside = mismatches - beside;

    printf("two_runtimes: %d predictions beside %d libomp regions, %d mismatched; 40 inside libomp's "
           "threads (team of up to %d), %d mismatched\n", calls, regions, beside, largest_team, inside);
    pydfn_model_free(model);
    return mismatches == 0 && regions > 0 && largest_team == 2 ? 0 : 1;
}
