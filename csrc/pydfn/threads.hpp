// The thread count of the core. Every parallel region uses it, so one setting
// governs all of pydfn; results never depend on it (work is split by output).
#pragma once

namespace pydfn {

bool has_openmp();
int get_num_threads();
void set_num_threads(int n);  // n >= 1

}  // namespace pydfn
