/* The C API's latency: seconds per pydfn_predict_values call (the logits, as the peers
 * compute them) on the first ROWS rows of X.f32, one value per ROWS argument, as JSON.
 *
 *     latency MODEL.npz X.f32 THREADS ROWS...
 *
 * Each figure: the median of 7 samples, each the mean of a run of calls after as many
 * untimed ones (benchmarks/latency.py runs it in its own process, beside the peers). */
#include <pydfn.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int by_value(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc < 5) {
        fprintf(stderr, "usage: latency MODEL.npz X.f32 THREADS ROWS...\n");
        return 2;
    }
    pydfn_model *model = NULL;
    if (pydfn_model_load(argv[1], &model) != PYDFN_OK || pydfn_model_set_max_threads(model, atoi(argv[3])) != 0) {
        fprintf(stderr, "latency: %s\n", pydfn_last_error());
        return 1;
    }
    const size_t width = pydfn_model_input_width(model), outputs = pydfn_model_output_width(model);
    FILE *f = fopen(argv[2], "rb");
    if (!f) return 1;
    fseek(f, 0, SEEK_END);
    const size_t available = (size_t)ftell(f) / (sizeof(float) * width);
    fseek(f, 0, SEEK_SET);
    float *x = malloc(sizeof(float) * width * available), *out = malloc(sizeof(float) * outputs * available);
    if (!x || !out || fread(x, sizeof(float) * width, available, f) != available) return 1;
    fclose(f);
    printf("{");
    for (int a = 4; a < argc; a++) {
        const size_t rows = (size_t)atol(argv[a]);
        if (rows < 1 || rows > available) return 1;
        const int calls = rows >= 1000 ? 5 : rows >= 64 ? 300 : 2000;
        double samples[7];
        for (int s = 0; s < 7; s++) {
            for (int c = 0; c < calls; c++) pydfn_predict_values(model, x, rows, width, out);
            const double start = now();
            for (int c = 0; c < calls; c++)
                if (pydfn_predict_values(model, x, rows, width, out) != PYDFN_OK) {
                    fprintf(stderr, "latency: %s\n", pydfn_last_error());
                    return 1;
                }
            samples[s] = (now() - start) / calls;
        }
        qsort(samples, 7, sizeof(double), by_value);
        printf("%s\"%zu\": %.9g", a > 4 ? ", " : "", rows, samples[3]);
    }
    printf("}\n");
    pydfn_model_free(model);
    free(x);
    free(out);
    return 0;
}
