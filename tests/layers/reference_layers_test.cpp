// Forward passes of the oneDNN layers against naive reference loops over tables of shapes:
// dense, conv2d, conv2d_transpose (every kernel/stride pair, Keras output sizes),
// separable_conv2d, pooling, batch_norm, and every activation (fused into dense and conv2d, and
// standalone) against its scalar formula.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "loom/rng.hpp"
#include "loom/training.hpp"
#include "support/harness.hpp"

using loom::Shape;
using loom::Tensor;
using loom::test::model_from_yaml;

namespace {

// Every parameter of the model filled with uniform values in [lo, hi] (biases included, so the
// bias path is tested), variances kept positive.
void randomize(loom::Model& m, uint64_t seed = 3) {
  loom::Rng rng(seed, "params", 0, 0);
  for (auto& p : m.params()) {
    bool positive = p->name.find("variance") != std::string::npos;
    for (int64_t i = 0; i < p->value.size(); ++i)
      p->value[i] = positive ? rng.uniform(0.5f, 1.5f) : rng.uniform(-1.f, 1.f);
  }
}

const Tensor& param(loom::Model& m, const std::string& suffix) {
  for (auto& p : m.params())
    if (p->name.size() >= suffix.size() &&
        p->name.compare(p->name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return p->value;
  throw std::runtime_error("no parameter " + suffix);
}

Tensor input(const Shape& sample, int64_t batch, float lo = -2.f, float hi = 2.f) {
  Shape s = sample;
  s.insert(s.begin(), batch);
  Tensor x(s);
  loom::Rng rng(9, "input", 0, 0);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(lo, hi);
  return x;
}

void expect_close(const Tensor& got, const std::vector<double>& want, const std::string& what,
                  double tol = 1e-4) {
  ASSERT_EQ(size_t(got.size()), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[int64_t(i)], want[i], tol * (1 + std::fabs(want[i]))) << what << " at " << i;
}

// ---- activations: the scalar definitions ----

const double kSeluLambda = 1.0507009873554805, kSeluAlpha = 1.6732632423543772;

struct ActCase {
  std::string yaml;  // the activation (and alpha) as layer keys
  std::function<double(double)> f;
};

std::vector<ActCase> activation_cases() {
  auto sig = [](double x) { return 1 / (1 + std::exp(-x)); };
  return {
      {"activation: linear", [](double x) { return x; }},
      {"activation: relu", [](double x) { return x > 0 ? x : 0; }},
      {"activation: leaky_relu", [](double x) { return x > 0 ? x : 0.3 * x; }},
      {"activation: leaky_relu, alpha: 0.2", [](double x) { return x > 0 ? x : 0.2 * x; }},
      {"activation: sigmoid", sig},
      {"activation: tanh", [](double x) { return std::tanh(x); }},
      {"activation: elu", [](double x) { return x > 0 ? x : std::exp(x) - 1; }},
      {"activation: elu, alpha: 0.5", [](double x) { return x > 0 ? x : 0.5 * (std::exp(x) - 1); }},
      {"activation: selu",
       [](double x) { return kSeluLambda * (x > 0 ? x : kSeluAlpha * (std::exp(x) - 1)); }},
      {"activation: softplus", [](double x) { return std::log1p(std::exp(x)); }},
      {"activation: swish", [sig](double x) { return x * sig(x); }},
      {"activation: silu", [sig](double x) { return x * sig(x); }},
      {"activation: swish, alpha: 2", [sig](double x) { return x * sig(2 * x); }},
      {"activation: gelu", [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
  };
}

// ---- naive references ----

std::vector<double> dense_ref(const Tensor& x, const Tensor& w, const Tensor& b, int64_t units,
                              const std::function<double(double)>& act) {
  int64_t in = w.dim(0), rows = x.size() / in;
  std::vector<double> y(size_t(rows * units));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t u = 0; u < units; ++u) {
      double s = b.size() ? b[u] : 0;
      for (int64_t i = 0; i < in; ++i) s += double(x[r * in + i]) * w[i * units + u];
      y[size_t(r * units + u)] = act(s);
    }
  return y;
}

struct Conv {
  int64_t kh, kw, sh = 1, sw = 1, rh = 1, rw = 1;
  bool same = false;
};

// TensorFlow / Keras: valid floor((in - k_eff) / s) + 1, same ceil(in / s) with the total padding
// max((out - 1)·s + k_eff - in, 0), half before.
void conv_axis(int64_t in, int64_t k, int64_t s, int64_t r, bool same, int64_t& out,
               int64_t& before) {
  int64_t keff = (k - 1) * r + 1;
  if (same) {
    out = (in + s - 1) / s;
    before = std::max<int64_t>((out - 1) * s + keff - in, 0) / 2;
  } else {
    out = (in - keff) / s + 1;
    before = 0;
  }
}

// x (N, C, H, W), w (O, C/groups, KH, KW); groups = C for a depthwise convolution (O = C·mult).
std::vector<double> conv_ref(
    const Tensor& x, const Tensor& w, const Tensor* b, const Conv& c, int64_t groups,
    Shape* out_shape, const std::function<double(double)>& act = [](double v) { return v; }) {
  int64_t n = x.dim(0), ic = x.dim(1), ih = x.dim(2), iw = x.dim(3), oc = w.dim(0);
  int64_t oh, ow, pt, pl;
  conv_axis(ih, c.kh, c.sh, c.rh, c.same, oh, pt);
  conv_axis(iw, c.kw, c.sw, c.rw, c.same, ow, pl);
  *out_shape = {oc, oh, ow};
  int64_t icg = ic / groups, ocg = oc / groups;
  std::vector<double> y(size_t(n * oc * oh * ow));
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          double s = b ? (*b)[o] : 0;
          int64_t g = o / ocg;
          for (int64_t ci = 0; ci < icg; ++ci)
            for (int64_t ky = 0; ky < c.kh; ++ky)
              for (int64_t kx = 0; kx < c.kw; ++kx) {
                int64_t iy = oy * c.sh - pt + ky * c.rh, ix = ox * c.sw - pl + kx * c.rw;
                if (iy < 0 || iy >= ih || ix < 0 || ix >= iw) continue;
                int64_t cin = g * icg + ci;
                s += double(x[((b0 * ic + cin) * ih + iy) * iw + ix]) *
                     w[((o * icg + ci) * c.kh + ky) * c.kw + kx];
              }
          y[size_t(((b0 * oc + o) * oh + oy) * ow + ox)] = act(s);
        }
  return y;
}

// Keras's transposed convolution: output same in·s, valid in·s + max(k_eff - s, 0); input pixel
// (iy, ix) adds w·x at output (iy·s - pad + ky·r, ...), pad = max(k_eff - s, 0) / 2 with 'same'.
// w (O, I, KH, KW).
std::vector<double> deconv_ref(const Tensor& x, const Tensor& w, const Tensor& b, const Conv& c,
                               Shape* out_shape) {
  int64_t n = x.dim(0), ic = x.dim(1), ih = x.dim(2), iw = x.dim(3), oc = w.dim(0);
  int64_t keh = (c.kh - 1) * c.rh + 1, kew = (c.kw - 1) * c.rw + 1;
  int64_t oh = ih * c.sh + (c.same ? 0 : std::max<int64_t>(keh - c.sh, 0));
  int64_t ow = iw * c.sw + (c.same ? 0 : std::max<int64_t>(kew - c.sw, 0));
  int64_t pt = c.same ? std::max<int64_t>(keh - c.sh, 0) / 2 : 0;
  int64_t pl = c.same ? std::max<int64_t>(kew - c.sw, 0) / 2 : 0;
  *out_shape = {oc, oh, ow};
  std::vector<double> y(size_t(n * oc * oh * ow));
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t i = 0; i < oh * ow; ++i) y[size_t((b0 * oc + o) * oh * ow + i)] = b[o];
  for (int64_t b0 = 0; b0 < n; ++b0)
    for (int64_t o = 0; o < oc; ++o)
      for (int64_t ci = 0; ci < ic; ++ci)
        for (int64_t iy = 0; iy < ih; ++iy)
          for (int64_t ix = 0; ix < iw; ++ix)
            for (int64_t ky = 0; ky < c.kh; ++ky)
              for (int64_t kx = 0; kx < c.kw; ++kx) {
                int64_t oy = iy * c.sh - pt + ky * c.rh, ox = ix * c.sw - pl + kx * c.rw;
                if (oy < 0 || oy >= oh || ox < 0 || ox >= ow) continue;
                y[size_t(((b0 * oc + o) * oh + oy) * ow + ox)] +=
                    double(x[((b0 * ic + ci) * ih + iy) * iw + ix]) *
                    w[((o * ic + ci) * c.kh + ky) * c.kw + kx];
              }
  return y;
}

std::string conv_yaml(const std::string& type, int64_t filters, const Conv& c) {
  return "{type: " + type + ", filters: " + std::to_string(filters) + ", kernel_size: [" +
         std::to_string(c.kh) + ", " + std::to_string(c.kw) + "], strides: [" +
         std::to_string(c.sh) + ", " + std::to_string(c.sw) + "], dilation_rate: [" +
         std::to_string(c.rh) + ", " + std::to_string(c.rw) +
         "], padding: " + (c.same ? "same" : "valid");
}

}  // namespace

// ---- dense ----

TEST(LayerReference, DenseEveryActivation) {
  for (const ActCase& a : activation_cases()) {
    SCOPED_TRACE(a.yaml);
    for (const char* shape : {"[6]", "[3, 6]"}) {
      auto m = model_from_yaml(std::string("m: {input: ") + shape +
                                   ", layers: [{type: dense, units: 5, " + a.yaml + "}]}",
                               "m");
      randomize(*m);
      Tensor x = input(m->input_shape(), 4);
      m->forward({}, {&x});
      expect_close(m->output(), dense_ref(x, param(*m, "kernel"), param(*m, "bias"), 5, a.f),
                   a.yaml);
    }
  }
}

TEST(LayerReference, DenseTransposeUsesTransposedKernel) {
  auto m = model_from_yaml(
      "m: {input: [4], layers: [{type: dense, units: 3, name: enc},"
      " {type: dense_transpose, tied_to: enc, activation: elu}]}",
      "m");
  randomize(*m);
  Tensor x = input(m->input_shape(), 3);
  m->forward({}, {&x});
  const Tensor& w = param(*m, "enc.kernel");  // (4, 3)
  const Tensor& b1 = param(*m, "enc.bias");
  const Tensor& b2 = m->params().back()->value;  // the decoder's own bias (4)
  std::vector<double> want;
  for (int64_t r = 0; r < 3; ++r) {
    std::vector<double> h(3);
    for (int64_t u = 0; u < 3; ++u) {
      h[size_t(u)] = b1[u];
      for (int64_t i = 0; i < 4; ++i) h[size_t(u)] += double(x[r * 4 + i]) * w[i * 3 + u];
    }
    for (int64_t i = 0; i < 4; ++i) {
      double s = b2[i];
      for (int64_t u = 0; u < 3; ++u) s += h[size_t(u)] * w[i * 3 + u];
      want.push_back(s > 0 ? s : std::exp(s) - 1);
    }
  }
  expect_close(m->output(), want, "dense_transpose");
}

// ---- conv2d ----

TEST(LayerReference, Conv2DTable) {
  const Conv table[] = {
      {3, 3},
      {3, 3, 2, 2},
      {3, 3, 1, 1, 1, 1, true},
      {3, 3, 2, 2, 1, 1, true},
      {2, 3, 2, 1},
      {4, 4, 2, 2, 1, 1, true},
      {5, 5, 3, 3, 1, 1, true},
      {1, 1},
      {3, 2, 1, 1, 2, 3},
      {3, 3, 1, 1, 2, 2, true},
  };
  for (const Conv& c : table) {
    std::string yaml = conv_yaml("conv2d", 3, c) + "}";
    SCOPED_TRACE(yaml);
    auto m = model_from_yaml("m: {input: [2, 7, 8], layers: [" + yaml + "]}", "m");
    randomize(*m);
    for (int64_t batch : {1, 3}) {
      Tensor x = input(m->input_shape(), batch);
      m->forward({}, {&x});
      Shape shape;
      auto want = conv_ref(x, param(*m, "kernel"), &param(*m, "bias"), c, 1, &shape);
      EXPECT_EQ(m->output_shape(), shape);
      expect_close(m->output(), want, yaml);
    }
  }
}

TEST(LayerReference, Conv2DEveryActivation) {
  Conv c{3, 3, 1, 1, 1, 1, true};
  for (const ActCase& a : activation_cases()) {
    SCOPED_TRACE(a.yaml);
    auto m = model_from_yaml(
        "m: {input: [2, 5, 6], layers: [" + conv_yaml("conv2d", 3, c) + ", " + a.yaml + "}]}", "m");
    randomize(*m);
    Tensor x = input(m->input_shape(), 2);
    m->forward({}, {&x});
    Shape shape;
    expect_close(m->output(),
                 conv_ref(x, param(*m, "kernel"), &param(*m, "bias"), c, 1, &shape, a.f), a.yaml);
  }
}

TEST(LayerReference, StandaloneActivations) {
  for (const ActCase& a : activation_cases()) {
    SCOPED_TRACE(a.yaml);
    // {activation: NAME, alpha: A} as its own layer type, and through the `activation` layer.
    std::string name = a.yaml.substr(std::string("activation: ").size());
    std::string alone = "{type: " + name.substr(0, name.find(',')) +
                        (name.find(',') == std::string::npos ? "" : name.substr(name.find(','))) +
                        "}";
    for (const std::string& layer : {alone, "{type: activation, " + a.yaml + "}"}) {
      auto m = model_from_yaml("m: {input: [2, 3, 4], layers: [" + layer + "]}", "m");
      Tensor x = input(m->input_shape(), 2, -4.f, 4.f);
      m->forward({}, {&x});
      std::vector<double> want;
      for (int64_t i = 0; i < x.size(); ++i) want.push_back(a.f(x[i]));
      expect_close(m->output(), want, layer);
    }
  }
}

TEST(LayerReference, AlphaOnlyWhereItMeansSomething) {
  for (const char* bad :
       {"{type: dense, units: 2, activation: relu, alpha: 0.1}",
        "{type: conv2d, filters: 2, kernel_size: [1], activation: gelu, alpha: 0.1}",
        "{type: activation, activation: tanh, alpha: 1}",
        "{type: dense, units: 2, activation: leaky_relu, alpha: -0.1}"}) {
    SCOPED_TRACE(bad);
    try {
      model_from_yaml(std::string("m: {input: [1, 2, 2], layers: [") + bad + "]}", "m");
      ADD_FAILURE() << "accepted";
    } catch (const loom::Error& e) {
      EXPECT_NE(std::string(e.what()).find("alpha"), std::string::npos) << e.what();
    }
  }
}

// ---- conv2d_transpose: every kernel/stride pair, including kernel < stride ----

TEST(LayerReference, Conv2DTransposeKernelStrideTable) {
  for (int64_t k = 1; k <= 5; ++k)
    for (int64_t s = 1; s <= 3; ++s)
      for (bool same : {true, false}) {
        Conv c{k, k, s, s, 1, 1, same};
        std::string yaml = conv_yaml("conv2d_transpose", 2, c) + "}";
        SCOPED_TRACE(yaml);
        auto m = model_from_yaml("m: {input: [3, 4, 5], layers: [" + yaml + "]}", "m");
        randomize(*m);
        Tensor x = input(m->input_shape(), 2);
        m->forward({}, {&x});
        Shape shape;
        auto want = deconv_ref(x, param(*m, "kernel"), param(*m, "bias"), c, &shape);
        ASSERT_EQ(m->output_shape(), shape);
        if (same) {
          EXPECT_EQ(shape, Shape({2, 4 * s, 5 * s}));  // n·stride for every pair
        }
        expect_close(m->output(), want, yaml);
      }
}

TEST(LayerReference, Conv2DTransposeMixedAndDilated) {
  const Conv table[] = {{2, 3, 3, 2, 1, 1, true},
                        {3, 1, 2, 3, 1, 1, true},
                        {3, 3, 1, 1, 2, 2, true},
                        {2, 2, 1, 1, 3, 2, false},
                        {1, 2, 2, 4, 1, 1, false}};
  for (const Conv& c : table) {
    std::string yaml = conv_yaml("conv2d_transpose", 3, c) + ", activation: tanh}";
    SCOPED_TRACE(yaml);
    auto m = model_from_yaml("m: {input: [2, 3, 4], layers: [" + yaml + "]}", "m");
    randomize(*m);
    Tensor x = input(m->input_shape(), 2);
    m->forward({}, {&x});
    Shape shape;
    auto want = deconv_ref(x, param(*m, "kernel"), param(*m, "bias"), c, &shape);
    for (double& v : want) v = std::tanh(v);
    ASSERT_EQ(m->output_shape(), shape);
    expect_close(m->output(), want, yaml);
  }
}

TEST(LayerGradients, Conv2DTransposeKernelBelowStride) {
  // Output cells no input reaches (kernel < stride) hold the bias: their gradient goes to the
  // bias alone.
  for (const char* ks : {"kernel_size: [1], strides: [2]", "kernel_size: [2], strides: [3]",
                         "kernel_size: [1, 3], strides: [3, 2]"})
    for (const char* pad : {"same", "valid"}) {
      SCOPED_TRACE(std::string(ks) + " " + pad);
      loom::test::check_layer_gradients(
          "[2, 3, 4]",
          std::string("{type: conv2d_transpose, filters: 2, ") + ks + ", padding: " + pad + "}", 2);
    }
}

// ---- separable_conv2d ----

TEST(LayerReference, SeparableConv2D) {
  const Conv table[] = {{3, 3}, {3, 3, 2, 2, 1, 1, true}, {3, 2, 1, 1, 2, 1, true}};
  for (const Conv& c : table)
    for (int64_t mult : {1, 2}) {
      std::string yaml = conv_yaml("separable_conv2d", 4, c) +
                         ", depth_multiplier: " + std::to_string(mult) + ", activation: sigmoid}";
      SCOPED_TRACE(yaml);
      auto m = model_from_yaml("m: {input: [3, 6, 7], layers: [" + yaml + "]}", "m");
      randomize(*m);
      Tensor x = input(m->input_shape(), 2);
      m->forward({}, {&x});
      Shape mid_shape, shape;
      const Tensor& dw = param(*m, "depthwise_kernel");
      auto mid = conv_ref(x, dw, nullptr, c, 3, &mid_shape);
      Tensor mid_t({2, mid_shape[0], mid_shape[1], mid_shape[2]});
      for (size_t i = 0; i < mid.size(); ++i) mid_t[int64_t(i)] = float(mid[i]);
      auto want = conv_ref(mid_t, param(*m, "pointwise_kernel"), &param(*m, "bias"), Conv{1, 1}, 1,
                           &shape, [](double v) { return 1 / (1 + std::exp(-v)); });
      EXPECT_EQ(m->output_shape(), shape);
      expect_close(m->output(), want, yaml, 2e-4);
    }
}

// ---- pooling ----

TEST(LayerReference, Pooling) {
  struct Pool {
    int64_t ph, pw, sh, sw;
    bool same;
  };
  const Pool table[] = {{2, 2, 2, 2, false},
                        {2, 2, 2, 2, true},
                        {3, 3, 1, 1, true},
                        {3, 2, 2, 1, false},
                        {3, 3, 2, 2, true}};
  for (bool max : {true, false})
    for (const Pool& p : table) {
      std::string yaml = std::string("{type: ") + (max ? "max_pool2d" : "avg_pool2d") +
                         ", pool_size: [" + std::to_string(p.ph) + ", " + std::to_string(p.pw) +
                         "], strides: [" + std::to_string(p.sh) + ", " + std::to_string(p.sw) +
                         "], padding: " + (p.same ? "same" : "valid") + "}";
      SCOPED_TRACE(yaml);
      auto m = model_from_yaml("m: {input: [2, 5, 7], layers: [" + yaml + "]}", "m");
      Tensor x = input(m->input_shape(), 2);
      m->forward({}, {&x});
      int64_t oh, ow, pt, pl;
      conv_axis(5, p.ph, p.sh, 1, p.same, oh, pt);
      conv_axis(7, p.pw, p.sw, 1, p.same, ow, pl);
      ASSERT_EQ(m->output_shape(), Shape({2, oh, ow}));
      std::vector<double> want;
      for (int64_t pl0 = 0; pl0 < 4; ++pl0)
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            double best = -1e30, sum = 0;
            int count = 0;
            for (int64_t ky = 0; ky < p.ph; ++ky)
              for (int64_t kx = 0; kx < p.pw; ++kx) {
                int64_t iy = oy * p.sh - pt + ky, ix = ox * p.sw - pl + kx;
                if (iy < 0 || iy >= 5 || ix < 0 || ix >= 7) continue;  // padding: never counted
                double v = x[(pl0 * 5 + iy) * 7 + ix];
                best = std::max(best, v);
                sum += v;
                ++count;
              }
            want.push_back(max ? best : sum / count);
          }
      expect_close(m->output(), want, yaml);
    }
  auto g = model_from_yaml("m: {input: [3, 4, 5], layers: [{type: global_avg_pool2d}]}", "m");
  Tensor x = input(g->input_shape(), 2);
  g->forward({}, {&x});
  std::vector<double> want;
  for (int64_t pl0 = 0; pl0 < 6; ++pl0) {
    double s = 0;
    for (int64_t i = 0; i < 20; ++i) s += x[pl0 * 20 + i];
    want.push_back(s / 20);
  }
  expect_close(g->output(), want, "global_avg_pool2d");
}

