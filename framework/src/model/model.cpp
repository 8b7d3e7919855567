#include "loom/model.hpp"

#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>

#include "loom/training.hpp"

namespace loom {

namespace {
uint64_t next_forward_serial() {
  static std::atomic<uint64_t> serial{0};
  return ++serial;
}
}  // namespace

Model::Model(std::string name, std::vector<ModelNode> nodes, std::vector<int> inputs,
             std::vector<int> outputs)
    : name_(std::move(name)), nodes_(std::move(nodes)), inputs_(inputs), outputs_(outputs) {
  size_t n = nodes_.size();
  values_.resize(n);
  grads_.resize(n);
  scratch_.resize(n);
  has_grad_.assign(n, 0);
  trainable_below_.assign(n, 0);
  frozen_.assign(n, 0);
  serials_.assign(n, 0);
  for (size_t i = 0; i < n; ++i) frozen_[i] = nodes_[i].frozen;
  consumers_.resize(n);
  std::set<Param*> seen;
  for (size_t i = 0; i < n; ++i) {
    for (auto& p : nodes_[i].params)
      if (seen.insert(p.get()).second) params_.push_back(p);
    for (int j : nodes_[i].inputs) consumers_[j].push_back(int(i));
  }
}

Model::~Model() = default;

std::pair<ValueRange, int> Model::output_range(const std::vector<ValueRange>& inputs,
                                               size_t i) const {
  std::vector<ValueRange> r(nodes_.size());
  std::vector<int> bounded_by(nodes_.size(), -1);
  for (size_t k = 0; k < inputs_.size() && k < inputs.size(); ++k) r[inputs_[k]] = inputs[k];
  for (size_t n = 0; n < nodes_.size(); ++n) {
    const ModelNode& nd = nodes_[n];
    if (!nd.layer) continue;
    std::vector<ValueRange> in;
    for (int j : nd.inputs) in.push_back(r[j]);
    r[n] = nd.layer->range(in);
    // The node that set the bound: this one, unless it passed an input's range through.
    bounded_by[n] = int(n);
    for (int j : nd.inputs)
      if (r[j].lo == r[n].lo && r[j].hi == r[n].hi) bounded_by[n] = bounded_by[j];
    if (!r[n].bounded()) bounded_by[n] = -1;
  }
  int out = outputs_[i];
  return {r[out], bounded_by[out]};
}

int Model::find(const std::string& name) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].name == name) return int(i);
  int found = -1;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    const std::string& q = nodes_[i].name;
    auto dot = q.rfind('.');
    std::string local = dot == std::string::npos ? q : q.substr(dot + 1);
    bool suffix = q.size() > name.size() &&
                  q.compare(q.size() - name.size(), name.size(), name) == 0 &&
                  q[q.size() - name.size() - 1] == '.';
    if (local == name || suffix) {
      if (found >= 0) return -1;  // ambiguous
      found = int(i);
    }
  }
  return found;
}

std::vector<ParamPtr> Model::trainable_params() const {
  std::set<Param*> seen;
  std::vector<ParamPtr> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    if (frozen_[i]) continue;
    for (auto& p : nodes_[i].params)
      if (p->trainable && seen.insert(p.get()).second) out.push_back(p);
  }
  // First-use order, as params().
  std::vector<ParamPtr> ordered;
  for (auto& p : params_)
    if (seen.count(p.get())) ordered.push_back(p);
  return ordered;
}

int64_t Model::param_count(bool trainable_only) const {
  int64_t n = 0;
  for (auto& p : trainable_only ? trainable_params() : params_) n += p->value.size();
  return n;
}

