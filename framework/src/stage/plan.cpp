// `loom plan`: what each stage will cost, before anything runs: parameters, FLOPs per image
// (from each layer's flops()), activation values per image, the data's size from the files'
// headers, and the optimizer's slots per parameter. The time per epoch is measured by the tool
// (a few timed training steps, tools/loom/plan.cpp).
#include "stage/runtime.hpp"

namespace loom {

std::vector<StagePlan> Runtime::plan() {
  std::vector<StagePlan> out;
  for (auto& sp : stages_) {
    const StageDecl& s = *sp;
    StagePlan p;
    p.name = s.name;
    p.recipe = s.recipe;
    const Spec& spec = registry().get(Kind::Recipe, s.recipe).spec;
    p.trains = spec.find("batch_size") && spec.find("epochs");
    if (p.trains) {
      p.batch = s.params.i("batch_size");
      p.epochs = opt_.epochs > 0 ? opt_.epochs : s.params.i("epochs");
      std::string data = s.params.has("data") ? s.params.s("data") : "";
      if (!data.empty()) {
        p.train_images = data_info(data).count;
        std::string valid = s.params.has("valid_data") && !s.params.s("valid_data").empty()
                                ? s.params.s("valid_data")
                            : data.find('.') == std::string::npos ? data + ".valid"
                                                                  : "";
        if (!valid.empty()) {
          std::string ds = valid.substr(0, valid.find('.'));
          bool has_split = valid.find('.') == std::string::npos ||
                           (datasets_.count(ds) &&
                            datasets_.at(ds)->splits.count(valid.substr(valid.find('.') + 1)));
          p.valid_images = has_split ? data_info(valid).count : 0;
        }
      }
      // Adam, AdamW and Nadam keep two moments per parameter; SGD with momentum and RMSprop one.
      std::string opt = s.params.has("optimizer") ? s.params.entry_type("optimizer") : "";
      p.optimizer_slots = opt == "sgd" || opt == "rmsprop" ? 1 : 2;
    }
    for (auto& name : s.models) {
      auto m = models_->get(name);
      StagePlan::ModelPlan mp;
      mp.name = name;
      mp.params = m->param_count();
      mp.trainable = m->param_count(true);
      for (auto& nd : m->nodes()) {
        mp.values += numel(nd.shape);
        if (!nd.layer) continue;
        std::vector<Shape> in;
        for (int j : nd.inputs) in.push_back(m->nodes()[size_t(j)].shape);
        mp.forward_flops += nd.layer->flops(in, nd.shape);
      }
      p.models.push_back(mp);
    }
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace loom
