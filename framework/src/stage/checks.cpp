// Checks that several recipes share, for their check() before anything runs.
#include <cmath>
#include <cstdio>

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

namespace {

std::string g(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%g", v);
  return b;
}

}  // namespace

void check_output_range(StageCheck& c, const std::string& model_key, const std::string& data_key,
                        const std::string& what, bool exact) {
  auto m = c.model(model_key);
  DataInfo d = c.data(data_key);
  if (!m || m->num_outputs() == 0 || !std::isfinite(d.range.lo) || !std::isfinite(d.range.hi))
    return;
  auto [out, node] = m->output_range({});
  if (!out.bounded()) return;
  std::string by;
  if (node >= 0) by = " (set by its layer '" + m->nodes()[size_t(node)].name + "')";
  const double slack = 1e-6 * (d.range.hi - d.range.lo);
  std::string scaled = "dataset '" + d.name + "' scaled to " + d.range.str();
  std::string ends(1, '[');
  ends += std::isfinite(out.lo) ? g(out.lo) : std::string("LOW");
  ends += ", ";
  ends += std::isfinite(out.hi) ? g(out.hi) : std::string("HIGH");
  ends += ']';
  if (d.range.lo < out.lo - slack || d.range.hi > out.hi + slack) {
    double reach = d.range.lo < out.lo - slack ? d.range.lo : d.range.hi;
    c.fail(model_key, "model '" + m->name() + "' outputs values in " + out.str() + by + " but " +
                          what + ", " + scaled + ", reach " + g(reach) +
                          "; scale the data to the output's range (scale: " + ends +
                          ") or change the last activation");
    return;
  }
  double width = d.range.hi - d.range.lo;
  if (exact && std::isfinite(out.lo) && std::isfinite(out.hi) &&
      (out.lo < d.range.lo - 0.25 * width || out.hi > d.range.hi + 0.25 * width))
    c.fail(model_key, "model '" + m->name() + "' makes values in " + out.str() + by + " but " +
                          what + ", " + scaled +
                          ", lie in a narrower range: the discriminator can tell them apart by "
                          "range alone; scale the data to the output's range (scale: " +
                          ends + ")");
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
