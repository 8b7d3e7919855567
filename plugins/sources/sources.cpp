// Data sources: idx (Fashion-MNIST by default), npy, and the synthetic 3-D oval of the PCA
// autoencoder example.
#include <cmath>

#include "loom/dataset_io.hpp"
#include "loom/io.hpp"
#include "loom/plugin.hpp"
#include "loom/rng.hpp"
#include "loom/source.hpp"

namespace loom::sources {
namespace {

class IdxSource : public Source {
 public:
  explicit IdxSource(const Params& p)
      : images_(resolve_data_path(p, "images")),
        labels_(p.s("labels").empty() ? "" : resolve_data_path(p, "labels")) {}
  Shape sample_shape() const override { return idx_sample_shape(images_); }
  SourceInfo info() const override {
    SourceInfo i = idx_info(images_, labels_);
    i.lo = 0.f;
    i.hi = 255.f;
    return i;
  }
  Dataset load() const override { return read_idx(images_, labels_); }

 private:
  std::string images_, labels_;
};

class NpySource : public Source {
 public:
  explicit NpySource(const Params& p)
      : x_(resolve_data_path(p, "x")),
        y_(p.s("labels").empty() ? "" : resolve_data_path(p, "labels")),
        lo_(float(p.floats("range")[0])),
        hi_(float(p.floats("range")[1])) {}
  Shape sample_shape() const override {
    Shape s = npy_shape(x_);
    if (s.size() < 2) throw Error(x_ + ": expected an array of samples (at least 2 dimensions)");
    return Shape(s.begin() + 1, s.end());
  }
  SourceInfo info() const override {
    SourceInfo info;
    info.count = npy_shape(x_)[0];
    info.num_classes = 0;
    info.lo = lo_;
    info.hi = hi_;
    if (!y_.empty()) {  // labels are small: read them, and check them now
      Dataset d;
      d.count = info.count;
      d.origin = x_;
      set_labels(d, read_npy(y_), y_);
      info.num_classes = d.num_classes;
    }
    return info;
  }
  Dataset load() const override {
    Tensor t = read_npy(x_);
    if (t.rank() < 2) throw Error(x_ + ": expected an array of samples (at least 2 dimensions)");
    Dataset d;
    d.count = t.dim(0);
    d.sample_shape.assign(t.shape().begin() + 1, t.shape().end());
    d.x.assign(t.data(), t.data() + t.size());
    d.lo = lo_;
    d.hi = hi_;
    d.origin = x_;
    if (!y_.empty()) set_labels(d, read_npy(y_), y_);
    return d;
  }

 private:
  std::string x_, y_;
  float lo_, hi_;
};

// The noisy rotated 3-D oval of the linear (PCA) autoencoder example.
class OvalSource : public Source {
 public:
  explicit OvalSource(const Params& p)
      : n_(p.i("count")),
        noise_(float(p.f("noise"))),
        w1_(float(p.f("w1"))),
        w2_(float(p.f("w2"))),
        seed_(uint64_t(p.i("seed"))) {}
  Shape sample_shape() const override { return {3}; }
  SourceInfo info() const override { return {n_, 0, -2.f, 2.f}; }
  Dataset load() const override {
    Dataset d;
    d.count = n_;
    d.sample_shape = {3};
    d.x.resize(size_t(n_ * 3));
    d.origin = "oval";
    for (int64_t i = 0; i < n_; ++i) {
      Rng r(seed_, "oval", uint64_t(i), 0);
      float a = r.uniform() * 3.f * float(M_PI) / 2.f - 0.5f;
      float x0 = std::cos(a) + std::sin(a) / 2.f + noise_ * r.normal() / 2.f;
      float x1 = std::sin(a) * 0.7f + noise_ * r.normal() / 2.f;
      float x2 = x0 * w1_ + x1 * w2_ + noise_ * r.normal();
      d.x[i * 3] = x0;
      d.x[i * 3 + 1] = x1;
      d.x[i * 3 + 2] = x2;
    }
    // Centre the data (as the reference subtracts the mean before fitting).
    for (int k = 0; k < 3; ++k) {
      double m = 0;
      for (int64_t i = 0; i < n_; ++i) m += d.x[i * 3 + k];
      m /= double(n_);
      for (int64_t i = 0; i < n_; ++i) d.x[i * 3 + k] -= float(m);
    }
    d.lo = -2.f;
    d.hi = 2.f;
    return d;
  }

 private:
  int64_t n_;
  float noise_, w1_, w2_;
  uint64_t seed_;
};

void register_types(Registry& r) {
  Spec idx(
      "IDX image files (plain or .gz) with optional labels; Fashion-MNIST by default "
      "(relative paths are also looked up under /usr/share/datasets).");
  idx.add("images", Type::String).def("fashion-mnist/train-images-idx3-ubyte.gz").doc("image file");
  idx.add("labels", Type::String)
      .def("fashion-mnist/train-labels-idx1-ubyte.gz")
      .doc("label file ('' for none)");
  r.add<Source>("idx", idx, [](const Params& p) { return std::make_unique<IdxSource>(p); });
  Spec npy("A NumPy .npy array of samples (first axis), with optional labels.");
  npy.add("x", Type::String).required().doc("samples file");
  npy.add("labels", Type::String).def("''").doc("labels file ('' for none)");
  npy.add("range", Type::Floats).def("[0, 1]").doc("natural value range of the samples");
  r.add<Source>("npy", npy, [](const Params& p) { return std::make_unique<NpySource>(p); });
  Spec oval("Synthetic noisy 3-D oval (the PCA-autoencoder example), centred.");
  oval.add("count", Type::Int).def(60).min(1).doc("number of points");
  oval.add("noise", Type::Float).def(0.1).min(0).doc("noise level");
  oval.add("w1", Type::Float).def(0.1).doc("weight of x0 in x2");
  oval.add("w2", Type::Float).def(0.3).doc("weight of x1 in x2");
  oval.add("seed", Type::Int).def(4).doc("generator seed");
  r.add<Source>("oval", oval, [](const Params& p) { return std::make_unique<OvalSource>(p); });
}

}  // namespace
}  // namespace loom::sources

LOOM_PLUGIN("loom_sources", "0.1.0", "IDX, NPY and synthetic data sources",
            loom::sources::register_types)
