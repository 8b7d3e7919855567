// The supervised recipe: trains a classifier (logits or probabilities over K classes) on
// labelled data with a classification loss, reports accuracy next to the loss for every split,
// and evaluates a held-out test split at the end.
#include <cmath>
#include <nlohmann/json.hpp>

#include "loom/loss.hpp"
#include "loom/recipe.hpp"

namespace loom::recipes {

class SupervisedRecipe : public Recipe {
 public:
  explicit SupervisedRecipe(const Params&) {}
  void run(StageContext& ctx) override {
    const Params& p = ctx.params();
    auto model = ctx.model(p.s("model"));
    auto loss = make_loss(ctx, p.child("loss"));
    std::string loss_name = p.entry_type("loss");
    ExtraTerms extra(ctx, *model);
    TrainHooks hooks;
    hooks.train = ctx.data(p.s("data"), "train");
    if (!hooks.train.data->has_labels()) p.fail("data", "'" + hooks.train.name + "' has no labels");
    hooks.valid = p.given("valid_data")
                      ? ctx.data(p.s("valid_data"), "valid")
                      : (p.s("data").find('.') == std::string::npos ? ctx.data(p.s("data"), "valid")
                                                                    : DataSplit{});
    int out = model->output_node();
    hooks.step = [&, out](const Batch& b, const RunContext& rc) {
      Tensor in = as_model_input(b.x, *model);
      model->forward(rc, {&in});
      const Tensor& logits = model->output();
      double l =
          loss->compute(logits, &b.labels, rc.training ? &model->seed_grad(out) : nullptr, 1.f);
      LossTerms terms{{"loss", 0.0}, {loss_name, l}};
      double total = l + extra.add_terms(*model, rc.training, terms) + model->penalty();
      terms[0].second = total;
      terms[1] = {"accuracy", accuracy(logits, b.labels)};
      if (rc.training) model->backward(rc);
      return terms;
    };
    fit(ctx, *model, hooks);
    if (ctx.bench()) return;  // a benchmark times the training steps alone
    if (p.given("test_data")) {
      DataSplit test = ctx.data(p.s("test_data"), "test");
      LossTerms t = evaluate(ctx, test, 256, hooks.step);
      nlohmann::ordered_json j;
      j["epoch"] = 0;
      j["step"] = 0;
      j["split"] = "test";
      for (size_t i = 0; i < t.size(); ++i) j[i == 0 ? "loss" : t[i].first] = t[i].second;
      ctx.metric(j.dump());
      char line[160];
      std::snprintf(line, sizeof line, "%s: test loss %.4f, accuracy %.4f on %lld images of %s",
                    ctx.name().c_str(), t[0].second, t.size() > 1 ? t[1].second : 0.0,
                    (long long)test.count, test.name.c_str());
      ctx.log(line);
    }
  }

  void check(StageCheck& c) const override {
    for (const char* key : {"data", "valid_data", "test_data"}) {
      check_model_takes_data(c, "model", key);
      DataInfo d = c.data(key);
      if (d.num_classes == 0)
        c.fail(key, "dataset '" + d.name +
                        "' has no labels; a classifier trains and is scored on labelled data "
                        "(give its source a labels file)");
    }
    auto m = c.model("model");
    DataInfo d = c.data("data");
    auto loss = c.loss("loss");
    std::string name = c.params().entry_type("loss");
    if (m && m->num_outputs() > 0 && d.num_classes > 0) {
      int64_t k = numel(m->output_shape(0));
      if ((!loss || loss->takes_class_labels()) && k < d.num_classes)
        c.fail("model", "model '" + m->name() + "' outputs " + std::to_string(k) +
                            " scores per sample but the labels of dataset '" + d.name + "' name " +
                            std::to_string(d.num_classes) + " classes (0 to " +
                            std::to_string(d.num_classes - 1) + "); give its last layer " +
                            std::to_string(d.num_classes) + " units");
    }
    if (loss && (!loss->needs_target() || !loss->takes_class_labels()) && m &&
        m->num_outputs() > 0 && numel(m->output_shape(0)) != 1)
      c.fail("loss", "'" + name +
                         "' compares values shaped like the output, but a classifier's targets "
                         "are class labels; use softmax_crossentropy (from logits), "
                         "sparse_categorical_crossentropy or categorical_crossentropy (from "
                         "probabilities)");
  }

  // Fraction of rows whose arg-max equals the label (labels (N,) as class indices, or (N, K)).
  static double accuracy(const Tensor& scores, const Tensor& labels) {
    int64_t n = scores.dim(0), k = scores.size() / n;
    int64_t hits = 0;
    for (int64_t i = 0; i < n; ++i) {
      const float* row = scores.data() + i * k;
      int64_t best = std::max_element(row, row + k) - row;
      int64_t truth;
      if (labels.size() == n) {
        truth = int64_t(labels[i]);
      } else {
        const float* l = labels.data() + i * k;
        truth = std::max_element(l, l + k) - l;
      }
      hits += best == truth;
    }
    return double(hits) / double(n);
  }
};

void register_supervised(Registry& r) {
  Spec s(
      "Trains a classifier on labelled data: loss(model(x), label), with accuracy reported for "
      "every split; `test_data` is evaluated once at the end.");
  s.add("model", Type::String).required().doc("the classifier (outputs one score per class)");
  s.add("data", Type::String)
      .required()
      .doc("labelled dataset (its train/valid splits) or dataset.split");
  s.add("valid_data", Type::String).doc("validation data (default: the dataset's 'valid' split)");
  s.add("test_data", Type::String).doc("held-out data evaluated after training");
  s.add("loss", Type::Any).def("softmax_crossentropy").entry(Kind::Loss).doc("classification loss");
  s.add("terms", Type::Any)
      .entry_list(Kind::Loss, {"on", "weight"})
      .doc("extra penalty terms on layers");
  add_training_params(s);
  r.add<Recipe>("supervised", s,
                [](const Params& p) { return std::make_unique<SupervisedRecipe>(p); });
}

}  // namespace loom::recipes
