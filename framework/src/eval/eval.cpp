#include "eval/eval.hpp"

#include <algorithm>
#include <boost/dll/runtime_symbol_info.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>

#include "config/pipeline.hpp"
#include "eval/metrics.hpp"
#include "loom/create.hpp"
#include "loom/dataset_io.hpp"
#include "loom/error.hpp"
#include "loom/io.hpp"
#include "loom/model.hpp"
#include "loom/recipe.hpp"
#include "model/model_set.hpp"
#include "output/safetensors.hpp"
#include "plugin/plugins.hpp"

namespace fs = std::filesystem;

namespace loom::eval {

namespace {

const char* kDefaultReal = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

// The trained classifier: its model, the node whose values are the features, class names.
struct Classifier {
  std::string dir;
  std::unique_ptr<ModelSet> models;
  std::shared_ptr<Model> model;
  int feature_node = -1;
  std::vector<std::string> class_names;
};

std::vector<std::string> read_class_names(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(path + ": cannot read the class names");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

Classifier load_classifier(const std::string& given, const std::string& classes_file) {
  fs::path path = given.empty() ? fs::path(default_classifier_dir()) : fs::path(given);
  if (!fs::exists(path)) {
    if (given.empty())
      throw Error("the classifier of loom eval is not installed (looked for " + path.string() +
                  "); train it with `loom run pipelines/fid_classifier.yaml` and give its run "
                  "folder with --classifier DIR");
    throw Error(given + ": no such classifier run folder or weights file");
  }
  fs::path dir = path, weights = path / "weights.safetensors";
  if (fs::is_regular_file(path)) {
    weights = path;
    dir = path.parent_path();
    while (!dir.empty() && !fs::exists(dir / "pipeline.yaml") && dir != dir.root_path())
      dir = dir.parent_path();
  }
  if (!fs::exists(dir / "pipeline.yaml"))
    throw Error(path.string() + ": not a classifier run folder (no pipeline.yaml)");
  if (!fs::exists(weights)) throw Error(weights.string() + ": no trained classifier weights");
  Classifier c;
  c.dir = path.string();
  PipelineFile file = load_pipeline((dir / "pipeline.yaml").string(), {});
  check_received_plugins(file.plugin_dirs, file.path);
  load_default_plugins(global_registry());
  c.models = std::make_unique<ModelSet>(global_registry(), file.seed, file.path);
  if (!file.root["models"]) throw Error(file.path + ": declares no models");
  c.models->declare(file.root["models"]);
  // The model trained by the first supervised stage, else the only model.
  std::string name;
  if (auto stages = file.root["stages"])
    for (auto s : stages)
      if (s.second["recipe"] && s.second["recipe"].Scalar() == "supervised" && s.second["model"]) {
        name = s.second["model"].Scalar();
        break;
      }
  if (name.empty()) {
    auto names = c.models->names();
    if (names.size() != 1)
      throw Error(file.path + ": no supervised stage names the classifier, and the pipeline has " +
                  std::to_string(names.size()) + " models");
    name = names[0];
  }
  c.model = c.models->get(name);
  TensorFile f = load_safetensors(weights.string());
  for (auto& p : c.model->params())
    for (auto& [qualified, q] : c.models->params()) {
      if (q != p) continue;
      auto it = f.tensors.find(qualified);
      if (it == f.tensors.end())
        throw Error(weights.string() + ": no trained values for '" + qualified + "'");
      if (it->second.size() != p->value.size())
        throw Error(weights.string() + ": tensor '" + qualified + "' has shape " +
                    to_string(it->second.shape()) + " but the classifier's parameter has " +
                    to_string(p->value.shape()));
      p->value.copy_from(it->second);
    }
  if (c.model->num_inputs() != 1 || c.model->num_outputs() != 1)
    throw Error(file.path + ": model '" + name + "' is not a classifier with one input and output");
  // Features: the values entering the last layer (past layers that are identities at inference).
  const auto& nodes = c.model->nodes();
  const ModelNode& out = nodes[size_t(c.model->output_node())];
  if (out.inputs.size() != 1)
    throw Error(file.path + ": the last layer of '" + name + "' must take one input");
  int f_node = out.inputs[0];
  while (nodes[size_t(f_node)].type == "dropout" && nodes[size_t(f_node)].inputs.size() == 1)
    f_node = nodes[size_t(f_node)].inputs[0];
  if (nodes[size_t(f_node)].type == "input")
    throw Error(file.path + ": model '" + name + "' has no hidden layer to take features from");
  c.feature_node = f_node;
  int64_t k = numel(c.model->output_shape());
  std::string names_file = classes_file;
  if (names_file.empty() && fs::exists(dir / "classes.txt"))
    names_file = (dir / "classes.txt").string();
  if (!names_file.empty()) {
    c.class_names = read_class_names(names_file);
    if (int64_t(c.class_names.size()) != k)
      throw Error(names_file + ": holds " + std::to_string(c.class_names.size()) +
                  " class names, but the classifier has " + std::to_string(k) + " classes");
  } else {
    for (int64_t i = 0; i < k; ++i) c.class_names.push_back("class " + std::to_string(i));
  }
  return c;
}

bool npy_is_uint8(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string head(256, '\0');
  in.read(head.data(), std::streamsize(head.size()));
  head.resize(size_t(in.gcount()));
  return head.find("'|u1'") != std::string::npos || head.find("'<u1'") != std::string::npos;
}

std::pair<float, float> parse_range(const std::string& text) {
  auto c = text.find(',');
  try {
    if (c == std::string::npos) throw 0;
    size_t p1 = 0, p2 = 0;
    float lo = std::stof(text.substr(0, c), &p1), hi = std::stof(text.substr(c + 1), &p2);
    if (p1 != c || p2 != text.size() - c - 1 || !(hi > lo)) throw 0;
    return {lo, hi};
  } catch (...) {
    throw Error("--range: expected LOW,HIGH with LOW < HIGH (e.g. -1,1), got '" + text + "'");
  }
}

std::string shape_text(const Shape& s) {
  std::string r = "(N";
  for (auto v : s) r += ", " + std::to_string(v);
  return r + ")";
}

// Runs the classifier over n images of 784 values: features (n x dim) and predicted classes.
void classify(Classifier& c, const float* x, int64_t n, int64_t batch, std::vector<float>& features,
              std::vector<int32_t>& predicted) {
  Model& m = *c.model;
  int64_t dim = numel(m.nodes()[size_t(c.feature_node)].shape), per = numel(m.input_shape());
  int64_t k = numel(m.output_shape());
  features.assign(size_t(n * dim), 0.f);
  predicted.assign(size_t(n), 0);
  for (int64_t first = 0; first < n; first += batch) {
    int64_t rows = std::min(batch, n - first);
    Tensor chunk({rows, per});
    std::copy(x + first * per, x + (first + rows) * per, chunk.data());
    Tensor in = as_model_input(chunk, m);
    RunContext rc;
    rc.first = first;
    m.forward(rc, {&in});
    const Tensor& f = m.value(c.feature_node);
    std::copy(f.data(), f.data() + rows * dim, features.data() + first * dim);
    const Tensor& scores = m.output();
    for (int64_t i = 0; i < rows; ++i) {
      const float* row = scores.data() + i * k;
      predicted[size_t(first + i)] = int32_t(std::max_element(row, row + k) - row);
    }
  }
}

std::vector<int64_t> histogram(const std::vector<int32_t>& predicted, size_t k) {
  std::vector<int64_t> h(k, 0);
  for (auto p : predicted) ++h[size_t(p)];
  return h;
}

std::string with_commas(int64_t v) {
  std::string digits = std::to_string(v < 0 ? -v : v), s = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) s.push_back(',');
    s.push_back(digits[i]);
  }
  return s;
}

}  // namespace

