// flatten, reshape, add, concat: layers that move or combine values without parameters.
#include <cstring>
#include <map>
#include <unordered_map>

#include "dnn/dnn.hpp"
#include "loom/error.hpp"
#include "loom/layer.hpp"

namespace loom::core {
namespace {

using dnn::dt;
using dnn::md;

class CopyLayer : public Layer {
 public:
  ValueRange range(const std::vector<ValueRange>& in) const override { return in[0]; }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    std::memcpy(out.data(), in[0]->data(), in[0]->size() * sizeof(float));
  }
  void backward(const RunContext&, const std::vector<const Tensor*>&, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    if (din[0]) std::memcpy(din[0]->data(), dout.data(), dout.size() * sizeof(float));
  }
};

class FlattenLayer : public CopyLayer {
 public:
  Shape infer(const std::vector<Shape>& in) override { return {numel(in[0])}; }
};

class ReshapeLayer : public CopyLayer {
 public:
  explicit ReshapeLayer(const Params& p) : target_(p.ints("shape")) {}
  Shape infer(const std::vector<Shape>& in) override {
    Shape s = target_;
    int64_t known = 1, unknown = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == -1) {
        if (unknown >= 0) throw Error("only one dimension of 'shape' can be -1");
        unknown = int64_t(i);
      } else if (s[i] <= 0) {
        throw Error("shape entries must be positive (or one -1)");
      } else {
        known *= s[i];
      }
    }
    int64_t n = numel(in[0]);
    if (unknown >= 0) {
      if (n % known)
        throw Error("cannot reshape " + std::to_string(n) + " values into " + to_string(target_));
      s[unknown] = n / known;
    }
    if (numel(s) != n)
      throw Error("cannot reshape " + to_string(in[0]) + " (" + std::to_string(n) +
                  " values) into " + to_string(s) + " (" + std::to_string(numel(s)) + " values)");
    return s;
  }

 private:
  Shape target_;
};

class AddLayer : public Layer {
 public:
  int min_inputs() const override { return 2; }
  int max_inputs() const override { return 64; }
  LayoutRole layout_role() const override { return LayoutRole::Follows; }  // element-wise
  Shape infer(const std::vector<Shape>& in) override {
    for (auto& s : in)
      if (s != in[0])
        throw Error("add needs inputs of equal shape, got " + to_string(in[0]) + " and " +
                    to_string(s));
    return in[0];
  }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    int64_t n = out.size();
    auto& k = cache_[{n, in.size()}];
    if (!k.ready) {
      md m({n}, dt::f32, dnnl::memory::format_tag::a);
      std::vector<md> srcs(in.size(), m);
      std::vector<float> scales(in.size(), 1.f);
      dnnl::sum::primitive_desc pd(m, scales, srcs, dnn::engine(), dnn::Scratchpad::attr());
      scratch_.reserve(pd);
      k.prim = dnnl::sum(pd);
      for (size_t i = 0; i < in.size(); ++i) k.srcs.push_back(dnn::unbound(m));
      k.dst = dnn::unbound(m);
      k.ready = true;
    }
    dnn::Args args;
    for (size_t i = 0; i < in.size(); ++i) {
      k.srcs[i].set_data_handle(const_cast<float*>(in[i]->data()));
      args[DNNL_ARG_MULTIPLE_SRC + int(i)] = k.srcs[i];
    }
    k.dst.set_data_handle(out.data());
    args[DNNL_ARG_DST] = k.dst;
    scratch_.run(k.prim, std::move(args));
  }
  void backward(const RunContext&, const std::vector<const Tensor*>&, const Tensor&,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    for (auto* d : din)
      if (d) std::memcpy(d->data(), dout.data(), dout.size() * sizeof(float));
  }

 private:
  struct Prim {
    bool ready = false;
    dnnl::sum prim;
    std::vector<dnnl::memory> srcs;
    dnnl::memory dst;
  };
  dnn::Scratchpad scratch_;
  std::map<std::pair<int64_t, size_t>, Prim> cache_;
};

