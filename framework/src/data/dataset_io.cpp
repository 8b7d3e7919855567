// Dataset files by extension. (This first version buffers the samples and supports .npy and
// IDX; PNG folders and streaming writes come with `loom augment`.)
#include "loom/dataset_io.hpp"

#include <cstring>
#include <filesystem>

#include "loom/error.hpp"
#include "loom/io.hpp"

namespace fs = std::filesystem;

namespace loom {
namespace {

std::string idx_labels_path(const std::string& images) {
  auto p = images.find("-images-idx3-ubyte");
  if (p != std::string::npos) return images.substr(0, p) + "-labels-idx1-ubyte" + images.substr(p + 18);
  p = images.find("-idx3-ubyte");
  if (p != std::string::npos) return images.substr(0, p) + "-labels-idx1-ubyte" + images.substr(p + 11);
  return fs::path(images).replace_extension(".labels.idx").string();
}

class BufferedWriter : public DatasetWriter {
 public:
  BufferedWriter(std::string path, Shape shape, float lo, float hi, bool labelled)
      : path_(std::move(path)), labelled_(labelled) {
    d_.sample_shape = shape;
    d_.lo = lo;
    d_.hi = hi;
  }
  void write(const float* s, int32_t label) override {
    d_.x.insert(d_.x.end(), s, s + numel(d_.sample_shape));
    if (labelled_) d_.labels.push_back(label);
    ++d_.count;
  }
  void close() override { write_dataset(path_, d_); }
  std::string describe() const override { return path_; }

 private:
  std::string path_;
  bool labelled_;
  Dataset d_;
};

}  // namespace

DatasetWriter::~DatasetWriter() = default;

std::unique_ptr<DatasetWriter> DatasetWriter::open(const std::string& path, const Shape& shape, float lo,
                                                   float hi, bool labelled) {
  return std::make_unique<BufferedWriter>(path, shape, lo, hi, labelled);
}

void write_dataset(const std::string& path, const Dataset& d) {
  if (path.ends_with(".npy")) {
    Shape s = d.sample_shape;
    s.insert(s.begin(), d.count);
    Tensor t(s);
    std::memcpy(t.data(), d.x.data(), d.x.size() * sizeof(float));
    write_npy(path, t);
    if (d.has_labels()) write_npy_labels(path.substr(0, path.size() - 4) + ".labels.npy", d.labels);
    return;
  }
  if (path.find("idx3-ubyte") != std::string::npos || path.ends_with(".idx")) {
    write_idx(path, d.has_labels() ? idx_labels_path(path) : "", d);
    return;
  }
  throw Error(path + ": unknown dataset format (use .npy or an IDX name such as train-images-idx3-ubyte)");
}

Dataset read_dataset(const std::string& path) {
  if (path.ends_with(".npy")) {
    Tensor t = read_npy(path);
    Dataset d;
    d.count = t.dim(0);
    d.sample_shape.assign(t.shape().begin() + 1, t.shape().end());
    d.x.assign(t.data(), t.data() + t.size());
    std::string lp = path.substr(0, path.size() - 4) + ".labels.npy";
    if (fs::exists(lp)) {
      Tensor l = read_npy(lp);
      for (int64_t i = 0; i < l.size(); ++i) d.labels.push_back(int32_t(l[i]));
      for (auto v : d.labels) d.num_classes = std::max(d.num_classes, v + 1);
    }
    d.origin = path;
    return d;
  }
  std::string labels = idx_labels_path(path);
  return read_idx(path, fs::exists(labels) ? labels : "");
}

}  // namespace loom