std::string default_classifier_dir() {
  fs::path exe = boost::dll::program_location().string();
  return (exe.parent_path() / ".." / "share" / "loom" / "models" / "fid_classifier")
      .lexically_normal()
      .string();
}

Images read_images(const std::string& path, int64_t limit, const std::string& range) {
  Images im;
  if (!fs::exists(path)) throw Error(path + ": no such file");
  Dataset d = read_dataset(path);
  Shape s = d.sample_shape;
  bool fits = (s.size() == 2 && s[0] == 28 && s[1] == 28) ||
              (s.size() == 3 && s[0] == 1 && s[1] == 28 && s[2] == 28);
  if (!fits)
    throw Error(path + ": images of shape " + shape_text(s) +
                "; expected (N, 28, 28) or (N, 1, 28, 28) grey images like Fashion-MNIST's");
  if (d.count == 0) throw Error(path + ": holds no images");
  im.available = d.count;
  im.count = std::min(limit > 0 ? limit : d.count, d.count);
  const int64_t per = 784;
  im.pixels.assign(d.x.begin(), d.x.begin() + im.count * per);
  if (d.has_labels()) im.labels.assign(d.labels.begin(), d.labels.begin() + im.count);
  float mn = INFINITY, mx = -INFINITY;
  for (int64_t i = 0; i < im.count * per; ++i) {
    float v = im.pixels[size_t(i)];
    if (!std::isfinite(v))
      throw Error(path + ": image " + std::to_string(i / per) + " holds a NaN or infinite value");
    mn = std::min(mn, v);
    mx = std::max(mx, v);
  }
  bool npy = path.size() >= 4 && path.compare(path.size() - 4, 4, ".npy") == 0;
  if (!range.empty()) {
    std::tie(im.lo, im.hi) = parse_range(range);
    im.range_source = "--range";
  } else if (!npy) {
    im.lo = d.lo;
    im.hi = d.hi;
    im.range_source = "file";
  } else if (npy_is_uint8(path)) {
    im.lo = 0;
    im.hi = 255;
    im.range_source = "uint8";
  } else {
    const float tol = 1e-3f;
    if (mn >= -tol && mx <= 1 + tol) {
      im.lo = 0, im.hi = 1;
    } else if (mn >= -1 - tol && mx <= 1 + tol) {
      im.lo = -1, im.hi = 1;
    } else {
      char msg[200];
      std::snprintf(msg, sizeof msg,
                    ": values from %g to %g, neither in [0, 1] nor in [-1, 1]; give their range "
                    "with --range LOW,HIGH",
                    double(mn), double(mx));
      throw Error(path + msg);
    }
    im.range_source = "detected";
  }
  float scale = 1.f / (im.hi - im.lo);
  for (auto& v : im.pixels) v = std::clamp((v - im.lo) * scale, 0.f, 1.f);
  return im;
}