std::vector<std::string> Model::set_frozen(const std::vector<std::string>& names) {
  std::vector<std::string> unmatched;
  for (size_t i = 0; i < nodes_.size(); ++i) frozen_[i] = nodes_[i].frozen;
  for (auto& n : names) {
    bool matched = false;
    for (size_t i = 0; i < nodes_.size(); ++i) {
      const std::string& q = nodes_[i].name;
      if (!nodes_[i].layer) continue;
      // "encoder" matches encoder.*; "encoder.dense_1" matches itself; a local layer name
      // ("dense_1") matches any node whose last component it is.
      bool hit = q == n || q.rfind(n + ".", 0) == 0 ||
                 (q.size() > n.size() && q.compare(q.size() - n.size(), n.size(), n) == 0 &&
                  q[q.size() - n.size() - 1] == '.');
      if (hit) {
        frozen_[i] = 1;
        matched = true;
      }
    }
    if (!matched) unmatched.push_back(n);
  }
  return unmatched;
}

void Model::forward(const RunContext& ctx, const std::vector<const Tensor*>& inputs) {
  if (inputs.size() != inputs_.size())
    throw Error("model '" + name_ + "' takes " + std::to_string(inputs_.size()) +
                " input(s), got " + std::to_string(inputs.size()));
  int64_t batch = inputs.empty() ? 1 : inputs[0]->dim(0);
  for (size_t i = 0; i < inputs_.size(); ++i) {
    const Tensor& x = *inputs[i];
    Shape want = nodes_[inputs_[i]].shape;
    want.insert(want.begin(), x.dim(0));
    if (x.shape() != want)
      throw Error("model '" + name_ + "' input '" + nodes_[inputs_[i]].name + "' expects " +
                  to_string(want) + " (batch first), got " + to_string(x.shape()));
    values_[inputs_[i]] = x;
  }
  std::vector<const Tensor*> in;
  RunContext local = ctx;
  // One serial per call: a layer used at several nodes of this graph keeps what each use needs
  // (its own affair); one used by another call in between is refused at backward.
  uint64_t serial = next_forward_serial();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    has_grad_[i] = 0;
    ModelNode& node = nodes_[i];
    if (!node.layer) continue;
    in.clear();
    for (int j : node.inputs) in.push_back(&values_[j]);
    Shape s = node.shape;
    s.insert(s.begin(), batch);
    values_[i].resize(s);
    local.frozen = ctx.frozen || frozen_[i];
    try {
      node.layer->forward(local, in, values_[i]);
    } catch (...) {
      rethrow_located(node, "forward");
    }
    serials_[i] = serial;
    node.layer->set_forward_serial(serial);
  }
}

void Model::rethrow_located(const ModelNode& node, const char* pass) const {
  std::string where =
      "model '" + name_ + "', layer '" + node.name + "' (" + node.type + "), " + pass + ": ";
  try {
    throw;
  } catch (const std::bad_alloc&) {
    throw Error(where + "out of memory");
  } catch (const std::exception& e) {
    std::string what = e.what();
    if (what.rfind("model '", 0) == 0) throw;  // an inner model already said where
    throw Error(where + what);
  } catch (...) {
    throw Error(where + "failed (the layer threw something that is not an exception)");
  }
}

double Model::penalty() const {
  double p = 0;
  for (auto& n : nodes_)
    if (n.layer) p += n.layer->penalty();
  return p;
}

Tensor& Model::seed_grad(int node) {
  if (!has_grad_[node]) {
    grads_[node].resize(values_[node].shape());
    grads_[node].zero();
    has_grad_[node] = 1;
  }
  return grads_[node];
}

void Model::zero_grads() {
  for (auto& p : params_)
    if (p->grad.size() != p->value.size()) p->grad.resize(p->value.shape());
  for (auto& p : params_) p->grad.zero();
}

