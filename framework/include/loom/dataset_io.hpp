// Datasets on disk, format chosen by the path:
//   *.npy                  samples as float32 .npy, labels beside as <stem>.labels.npy
//   *-idx3-ubyte, *.idx    IDX ubyte images (values mapped from [lo, hi] to 0..255), labels beside
//                          as <prefix>-labels-idx1-ubyte / <stem>.labels.idx
//   a folder (DIR/)        one PNG per sample, in class sub-folders when labelled
#pragma once
#include <memory>
#include <string>

#include "loom/export.hpp"
#include "loom/source.hpp"

namespace loom {

// Writes samples one at a time, in order, in bounded memory. Nothing is visible under the final
// path until close() succeeds; a writer destroyed without close() leaves nothing behind.
class LOOM_API DatasetWriter {
 public:
  static std::unique_ptr<DatasetWriter> open(const std::string& path, const Shape& sample_shape,
                                             float lo, float hi, bool labelled);
  virtual ~DatasetWriter();
  virtual void write(const float* sample, int32_t label) = 0;
  virtual void close() = 0;
  // The files written (for messages).
  virtual std::string describe() const = 0;
};

LOOM_API void write_dataset(const std::string& path, const Dataset& d);
// Reads IDX (labels found beside when present), .npy (with .labels.npy), or a PNG folder (class
// sub-folders give labels). Throws an Error naming the file and the reason.
LOOM_API Dataset read_dataset(const std::string& path);
// Sets d's labels from `l` (read from `file`): one per sample, each a class index (a whole number
// from 0, below 100000), else an Error naming the file and the first bad label.
LOOM_API void set_labels(Dataset& d, const Tensor& l, const std::string& file);

}  // namespace loom
