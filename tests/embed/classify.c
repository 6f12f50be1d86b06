/* Classifies rows with a model pydfn saved, through the C API alone (no Python):
 *
 *     classify MODEL.npz ROWS.f32 [--proba]
 *
 * ROWS.f32 holds float32 rows of the model's input width, back to back (numpy's
 * x.astype("<f4").tofile(path)). Prints one line per row: its class id, or with --proba
 * its class probabilities (9 significant digits: each float32 exactly). Exit 1 on failure,
 * with pydfn's message. */
#include <pydfn.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "classify: %s: %s\n", what, pydfn_last_error());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 || (argc == 4 && strcmp(argv[3], "--proba") != 0)) {
        fprintf(stderr, "usage: classify MODEL.npz ROWS.f32 [--proba]\n");
        return 2;
    }
    pydfn_model *model = NULL;
    if (pydfn_model_load(argv[1], &model) != PYDFN_OK) return fail("pydfn_model_load");
    const size_t width = pydfn_model_input_width(model), classes = pydfn_model_output_width(model);

    FILE *f = fopen(argv[2], "rb");
    if (!f) {
        fprintf(stderr, "classify: cannot open %s\n", argv[2]);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    const long bytes = ftell(f);
    fseek(f, 0, SEEK_SET);
    const size_t rows = (size_t)bytes / (sizeof(float) * width);
    float *x = malloc((size_t)bytes + 1), *proba = malloc(sizeof(float) * classes * (rows + 1));
    int32_t *labels = malloc(sizeof(int32_t) * (rows + 1));
    if (!x || !proba || !labels || fread(x, 1, (size_t)bytes, f) != (size_t)bytes) {
        fprintf(stderr, "classify: cannot read %s\n", argv[2]);
        return 1;
    }
    fclose(f);

    if (argc == 4) {
        if (pydfn_predict_proba(model, x, rows, width, proba) != PYDFN_OK) return fail("pydfn_predict_proba");
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < classes; j++) printf("%.9g%c", proba[i * classes + j], j + 1 < classes ? ' ' : '\n');
    } else {
        if (pydfn_predict(model, x, rows, width, labels) != PYDFN_OK) return fail("pydfn_predict");
        for (size_t i = 0; i < rows; i++) printf("%d\n", (int)labels[i]);
    }
    free(x);
    free(proba);
    free(labels);
    pydfn_model_free(model);
    return 0;
}
