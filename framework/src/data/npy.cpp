#include <cstring>
#include <fstream>
#include <sstream>

#include "loom/error.hpp"
#include "loom/io.hpp"

namespace loom {

namespace {

// The value of 'key' in an NPY header dict ("{'descr': '<f4', 'fortran_order': False, 'shape':
// (3, 4), }"): the text after "'key':" up to the next ',' outside parentheses, trimmed. No
// regular expressions: libstdc++'s recurse once per character and a long header would overflow
// the stack.
std::string header_value(const std::string& header, const std::string& key) {
  size_t k = header.find("'" + key + "'");
  if (k == std::string::npos) return "";
  size_t i = header.find(':', k);
  if (i == std::string::npos) return "";
  ++i;
  int depth = 0;
  size_t j = i;
  for (; j < header.size(); ++j) {
    char c = header[j];
    if (c == '(') ++depth;
    if (c == ')' && --depth < 0) break;
    if ((c == ',' || c == '}') && depth == 0) break;
  }
  size_t b = header.find_first_not_of(" \t", i);
  if (b == std::string::npos || b >= j) return "";
  size_t e = header.find_last_not_of(" \t", j - 1);
  return header.substr(b, e - b + 1);
}

struct NpyHeader {
  std::string descr, dims;
  Shape shape;
  int64_t count = 1;        // values
  int64_t data_offset = 0;  // bytes before the data
  int64_t file_size = 0;
};

NpyHeader read_header(std::ifstream& in, const std::string& path) {
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  NpyHeader h;
  char magic[8];
  if (!in.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    throw Error(path + ": not an NPY file (bad magic)");
  in.seekg(0, std::ios::end);
  h.file_size = int64_t(in.tellg());
  in.seekg(8, std::ios::beg);
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    unsigned char b[2];
    in.read(reinterpret_cast<char*>(b), 2);
    hlen = b[0] | (b[1] << 8);
  } else if (magic[6] == 2 || magic[6] == 3) {
    unsigned char b[4];
    in.read(reinterpret_cast<char*>(b), 4);
    hlen = b[0] | (b[1] << 8) | (b[2] << 16) | (uint32_t(b[3]) << 24);
  } else {
    throw Error(path + ": unsupported NPY format version " + std::to_string(int(magic[6])));
  }
  // Sizes from the header are checked against the file's length before anything is allocated.
  if (!in || int64_t(hlen) > h.file_size - int64_t(in.tellg()))
    throw Error(path + ": truncated NPY header (it claims " + std::to_string(hlen) +
                " bytes, the file holds " + std::to_string(h.file_size) + ")");
  // numpy writes headers of a few hundred bytes (and reads none above 10,000 by default).
  if (hlen > 65536)
    throw Error(path + ": the NPY header claims " + std::to_string(hlen) +
                " bytes; a header describing an array is at most 64 KiB");
  std::string header(hlen, ' ');
  if (!in.read(header.data(), hlen)) throw Error(path + ": truncated NPY header");
  h.data_offset = int64_t(in.tellg());
  std::string descr = header_value(header, "descr");
  if (descr.size() < 2 || descr.front() != '\'' || descr.back() != '\'')
    throw Error(path + ": NPY header has no dtype");
  h.descr = descr.substr(1, descr.size() - 2);
  std::string fortran = header_value(header, "fortran_order");
  if (fortran == "True")
    throw Error(path +
                ": Fortran-ordered NPY arrays are not supported (save with "
                "numpy.ascontiguousarray)");
  if (fortran != "False") throw Error(path + ": NPY header has no fortran_order");
  std::string shape = header_value(header, "shape");
  if (shape.size() < 2 || shape.front() != '(' || shape.back() != ')')
    throw Error(path + ": NPY header has no shape");
  h.dims = shape.substr(1, shape.size() - 2);
  const std::string& dims = h.dims;
  // "(60000, 28, 28)", "(5,)" or "()": sizes (digits) separated by commas, nothing else.
  std::stringstream items(dims);
  for (std::string item; std::getline(items, item, ',');) {
    size_t b = item.find_first_not_of(" \t"), e = item.find_last_not_of(" \t");
    if (b == std::string::npos) {
      if (items.eof()) break;  // the trailing comma of a 1-tuple
      throw Error(path + ": the NPY header's shape (" + dims + ") has an empty size");
    }
    std::string d = item.substr(b, e - b + 1);
    if (d.find_first_not_of("0123456789") != std::string::npos)
      throw Error(path + ": the NPY header's shape (" + dims + ") holds '" + d +
                  "', which is not a size");
    if (d.size() > 15)
      throw Error(path + ": the NPY header's shape (" + dims + ") is larger than any file");
    if (h.shape.size() == 32)
      throw Error(path + ": the NPY header's shape has more than 32 dimensions");
    h.shape.push_back(std::stoll(d));
  }
  if (h.shape.empty()) h.shape.push_back(1);
  for (int64_t d : h.shape) {
    if (d != 0 && h.count > (int64_t(1) << 40) / d)
      throw Error(path + ": the NPY header's shape (" + dims + ") is larger than any file");
    h.count *= d;
  }
  return h;
}

}  // namespace

Shape npy_shape(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return read_header(in, path).shape;
}

Tensor read_npy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  NpyHeader h = read_header(in, path);
  const Shape& shape = h.shape;
  const std::string& descr = h.descr;
  const std::string& dims = h.dims;
  const int64_t n = h.count;
  const int64_t file_size = h.file_size;
  const int64_t data_bytes = file_size - int64_t(in.tellg());
  Tensor t;
  auto read_as = [&](auto type_tag) {
    using T = decltype(type_tag);
    if (n * int64_t(sizeof(T)) > data_bytes)
      throw Error(path + ": truncated NPY data: the shape (" + dims + ") needs " +
                  std::to_string(n * int64_t(sizeof(T))) + " bytes, the file holds " +
                  std::to_string(data_bytes));
    std::vector<T> buf(static_cast<size_t>(n));
    if (!in.read(reinterpret_cast<char*>(buf.data()), std::streamsize(n * sizeof(T))))
      throw Error(path + ": truncated NPY data (expected " + std::to_string(n) + " values)");
    t = Tensor(shape);
    for (int64_t i = 0; i < n; ++i) t[i] = float(buf[i]);
  };
  if (descr == "<f4")
    read_as(float{});
  else if (descr == "<f8")
    read_as(double{});
  else if (descr == "|u1" || descr == "<u1")
    read_as(uint8_t{});
  else if (descr == "<i4")
    read_as(int32_t{});
  else if (descr == "<i8")
    read_as(int64_t{});
  else
    throw Error(path + ": unsupported NPY dtype '" + descr + "' (float32/64, uint8, int32/64)");
  return t;
}

static void write_npy_raw(const std::string& path, const std::string& descr, const Shape& shape,
                          const void* data, size_t bytes) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream o(tmp, std::ios::binary);
    std::string dims;
    for (size_t i = 0; i < shape.size(); ++i)
      dims += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    std::string h = "{'descr': '" + descr + "', 'fortran_order': False, 'shape': (" + dims + "), }";
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    o.write("\x93NUMPY\x01\x00", 8);
    uint16_t len = uint16_t(h.size());
    o.put(char(len & 0xff));
    o.put(char(len >> 8));
    o.write(h.data(), std::streamsize(h.size()));
    o.write(static_cast<const char*>(data), std::streamsize(bytes));
    o.flush();
    if (!o) throw Error(write_failed(path));
  });
}

void write_npy(const std::string& path, const Tensor& t) {
  write_npy_raw(path, "<f4", t.shape(), t.data(), size_t(t.size()) * sizeof(float));
}

void write_npy_labels(const std::string& path, const std::vector<int32_t>& labels) {
  write_npy_raw(path, "<i4", {int64_t(labels.size())}, labels.data(),
                labels.size() * sizeof(int32_t));
}

}  // namespace loom
