#include "pydfn/threads.hpp"

#include "pydfn/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace pydfn {

namespace {
int g_num_threads = 0;  // 0: not set, use OpenMP's default (OMP_NUM_THREADS or all cores)
}

bool has_openmp() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

int get_num_threads() {
#ifdef _OPENMP
    return g_num_threads > 0 ? g_num_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

void set_num_threads(int n) {
    check(n >= 1, "num_threads must be >= 1, got " + std::to_string(n));
    g_num_threads = n;
}

}  // namespace pydfn
