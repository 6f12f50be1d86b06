/* Adam's floor on this core: the exactly rounded square root and division it needs per
 * parameter (w -= step * m / (sqrt(v) * c + eps)), alone, on data in L1, one thread,
 * beside the kernel's own time (profile_epoch.py --kernels, "ns per parameter").
 * The two share the divider on the CPUs measured here. Adam uses them exactly, as
 * PyTorch does: approximations would change results beyond rounding.
 *
 *     cc -O2 -mavx512f benchmarks/adam_floor.c -o /tmp/adam_floor && /tmp/adam_floor
 *     cc -O2 -mavx2 -mfma benchmarks/adam_floor.c -o /tmp/adam_floor && /tmp/adam_floor   # 8-wide
 */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#define N 2048 /* 3 arrays of 8 KB: L1 */
#if defined(__AVX512F__)
#define W 16
typedef __m512 vec;
#define LOAD _mm512_load_ps
#define STORE _mm512_store_ps
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define SQRT _mm512_sqrt_ps
#define DIV _mm512_div_ps
#else
#define W 8
typedef __m256 vec;
#define LOAD _mm256_load_ps
#define STORE _mm256_store_ps
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define SQRT _mm256_sqrt_ps
#define DIV _mm256_div_ps
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(void) {
    static float m[N] __attribute__((aligned(64))), v[N] __attribute__((aligned(64))),
        out[N] __attribute__((aligned(64)));
    for (int i = 0; i < N; i++) {
        m[i] = 1.0f + i;
        v[i] = 2.0f + i;
    }
    const vec c = SET1(0.9f), eps = SET1(1e-8f);
    double best = 1e9;
    for (int round = 0; round < 50; round++) {
        const double start = now();
        for (int rep = 0; rep < 200; rep++)
            for (int i = 0; i < N; i += W) STORE(out + i, DIV(LOAD(m + i), FMA(SQRT(LOAD(v + i)), c, eps)));
        const double per = (now() - start) / (200.0 * N);
        if (per < best) best = per;
    }
    printf("exact sqrt and divide, %d floats a vector: %.3f ns per parameter (one thread; %g)\n", W,
           1e9 * best, out[7]);
    return 0;
}
