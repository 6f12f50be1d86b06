#include "pydfn/threads.hpp"

#include "pydfn/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif

namespace pydfn {

namespace {
int g_num_threads = 0;  // 0: not set, use OpenMP's default (OMP_NUM_THREADS or all cores)
bool g_pool_started = false;
bool g_forked_after_start = false;

#if defined(__unix__) || defined(__APPLE__)
void on_fork_child() { g_forked_after_start = g_pool_started; }
const int g_atfork = pthread_atfork(nullptr, nullptr, on_fork_child);
#endif
}  // namespace

bool has_openmp() {
#ifdef _OPENMP
    return true;
#else
    return false;
#endif
}

int get_num_threads() {
    if (g_forked_after_start) return 1;
#ifdef _OPENMP
    return g_num_threads > 0 ? g_num_threads : omp_get_max_threads();
#else
    return 1;
#endif
}

int threads_for_region() {
    const int n = get_num_threads();
    if (n > 1) g_pool_started = true;
    return n;
}

void set_num_threads(int n) {
    check(n >= 1, "num_threads must be >= 1, got " + std::to_string(n));
    g_num_threads = n;
}

}  // namespace pydfn
