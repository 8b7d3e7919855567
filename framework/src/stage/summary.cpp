// What `loom validate` and `loom graph` print: model summaries, the stages with their order and
// what each trains, and the Graphviz view.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "loom/augmenter.hpp"
#include "loom/create.hpp"
#include "stage/runtime.hpp"

namespace loom {

std::string Runtime::summary() {
  std::string s;
  for (auto& n : models_->names()) s += models_->get(n)->summary() + "\n";
  s += "Stages:\n";
  for (auto& st : stages_) {
    s += "  " + st->name + " (" + st->recipe + ")";
    if (!st->after.empty()) {
      s += " after";
      for (auto& a : st->after) s += " " + a;
    }
    if (!st->shares_with.empty()) {
      s += " (shares layers with";
      for (auto& a : st->shares_with) s += " " + a;
      s += ", so runs after it)";
    }
    s += "\n";
    if (st->params.has("epochs") && !st->models.empty()) s += trainable_summary(*st);
  }
  return s;
}

// What a training stage updates, after its `freeze:` list and the models' `trainable: false`.
std::string Runtime::trainable_summary(StageDecl& st) {
  std::vector<std::string> freeze;
  if (st.params.given("freeze")) freeze = st.params.strings("freeze");
  std::set<const Param*> seen, trained;
  int64_t total = 0, trainable = 0;
  std::string frozen_models;
  for (auto& name : st.models) {
    if (!models_->has(name)) continue;
    auto m = models_->get(name);
    m->set_frozen(freeze);
    for (auto& p : m->trainable_params()) trained.insert(p.get());
    m->set_frozen({});
    for (auto& p : m->params())
      if (p->trainable && seen.insert(p.get()).second) {
        total += p->value.size();
        if (trained.count(p.get())) trainable += p->value.size();
      }
  }
  std::string s = "    trains " + std::to_string(trainable) + " of " + std::to_string(total) +
                  " trainable parameters";
  if (trainable < total) s += " (" + std::to_string(total - trainable) + " frozen)";
  return s + "\n";
}

std::string Runtime::dot() {
  std::string s = "digraph \"" + file_.name +
                  "\" {\n  rankdir=LR;\n  node [shape=box, fontname=\"Helvetica\"];\n";
  for (auto& st : stages_) {
    s += "  \"stage:" + st->name + "\" [label=\"" + st->name + "\\n(" + st->recipe +
         ")\", style=rounded];\n";
    for (auto& a : st->after) s += "  \"stage:" + a + "\" -> \"stage:" + st->name + "\";\n";
  }
  for (auto& n : models_->names()) {
    auto m = models_->get(n);
    s += "  subgraph \"cluster_" + n + "\" {\n    label=\"model " + n + "\";\n";
    for (size_t i = 0; i < m->nodes().size(); ++i) {
      auto& node = m->nodes()[i];
      s += "    \"" + n + "/" + node.name + "\" [label=\"" + node.name + "\\n" + node.type + " " +
           to_string(node.shape) + "\"];\n";
      for (int j : node.inputs)
        s += "    \"" + n + "/" + m->nodes()[j].name + "\" -> \"" + n + "/" + node.name + "\";\n";
    }
    s += "  }\n";
  }
  return s + "}\n";
}

}  // namespace loom
