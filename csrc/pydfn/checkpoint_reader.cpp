#include "pydfn/checkpoint_reader.hpp"

#include <array>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>

#include "pydfn/common.hpp"

namespace pydfn {

namespace {

constexpr int64_t kMaxDim = std::numeric_limits<int>::max();  // the core indexes widths with int

// The checkpoint file, read by offset; every read is checked against its size.
class File {
  public:
    explicit File(const std::string& path) : path_(path), f_(std::fopen(path.c_str(), "rb"), &std::fclose) {
        check(f_ != nullptr, path + ": cannot open it (" + std::strerror(errno) + ")");
        check(std::fseek(f_.get(), 0, SEEK_END) == 0, fail("cannot seek in it"));
        const long size = std::ftell(f_.get());
        check(size >= 0, fail("cannot tell its size"));
        size_ = uint64_t(size);
    }
    uint64_t size() const { return size_; }
    std::string fail(const std::string& what) const { return path_ + ": " + what; }

    void read(uint64_t at, void* out, uint64_t n) const {
        check(at <= size_ && n <= size_ - at, fail("truncated: it ends before the data it describes"));
        check(std::fseek(f_.get(), long(at), SEEK_SET) == 0 && std::fread(out, 1, n, f_.get()) == n,
              fail("cannot read it"));
    }
    std::vector<uint8_t> bytes(uint64_t at, uint64_t n) const {
        check(at <= size_ && n <= size_ - at, fail("truncated: it ends before the data it describes"));
        std::vector<uint8_t> out(n);  // at most the file's size
        read(at, out.data(), n);
        return out;
    }