EvalReport run(const EvalOptions& o) {
  auto start = std::chrono::steady_clock::now();
  if (o.samples.empty()) throw Error("no samples file given");
  if (o.n < 2) throw Error("--n: expected at least 2 samples, got " + std::to_string(o.n));
  if (o.k < 1) throw Error("--k: expected at least 1, got " + std::to_string(o.k));
  EvalReport r;
  r.samples = o.samples;
  r.real = o.real.empty() ? kDefaultReal : o.real;
  if (o.real.empty() && !fs::exists(r.real))
    throw Error(r.real +
                ": the Fashion-MNIST test images are missing; install the Debian package " +
                "dataset-fashion-mnist or give the real images with --real PATH");
  Classifier c = load_classifier(o.classifier, o.classes);
  r.classifier = c.dir;
  r.feature_layer = c.model->nodes()[size_t(c.feature_node)].name;
  r.feature_dim = int(numel(c.model->nodes()[size_t(c.feature_node)].shape));
  if (numel(c.model->input_shape()) != 784)
    throw Error(c.dir + ": the classifier takes inputs of shape " +
                to_string(c.model->input_shape()) + ", not 28 x 28 images");

  Images gen = read_images(o.samples, o.n, o.range);
  Images real = read_images(r.real, o.n, "");
  r.n_samples = gen.count;
  r.n_available = gen.available;
  r.n_real = real.count;
  r.range_lo = gen.lo;
  r.range_hi = gen.hi;
  r.range_source = gen.range_source;
  if (gen.count < 2 || real.count < 2)
    throw Error("need at least 2 images in each set (" + std::to_string(gen.count) + " in " +
                o.samples + ", " + std::to_string(real.count) + " in " + r.real + ")");
  size_t k = c.class_names.size();

  std::vector<int32_t> asked = gen.labels;
  bool npy = o.samples.size() >= 4 && o.samples.compare(o.samples.size() - 4, 4, ".npy") == 0;
  if (!gen.labels.empty())
    r.labels = npy ? o.samples.substr(0, o.samples.size() - 4) + ".labels.npy"
                   : "the labels beside " + o.samples;
  if (!o.labels.empty()) {
    if (!fs::exists(o.labels)) throw Error(o.labels + ": no such labels file");
    Tensor l = read_npy(o.labels);
    if (l.size() != gen.available)
      throw Error(o.labels + ": holds " + std::to_string(l.size()) + " labels for " +
                  std::to_string(gen.available) + " images in " + o.samples);
    asked.assign(size_t(gen.count), 0);
    for (int64_t i = 0; i < gen.count; ++i) asked[size_t(i)] = int32_t(l[i]);
    r.labels = o.labels;
  }
  for (size_t i = 0; i < asked.size(); ++i)
    if (asked[i] < 0 || size_t(asked[i]) >= k)
      throw Error(r.labels + ": label " + std::to_string(asked[i]) + " of image " +
                  std::to_string(i) + " is not a class of the classifier (0.." +
                  std::to_string(k - 1) + ")");

  auto lap = [last = std::chrono::steady_clock::now()]() mutable {
    auto now = std::chrono::steady_clock::now();
    double s = std::chrono::duration<double>(now - last).count();
    last = now;
    return s;
  };
  std::vector<float> fg, fr;
  std::vector<int32_t> pg, pr;
  classify(c, gen.pixels.data(), gen.count, o.batch_size, fg, pg);
  classify(c, real.pixels.data(), real.count, o.batch_size, fr, pr);
  int d = r.feature_dim;
  r.features_s = lap();

  r.fd = frechet_distance(gaussian_stats(fg.data(), gen.count, d),
                          gaussian_stats(fr.data(), real.count, d));
  r.fd_s = lap();
  KernelDistance kid = kernel_distance(fg.data(), gen.count, fr.data(), real.count, d,
                                       o.kid_subsets, o.kid_subset_size, o.seed);
  r.kid_mean = kid.mean;
  r.kid_std = kid.std;
  r.kid_subsets = kid.subsets;
  r.kid_subset_size = kid.subset_size;
  r.kid_s = lap();
  if (gen.count <= o.k || real.count <= o.k)
    throw Error("precision and recall need more than k = " + std::to_string(o.k) +
                " images in each set");
  PrecisionRecall p = precision_recall(fr.data(), real.count, fg.data(), gen.count, d, o.k);
  r.precision = p.precision;
  r.recall = p.recall;
  r.k = p.k;
  r.pr_s = lap();

  auto hg = histogram(pg, k), hr = histogram(pr, k);
  r.max_entropy_bits = std::log2(double(k));
  for (size_t i = 0; i < k; ++i) {
    ClassShare s;
    s.name = c.class_names[i];
    s.count = hg[i];
    s.share = double(hg[i]) / double(gen.count);
    s.real_share = double(hr[i]) / double(real.count);
    if (s.share > 0) r.class_entropy_bits -= s.share * std::log2(s.share);
    if (s.share >= 0.02) ++r.classes_present;
    r.classes.push_back(s);
  }
  if (!asked.empty()) {
    r.conditional = true;
    int64_t hits = 0;
    for (int64_t i = 0; i < gen.count; ++i) hits += pg[size_t(i)] == asked[size_t(i)];
    r.class_match = double(hits) / double(gen.count);
  }
  if (!real.labels.empty()) {
    r.real_labelled = true;
    int64_t hits = 0;
    for (int64_t i = 0; i < real.count; ++i) hits += pr[size_t(i)] == real.labels[size_t(i)];
    r.real_accuracy = double(hits) / double(real.count);
  }
  r.time_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return r;
}