void Model::backward(const RunContext& ctx, bool input_grads) {
  size_t n = nodes_.size();
  // Which nodes need an input gradient: those with trainable parameters at or below them.
  for (size_t i = 0; i < n; ++i) {
    char t = 0;
    if (!nodes_[i].layer) {
      t = input_grads;
    } else {
      if (!frozen_[i] && !ctx.frozen)
        for (auto& p : nodes_[i].params) t |= p->trainable;
      for (int j : nodes_[i].inputs) t |= trainable_below_[j];
    }
    trainable_below_[i] = t;
  }
  if (ctx.ranks && complete_at_.size() != n) {
    // A parameter used by several nodes (tied weights) is complete after the lowest of them.
    std::map<Param*, size_t> last;
    for (size_t i = 0; i < n; ++i)
      for (auto& p : nodes_[i].params)
        if (!last.count(p.get())) last[p.get()] = i;
    complete_at_.assign(n, {});
    for (auto& [p, i] : last) complete_at_[i].push_back(p);
  }
  std::vector<const Tensor*> in;
  std::vector<Tensor*> din;
  std::vector<int> pending;
  RunContext local = ctx;
  for (size_t k = n; k-- > 0;) {
    ModelNode& node = nodes_[k];
    if (!node.layer || !has_grad_[k] || !trainable_below_[k]) continue;
    if (node.layer->forward_serial() != serials_[k])
      throw Error("layer '" + node.name + "' ran again (in another call or model) after model '" +
                  name_ +
                  "' used it and before its backward: run forward and backward per call, or "
                  "concatenate the batches into one call");
    local.frozen = ctx.frozen || frozen_[k];
    in.clear();
    din.clear();
    pending.clear();
    for (size_t a = 0; a < node.inputs.size(); ++a) {
      int j = node.inputs[a];
      in.push_back(&values_[j]);
      if (!trainable_below_[j]) {
        din.push_back(nullptr);
        continue;
      }
      bool repeated = false;
      for (size_t b = 0; b < a; ++b) repeated |= node.inputs[b] == j;
      if (!has_grad_[j] && !repeated) {
        grads_[j].resize(values_[j].shape());
        din.push_back(&grads_[j]);
        has_grad_[j] = 1;
      } else {
        if (!has_grad_[j]) seed_grad(j);
        // accumulate through a scratch buffer
        Tensor& s = scratch_[j];
        s.resize(values_[j].shape());
        din.push_back(&s);
        pending.push_back(int(a));
      }
    }
    try {
      node.layer->backward(local, in, values_[k], grads_[k], din);
    } catch (...) {
      rethrow_located(node, "backward");
    }
    // Data-parallel training: these gradients can travel while the layers below run backward.
    if (ctx.ranks && !local.frozen)
      for (Param* p : complete_at_[k])
        if (p->trainable) ctx.ranks->gradient_ready(*p);
    for (int a : pending) {
      Tensor& g = grads_[node.inputs[a]];
      const Tensor& s = *din[a];
      float* gd = g.data();
      const float* sd = s.data();
      for (int64_t e = 0; e < g.size(); ++e) gd[e] += sd[e];
    }
  }
}

std::string Model::summary() const {
  std::ostringstream o;
  char line[256];
  o << "Model: " << name_ << "\n";
  std::string rule(78, '=');
  std::string thin(78, '-');
  std::snprintf(line, sizeof line, "%-44s %-20s %12s\n", "Layer (type)", "Output Shape", "Param #");
  o << line << rule << "\n";
  std::set<Param*> counted;
  for (auto& n : nodes_) {
    int64_t count = 0;
    for (auto& p : n.params)
      if (counted.insert(p.get()).second) count += p->value.size();
    std::string label = n.name + " (" + n.type + ")";
    std::snprintf(line, sizeof line, "%-44s %-20s %12lld\n", label.c_str(),
                  to_string(n.shape).c_str(), (long long)count);
    o << line;
  }
  o << rule << "\n";
  int64_t total = param_count(false), trainable = param_count(true);
  o << "Total params: " << total << "\nTrainable params: " << trainable
    << "\nNon-trainable params: " << total - trainable << "\n";
  (void)thin;
  return o.str();
}

}  // namespace loom