  private:
    std::string path_;
    std::unique_ptr<FILE, int (*)(FILE*)> f_;
    uint64_t size_ = 0;
};

uint64_t le(const uint8_t* p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

uint32_t crc32(const uint8_t* data, uint64_t n) {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    uint32_t c = 0xFFFFFFFFu;
    for (uint64_t i = 0; i < n; i++) c = table[(c ^ data[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

struct Member {
    uint64_t local_offset = 0, size = 0;
    uint32_t crc = 0;
};

// The zip's central directory: each member's name, where its local header is, its size.
std::vector<std::pair<std::string, Member>> members(const File& f) {
    const uint64_t tail_size = std::min<uint64_t>(f.size(), 22 + 65535);
    check(f.size() >= 22, f.fail("not a pydfn checkpoint (too short to be an .npz file)"));
    const std::vector<uint8_t> tail = f.bytes(f.size() - tail_size, tail_size);
    int64_t eocd = -1;
    for (int64_t i = int64_t(tail_size) - 22; i >= 0; i--)
        if (le(&tail[size_t(i)], 4) == 0x06054b50) {
            eocd = i;
            break;
        }
    check(eocd >= 0, f.fail("not a pydfn checkpoint (no zip directory: not an .npz file, or truncated)"));
    const uint8_t* e = &tail[size_t(eocd)];
    uint64_t count = le(e + 10, 2), cd_size = le(e + 12, 4), cd_offset = le(e + 16, 4);
    if (count == 0xFFFF || cd_size == 0xFFFFFFFF || cd_offset == 0xFFFFFFFF) {  // zip64
        check(eocd >= 20 && le(&tail[size_t(eocd - 20)], 4) == 0x07064b50, f.fail("a broken zip64 directory"));
        const uint64_t at = le(&tail[size_t(eocd - 20 + 8)], 8);
        uint8_t z[56];
        f.read(at, z, sizeof z);
        check(le(z, 4) == 0x06064b50, f.fail("a broken zip64 directory"));
        count = le(z + 32, 8), cd_size = le(z + 40, 8), cd_offset = le(z + 48, 8);
    }
    check(count <= cd_size / 46 + 1, f.fail("a zip directory that claims more members than it holds"));
    const std::vector<uint8_t> cd = f.bytes(cd_offset, cd_size);
    std::vector<std::pair<std::string, Member>> out;
    uint64_t at = 0;
    for (uint64_t i = 0; i < count; i++) {
        check(cd_size - at >= 46 && le(&cd[at], 4) == 0x02014b50, f.fail("a broken zip directory"));
        const uint8_t* h = &cd[at];
        const uint64_t flags = le(h + 8, 2), method = le(h + 10, 2), name_len = le(h + 28, 2),
                       extra_len = le(h + 30, 2), comment_len = le(h + 32, 2);
        check(cd_size - at - 46 >= name_len + extra_len + comment_len, f.fail("a broken zip directory"));
        std::string name(reinterpret_cast<const char*>(h + 46), name_len);
        check(!(flags & 1), f.fail("member " + shown(name) + " is encrypted"));
        check(method == 0, f.fail("member " + shown(name) + " is compressed (zip method " + std::to_string(method) +
                                  "): this reader takes the .npz model.save() writes, whose members are stored"));
        Member m;
        m.crc = uint32_t(le(h + 16, 4));
        uint64_t compressed = le(h + 20, 4), size = le(h + 24, 4);
        m.local_offset = le(h + 42, 4);
        for (uint64_t x = 0; x + 4 <= extra_len;) {  // the zip64 extra field holds what did not fit
            const uint8_t* field = h + 46 + name_len + x;
            const uint64_t id = le(field, 2), len = le(field + 2, 2);
            check(x + 4 + len <= extra_len, f.fail("a broken zip directory"));
            if (id == 1) {
                uint64_t k = 4;
                for (uint64_t* v : {&size, &compressed, &m.local_offset})
                    if (*v == 0xFFFFFFFF) {
                        check(k + 8 <= 4 + len, f.fail("a broken zip64 field"));
                        *v = le(field + k, 8);
                        k += 8;
                    }
            }
            x += 4 + len;
        }
        check(size == compressed, f.fail("member " + shown(name) + " claims two sizes"));
        m.size = size;
        out.emplace_back(std::move(name), m);
        at += 46 + name_len + extra_len + comment_len;
    }
    return out;
}

// One .npy member: its dtype ("<f4", "<i8", "<U16", ...), shape, and raw data.
struct Npy {
    std::string descr;
    std::vector<int64_t> shape;
    std::vector<uint8_t> data;
    int64_t count() const {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;  // each checked <= the data's size, so no overflow past it
        return n;
    }
};

// The value of key 'name' in an .npy header dict, as text up to its end (a quote or a bracket).
std::string header_field(const std::string& header, const std::string& name, const std::string& where) {
    const size_t key = header.find("'" + name + "'");
    check(key != std::string::npos, where + ": its .npy header has no " + name);
    size_t at = header.find(':', key);
    check(at != std::string::npos, where + ": a broken .npy header");
    at++;
    while (at < header.size() && header[at] == ' ') at++;
    check(at < header.size(), where + ": a broken .npy header");
    const char open = header[at];
    const char close = open == '\'' ? '\'' : open == '(' ? ')' : ',';
    const size_t end = header.find(close, at + 1);
    check(end != std::string::npos, where + ": a broken .npy header");
    return header.substr(open == '\'' || open == '(' ? at + 1 : at, end - at - (open == '\'' || open == '(' ? 1 : 0));
}

Npy read_npy(const File& f, const std::string& name, const Member& m) {
    const std::string where = f.fail("member " + shown(name));
    uint8_t local[30];
    f.read(m.local_offset, local, sizeof local);
    check(le(local, 4) == 0x04034b50, where + ": a broken zip entry");
    const uint64_t start = m.local_offset + 30 + le(local + 26, 2) + le(local + 28, 2);
    std::vector<uint8_t> bytes = f.bytes(start, m.size);
    check(crc32(bytes.data(), bytes.size()) == m.crc, where + ": its bytes do not match their checksum (corrupt)");
    check(bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0, where + ": not an .npy array");
    const int major = bytes[6];
    check(major >= 1 && major <= 3, where + ": .npy version " + std::to_string(major) + " is not known");
    const uint64_t len_bytes = major == 1 ? 2 : 4, header_len = le(&bytes[8], int(len_bytes));
    check(8 + len_bytes + header_len <= bytes.size(), where + ": truncated .npy header");
    const std::string header(reinterpret_cast<const char*>(&bytes[8 + len_bytes]), header_len);
    Npy npy;
    npy.descr = header_field(header, "descr", where);
    check(header_field(header, "fortran_order", where).find("False") == 0, where + ": Fortran-ordered");
    const std::string shape = header_field(header, "shape", where);
    const uint64_t data_size = bytes.size() - 8 - len_bytes - header_len;
    for (size_t i = 0; i < shape.size();) {
        if (!std::isdigit(static_cast<unsigned char>(shape[i]))) {
            check(shape[i] == ',' || shape[i] == ' ', where + ": a broken .npy shape");
            i++;
            continue;
        }
        int64_t d = 0;
        for (; i < shape.size() && std::isdigit(static_cast<unsigned char>(shape[i])); i++) {
            d = d * 10 + (shape[i] - '0');
            check(d <= int64_t(data_size) + 1, where + ": a shape larger than its data");
        }
        npy.shape.push_back(d);
    }
    int64_t item = npy.descr == "<f4" ? 4 : npy.descr == "<i8" ? 8 : 0;
    if (npy.descr.size() >= 3 && npy.descr[1] == 'U') {  // text: 4 bytes a character
        for (size_t i = 2; i < npy.descr.size() && item <= int64_t(data_size); i++) {
            check(std::isdigit(static_cast<unsigned char>(npy.descr[i])), where + ": a broken dtype");
            item = item * 10 + 4 * (npy.descr[i] - '0');
        }
    }
    check(item > 0, where + ": dtype " + shown(npy.descr) + " is not one a checkpoint holds");
    int64_t n = 1;
    for (int64_t d : npy.shape) {
        check(d == 0 || n <= int64_t(data_size) / d, where + ": a shape larger than its data");
        n *= d;
    }
    check(n <= int64_t(data_size) / item && uint64_t(n * item) == data_size,
          where + ": its data does not have the size its shape says");
    bytes.erase(bytes.begin(), bytes.end() - int64_t(data_size));
    npy.data = std::move(bytes);
    return npy;
}

std::string unicode_scalar(const Npy& a, const std::string& where) {
    check(a.descr[1] == 'U' && a.shape.empty(), where + " must be a text scalar");
    std::string s;
    for (size_t i = 0; i + 4 <= a.data.size(); i += 4) {
        const uint64_t c = le(&a.data[i], 4);
        if (c == 0) break;  // numpy pads with NULs
        check(c < 128, where + " holds a non-ASCII character");
        s.push_back(char(c));
    }
    return s;
}

int64_t int_scalar(const Npy& a, const std::string& where) {
    check(a.descr == "<i8" && a.shape.empty(), where + " must be an int64 scalar");
    return int64_t(le(a.data.data(), 8));
}

// The string value of "key" in a flat JSON object (the checkpoint's options), or "" if absent.
// Only what model.save writes: keys and values without escapes other than \" and \\.
std::string json_string(const std::string& json, const std::string& key, const std::string& where) {
    const std::string quoted = "\"" + key + "\"";
    size_t at = json.find(quoted);
    if (at == std::string::npos) return "";
    at = json.find(':', at + quoted.size());
    check(at != std::string::npos, where + ": broken JSON");
    at++;
    while (at < json.size() && std::isspace(static_cast<unsigned char>(json[at]))) at++;
    check(at < json.size() && json[at] == '"', where + ": \"" + key + "\" must be a string");
    std::string value;
    for (at++; at < json.size() && json[at] != '"'; at++) {
        if (json[at] == '\\' && at + 1 < json.size()) at++;
        value.push_back(json[at]);
    }
    check(at < json.size(), where + ": broken JSON");
    return value;
}

}  // namespace

InferenceCheckpoint read_checkpoint(const std::string& path) {
    const File f(path);
    const auto all = members(f);
    auto npy = [&](const std::string& key) {
        for (const auto& [name, m] : all)
            if (name == key + ".npy") return read_npy(f, name, m);
        throw std::invalid_argument(f.fail("not a pydfn checkpoint (no " + key + " member)"));
    };
    check(unicode_scalar(npy("format"), f.fail("format")) == "pydfn-checkpoint",
          f.fail("not a pydfn checkpoint (its format tag is not pydfn-checkpoint)"));
    const int64_t version = int_scalar(npy("version"), f.fail("version"));
    check(version == 2 || version == 3, f.fail("format version " + std::to_string(version) +
                                               ": this reader takes versions 2 and 3"));
    InferenceCheckpoint c;
    const Npy sizes = npy("layer_sizes");
    check(sizes.descr == "<i8" && sizes.shape.size() == 1 && sizes.count() >= 2,
          f.fail("layer_sizes must be a 1-D int64 array of at least 2 sizes"));
    int64_t num_params = 0;
    for (int64_t l = 0; l < sizes.count(); l++) {
        const int64_t s = int64_t(le(&sizes.data[size_t(8 * l)], 8));
        check(s >= 1 && s <= kMaxDim, f.fail("layer size " + std::to_string(s) + " is out of [1, 2^31)"));
        if (l > 0) {
            const int64_t in = c.sizes.back();
            check(in <= (int64_t(1) << 62) / s, f.fail("layer_sizes describe too many parameters"));
            num_params += in * s + s;
            check(num_params <= int64_t(f.size()) / 4, f.fail("layer_sizes describe more parameters than it holds"));
        }
        c.sizes.push_back(int(s));
    }
    const std::string options = unicode_scalar(npy("options"), f.fail("options"));
    const std::string where = f.fail("options");
    const std::string activation = json_string(options, "activation", where);
    const std::string loss = json_string(options, "loss", where);
    const std::string precision = json_string(options, "precision", where);
    c.activation = activation.empty() ? Activation::relu : activation_named(activation);
    c.loss = loss.empty() ? Loss::softmax_xent : loss_named(loss);
    c.precision = precision.empty() ? Precision::fp32 : precision_named(precision);
    const Npy params = npy("params");
    check(params.descr == "<f4" && params.shape.size() == 1 && params.count() == num_params,
          f.fail("params must be a float32 array of " + std::to_string(num_params) + " values (the layers' "
                 "weights and biases)"));
    c.params.resize(size_t(num_params));
    std::memcpy(c.params.data(), params.data.data(), params.data.size());
    for (float v : c.params) check(v - v == 0.0f, f.fail("params contains NaN or infinity"));
    return c;
}

}  // namespace pydfn
