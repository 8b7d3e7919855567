// Which stages may run at the same time. Layers keep per-call state (their last forward's
// activations, oneDNN scratchpads, dropout masks) and weights; two stages that touch one layer
// — one training it while the other predicts with it, or both only predicting — would race on
// that state. So the rule is stricter than "neither writes what the other reads": stages run
// concurrently only when their models share no layer at all; otherwise the later one in the file
// waits for the earlier one, exactly as if it had said `after:`.
#include <functional>
#include <set>

#include "stage/runtime.hpp"

namespace loom {

void Runtime::order_sharing_stages() {
  std::map<std::string, StageDecl*> by;
  for (auto& s : stages_) by[s->name] = s.get();
  // The layers each stage's models use.
  std::vector<std::set<const Layer*>> layers(stages_.size());
  for (size_t i = 0; i < stages_.size(); ++i)
    for (auto& m : stages_[i]->models)
      for (auto& n : models_->get(m)->nodes())
        if (n.layer) layers[i].insert(n.layer.get());
  // Does a (transitively) wait for b?
  std::function<bool(const StageDecl*, const std::string&, std::set<std::string>&)> waits =
      [&](const StageDecl* a, const std::string& b, std::set<std::string>& seen) {
        for (auto& x : a->after) {
          if (x == b) return true;
          if (seen.insert(x).second && by.count(x) && waits(by[x], b, seen)) return true;
        }
        return false;
      };
  for (size_t j = 0; j < stages_.size(); ++j)
    for (size_t i = 0; i < j; ++i) {
      bool shared = false;
      for (const Layer* l : layers[i])
        if (layers[j].count(l)) {
          shared = true;
          break;
        }
      if (!shared) continue;
      std::set<std::string> s1, s2;
      if (waits(stages_[j].get(), stages_[i]->name, s1) ||
          waits(stages_[i].get(), stages_[j]->name, s2))
        continue;  // already ordered
      stages_[j]->after.push_back(stages_[i]->name);
      stages_[j]->shares_with.push_back(stages_[i]->name);
    }
}

}  // namespace loom