std::string format_text(const EvalReport& r) {
  std::string s;
  char line[256];
  auto add = [&](const char* fmt, auto... args) {
    std::snprintf(line, sizeof line, fmt, args...);
    s += line;
  };
  add("samples:    %s (%s of %s images, values read in [%g, %g], %s)\n", r.samples.c_str(),
      with_commas(r.n_samples).c_str(), with_commas(r.n_available).c_str(), double(r.range_lo),
      double(r.range_hi), r.range_source.c_str());
  add("real:       %s (%s images)\n", r.real.c_str(), with_commas(r.n_real).c_str());
  add("features:   %s (%d values) of the classifier %s\n\n", r.feature_layer.c_str(), r.feature_dim,
      r.classifier.c_str());
  add("  %-33s %12.4f   (N = %s vs %s; compare only at equal N)\n", "Fréchet distance (FD)", r.fd,
      with_commas(r.n_samples).c_str(), with_commas(r.n_real).c_str());
  add("  %-32s %12.6f ± %.6f   (%d subsets of %s)\n", "KID (cubic kernel)", r.kid_mean, r.kid_std,
      r.kid_subsets, with_commas(r.kid_subset_size).c_str());
  add("  %-32s %12.4f\n", ("precision (k = " + std::to_string(r.k) + ")").c_str(), r.precision);
  add("  %-32s %12.4f\n", ("recall (k = " + std::to_string(r.k) + ")").c_str(), r.recall);
  add("  %-32s %12.4f   bits (of %.4f); %d of %zu classes hold >= 2%%\n", "class entropy",
      r.class_entropy_bits, r.max_entropy_bits, r.classes_present, r.classes.size());
  if (r.conditional)
    add("  %-32s %11.2f%%   classified as the class asked for (%s)\n", "class match",
        100 * r.class_match, r.labels.c_str());
  if (r.real_labelled)
    add("  %-32s %11.2f%%   on the real images\n", "classifier accuracy", 100 * r.real_accuracy);
  add("\n  %-16s %10s %9s %11s\n", "predicted class", "samples", "share", "real share");
  for (auto& c : r.classes)
    add("  %-16s %10s %8.2f%% %10.2f%%\n", c.name.c_str(), with_commas(c.count).c_str(),
        100 * c.share, 100 * c.real_share);
  add("\ntime: %.1f s (classifier %.1f s, FD %.1f s, KID %.1f s, precision/recall %.1f s)\n",
      r.time_s, r.features_s, r.fd_s, r.kid_s, r.pr_s);
  return s;
}

