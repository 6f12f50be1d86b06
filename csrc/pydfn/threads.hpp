// The thread count of the core. Every parallel region uses it, so one setting
// governs all of pydfn; results never depend on it (work is split by output).
#pragma once

#include <atomic>

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

namespace pydfn {

bool has_openmp();
int get_num_threads();
void set_num_threads(int n);  // n >= 1

// The thread count for a parallel region about to start. In a child forked
// after the parent's OpenMP threads started it is 1: GNU OpenMP's pool does not
// survive fork() and a parallel region there would hang. One thread gives the
// same results (they never depend on the thread count).
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

// Runs body() on each of threads_for_region() threads; inside it, share work
// with `omp for nowait` loops followed by sync_threads().
template <class Body>
void parallel_region(Body&& body) {
    TeamBarrier barrier;
#pragma omp parallel num_threads(threads_for_region())
    {
#pragma omp single
        barrier.set_size(team_size());  // the team OpenMP really gave us
        RegionMember member(&barrier);
        body();
    }
}

}  // namespace pydfn
