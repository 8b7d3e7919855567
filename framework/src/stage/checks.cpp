// Checks that several recipes share, for their check() before anything runs.
#include "loom/recipe.hpp"

namespace loom {

void check_model_takes_data(StageCheck& c, const std::string& model_key,
                            const std::string& data_key) {
  auto m = c.model(model_key);
  DataInfo d = c.data(data_key);
  if (!m || !d.known() || m->num_inputs() == 0) return;
  if (numel(d.sample_shape) != numel(m->input_shape(0)))
    c.fail(data_key, "model '" + m->name() + "' takes inputs of shape " +
                         to_string(m->input_shape(0)) + " but dataset '" + d.name +
                         "' has samples of shape " + to_string(d.sample_shape));
}

void check_conditional_classes(StageCheck& c) {
  const Params& p = c.params();
  if (!p.b("conditional")) return;
  DataInfo d = c.data("data");
  if (d.num_classes == 0)
    c.fail("data", "dataset '" + d.name +
                       "' has no labels, and a conditional model learns from the class of each "
                       "image (give its source a labels file)");
  else if (d.num_classes > p.i("num_classes"))
    c.fail("num_classes", std::to_string(p.i("num_classes")) +
                              " classes, but the labels of dataset '" + d.name + "' name " +
                              std::to_string(d.num_classes) + " (0 to " +
                              std::to_string(d.num_classes - 1) + ")");
}

}  // namespace loom
