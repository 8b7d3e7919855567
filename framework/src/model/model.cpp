#include "loom/model.hpp"

#include <atomic>
#include <cstdio>
#include <set>
#include <sstream>

#include "loom/training.hpp"

namespace loom {

namespace {
uint64_t next_forward_serial() {
  static std::atomic<uint64_t> serial{0};
  return ++serial;
}
std::atomic<bool> blocked_default{true};
}  // namespace

void Model::set_blocked_layouts_default(bool on) { blocked_default = on; }

void Model::set_blocked_layouts(bool on) {
  layouts_on_ = on;
  planned_ = false;
}

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
  layouts_on_ = blocked_default;
  consumers_.resize(n);
  complete_at_.resize(n);
  // Each parameter at its first use: the order of params(), and the node whose backward pass
  // completes its gradient (a parameter used by several nodes, tied weights, is complete after
  // the lowest of them). On several ranks the gradients are handed over in this order, so it
  // must come from the model's structure, never from where parameters sit in memory.
  std::set<Param*> seen;
  for (size_t i = 0; i < n; ++i) {
    for (auto& p : nodes_[i].params)
      if (seen.insert(p.get()).second) {
        params_.push_back(p);
        complete_at_[i].push_back(p.get());
      }
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

// Groups of nodes that share a layout: a Follows layer's output with its (C, H, W) inputs. A group
// is kept blocked when each of its maps has a multiple of kChannelBlock channels, is neither a
// model input nor output, and every layer that writes or reads it takes the layout.
void Model::plan_layouts() {
  size_t n = nodes_.size();
  planned_ = true;
  blocked_.assign(n, 0);
  plain_.resize(n);
  plain_valid_.assign(n, 0);
  seeds_.resize(n);
  seeded_.assign(n, 0);
  if (!layouts_on_) return;
  std::vector<LayoutRole> role(n, LayoutRole::Plain);
  for (size_t i = 0; i < n; ++i)
    if (nodes_[i].layer) role[i] = nodes_[i].layer->layout_role();
  std::vector<size_t> parent(n);
  for (size_t i = 0; i < n; ++i) parent[i] = i;
  auto root = [&](size_t i) {
    while (parent[i] != i) i = parent[i] = parent[parent[i]];
    return i;
  };
  for (size_t i = 0; i < n; ++i)
    if (role[i] == LayoutRole::Follows)
      for (int j : nodes_[i].inputs)
        if (nodes_[size_t(j)].shape.size() == 3) parent[root(size_t(j))] = root(i);
  std::vector<char> edge(n, 0);
  for (int i : inputs_) edge[size_t(i)] = 1;
  for (int i : outputs_) edge[size_t(i)] = 1;
  std::vector<char> ok(n, 1);
  for (size_t i = 0; i < n; ++i) {
    const Shape& s = nodes_[i].shape;
    bool fine = role[i] != LayoutRole::Plain && !edge[i] && s.size() == 3 && s[0] > 0 &&
                s[0] % kChannelBlock == 0;
    for (int k : consumers_[i]) fine = fine && role[size_t(k)] != LayoutRole::Plain;
    if (!fine) ok[root(i)] = 0;
  }
  for (size_t i = 0; i < n; ++i) blocked_[i] = nodes_[i].layer && ok[root(i)];
}

const Tensor& Model::value(int node) const {
  if (!blocked(node)) return values_[size_t(node)];
  Tensor& p = plain_[size_t(node)];
  if (!plain_valid_[size_t(node)]) {
    const Tensor& v = values_[size_t(node)];
    p.resize(v.shape());
    to_plain(v.data(), p.data(), v.dim(0), v.dim(1), v.dim(2) * v.dim(3));
    plain_valid_[size_t(node)] = 1;
  }
  return p;
}

void Model::forward(const RunContext& ctx, const std::vector<const Tensor*>& inputs) {
  if (!planned_) plan_layouts();
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
    seeded_[i] = 0;
    plain_valid_[i] = 0;
    ModelNode& node = nodes_[i];
    if (!node.layer) continue;
    in.clear();
    for (int j : node.inputs) in.push_back(&values_[j]);
    Shape s = node.shape;
    s.insert(s.begin(), batch);
    values_[i].resize(s);
    values_[i].set_blocked(blocked_[i]);
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

Tensor& Model::zeroed_grad(int node) {
  if (!has_grad_[node]) {
    grads_[node].resize(values_[node].shape());
    grads_[node].set_blocked(values_[node].blocked());
    grads_[node].zero();
    has_grad_[node] = 1;
  }
  return grads_[node];
}

Tensor& Model::seed_grad(int node) {
  if (!blocked(node)) return zeroed_grad(node);
  // A blocked node takes a plain seed, converted at backward.
  Tensor& s = seeds_[size_t(node)];
  if (!seeded_[size_t(node)]) {
    s.resize(values_[size_t(node)].shape());
    s.zero();
    seeded_[size_t(node)] = 1;
  }
  return s;
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
  // Plain seeds of blocked nodes, converted into the gradient (through the node's scratch buffer,
  // free until its consumers' backward passes).
  for (size_t i = 0; i < n; ++i)
    if (seeded_[i]) {
      Tensor& g = zeroed_grad(int(i));
      Tensor& b = scratch_[i];
      b.resize(g.shape());
      to_blocked(seeds_[i].data(), b.data(), g.dim(0), g.dim(1), g.dim(2) * g.dim(3));
      float* gd = g.data();
      for (int64_t e = 0; e < g.size(); ++e) gd[e] += b[e];
      seeded_[i] = 0;
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
        grads_[j].set_blocked(values_[j].blocked());
        din.push_back(&grads_[j]);
        has_grad_[j] = 1;
      } else {
        if (!has_grad_[j]) zeroed_grad(j);
        // accumulate through a scratch buffer
        Tensor& s = scratch_[j];
        s.resize(values_[j].shape());
        s.set_blocked(values_[j].blocked());
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
