// Data resolution: datasets loaded once on first use, `dataset.split` references, and datasets
// published by stages for later ones.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>

#include "loom/augmenter.hpp"
#include "loom/create.hpp"
#include "loom/io.hpp"
#include "stage/runtime.hpp"

namespace loom {

std::shared_ptr<const Dataset> Runtime::load_dataset(DatasetDecl& d) {
  std::lock_guard<std::mutex> lock(d.mutex);
  if (d.loaded) return d.loaded;
  if (!d.src) throw Error("dataset '" + d.name + "' is produced by a stage that has not run yet");
  auto data = std::make_shared<Dataset>(d.src->load());
  if (!d.scale.empty()) {
    float a = float(d.scale[0]), b = float(d.scale[1]);
    float k = (b - a) / (data->hi - data->lo), lo = data->lo;
    for (auto& v : data->x) v = a + (v - lo) * k;
    data->lo = a;
    data->hi = b;
  }
  for (auto& [sn, s] : d.splits) {
    int64_t end = s.second < 0 ? data->count : s.first + s.second;
    if (s.first > data->count || end > data->count)
      throw Error(located(location_of(d.node["splits"][sn], file_.path),
                          "datasets." + d.name + ".splits." + sn,
                          "split needs samples up to " + std::to_string(end) + " but " +
                              data->origin + " holds " + std::to_string(data->count)));
  }
  if (!d.class_names.empty())
    data->class_names = d.class_names;
  else if (data->class_names.empty())
    data->class_names = known_class_names(data->origin);
  if (d.transform) {
    d.transform->num_classes = data->num_classes;
    set_transform(data, d.transform);
  }
  d.loaded = data;
  return data;
}

DataSplit Runtime::data(const std::string& ref, const std::string& fallback) {
  std::string ds = ref.substr(0, ref.find('.'));
  std::string split = ref.find('.') == std::string::npos ? "" : ref.substr(ref.find('.') + 1);
  auto it = datasets_.find(ds);
  if (it == datasets_.end()) throw Error("unknown dataset '" + ds + "'");
  DatasetDecl& d = *it->second;
  DataSplit out;
  out.data = load_dataset(d);
  out.name = ref;
  std::string use = split.empty() ? fallback : split;
  bool named_split = !use.empty() && d.splits.count(use);
  if (named_split) {
    auto [skip, take] = d.splits[use];
    // Clamped: a dataset published by a stage may hold fewer samples than its splits name.
    out.begin = std::min(skip, out.data->count);
    out.count =
        take < 0 ? out.data->count - out.begin : std::min(take, out.data->count - out.begin);
    out.name = ds + "." + use;
  } else if (!split.empty()) {
    throw Error("dataset '" + ds + "' has no split '" + split + "'");
  } else if (fallback == "valid") {
    out.count = 0;  // no validation split: no validation
  } else {
    out.count = out.data->count;
  }
  // --subset shortens splits (and datasets without splits); a stage that reads a whole split
  // dataset (e.g. to encode all of it for later stages) still sees every sample.
  if (opt_.subset > 0 && (named_split || d.splits.empty()))
    out.count = std::min(out.count, opt_.subset);
  return out;
}

void Runtime::load_data() {
  for (auto& [name, d] : datasets_) {
    bool used = false;
    for (auto& s : stages_)
      for (auto& ps : registry().get(Kind::Recipe, s->recipe).spec.params)
        if ((ps.name == "data" || ps.name.ends_with("_data")) && s->params.given(ps.name) &&
            s->params.s(ps.name).substr(0, s->params.s(ps.name).find('.')) == name)
          used = true;
    if (used && d->src) load_dataset(*d);
  }
}

void Runtime::publish(const std::string& name, std::shared_ptr<const Dataset> data,
                      const std::string& splits_like) {
  auto it = datasets_.find(name);
  if (it == datasets_.end()) throw Error("dataset '" + name + "' was not declared as published");
  std::lock_guard<std::mutex> lock(it->second->mutex);
  auto src = datasets_.find(splits_like.substr(0, splits_like.find('.')));
  if (src != datasets_.end() && splits_like.find('.') == std::string::npos)
    it->second->splits = src->second->splits;
  it->second->loaded = std::move(data);
}

}  // namespace loom
