// The embedding layer: forward against a naive table lookup, the table's gradient against finite
// differences, and the message for an index outside the table.
#include <gtest/gtest.h>

#include <cmath>

#include "loom/rng.hpp"
#include "support/harness.hpp"

using loom::RunContext;
using loom::Shape;
using loom::Tensor;
using loom::test::model_from_yaml;

namespace {

Tensor indices(const std::vector<float>& v, int64_t batch) {
  Tensor x({batch, int64_t(v.size()) / batch});
  for (size_t i = 0; i < v.size(); ++i) x[int64_t(i)] = v[i];
  return x;
}

}  // namespace

TEST(EmbeddingLayer, ForwardIsTableLookup) {
  for (const char* input : {"[1]", "[3]"}) {
    SCOPED_TRACE(input);
    auto m = model_from_yaml(std::string("m: {input: ") + input +
                                 ", layers: [{type: embedding, input_dim: 5, output_dim: 4}]}",
                             "m");
    int64_t len = m->input_shape()[0];
    EXPECT_EQ(m->output_shape(), len == 1 ? Shape({4}) : Shape({len, 4}));
    const Tensor& w = m->params()[0]->value;
    ASSERT_EQ(w.shape(), Shape({5, 4}));
    std::vector<float> v;
    for (int64_t i = 0; i < 2 * len; ++i) v.push_back(float((i * 3 + 1) % 5));
    Tensor x = indices(v, 2);
    m->forward({}, {&x});
    for (int64_t i = 0; i < x.size(); ++i)
      for (int64_t j = 0; j < 4; ++j)
        ASSERT_EQ(m->output()[i * 4 + j], w[int64_t(v[size_t(i)]) * 4 + j]) << i << "," << j;
  }
}

TEST(EmbeddingLayer, TableGradientMatchesFiniteDifferences) {
  auto m = model_from_yaml(
      "m: {input: [3], layers: [{type: embedding, input_dim: 4, output_dim: 3},"
      " {type: dense, units: 2, activation: tanh}]}",
      "m");
  Tensor x = indices({0, 2, 2, 3, 0, 0}, 2);  // repeated indices add up; index 1 unused
  Tensor g({2, 3, 2});
  loom::Rng rng(3, "g", 0, 0);
  for (int64_t i = 0; i < g.size(); ++i) g[i] = rng.uniform(-1.f, 1.f);
  RunContext ctx;
  ctx.training = true;
  auto objective = [&] {
    m->forward(ctx, {&x});
    double s = 0;
    for (int64_t i = 0; i < g.size(); ++i) s += double(m->output()[i]) * g[i];
    return s;
  };
  m->zero_grads();
  objective();
  m->seed_grad(m->output_node()).copy_from(g);
  m->backward(ctx);
  auto& table = m->params()[0];
  ASSERT_NE(table->name.find("embeddings"), std::string::npos);
  Tensor analytic = table->grad.clone();
  for (int64_t i = 0; i < table->value.size(); ++i) {
    float saved = table->value[i];
    table->value[i] = saved + 1e-3f;
    double plus = objective();
    table->value[i] = saved - 1e-3f;
    double minus = objective();
    table->value[i] = saved;
    double numeric = (plus - minus) / 2e-3;
    EXPECT_NEAR(analytic[i], numeric, 2e-3 + 2e-2 * std::fabs(numeric))
        << "embeddings[" << i << "]";
    if (i / 3 == 1) {
      EXPECT_EQ(analytic[i], 0.f);  // row 1 is never looked up
    }
  }
}

TEST(EmbeddingLayer, BadIndexIsAClearError) {
  auto m = model_from_yaml(
      "m: {input: [1], layers: [{type: embedding, input_dim: 10, output_dim: 2, name: label}]}",
      "m");
  for (float bad : {10.f, -1.f, 2.5f}) {
    Tensor x = indices({1, bad}, 2);
    try {
      m->forward({}, {&x});
      ADD_FAILURE() << "index " << bad << " accepted";
    } catch (const loom::Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find("label"), std::string::npos) << msg;
      EXPECT_NE(msg.find("[0, 10)"), std::string::npos) << msg;
      EXPECT_NE(msg.find("input_dim"), std::string::npos) << msg;
    }
  }
}
