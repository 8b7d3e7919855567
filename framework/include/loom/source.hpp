// Data sources: produce a dataset of samples (float32, any sample shape) with optional integer
// labels. Pixel sources report their natural value range (e.g. [0, 255]); the framework applies
// the pipeline's `scale:` afterwards, then its splits.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "loom/export.hpp"
#include "loom/params.hpp"
#include "loom/registry.hpp"
#include "loom/tensor.hpp"

namespace loom {

struct LOOM_API Dataset {
  Shape sample_shape;
  int64_t count = 0;
  std::vector<float> x;         // count * numel(sample_shape) values
  std::vector<int32_t> labels;  // empty, or count labels
  int num_classes = 0;
  float lo = 0.f, hi = 1.f;  // natural value range of x
  std::string origin;        // file or generator, for messages
  // Names of classes 0, 1, ... for pictures (legends, row labels); empty: shown as numbers. Set
  // from the pipeline's `class_names:` of the dataset, else Fashion-MNIST's when read from it.
  std::vector<std::string> class_names;

  const float* sample(int64_t i) const { return x.data() + i * numel(sample_shape); }
  bool has_labels() const { return !labels.empty(); }
};

// What a source can say cheaply (headers and label files, never the samples), for validation.
struct SourceInfo {
  int64_t count = -1;        // samples; -1 when unknown
  int num_classes = -1;      // 0 when unlabelled; -1 when unknown
  float lo = 0.f, hi = 0.f;  // the natural value range (as Dataset::lo/hi); lo == hi: unknown
};

class LOOM_API Source {
 public:
  static constexpr Kind kind = Kind::Source;
  virtual ~Source();
  // Sample shape without loading everything (headers only), for validation.
  virtual Shape sample_shape() const = 0;
  // Sample count and classes without loading the samples; the default knows neither.
  virtual SourceInfo info() const { return {}; }
  // Loads the whole dataset; throws Error naming the file and the reason on corrupt data.
  virtual Dataset load() const = 0;
};

// Resolves a data path given under `key` of `p`: absolute paths as they are; relative ones
// against the pipeline's folder, then the current folder, then /usr/share/datasets.
// Throws an Error located at the key if the file exists nowhere.
LOOM_API std::string resolve_data_path(const Params& p, const std::string& key);

}  // namespace loom
