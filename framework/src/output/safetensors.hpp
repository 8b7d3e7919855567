// Internal: safetensors files (https://huggingface.co/docs/safetensors): an 8-byte little-endian
// header length, a JSON header {name: {dtype, shape, data_offsets}, "__metadata__": {...}},
// then the raw little-endian data. Written atomically.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/tensor.hpp"

namespace loom {

struct LOOM_API TensorFile {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

LOOM_API void save_safetensors(const std::string& path,
                               const std::vector<std::pair<std::string, const Tensor*>>& tensors,
                               const std::map<std::string, std::string>& metadata);
LOOM_API TensorFile load_safetensors(const std::string& path);

}  // namespace loom
