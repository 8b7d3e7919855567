#include "support/harness.hpp"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>

#include "config/yaml_util.hpp"
#include "loom/create.hpp"
#include "loom/rng.hpp"
#include "model/model_set.hpp"
#include "plugin/plugins.hpp"

namespace loom::test {

Registry& registry() {
  static bool loaded = [] {
    load_plugin_dir(global_registry(), builtin_plugin_dir());
    return true;
  }();
  (void)loaded;
  return global_registry();
}

std::shared_ptr<Model> model_from_yaml(const std::string& models_yaml, const std::string& name,
                                       uint64_t seed) {
  // Each call gets its own ModelSet, kept alive with the model (it owns the parameter map).
  auto set = std::make_shared<ModelSet>(registry(), seed, "<test>");
  set->declare(YAML::Load(models_yaml));
  std::shared_ptr<Model> m = set->get(name);
  return std::shared_ptr<Model>(m.get(), [set, m](Model*) {});
}

std::vector<std::shared_ptr<Model>> models_from_yaml(const std::string& models_yaml,
                                                     const std::vector<std::string>& names,
                                                     uint64_t seed) {
  auto set = std::make_shared<ModelSet>(registry(), seed, "<test>");
  set->declare(YAML::Load(models_yaml));
  std::vector<std::shared_ptr<Model>> out;
  for (auto& n : names) {
    std::shared_ptr<Model> m = set->get(n);
    out.push_back(std::shared_ptr<Model>(m.get(), [set, m](Model*) {}));
  }
  return out;
}

Params entry_from_yaml(const std::string& yaml) {
  Spec open;
  open.open = true;
  return make_params(YAML::Load(yaml), open, "<test>", "entry");
}

static double objective(Model& model, const Tensor& x, const Tensor& g, const RunContext& ctx) {
  model.forward(ctx, {&x});
  const Tensor& y = model.output();
  double s = 0;
  for (int64_t i = 0; i < y.size(); ++i) s += double(y[i]) * g[i];
  return s + model.penalty();
}

static void compare(const std::string& what, int64_t i, double analytic, double numeric,
                    const GradCheck& o) {
  double tol = o.atol + o.rtol * std::max(std::fabs(analytic), std::fabs(numeric));
  EXPECT_LE(std::fabs(analytic - numeric), tol)
      << what << "[" << i << "]: analytic " << analytic << " vs numeric " << numeric;
}

Tensor random_batch(const Shape& sample, int64_t batch, uint64_t seed, float lo, float hi) {
  Shape s = sample;
  s.insert(s.begin(), batch);
  Tensor x(s);
  Rng rng(seed, "input", 0, 0);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(lo, hi);
  return x;
}

void check_gradients(Model& model, int64_t batch, const GradCheck& o) {
  RunContext ctx{o.training, 7, 3};
  ctx.ranks = o.ranks;
  Rng rng(11, "gradcheck", 0, 0);
  Shape xs = model.input_shape();
  xs.insert(xs.begin(), batch);
  Tensor x(xs);
  for (int64_t i = 0; i < x.size(); ++i) x[i] = rng.uniform(o.input_lo, o.input_hi);
  model.forward(ctx, {&x});
  Tensor g(model.output().shape());
  for (int64_t i = 0; i < g.size(); ++i) g[i] = rng.uniform(-1.f, 1.f);

  model.zero_grads();
  model.forward(ctx, {&x});
  model.seed_grad(model.output_node()).copy_from(g);
  model.backward(ctx, true);
  Tensor dx = model.input_grad().clone();
  std::vector<Tensor> dparams;
  for (auto& p : model.params()) dparams.push_back(p->grad.clone());

  auto probe = [&](const std::string& what, float* values, int64_t n, const Tensor& analytic) {
    int checks = int(std::min<int64_t>(n, o.max_checks));
    for (int c = 0; c < checks; ++c) {
      int64_t i = n <= o.max_checks ? c : int64_t(rng.below(uint64_t(n)));
      float saved = values[i];
      values[i] = saved + float(o.step);
      double plus = objective(model, x, g, ctx);
      values[i] = saved - float(o.step);
      double minus = objective(model, x, g, ctx);
      values[i] = saved;
      compare(what, i, analytic[i], (plus - minus) / (2 * o.step), o);
    }
  };
  probe("d/d input", x.data(), x.size(), dx);
  for (size_t k = 0; k < model.params().size(); ++k) {
    auto& p = model.params()[k];
    if (!p->trainable) continue;
    probe("d/d " + p->name, p->value.data(), p->value.size(), dparams[k]);
  }
}

void check_layer_gradients(const std::string& input_shape, const std::string& layer_yaml,
                           int64_t batch, const GradCheck& opts) {
  auto m = model_from_yaml("m: {input: " + input_shape + ", layers: [" + layer_yaml + "]}", "m");
  check_gradients(*m, batch, opts);
}

}  // namespace loom::test
