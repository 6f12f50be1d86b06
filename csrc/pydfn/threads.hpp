// The thread count of the core. Every parallel region uses it, so one setting
// governs all of pydfn; results never depend on it (work is split by output).
#pragma once

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
#endif
  public:
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;
};

}  // namespace pydfn