// Concatenation along `axis` (0 = the first axis after the batch: features of vectors,
// channels of (C, H, W) images).
class ConcatLayer : public Layer {
 public:
  ValueRange range(const std::vector<ValueRange>& in) const override {
    ValueRange r = in[0];
    for (auto& x : in) r = {std::min(r.lo, x.lo), std::max(r.hi, x.hi)};
    return r;
  }
  explicit ConcatLayer(const Params& p) : axis_(p.i("axis")) {}
  int min_inputs() const override { return 2; }
  int max_inputs() const override { return 64; }
  // Channels of (C, H, W) maps: each sample's input i is the same C_i·H·W consecutive values in
  // the blocked layout as in the plain one when C_i is a multiple of the block (the model blocks
  // no other), so the same copies serve.
  LayoutRole layout_role() const override {
    return ax_ == 0 && rank_ == 3 ? LayoutRole::Follows : LayoutRole::Plain;
  }
  Shape infer(const std::vector<Shape>& in) override {
    int64_t rank = int64_t(in[0].size());
    rank_ = rank;
    int64_t a = axis_ < 0 ? axis_ + rank : axis_;
    if (a < 0 || a >= rank)
      throw Error("axis " + std::to_string(axis_) + " is out of range for " + to_string(in[0]));
    ax_ = a;
    Shape out = in[0];
    out[a] = 0;
    sizes_.clear();
    for (auto& s : in) {
      if (s.size() != in[0].size()) throw Error("concat inputs must have equal rank");
      for (int64_t d = 0; d < rank; ++d)
        if (d != a && s[d] != in[0][d])
          throw Error("concat inputs differ outside axis " + std::to_string(axis_) + ": " +
                      to_string(in[0]) + " and " + to_string(s));
      out[a] += s[a];
      sizes_.push_back(s[a]);
    }
    inner_ = 1;
    for (int64_t d = a + 1; d < rank; ++d) inner_ *= in[0][d];
    total_ = out[a];
    return out;
  }
  void forward(const RunContext&, const std::vector<const Tensor*>& in, Tensor& out) override {
    int64_t outer = out.dim(0);
    for (int64_t d = 1; d <= ax_; ++d) outer *= out.dim(d);
    int64_t off = 0;
    for (size_t i = 0; i < in.size(); ++i) {
      int64_t chunk = sizes_[i] * inner_;
      for (int64_t o = 0; o < outer; ++o)
        std::memcpy(out.data() + o * total_ * inner_ + off, in[i]->data() + o * chunk,
                    chunk * sizeof(float));
      off += chunk;
    }
  }
  void backward(const RunContext&, const std::vector<const Tensor*>&, const Tensor& out,
                const Tensor& dout, const std::vector<Tensor*>& din) override {
    int64_t outer = out.dim(0);
    for (int64_t d = 1; d <= ax_; ++d) outer *= out.dim(d);
    int64_t off = 0;
    for (size_t i = 0; i < din.size(); ++i) {
      int64_t chunk = sizes_[i] * inner_;
      if (din[i])
        for (int64_t o = 0; o < outer; ++o)
          std::memcpy(din[i]->data() + o * chunk, dout.data() + o * total_ * inner_ + off,
                      chunk * sizeof(float));
      off += chunk;
    }
  }

 private:
  int64_t axis_, ax_ = 0, rank_ = 0, inner_ = 1, total_ = 0;
  std::vector<int64_t> sizes_;
};

}  // namespace

void register_shape_ops(Registry& r) {
  r.add<Layer>("flatten", Spec("Flattens each sample to one axis."),
               [](const Params&) { return std::make_unique<FlattenLayer>(); });
  Spec rs("Reshapes each sample (the batch axis is kept).");
  rs.add("shape", Type::Ints).required().doc("target shape without the batch; one entry may be -1");
  r.add<Layer>("reshape", rs, [](const Params& p) { return std::make_unique<ReshapeLayer>(p); });
  r.add<Layer>("add", Spec("Element-wise sum of two or more inputs of equal shape."),
               [](const Params&) { return std::make_unique<AddLayer>(); });
  Spec c(
      "Concatenates inputs along an axis (0 = first axis after the batch: channels of "
      "(C, H, W) images, features of vectors).");
  c.add("axis", Type::Int)
      .def(0)
      .doc("axis, counted without the batch; negative counts from the end");
  r.add<Layer>("concat", c, [](const Params& p) { return std::make_unique<ConcatLayer>(p); });
}

}  // namespace loom::core
