// Optimizers with the Keras update rules and defaults: sgd (momentum, Nesterov), adam, nadam,
// rmsprop. Slots are allocated and checkpointed by the framework.
#include <omp.h>

#include <cmath>

#include "loom/optimizer.hpp"
#include "loom/plugin.hpp"

namespace loom::optim {
namespace {

// Parameters larger than this are updated by the OpenMP team (small ones are not worth waking it).
constexpr int64_t kParallelFrom = 1 << 15;

// The element loops are compiled for AVX-512, AVX2 and baseline x86-64; the loader picks the best
// the CPU has.
#define LOOM_VECTOR_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

// Runs body(begin, end) over [0, n), split across the OpenMP team when n is large.
template <class Body>
void for_chunks(int64_t n, const Body& body) {
  if (n <= kParallelFrom || omp_get_max_threads() == 1) {
    body(0, n);
    return;
  }
#pragma omp parallel
  {
    int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
    int64_t per = ((n + nt - 1) / nt + 15) / 16 * 16;
    int64_t b = std::min(n, t * per), e = std::min(n, b + per);
    if (b < e) body(b, e);
  }
}

LOOM_VECTOR_CLONES void adam_kernel(float* w, const float* g, float* m, float* v, int64_t b,
                                    int64_t e, float alpha, float b1, float b2, float eps,
                                    float decay) {
  for (int64_t i = b; i < e; ++i) {
    m[i] += (g[i] - m[i]) * (1 - b1);
    v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
    w[i] -= alpha * m[i] / (std::sqrt(v[i]) + eps) + decay * w[i];
  }
}

LOOM_VECTOR_CLONES void nadam_kernel(float* w, const float* g, float* m, float* v, int64_t b,
                                     int64_t e, float lr, float b1, float b2, float eps, float c1,
                                     float c2, float vc) {
  for (int64_t i = b; i < e; ++i) {
    m[i] += (g[i] - m[i]) * (1 - b1);
    v[i] += (g[i] * g[i] - v[i]) * (1 - b2);
    float mh = c1 * m[i] + c2 * g[i];
    w[i] -= lr * mh / (std::sqrt(v[i] * vc) + eps);
  }
}

LOOM_VECTOR_CLONES void rmsprop_kernel(float* w, const float* g, float* r, float* mo, int64_t b,
                                       int64_t e, float lr, float rho, float eps, float mom) {
  for (int64_t i = b; i < e; ++i) {
    r[i] = rho * r[i] + (1 - rho) * g[i] * g[i];
    float step = lr * g[i] / (std::sqrt(r[i]) + eps);
    if (mo) {
      mo[i] = mom * mo[i] + step;
      step = mo[i];
    }
    w[i] -= step;
  }
}

class Sgd : public Optimizer {
 public:
  explicit Sgd(const Params& p)
      : lr_(p.f("lr")), momentum_(float(p.f("momentum"))), nesterov_(p.b("nesterov")) {}
  std::vector<std::string> slot_names() const override {
    return momentum_ > 0 ? std::vector<std::string>{"velocity"} : std::vector<std::string>{};
  }
  double learning_rate() const override { return lr_; }
  void update(Param& p, std::vector<Tensor>& s, float lr, int64_t) override {
    float* w = p.value.data();
    const float* g = p.grad.data();
    int64_t n = p.value.size();
    if (momentum_ == 0.f) {
      for (int64_t i = 0; i < n; ++i) w[i] -= lr * g[i];
      return;
    }
    float* v = s[0].data();
    for (int64_t i = 0; i < n; ++i) {
      v[i] = momentum_ * v[i] - lr * g[i];
      w[i] += nesterov_ ? momentum_ * v[i] - lr * g[i] : v[i];
    }
  }

 private:
  double lr_;
  float momentum_;
  bool nesterov_;
};

class Adam : public Optimizer {
 public:
  explicit Adam(const Params& p)
      : lr_(p.f("lr")),
        b1_(p.f("beta_1")),
        b2_(p.f("beta_2")),
        eps_(float(p.f("epsilon"))),
        wd_(float(p.f("weight_decay"))) {}
  std::vector<std::string> slot_names() const override { return {"m", "v"}; }
  double learning_rate() const override { return lr_; }
  void update(Param& p, std::vector<Tensor>& s, float lr, int64_t t) override {
    float alpha =
        float(lr * std::sqrt(1 - std::pow(b2_, double(t))) / (1 - std::pow(b1_, double(t))));
    float b1 = float(b1_), b2 = float(b2_), eps = eps_, decay = lr * wd_;
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = s[0].data();
    float* v = s[1].data();
    int64_t n = p.value.size();
    for_chunks(
        n, [&](int64_t b, int64_t e) { adam_kernel(w, g, m, v, b, e, alpha, b1, b2, eps, decay); });
  }

