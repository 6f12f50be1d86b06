# pydfn's CMake package: find_package(pydfn CONFIG REQUIRED), then
# target_link_libraries(app PRIVATE pydfn::pydfn) for the C API (pydfn.h, libpydfn.so).
include("${CMAKE_CURRENT_LIST_DIR}/pydfnTargets.cmake")
