// Shared helpers of the core: argument checks, bytes shown in messages, aligned buffers.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

namespace pydfn {

// Every bad argument becomes std::invalid_argument (ValueError in Python). A literal
// message costs nothing until it is thrown (a std::string of it would be built, and
// allocated, on every call: a predict call must allocate nothing).
inline void check(bool ok, const char* message) {
    if (!ok) throw std::invalid_argument(message);
}
inline void check(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

// Bytes from outside (a file's member names, an environment variable) as a message may show
// them: printable ASCII, other bytes as \xNN. They may be any bytes, and a message must stay
// text (valid UTF-8: Python decodes it).
inline std::string shown(const std::string& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        if (c >= 0x20 && c < 0x7f) {
            out.push_back(char(c));
        } else {
            out += "\\x";
            out.push_back(digits[c >> 4]);
            out.push_back(digits[c & 15]);
        }
    }
    return out;
}

// A float buffer aligned to 64 bytes (one cache line, one AVX-512 vector).
// It only grows: a train step reuses it and never allocates.
class Buffer {
  public:
    float* data() { return ptr_.get(); }
    const float* data() const { return ptr_.get(); }
    size_t size() const { return size_; }

    void grow_to(size_t n) {
        if (n <= size_) return;
        size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
        void* p = std::aligned_alloc(64, bytes);
        if (p == nullptr) throw std::bad_alloc();
        ptr_.reset(static_cast<float*>(p));
        size_ = n;
    }

  private:
    struct Free {
        void operator()(float* p) const { std::free(p); }
    };
    std::unique_ptr<float, Free> ptr_;
    size_t size_ = 0;
};

}  // namespace pydfn
