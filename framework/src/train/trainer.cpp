// The Trainer: parameter groups (optimizer, schedule, slots, clipping), EMA, tracked state and
// checkpoints.
#include <cmath>
#include <set>

#include "core/distributed.hpp"
#include "loom/create.hpp"
#include "loom/optimizer.hpp"
#include "loom/training.hpp"
#include "output/safetensors.hpp"
#include "train/schedule.hpp"

namespace loom {

GradientReducer::~GradientReducer() = default;

GradientReducer& StageContext::reducer() { return distributed::reducer(); }

std::vector<std::string> StageContext::freeze() const {
  if (!params().given("freeze")) return {};
  return params().strings("freeze");
}

struct Trainer::Group {
  std::string name;
  std::vector<ParamPtr> params;
  std::unique_ptr<Optimizer> optimizer;
  std::vector<std::string> slot_names;
  std::vector<std::vector<Tensor>> slots;
  std::unique_ptr<Schedule> schedule;
  double clip_norm = 0, clip_value = 0;
  int64_t updates = 0;
  // EMA: of the parameters and of the statistics given to add_ema, in `averaged`.
  double ema_decay = 0;
  std::vector<ParamPtr> averaged;
  std::vector<Tensor> shadow;
  bool shadow_ready = false;
};

struct Trainer::Impl {
  std::vector<std::unique_ptr<Group>> groups;
  std::vector<std::function<void(const std::string&)>> hooks;
  std::vector<std::pair<std::string, std::vector<Tensor*>>> tensors;
  std::vector<std::pair<std::string, int64_t*>> values;
  std::vector<ParamPtr> weights;
  bool ema_swapped = false;

