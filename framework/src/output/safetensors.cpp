#include "output/safetensors.hpp"

#include <cstring>
#include <fstream>
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

TensorFile load_safetensors(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open (" + std::strerror(errno) + ")");
  in.seekg(0, std::ios::end);
  uint64_t size = uint64_t(in.tellg());
  in.seekg(0);
  uint64_t n = 0;
  if (size < 8 || !in.read(reinterpret_cast<char*>(&n), 8) || n > size - 8)
    throw Error(path + ": not a safetensors file (bad header length)");
  std::string header(n, ' ');
  in.read(header.data(), std::streamsize(n));
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(header);
  } catch (const std::exception&) {
    throw Error(path + ": not a safetensors file (header is not JSON)");
  }
  TensorFile f;
  uint64_t data_start = 8 + n, data_size = size - data_start;
  for (auto& [name, v] : h.items()) {
    if (name == "__metadata__") {
      for (auto& [k, s] : v.items()) f.metadata[k] = s.get<std::string>();
      continue;
    }
    if (v.value("dtype", "") != "F32") throw Error(path + ": tensor '" + name + "' is not F32");
    Shape shape = v.at("shape").get<Shape>();
    auto off = v.at("data_offsets").get<std::vector<uint64_t>>();
    if (off.size() != 2 || off[1] < off[0] || off[1] > data_size ||
        off[1] - off[0] != uint64_t(numel(shape)) * sizeof(float))
      throw Error(path + ": tensor '" + name + "' has inconsistent offsets (truncated file?)");
    Tensor t(shape);
    in.seekg(std::streamoff(data_start + off[0]));
    if (!in.read(reinterpret_cast<char*>(t.data()), std::streamsize(off[1] - off[0])))
      throw Error(path + ": truncated data for tensor '" + name + "'");
    f.tensors[name] = t;
  }
  return f;
}

}  // namespace loom
