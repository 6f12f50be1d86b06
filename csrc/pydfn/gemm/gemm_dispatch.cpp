#include "pydfn/gemm/gemm.hpp"

namespace pydfn {

const GemmKernels& gemm_best() { return gemm_generic(); }

}  // namespace pydfn