// ---- batch_norm ----

loom::Param& param_of(loom::Model& m, const std::string& name) {
  for (auto& p : m.params())
    if (p->name == name) return *p;
  throw std::runtime_error("no parameter " + name);
}

std::vector<double> to_doubles(const Tensor& t) {
  return std::vector<double>(t.data(), t.data() + t.size());
}

// Data-parallel training: with RunContext::ranks the layer sums its statistics over the ranks
// (plain loops, not oneDNN). On one rank that must be exactly the oneDNN layer: outputs, moving
// statistics, input and parameter gradients; and its own gradients pass the finite-difference
// check (the two-rank equivalence is tested end to end in tests/cli/mpi_test.cpp).
TEST(LayerReference, BatchNormSummedOverRanksIsTheBatchNormOfOneProcess) {
  loom::GradientReducer one_rank;
  for (const char* layer :
       {"{type: batch_norm, epsilon: 0.01}", "{type: batch_norm, center: false}",
        "{type: batch_norm, scale: false}"})
    for (const char* shape : {"[8, 4, 5]", "[6]"}) {
      SCOPED_TRACE(std::string(layer) + " " + shape);
      std::string yaml = std::string("m: {input: ") + shape + ", layers: [" + layer + "]}";
      auto a = model_from_yaml(yaml, "m"), b = model_from_yaml(yaml, "m");
      randomize(*a);
      for (auto& p : a->params()) param_of(*b, p->name).value.copy_from(p->value);
      Tensor x = input(a->input_shape(), 5);
      loom::RunContext plain;
      plain.training = true;
      loom::RunContext summed = plain;
      summed.ranks = &one_rank;
      a->forward(plain, {&x});
      b->forward(summed, {&x});
      expect_close(b->output(), to_doubles(a->output()), "output", 1e-5);
      for (auto& p : a->params())
        expect_close(param_of(*b, p->name).value, to_doubles(p->value), p->name, 1e-5);
      Tensor g = input(a->output_shape(), 5);
      for (auto* m : {a.get(), b.get()}) {
        m->zero_grads();
        Tensor& seed = m->seed_grad(m->output_node());
        seed.copy_from(g.reshaped(seed.shape()));
      }
      a->backward(plain, true);
      b->backward(summed, true);
      expect_close(b->input_grad(0), to_doubles(a->input_grad(0)), "dx", 1e-4);
      for (auto& p : a->params())
        if (p->trainable)
          expect_close(param_of(*b, p->name).grad, to_doubles(p->grad), p->name + " gradient",
                       1e-4);
      loom::test::GradCheck opts;
      opts.ranks = &one_rank;
      check_layer_gradients(shape, layer, 3, opts);
    }
}

