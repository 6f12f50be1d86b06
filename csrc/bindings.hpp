// What the two binding files share: NumPy array types and the shape check.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>

#include "pydfn/common.hpp"

namespace pydfn_bindings {

namespace py = pybind11;

using FloatArray = py::array_t<float, py::array::c_style>;
using LabelArray = py::array_t<int32_t, py::array::c_style>;
using IndexArray = py::array_t<int64_t, py::array::c_style>;

// Throws std::invalid_argument (ValueError) unless a has this shape (-1: any length).
inline void check_shape(const py::array& a, const char* name, std::initializer_list<py::ssize_t> shape) {
    bool ok = a.ndim() == py::ssize_t(shape.size());
    std::string want, got;
    py::ssize_t d = 0;
    for (py::ssize_t s : shape) {
        want += (d ? ", " : "") + (s < 0 ? std::string("any") : std::to_string(s));
        ok = ok && (s < 0 || a.shape(d) == s);
        d++;
    }
    for (d = 0; d < a.ndim(); d++) got += (d ? ", " : "") + std::to_string(a.shape(d));
    pydfn::check(ok, std::string(name) + " must have shape (" + want + "), got (" + got + ")");
}

// pydfn._core.testing (bindings_testing.cpp).
void bind_testing(py::module_& m);

}  // namespace pydfn_bindings
