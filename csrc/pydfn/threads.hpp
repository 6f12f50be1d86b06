// The thread count of the core. Every parallel region uses it, so one setting
// governs all of pydfn; results never depend on it (work is split by output).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace pydfn {

constexpr int kMaxThreads = 1024;
// The default count is at most this many threads per core: more only
// oversubscribes (4096 threads on 2 cores made a 2 ms epoch take 6.6 s).
constexpr int kMaxThreadsPerCore = 4;

bool has_openmp();
// pydfn's own count, which every parallel region of pydfn passes to OpenMP
// (num_threads), so other libraries calling omp_set_num_threads() never change
// it once set. Until set_num_threads() it follows OpenMP's setting
// (OMP_NUM_THREADS, threadpoolctl's limits, else the cores), capped at
// kMaxThreadsPerCore per core and kMaxThreads. At most OMP_THREAD_LIMIT (OpenMP
// starts no more) and the threads that could be started (see threads_for_region()).
int get_num_threads();
void set_num_threads(int n);  // 1 <= n <= kMaxThreads

// What is wrong with OMP_NUM_THREADS, as a sentence saying what pydfn does
// instead, or "" when nothing is.
std::string omp_num_threads_problem();

// The thread count for a parallel region about to start. In a child forked
// after the parent's OpenMP threads started it is 1: GNU OpenMP's pool does not
// survive fork() and a parallel region there would hang. The first time a
// count is asked for, that many threads are started and joined as a probe:
// GNU OpenMP exits the process when it cannot create a thread (a low
// `ulimit -u`, no memory for a stack), so pydfn runs with the threads the
// probe could start instead. Results never depend on the thread count.
int threads_for_region();

// The number of threads in the current parallel region (1 outside one).
int team_size();

// Flushes denormal results and inputs to zero in this thread while it lives.
// Adam's moments of parameters with vanishing gradients decay into denormals,
// which cost ~100 cycles an operation on x86; flushing them changes nothing
// that float32 training can see. Each thread of a parallel region makes one,
// so the caller's floating-point mode is restored when the region ends.
class FlushDenormals {
  public:
#if defined(__x86_64__) || defined(__i386__)
    FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtz | kDaz); }
    ~FlushDenormals() { _mm_setcsr(saved_); }

  private:
    static constexpr unsigned kFtz = 0x8000, kDaz = 0x0040;
    unsigned saved_;
#else
    FlushDenormals() = default;  // other CPUs keep the caller's mode
#endif
  public:
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;
};

// The barrier of one parallel region's threads. It spins for a few
// microseconds (enough for the gaps between a step's kernels), then sleeps
// until the last thread arrives. GNU OpenMP's barriers spin for milliseconds
// before sleeping: when other programs keep the cores busy, a waiting thread
// burns the time slice its sibling needs, and an epoch ran 50x slower here. So
// pydfn's worksharing loops are `omp for nowait` followed by sync_threads().
class TeamBarrier {
  public:
    void set_size(int n) { size_.store(n, std::memory_order_relaxed); }
    void wait();

  private:
    std::atomic<int> size_{1};
    std::atomic<int> arrived_{0};
    std::atomic<unsigned> generation_{0};
    std::atomic<int> sleepers_{0};
};

// Which thread of the current parallel region this is (0 outside one).
int thread_index();

// Waits until every thread of the current parallel region gets here; makes
// what each wrote before visible to all. A no-op outside a region.
//
// pydfn's shared loops do not wait at their end: the caller places this
// barrier where a thread reads what another wrote. Two row loops over the
// same B rows need none between them: `schedule(static)` gives each thread
// the same rows in both (OpenMP guarantees it for loops of equal trip count
// in one region), so a thread only reads rows it wrote itself.
void sync_threads();

// Barrier accounting for profiling (benchmarks/profile_epoch.py --kernels), off by
// default: while on, every wait of a region with more than one thread adds its
// count and its time (arrival to release, spinning or asleep) to process-wide totals.
struct BarrierWaits {
    int64_t waits = 0;
    double seconds = 0.0;  // summed over the threads that waited
};
void set_barrier_accounting(bool on);  // turning it on zeroes the totals
BarrierWaits barrier_waits();

// Marks the calling thread as a member of a region using `barrier`, and
// flushes its denormals, while it lives.
class RegionMember {
  public:
    explicit RegionMember(TeamBarrier* barrier);
    ~RegionMember();
    RegionMember(const RegionMember&) = delete;
    RegionMember& operator=(const RegionMember&) = delete;

  private:
    TeamBarrier* previous_;
    FlushDenormals ftz_;
};

// Runs body() on each of `threads` threads (from threads_for_region()); inside
// it, share work with `omp for nowait` loops followed by sync_threads(). No
// exception may leave body(): allocate what it needs before the region (the
// kernels' scratch: parallel_region() of kernels.hpp).
template <class Body>
void parallel_region(int threads, Body&& body) {
#ifndef _OPENMP
    (void)threads;  // always 1
#endif
    TeamBarrier barrier;
#pragma omp parallel num_threads(threads)
    {
#pragma omp single
        barrier.set_size(team_size());  // the team OpenMP really gave us
        RegionMember member(&barrier);
        body();
    }
}

}  // namespace pydfn