TEST(LayerReference, BatchNormTrainingAndInference) {
  for (const char* shape : {"[3, 4, 5]", "[6]"}) {
    SCOPED_TRACE(shape);
    auto m = model_from_yaml(
        std::string("m: {input: ") + shape + ", layers: [{type: batch_norm, epsilon: 0.01}]}", "m");
    randomize(*m);
    Tensor x = input(m->input_shape(), 4);
    int64_t c = m->input_shape()[0], per = loom::numel(m->input_shape()) / c, n = 4;
    const Tensor& gamma = param(*m, "gamma");
    const Tensor& beta = param(*m, "beta");
    Tensor mm = param(*m, "moving_mean").clone(), mv = param(*m, "moving_variance").clone();
    for (bool training : {false, true}) {
      loom::RunContext ctx;
      ctx.training = training;
      m->forward(ctx, {&x});
      std::vector<double> want(size_t(x.size()));
      for (int64_t ch = 0; ch < c; ++ch) {
        double mean = 0, var = 0;
        for (int64_t b = 0; b < n; ++b)
          for (int64_t i = 0; i < per; ++i) mean += x[(b * c + ch) * per + i];
        mean /= double(n * per);
        for (int64_t b = 0; b < n; ++b)
          for (int64_t i = 0; i < per; ++i) var += std::pow(x[(b * c + ch) * per + i] - mean, 2);
        var /= double(n * per);  // biased
        if (!training) mean = mm[ch], var = mv[ch];
        for (int64_t b = 0; b < n; ++b)
          for (int64_t i = 0; i < per; ++i) {
            int64_t k = (b * c + ch) * per + i;
            want[size_t(k)] = gamma[ch] * (x[k] - mean) / std::sqrt(var + 0.01) + beta[ch];
          }
      }
      expect_close(m->output(), want, training ? "training" : "inference", 2e-4);
    }
  }
}