  Group& group(const std::string& name) {
    for (auto& g : groups)
      if (g->name == name) return *g;
    std::string known;
    for (auto& g : groups) known += (known.empty() ? "" : ", ") + g->name;
    throw Error("no parameter group '" + name + "' (groups: " + known + ")");
  }
};

Trainer::Trainer(StageContext& ctx) : ctx_(ctx), impl_(std::make_unique<Impl>()) {}
Trainer::~Trainer() = default;

Trainer::GroupSettings Trainer::stage_settings() const {
  const Params& p = ctx_.params();
  GroupSettings g;
  g.optimizer = p.child("optimizer");
  g.has_schedule = p.given("lr_schedule");
  if (g.has_schedule) g.lr_schedule = p.child("lr_schedule");
  if (p.has("clip_norm")) g.clip_norm = p.f("clip_norm");
  if (p.has("clip_value")) g.clip_value = p.f("clip_value");
  return g;
}

void Trainer::add_group(const std::string& name, const std::vector<ParamPtr>& params,
                        const GroupSettings& settings) {
  if (has_group(name)) throw Error("parameter group '" + name + "' declared twice");
  auto g = std::make_unique<Group>();
  g->name = name;
  std::set<Param*> seen;
  for (auto& p : params)
    if (seen.insert(p.get()).second) g->params.push_back(p);
  g->optimizer = create_from<Optimizer>(ctx_.registry(), settings.optimizer);
  g->schedule = std::make_unique<Schedule>(g->optimizer->learning_rate(),
                                           settings.has_schedule ? settings.lr_schedule : Params());
  g->clip_norm = settings.clip_norm;
  g->clip_value = settings.clip_value;
  g->slot_names = g->optimizer->slot_names();
  g->slots.resize(g->params.size());
  for (size_t i = 0; i < g->params.size(); ++i)
    for (size_t k = 0; k < g->slot_names.size(); ++k)
      g->slots[i].emplace_back(g->params[i]->value.shape());
  impl_->groups.push_back(std::move(g));
}

bool Trainer::has_group(const std::string& name) const {
  for (auto& g : impl_->groups)
    if (g->name == name) return true;
  return false;
}

std::vector<std::string> Trainer::groups() const {
  std::vector<std::string> out;
  for (auto& g : impl_->groups) out.push_back(g->name);
  return out;
}

const std::vector<ParamPtr>& Trainer::params(const std::string& group) const {
  return impl_->group(group).params;
}

void Trainer::zero_grad(const std::string& group) {
  for (auto& p : impl_->group(group).params) {
    if (p->grad.size() != p->value.size()) p->grad.resize(p->value.shape());
    p->grad.zero();
  }
}

void Trainer::step(const std::string& group) {
  Group& g = impl_->group(group);
  ctx_.reducer().reduce_gradients(g.params);
  if (g.clip_value > 0) {
    float c = float(g.clip_value);
    for (auto& q : g.params)
      for (int64_t i = 0; i < q->grad.size(); ++i)
        q->grad[i] = std::min(c, std::max(-c, q->grad[i]));
  }
  if (g.clip_norm > 0) {
    double sq = 0;
    for (auto& q : g.params)
      for (int64_t i = 0; i < q->grad.size(); ++i) sq += double(q->grad[i]) * q->grad[i];
    double norm = std::sqrt(sq);
    if (norm > g.clip_norm) {
      float s = float(g.clip_norm / norm);
      for (auto& q : g.params)
        for (int64_t i = 0; i < q->grad.size(); ++i) q->grad[i] *= s;
    }
  }
  float lr = float(g.schedule->at(g.updates));
  ++g.updates;
  for (size_t i = 0; i < g.params.size(); ++i)
    g.optimizer->update(*g.params[i], g.slots[i], lr, g.updates);
  if (g.ema_decay > 0) {
    if (!g.shadow_ready) {
      for (size_t i = 0; i < g.averaged.size(); ++i) g.shadow[i].copy_from(g.averaged[i]->value);
      g.shadow_ready = true;
    } else {
      float d = float(g.ema_decay), e = 1.f - d;
      for (size_t i = 0; i < g.averaged.size(); ++i) {
        float* s = g.shadow[i].data();
        const float* v = g.averaged[i]->value.data();
        for (int64_t k = 0; k < g.shadow[i].size(); ++k) s[k] = d * s[k] + e * v[k];
      }
    }
  }
  for (auto& h : impl_->hooks) h(group);
}

void Trainer::on_update(std::function<void(const std::string&)> hook) {
  impl_->hooks.push_back(std::move(hook));
}

int64_t Trainer::updates(const std::string& group) const { return impl_->group(group).updates; }

double Trainer::lr(const std::string& group) const {
  Group& g = impl_->group(group);
  return g.schedule->at(g.updates > 0 ? g.updates - 1 : 0);
}

void Trainer::add_ema(const std::string& group, double decay,
                      const std::vector<ParamPtr>& statistics) {
  Group& g = impl_->group(group);
  if (!(decay > 0 && decay < 1)) throw Error("ema: the decay must be in (0, 1)");
  g.ema_decay = decay;
  g.averaged = g.params;
  std::set<Param*> seen;
  for (auto& p : g.params) seen.insert(p.get());
  for (auto& p : statistics)
    if (!p->trainable && seen.insert(p.get()).second) g.averaged.push_back(p);
  g.shadow.clear();
  for (auto& p : g.averaged) g.shadow.emplace_back(p->value.shape());
}

bool Trainer::has_ema() const {
  for (auto& g : impl_->groups)
    if (g->ema_decay > 0) return true;
  return false;
}

void Trainer::swap_ema() {
  for (auto& g : impl_->groups) {
    if (g->ema_decay <= 0 || !g->shadow_ready) continue;
    for (size_t i = 0; i < g->averaged.size(); ++i) {
      float* a = g->averaged[i]->value.data();
      float* b = g->shadow[i].data();
      for (int64_t k = 0; k < g->shadow[i].size(); ++k) std::swap(a[k], b[k]);
    }
  }
  impl_->ema_swapped = !impl_->ema_swapped;
}

void Trainer::keep_averages() {
  for (auto& g : impl_->groups) {
    if (g->ema_decay <= 0 || !g->shadow_ready) continue;
    for (size_t i = 0; i < g->averaged.size(); ++i) g->averaged[i]->average = g->shadow[i].clone();
  }
}

void Trainer::track(const std::string& name, std::vector<Tensor*> tensors) {
  impl_->tensors.push_back({name, std::move(tensors)});
}

void Trainer::track(const std::string& name, int64_t* value) {
  impl_->values.push_back({name, value});
}

void Trainer::add_weights(const std::vector<ParamPtr>& params) {
  std::set<Param*> seen;
  for (auto& p : impl_->weights) seen.insert(p.get());
  for (auto& p : params)
    if (seen.insert(p.get()).second) impl_->weights.push_back(p);
}

void Trainer::save(const std::string& path,
                   const std::vector<std::pair<std::string, std::string>>& metadata) {
  if (impl_->ema_swapped)
    throw Error("internal: checkpoint written while EMA weights are swapped in");
  std::vector<std::pair<std::string, const Tensor*>> t;
  for (auto& q : impl_->weights) t.push_back({q->name, &q->value});
  std::map<std::string, std::string> meta(metadata.begin(), metadata.end());
  meta["format"] = "loom-2";
  meta["step"] = std::to_string(step_);
  for (auto& g : impl_->groups) {
    for (size_t i = 0; i < g->params.size(); ++i)
      for (size_t k = 0; k < g->slot_names.size(); ++k)
        t.push_back({"optimizer." + (impl_->groups.size() > 1 ? g->name + "." : std::string()) +
                         g->slot_names[k] + "." + g->params[i]->name,
                     &g->slots[i][k]});
    meta["updates." + g->name] = std::to_string(g->updates);
    if (g->ema_decay > 0 && g->shadow_ready) {
      for (size_t i = 0; i < g->averaged.size(); ++i)
        t.push_back({"ema." + g->averaged[i]->name, &g->shadow[i]});
    }
  }
  for (auto& [name, list] : impl_->tensors)
    for (size_t i = 0; i < list.size(); ++i) t.push_back({name + "." + std::to_string(i), list[i]});
  for (auto& [name, v] : impl_->values) meta["state." + name] = std::to_string(*v);
  save_safetensors(path, t, meta);
}

namespace {

// Copies a checkpoint tensor into a live one, or says which tensor no longer fits and why.
void restore(const std::string& path, const std::string& name, const Tensor& from, Tensor& to) {
  if (from.shape() != to.shape())
    throw Error(path + ": tensor '" + name + "' has shape " + to_string(from.shape()) +
                " but the pipeline's model needs " + to_string(to.shape()) +
                " (the architecture changed since this checkpoint was written; start a new run "
                "folder, or --overwrite this one)");
  to.copy_from(from);
}

int64_t to_int(const std::string& path, const std::map<std::string, std::string>& meta,
               const std::string& key) {
  auto it = meta.find(key);
  if (it == meta.end()) throw Error(path + ": the checkpoint has no '" + key + "' entry");
  try {
    size_t pos = 0;
    long long v = std::stoll(it->second, &pos);
    if (pos != it->second.size()) throw 0;
    return v;
  } catch (...) {
    throw Error(path + ": the checkpoint's '" + key + "' entry is not an integer");
  }
}

}  // namespace

std::map<std::string, std::string> Trainer::load(const std::string& path, bool with_state) {
  TensorFile f = load_safetensors(path);
  auto need = [&](const std::string& name) -> const Tensor& {
    auto it = f.tensors.find(name);
    if (it == f.tensors.end()) throw Error(path + ": has no tensor '" + name + "'");
    return it->second;
  };
  // Check every shape before changing anything, so a failed load leaves the model as it was.
  for (auto& q : impl_->weights) {
    const Tensor& src = need(q->name);
    if (src.shape() != q->value.shape()) restore(path, q->name, src, q->value);
  }
  for (auto& q : impl_->weights) q->value.copy_from(need(q->name));
  if (!with_state) return f.metadata;
  bool legacy = f.metadata["format"] != "loom-2";
  for (auto& g : impl_->groups) {
    for (size_t i = 0; i < g->params.size(); ++i)
      for (size_t k = 0; k < g->slot_names.size(); ++k) {
        std::string prefix = impl_->groups.size() > 1 ? g->name + "." : std::string();
        std::string name = "optimizer." + prefix + g->slot_names[k] + "." + g->params[i]->name;
        auto it = f.tensors.find(name);
        if (it == f.tensors.end())
          throw Error(path + ": has no optimizer state '" + name +
                      "' (written with another optimizer?); --resume needs it to continue the "
                      "same run");
        restore(path, name, it->second, g->slots[i][k]);
      }
    g->updates =
        legacy ? to_int(path, f.metadata, "step") : to_int(path, f.metadata, "updates." + g->name);
    if (g->ema_decay > 0) {
      g->shadow_ready = f.tensors.count("ema." + g->params[0]->name) > 0;
      if (g->shadow_ready)
        for (size_t i = 0; i < g->averaged.size(); ++i) {
          std::string name = "ema." + g->averaged[i]->name;
          // Checkpoints of before the statistics were averaged hold the parameters' averages
          // only: a statistic's average then starts from its current value.
          if (!g->averaged[i]->trainable && !f.tensors.count(name))
            g->shadow[i].copy_from(g->averaged[i]->value);
          else
            restore(path, name, need(name), g->shadow[i]);
        }
    }
  }
  for (auto& [name, list] : impl_->tensors)
    for (size_t i = 0; i < list.size(); ++i) {
      std::string n = name + "." + std::to_string(i);
      restore(path, n, need(n), *list[i]);
    }
  for (auto& [name, v] : impl_->values) *v = to_int(path, f.metadata, "state." + name);
  step_ = to_int(path, f.metadata, "step");
  return f.metadata;
}

FreezeGuard::FreezeGuard(StageContext& ctx, Model& model, std::vector<std::string> extra)
    : model_(model) {
  std::vector<std::string> names = ctx.freeze();
  names.insert(names.end(), extra.begin(), extra.end());
  auto unmatched = model.set_frozen(names);
  for (auto& n : unmatched) {
    bool listed = false;
    for (auto& s : ctx.freeze()) listed |= s == n;
    if (!listed) continue;  // extra names of the recipe may concern another model
    std::vector<std::string> known;
    for (auto& node : model.nodes()) known.push_back(node.name);
    model.set_frozen({});
    ctx.params().fail("freeze", "'" + n + "' names no layer or model inside model '" +
                                    model.name() + "'" + suggestion(n, known));
  }
}

FreezeGuard::~FreezeGuard() { model_.set_frozen({}); }

}  // namespace loom
