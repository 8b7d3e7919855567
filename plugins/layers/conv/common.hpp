// Shared helpers of the convolutional layer library: the oneDNN adapter's names, parsing of the
// Keras-style size parameters and the output-size rules.
#pragma once
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "dnn/conv.hpp"
#include "loom/error.hpp"
#include "loom/params.hpp"

namespace loom::conv {

using dnn::dims;
using dnn::dt;
using dnn::md;
using dnn::plain4;
using dnn::tag;

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