std::string format_json(const EvalReport& r) {
  nlohmann::ordered_json j;
  j["samples"] = r.samples;
  j["n"] = r.n_samples;
  j["n_available"] = r.n_available;
  j["range"] = {r.range_lo, r.range_hi};
  j["range_source"] = r.range_source;
  j["real"] = r.real;
  j["n_real"] = r.n_real;
  j["classifier"] = r.classifier;
  j["feature_layer"] = r.feature_layer;
  j["feature_dim"] = r.feature_dim;
  j["fd"] = r.fd;
  j["kid"] = {{"mean", r.kid_mean},
              {"std", r.kid_std},
              {"subsets", r.kid_subsets},
              {"subset_size", r.kid_subset_size}};
  j["precision"] = r.precision;
  j["recall"] = r.recall;
  j["k"] = r.k;
  j["class_entropy_bits"] = r.class_entropy_bits;
  j["max_entropy_bits"] = r.max_entropy_bits;
  j["classes_present"] = r.classes_present;
  nlohmann::ordered_json classes = nlohmann::ordered_json::array();
  for (auto& c : r.classes)
    classes.push_back(
        {{"name", c.name}, {"count", c.count}, {"share", c.share}, {"real_share", c.real_share}});
  j["classes"] = classes;
  j["class_match"] = r.conditional ? nlohmann::ordered_json(r.class_match) : nullptr;
  if (r.conditional) j["labels"] = r.labels;
  j["real_accuracy"] = r.real_labelled ? nlohmann::ordered_json(r.real_accuracy) : nullptr;
  j["time_s"] = r.time_s;
  j["times_s"] = {
      {"classifier", r.features_s}, {"fd", r.fd_s}, {"kid", r.kid_s}, {"precision_recall", r.pr_s}};
  return j.dump();
}

}  // namespace loom::eval
