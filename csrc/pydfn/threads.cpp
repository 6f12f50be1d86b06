#include "pydfn/threads.hpp"

#include <climits>
#include <thread>

#include "pydfn/common.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif
#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#endif
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace pydfn {

namespace {
int g_num_threads = 0;  // 0: not set, use OpenMP's default (OMP_NUM_THREADS or all cores)
bool g_pool_started = false;
bool g_forked_after_start = false;
thread_local TeamBarrier* tl_barrier = nullptr;  // of the region this thread is in
constexpr int kSpinsBeforeSleep = 2000;           // ~10-30 us of pause instructions

#if defined(__unix__) || defined(__APPLE__)
void on_fork_child() { g_forked_after_start = g_pool_started; }
const int g_atfork = pthread_atfork(nullptr, nullptr, on_fork_child);
#endif

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
    _mm_pause();
#endif
}

// Sleeps while *word == expected (returns at once if it differs, or spuriously).
void sleep_while_equal(std::atomic<unsigned>* word, unsigned expected) {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<unsigned*>(word), FUTEX_WAIT_PRIVATE, expected, nullptr,
            nullptr, 0);
#else
    (void)word, (void)expected;
    std::this_thread::yield();
#endif
}

void wake_all(std::atomic<unsigned>* word) {
#if defined(__linux__)
    syscall(SYS_futex, reinterpret_cast<unsigned*>(word), FUTEX_WAKE_PRIVATE, INT_MAX, nullptr,
            nullptr, 0);
#else
    (void)word;
#endif
}
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

void set_num_threads(int n) {
    check(n >= 1, "num_threads must be >= 1, got " + std::to_string(n));
    g_num_threads = n;
}

int threads_for_region() {
    const int n = get_num_threads();
    if (n > 1) g_pool_started = true;
    return n;
}

int team_size() {
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

int thread_index() {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

void TeamBarrier::wait() {
    const int n = size_.load(std::memory_order_relaxed);
    if (n <= 1) return;
    const unsigned generation = generation_.load(std::memory_order_acquire);
    if (arrived_.fetch_add(1, std::memory_order_acq_rel) == n - 1) {
        arrived_.store(0, std::memory_order_relaxed);
        generation_.fetch_add(1, std::memory_order_seq_cst);  // releases the others
        if (sleepers_.load(std::memory_order_seq_cst) > 0) wake_all(&generation_);
        return;
    }
    for (int spins = 0; spins < kSpinsBeforeSleep; spins++) {
        if (generation_.load(std::memory_order_acquire) != generation) return;
        cpu_relax();
    }
    // Sleep rather than spin on: the thread we wait for may need this core.
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    while (generation_.load(std::memory_order_seq_cst) == generation)
        sleep_while_equal(&generation_, generation);
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
}

void sync_threads() {
    if (tl_barrier) tl_barrier->wait();
}

RegionMember::RegionMember(TeamBarrier* barrier) : previous_(tl_barrier) { tl_barrier = barrier; }

RegionMember::~RegionMember() { tl_barrier = previous_; }

}  // namespace pydfn
