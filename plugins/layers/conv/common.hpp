// Shared helpers of the convolutional layer library (oneDNN 2.6 API): the elementwise
// activation backward, "ports"
// that move data between Loom's plain NCHW tensors and the layouts oneDNN picks, and parsing of
// the Keras-style size parameters.
#pragma once
#include <dnnl.hpp>
#include <map>
#include <string>
#include <vector>

#include "../activations.hpp"
#include "loom/dnn.hpp"
#include "loom/error.hpp"
#include "loom/params.hpp"

namespace loom::conv {

using dt = dnnl::memory::data_type;
using md = dnnl::memory::desc;
using tag = dnnl::memory::format_tag;
using dims = dnnl::memory::dims;

inline md plain4(int64_t n, int64_t c, int64_t h, int64_t w) {
  return md({n, c, h, w}, dt::f32, tag::nchw);
}
inline md any4(int64_t n, int64_t c, int64_t h, int64_t w) {
  return md({n, c, h, w}, dt::f32, tag::any);
}

using layers::Act;
using layers::act_alg;
using layers::act_alpha;
using layers::act_names;
using layers::act_post_op;
using layers::act_post_ops;
using layers::parse_act;

using layers::Eltwise;

// ---- ports: a plain user buffer on one side, the layout a primitive wants on the other ----

// Input port: the user's plain buffer is reordered (when the layouts differ) into an internal
// buffer owned by the port. The reorder primitive and the buffer are created once.
class InPort {
 public:
  void init(const md& user, const md& want) {
    auto& eng = dnn::engine();
    user_ = dnnl::memory(user, eng, nullptr);
    needs_ = user != want;
    if (needs_) {
      prim_ = dnnl::memory(want, eng);
      reorder_ = dnnl::reorder(user_, prim_);
    } else {
      prim_ = user_;
    }
  }
  const dnnl::memory& operator()(const float* p) {
    user_.set_data_handle(const_cast<float*>(p));
    if (needs_) reorder_.execute(dnn::stream(), user_, prim_);
    return prim_;
  }

 private:
  dnnl::memory user_, prim_;
  dnnl::reorder reorder_;
  bool needs_ = false;
};

// Output port: the primitive writes into mem() (the user's buffer itself when the layouts
// agree), then finish() reorders into the user's plain buffer. With accumulate, the primitive
// always writes an internal buffer and finish() ADDS it to the user's buffer (reorder with a
// sum post-op): used for parameter gradients.
class OutPort {
 public:
  void init(const md& user, const md& have, bool accumulate = false) {
    auto& eng = dnn::engine();
    user_ = dnnl::memory(user, eng, nullptr);
    needs_ = accumulate || user != have;
    if (needs_) {
      prim_ = dnnl::memory(have, eng);
      dnnl::primitive_attr attr;
      if (accumulate) {
        dnnl::post_ops ops;
        ops.append_sum(1.f);
        attr.set_post_ops(ops);
      }
      reorder_ = dnnl::reorder(dnnl::reorder::primitive_desc(prim_, user_, attr));
    } else {
      prim_ = user_;
    }
  }
  const dnnl::memory& mem(float* p) {
    user_.set_data_handle(p);
    return prim_;
  }
  void finish() {
    if (needs_) reorder_.execute(dnn::stream(), prim_, user_);
  }

 private:
  dnnl::memory user_, prim_;
  dnnl::reorder reorder_;
  bool needs_ = false;
};

// ---- Keras-style size parameters ----

// An Ints parameter of one value (used for both axes) or two ([h, w]).
inline std::pair<int64_t, int64_t> pair_param(const Params& p, const std::string& key,
                                              int64_t lo = 1) {
  std::vector<int64_t> v = p.ints(key);
  if (v.size() == 1) v.push_back(v[0]);
  if (v.size() != 2) p.fail(key, "expected [n] or [h, w]");
  for (int64_t x : v)
    if (x < lo) p.fail(key, "values must be >= " + std::to_string(lo));
  return {v[0], v[1]};
}

// An Ints parameter of one value (all four sides), two ([h, w]: top = bottom = h, left = right
// = w) or four ([top, bottom, left, right]).
inline std::vector<int64_t> sides_param(const Params& p, const std::string& key) {
  std::vector<int64_t> v = p.ints(key);
  if (v.size() == 1)
    v = {v[0], v[0], v[0], v[0]};
  else if (v.size() == 2)
    v = {v[0], v[0], v[1], v[1]};
  if (v.size() != 4) p.fail(key, "expected [n], [h, w] or [top, bottom, left, right]");
  for (int64_t x : v)
    if (x < 0) p.fail(key, "values must be >= 0");
  return v;
}

// TensorFlow 'same' padding of one axis: pad_total = max((ceil(in/s)-1)*s + k_eff - in, 0),
// half (rounded down) before, the rest after. Returns {out, before, after}.
struct Axis {
  int64_t out, before, after;
};
inline Axis conv_axis(int64_t in, int64_t k_eff, int64_t s, bool same) {
  if (same) {
    int64_t out = (in + s - 1) / s;
    int64_t total = std::max<int64_t>((out - 1) * s + k_eff - in, 0);
    return {out, total / 2, total - total / 2};
  }
  return {in >= k_eff ? (in - k_eff) / s + 1 : 0, 0, 0};
}

// Expects a (C, H, W) sample shape.
inline void expect_chw(const std::vector<loom::Shape>& in) {
  if (in[0].size() != 3)
    throw Error("expected an input of shape (channels, height, width), got " + to_string(in[0]));
}

}  // namespace loom::conv