 private:
  double lr_, b1_, b2_;
  float eps_, wd_;
};

// Keras Nadam (Dozat 2016 with the momentum schedule μ_t = β1·(1 − 0.5·0.96^(0.004·t))).
class Nadam : public Optimizer {
 public:
  explicit Nadam(const Params& p)
      : lr_(p.f("lr")), b1_(p.f("beta_1")), b2_(p.f("beta_2")), eps_(float(p.f("epsilon"))) {}
  std::vector<std::string> slot_names() const override { return {"m", "v"}; }
  double learning_rate() const override { return lr_; }
  void update(Param& p, std::vector<Tensor>& s, float lr, int64_t t) override {
    advance_to(t);
    double u_t = mu(t), u_next = mu(t + 1);
    double prod_t = prod_, prod_next = prod_ * u_next;
    float c1 = float(u_next / (1 - prod_next)), c2 = float((1 - u_t) / (1 - prod_t));
    float vc = float(1.0 / (1 - std::pow(b2_, double(t))));
    float b1 = float(b1_), b2 = float(b2_), eps = eps_;
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* m = s[0].data();
    float* v = s[1].data();
    int64_t n = p.value.size();
    for_chunks(n, [&](int64_t b, int64_t e) {
      nadam_kernel(w, g, m, v, b, e, lr, b1, b2, eps, c1, c2, vc);
    });
  }

 private:
  double mu(int64_t t) const { return b1_ * (1 - 0.5 * std::pow(0.96, 0.004 * double(t))); }
  // prod_ = Π_{i<=t} μ_i, kept incrementally (recomputed after a resume).
  void advance_to(int64_t t) {
    if (t == t_) return;
    if (t != t_ + 1) {
      prod_ = 1;
      t_ = 0;
    }
    while (t_ < t) prod_ *= mu(++t_);
  }
  double lr_, b1_, b2_;
  float eps_;
  int64_t t_ = 0;
  double prod_ = 1;
};

class RmsProp : public Optimizer {
 public:
  explicit RmsProp(const Params& p)
      : lr_(p.f("lr")),
        rho_(float(p.f("rho"))),
        eps_(float(p.f("epsilon"))),
        momentum_(float(p.f("momentum"))) {}
  std::vector<std::string> slot_names() const override {
    return momentum_ > 0 ? std::vector<std::string>{"rms", "momentum"}
                         : std::vector<std::string>{"rms"};
  }
  double learning_rate() const override { return lr_; }
  void update(Param& p, std::vector<Tensor>& s, float lr, int64_t) override {
    float* w = p.value.data();
    const float* g = p.grad.data();
    float* r = s[0].data();
    int64_t n = p.value.size();
    float rho = rho_, eps = eps_, mom = momentum_;
    float* mo = s.size() > 1 ? s[1].data() : nullptr;
    for_chunks(n,
               [&](int64_t b, int64_t e) { rmsprop_kernel(w, g, r, mo, b, e, lr, rho, eps, mom); });
  }

 private:
  double lr_;
  float rho_, eps_, momentum_;
};

void register_types(Registry& r) {
  Spec sgd("Stochastic gradient descent with optional (Nesterov) momentum.");
  sgd.add("lr", Type::Float)
      .def(0.01)
      .min(0)
      .alias("learning_rate")
      .doc("learning rate (also learning_rate, as Keras calls it)");
  sgd.add("momentum", Type::Float).def(0.0).range(0, 1).doc("momentum factor");
  sgd.add("nesterov", Type::Bool).def("false").doc("use Nesterov momentum");
  r.add<Optimizer>("sgd", sgd, [](const Params& p) { return std::make_unique<Sgd>(p); });

  auto adam_like = [](const std::string& doc) {
    Spec s(doc);
    s.add("lr", Type::Float)
        .def(0.001)
        .min(0)
        .alias("learning_rate")
        .doc("learning rate (also learning_rate, as Keras calls it)");
    s.add("beta_1", Type::Float).def(0.9).range(0, 0.999999).doc("decay of the first moment");
    s.add("beta_2", Type::Float).def(0.999).range(0, 0.999999).doc("decay of the second moment");
    s.add("epsilon", Type::Float).def(1e-7).min(0).doc("numerical stability term");
    return s;
  };
  Spec adam = adam_like("Adam (Kingma & Ba), Keras defaults; weight_decay gives AdamW.");
  adam.add("weight_decay", Type::Float).def(0.0).min(0).doc("decoupled weight decay (AdamW)");
  r.add<Optimizer>("adam", adam, [](const Params& p) { return std::make_unique<Adam>(p); });
  r.add<Optimizer>("nadam", adam_like("Nadam: Adam with Nesterov momentum (Keras's update rule)."),
                   [](const Params& p) { return std::make_unique<Nadam>(p); });
  Spec rms("RMSprop, Keras defaults.");
  rms.add("lr", Type::Float)
      .def(0.001)
      .min(0)
      .alias("learning_rate")
      .doc("learning rate (also learning_rate, as Keras calls it)");
  rms.add("rho", Type::Float).def(0.9).range(0, 1).doc("decay of the squared-gradient average");
  rms.add("epsilon", Type::Float).def(1e-7).min(0).doc("numerical stability term");
  rms.add("momentum", Type::Float).def(0.0).range(0, 1).doc("momentum factor");
  r.add<Optimizer>("rmsprop", rms, [](const Params& p) { return std::make_unique<RmsProp>(p); });
}

}  // namespace
}  // namespace loom::optim

LOOM_PLUGIN("loom_optimizers", "0.1.0", "SGD, Adam, Nadam and RMSprop", loom::optim::register_types)
