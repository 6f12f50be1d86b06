// Reads what inference needs from a checkpoint that pydfn's model.save() wrote
// (an .npz: a zip of .npy members, stored uncompressed; format versions 2 and 3,
// described in pydfn/_checkpoint.py), without Python or zlib: the C API's loader.
// Every problem is a std::invalid_argument naming it; nothing is allocated before
// the sizes it would need are checked against the file's own size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "pydfn/dense.hpp"
#include "pydfn/mlp.hpp"
#include "pydfn/regression_loss.hpp"

namespace pydfn {

struct InferenceCheckpoint {
    std::vector<int> sizes;  // layer sizes, input first
    Activation activation = Activation::relu;
    Loss loss = Loss::softmax_xent;
    Precision precision = Precision::fp32;
    std::vector<float> params;  // [W1 (in,out), b1, W2, b2, ...], as MLP lays them out
};

InferenceCheckpoint read_checkpoint(const std::string& path);

}  // namespace pydfn
