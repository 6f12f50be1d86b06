#include "pydfn/threads.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

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
std::atomic<int> g_num_threads{0};  // 0: not set, follow OpenMP's setting
std::atomic<bool> g_pool_started{false};
bool g_forked_after_start = false;  // written only in a forked child, before it runs anything
std::mutex g_probe_mutex;             // guards the two below
int g_proven_threads = 1;             // the largest team known to start
std::atomic<int> g_startable{0};      // 0, or the most threads a probe could start
thread_local TeamBarrier* tl_barrier = nullptr;  // of the region this thread is in
constexpr int kSpinsBeforeSleep = 2000;           // ~10-30 us of pause instructions
std::atomic<bool> g_barrier_accounting{false};
std::atomic<int64_t> g_barrier_waits{0};
std::atomic<int64_t> g_barrier_wait_ns{0};

#if defined(__unix__) || defined(__APPLE__)
void on_fork_child() { g_forked_after_start = g_pool_started.load(); }
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

int num_cores() {
#ifdef _OPENMP
    return std::max(1, omp_get_num_procs());  // the cores this process may run on
#else
    return 1;
#endif
}

int default_cap() { return std::min(kMaxThreads, kMaxThreadsPerCore * num_cores()); }

int configured_threads() {
#ifdef _OPENMP
    const int set = g_num_threads.load(std::memory_order_relaxed);
    const int n = set > 0 ? set : std::clamp(omp_get_max_threads(), 1, default_cap());
    return std::min(n, omp_get_thread_limit());  // OMP_THREAD_LIMIT: OpenMP starts no more
#else
    return 1;
#endif
}

// An OMP_STACKSIZE value in bytes, as GNU OpenMP parses it: a number with an optional B, K, M
// or G suffix (K when none); nothing when it is not one GNU OpenMP accepts (it then warns).
std::optional<size_t> parse_stack_size(const char* p) {
    while (std::isspace(static_cast<unsigned char>(*p))) p++;
    if (!std::isdigit(static_cast<unsigned char>(*p))) return std::nullopt;
    char* end = nullptr;
    errno = 0;
    const unsigned long long n = std::strtoull(p, &end, 10);
    while (std::isspace(static_cast<unsigned char>(*end))) end++;
    unsigned long long unit = 1024;
    switch (std::tolower(static_cast<unsigned char>(*end))) {
        case 'b': unit = 1; end++; break;
        case 'k': end++; break;
        case 'm': unit = 1ull << 20; end++; break;
        case 'g': unit = 1ull << 30; end++; break;
        default: break;
    }
    while (std::isspace(static_cast<unsigned char>(*end))) end++;
    if (*end != '\0' || errno == ERANGE || n > SIZE_MAX / unit) return std::nullopt;
    return size_t(n * unit);
}

// The stack GNU OpenMP asks for its threads: OMP_STACKSIZE's, else (when unset or not a size
// it accepts) GOMP_STACKSIZE's; 0 for its default.
size_t omp_stack_bytes() {
    for (const char* name : {"OMP_STACKSIZE", "GOMP_STACKSIZE"}) {
        const char* value = std::getenv(name);
        if (value == nullptr) continue;
        if (const std::optional<size_t> bytes = parse_stack_size(value)) return *bytes;
    }
    return 0;
}

#if defined(__unix__) || defined(__APPLE__)
void* wait_at_gate(void* gate) {
    auto* mutex = static_cast<std::mutex*>(gate);
    mutex->lock();
    mutex->unlock();
    return nullptr;
}

// How many of `wanted` threads can run at once: they are started, held until
// the last one is (or fails to be), then joined. With the stack OpenMP's threads will
// have: a huge OMP_STACKSIZE makes GNU OpenMP exit the process when it cannot start one.
int probe_threads(int wanted) {
    std::vector<pthread_t> started;
    started.reserve(size_t(wanted));
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    const size_t stack = omp_stack_bytes();
    // A size pthreads refuses (under its minimum): GNU OpenMP warns and keeps the default, as here.
    if (stack > 0) pthread_attr_setstacksize(&attr, stack);
    std::mutex gate;
    gate.lock();
    for (int i = 0; i < wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attr, wait_at_gate, &gate) != 0) break;
        started.push_back(thread);
    }
    pthread_attr_destroy(&attr);
    gate.unlock();
    for (pthread_t thread : started) pthread_join(thread, nullptr);
    return int(started.size());
}
#else
int probe_threads(int wanted) { return wanted; }
#endif

// n, or fewer if a team of n cannot start.
int startable_threads(int n) {
    std::lock_guard<std::mutex> lock(g_probe_mutex);
    if (n <= g_proven_threads) return n;
    const int helpers = probe_threads(n - 1);  // the calling thread is the team's first
    if (helpers == n - 1) {
        g_proven_threads = n;
        return n;
    }
    g_startable.store(helpers + 1);
    return helpers + 1;
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
    const int n = configured_threads(), startable = g_startable.load();
    return startable > 0 ? std::min(n, startable) : n;
}

void set_num_threads(int n) {
    check(n >= 1 && n <= kMaxThreads, "num_threads must be in [1, " + std::to_string(kMaxThreads) +
                                          "], got " + std::to_string(n));
    g_num_threads.store(n);
    g_startable.store(0);  // a count set again is tried again
}

std::string omp_num_threads_problem() {
    const char* value = std::getenv("OMP_NUM_THREADS");
    if (value == nullptr || !has_openmp()) return "";
    // OpenMP reads a list (threads per nesting level): the first is the count.
    const char* p = value;
    while (std::isspace(static_cast<unsigned char>(*p))) p++;
    if (*p == '\0') return "";
    char* end = nullptr;
    errno = 0;
    const long long n = std::strtoll(p, &end, 10);
    while (std::isspace(static_cast<unsigned char>(*end))) end++;
    const std::string quoted = "OMP_NUM_THREADS='" + shown(value) + "'";
    const std::string uses = ": pydfn uses " + std::to_string(get_num_threads()) + " threads";
    if (end == p || (*end != '\0' && *end != ',') || n < 1)
        return quoted + " is not a positive integer" + uses;
    if (errno == ERANGE || n > default_cap())
        return quoted + " is more than pydfn's default allows (" + std::to_string(kMaxThreadsPerCore) +
               " per core, " + std::to_string(num_cores()) + " cores, at most " +
               std::to_string(kMaxThreads) + ")" + uses + "; pydfn.set_num_threads() can set more";
    return "";
}

int threads_for_region() {
    int n = get_num_threads();
    if (n > 1) {
        n = startable_threads(n);
        g_pool_started.store(true);
    }
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
    if (!tl_barrier) return;
    if (!g_barrier_accounting.load(std::memory_order_relaxed)) {
        tl_barrier->wait();
        return;
    }
    const auto start = std::chrono::steady_clock::now();
    tl_barrier->wait();
    if (team_size() < 2) return;
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::steady_clock::now() - start);
    g_barrier_waits.fetch_add(1, std::memory_order_relaxed);
    g_barrier_wait_ns.fetch_add(ns.count(), std::memory_order_relaxed);
}

void set_barrier_accounting(bool on) {
    if (on) {
        g_barrier_waits.store(0);
        g_barrier_wait_ns.store(0);
    }
    g_barrier_accounting.store(on);
}

BarrierWaits barrier_waits() {
    return {g_barrier_waits.load(), 1e-9 * double(g_barrier_wait_ns.load())};
}

RegionMember::RegionMember(TeamBarrier* barrier) : previous_(tl_barrier) { tl_barrier = barrier; }

RegionMember::~RegionMember() { tl_barrier = previous_; }

}  // namespace pydfn
