#include "output/safetensors.hpp"

#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "loom/error.hpp"
#include "loom/io.hpp"

namespace loom {

void save_safetensors(const std::string& path,
                      const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json h;
  if (!metadata.empty()) h["__metadata__"] = metadata;
  size_t offset = 0;
  for (auto& [name, t] : tensors) {
    size_t bytes = size_t(t->size()) * sizeof(float);
    h[name] = {{"dtype", "F32"}, {"shape", t->shape()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string header = h.dump();
  while (header.size() % 8) header += ' ';
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream o(tmp, std::ios::binary);
    uint64_t n = header.size();
    o.write(reinterpret_cast<const char*>(&n), 8);
    o.write(header.data(), std::streamsize(header.size()));
    for (auto& [name, t] : tensors)
      o.write(reinterpret_cast<const char*>(t->data()), std::streamsize(t->size() * sizeof(float)));
    o.flush();
    if (!o) throw Error(write_failed(path));
  });
}

namespace {

// A JSON value as a whole number in [0, max], or -1.
int64_t whole(const nlohmann::json& v, int64_t max) {
  if (!v.is_number_integer() && !v.is_number_unsigned()) return -1;
  if (v.is_number_unsigned()) {
    uint64_t u = v.get<uint64_t>();
    return u <= uint64_t(max) ? int64_t(u) : -1;
  }
  int64_t i = v.get<int64_t>();
  return i >= 0 && i <= max ? i : -1;
}

}  // namespace

// Every field of the header is checked before it sizes anything: the header length against the
// file (and the format's 100 MB bound), each tensor's dtype, shape (whole numbers, the element
// count bounded by the data actually there) and offsets (inside the data, matching the shape,
// not overlapping another tensor's).
TensorFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  in.seekg(0, std::ios::end);
  uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  uint64_t n = 0;
  if (size < 8 || !in.read(reinterpret_cast<char*>(&n), 8) || n > size - 8)
    throw Error(path + ": not a safetensors file (bad header length)");
  if (n > (uint64_t(100) << 20))
    throw Error(path + ": not a safetensors file (a header of " + std::to_string(n) +
                " bytes; the format allows 100 MB)");
  std::string header(n, ' ');
  if (!in.read(header.data(), std::streamsize(n)))
    throw Error(path + ": truncated safetensors header");
  nlohmann::json h = nlohmann::json::parse(header, nullptr, false);
  if (h.is_discarded() || !h.is_object())
    throw Error(path + ": not a safetensors file (the header is not a JSON object)");
  TensorFile f;
  const uint64_t data_start = 8 + n, data_size = size - data_start;
  std::map<uint64_t, std::pair<uint64_t, std::string>> spans;  // begin -> (end, tensor)
  for (auto& [name, v] : h.items()) {
    std::string where = path + ": tensor '" + name + "'";
    if (name == "__metadata__") {
      if (!v.is_object()) throw Error(path + ": __metadata__ is not a JSON object");
      for (auto& [k, s] : v.items()) {
        if (!s.is_string()) throw Error(path + ": __metadata__ entry '" + k + "' is not a string");
        f.metadata[k] = s.get<std::string>();
      }
      continue;
    }
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") ||
        !v.contains("data_offsets"))
      throw Error(where + " is not {dtype, shape, data_offsets}");
    const auto& dtype = v["dtype"];
    if (!dtype.is_string() || dtype.get<std::string>() != "F32")
      throw Error(where + " has dtype " + dtype.dump() + "; Loom reads F32 tensors");
    const auto& sh = v["shape"];
    if (!sh.is_array() || sh.size() > 8)
      throw Error(where + ": its shape is not a list of at most 8 sizes");
    Shape shape;
    uint64_t count = 1;
    for (const auto& d : sh) {
      int64_t k = whole(d, int64_t(1) << 40);
      if (k < 0) throw Error(where + ": its shape holds " + d.dump() + ", which is not a size");
      shape.push_back(k);
      if (k != 0 && count > data_size / sizeof(float) / uint64_t(k) + 1)
        throw Error(where + ": its shape " + to_string(shape) + "... is larger than the file");
      count *= uint64_t(k);
    }
    const auto& off = v["data_offsets"];
    int64_t b = off.is_array() && off.size() == 2 ? whole(off[0], int64_t(data_size)) : -1;
    int64_t e = off.is_array() && off.size() == 2 ? whole(off[1], int64_t(data_size)) : -1;
    if (b < 0 || e < b)
      throw Error(where + ": its data_offsets " + off.dump() + " are not [begin, end] within the " +
                  std::to_string(data_size) + " bytes of data (truncated file?)");
    if (uint64_t(e - b) != count * sizeof(float))
      throw Error(where + ": its data_offsets " + off.dump() + " hold " + std::to_string(e - b) +
                  " bytes but its shape " + to_string(shape) + " needs " +
                  std::to_string(count * sizeof(float)));
    if (e > b) {
      auto next = spans.lower_bound(uint64_t(b));
      const std::string* other = nullptr;
      if (next != spans.end() && next->first < uint64_t(e)) other = &next->second.second;
      if (next != spans.begin() && std::prev(next)->second.first > uint64_t(b))
        other = &std::prev(next)->second.second;
      if (other) throw Error(where + ": its bytes overlap those of tensor '" + *other + "'");
      spans[uint64_t(b)] = {uint64_t(e), name};
    }
    Tensor t(shape);
    in.seekg(std::streamoff(data_start + uint64_t(b)));
    if (count && !in.read(reinterpret_cast<char*>(t.data()), std::streamsize(e - b)))
      throw Error(where + ": truncated data");
    f.tensors[name] = t;
  }
  return f;
}

}  // namespace loom
