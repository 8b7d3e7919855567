// `loom augment` (offline augmentation of a dataset file, folder or pipeline dataset) and
// `loom bench --augment` (images/second of a typical chain on Fashion-MNIST).
#include "loom/augment.hpp"

#include <omp.h>
#include <tbb/task_arena.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "config/yaml_util.hpp"
#include "core/sha256.hpp"
#include "loom/create.hpp"
#include "loom/io.hpp"
#include "output/provenance.hpp"
#include "plugin/plugins.hpp"
#include "stage/runtime.hpp"

namespace fs = std::filesystem;

namespace loom::cli {
namespace {

struct Chain {
  AugmentChain augmenters;
  std::vector<std::string> names;
  YAML::Node yaml;  // the list it was made from
};

// Builds a chain from a YAML list of augmenters (each a name or {type: NAME, ...}); `file`
// and `path` locate errors. An empty list copies (converts) the dataset.
Chain chain_from_yaml(const YAML::Node& list, const std::string& file, const std::string& path) {
  if (!list.IsSequence())
    throw Error(location_of(list, file), path,
                "expected a list of augmenters, e.g. [{type: horizontal_flip}, {type: rotate, "
                "degrees: 15}]");
  Chain c;
  c.yaml = list;
  Spec open;
  open.open = true;
  for (size_t i = 0; i < list.size(); ++i) {
    Params e = make_params(list[i], open, file, path + "[" + std::to_string(i) + "]");
    c.augmenters.push_back(create_from<Augmenter>(global_registry(), e));
    c.names.push_back(list[i].IsScalar() ? list[i].Scalar()
                      : list[i]["type"]  ? list[i]["type"].Scalar()
                                         : "?");
  }
  return c;
}

// --transform: a YAML file, or YAML text (a list, or a mapping with a `transform:` list).
Chain chain_from_option(const std::string& text) {
  std::string file = fs::is_regular_file(text) ? text : "--transform";
  YAML::Node root = file == text ? load_yaml_file(text) : load_yaml_text(text, file);
  if (root.IsMap() && root["transform"])
    return chain_from_yaml(root["transform"], file, "transform");
  return chain_from_yaml(root, file, "transform");
}

std::string thousands(int64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// Progress on stderr: a bar redrawn in place on a terminal, a line every 10% otherwise.
class Progress {
 public:
  explicit Progress(bool enabled) : enabled_(enabled), tty_(::isatty(2)) {}
  void operator()(int64_t done, int64_t total) {
    if (!enabled_ || total <= 0) return;
    auto now = std::chrono::steady_clock::now();
    double secs = std::chrono::duration<double>(now - start_).count();
    double rate = secs > 0 ? double(done) / secs : 0;
    int pct = int(100 * done / total);
    if (tty_) {
      if (done < total && now - last_ < std::chrono::milliseconds(100)) return;
      last_ = now;
      int filled = pct * 30 / 100;
      std::fprintf(stderr, "\r[%s%s] %3d%% %s/%s images, %s images/s ",
                   std::string(size_t(filled), '#').c_str(),
                   std::string(size_t(30 - filled), ' ').c_str(), pct, thousands(done).c_str(),
                   thousands(total).c_str(), thousands(int64_t(rate)).c_str());
      if (done == total) std::fprintf(stderr, "\n");
    } else if (pct / 10 > last_decile_ || done == total) {
      last_decile_ = pct / 10;
      std::fprintf(stderr, "augment: %d%% (%s/%s images, %s images/s)\n", pct,
                   thousands(done).c_str(), thousands(total).c_str(),
                   thousands(int64_t(rate)).c_str());
    }
    std::fflush(stderr);
  }

 private:
  bool enabled_, tty_;
  int last_decile_ = 0;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now(), last_{};
};

// Byte-valued inputs (IDX, PNG) are augmented in [0, 1], the range the pipelines' `scale`
// uses, so that parameters such as gaussian_noise's std mean the same in both places.
void to_unit_range(Dataset& d) {
  if (d.lo == 0.f && d.hi == 255.f) {
    for (auto& v : d.x) v *= 1.f / 255.f;
    d.hi = 1.f;
  }
}

std::atomic<bool> g_interrupted{false};

extern "C" void on_interrupt(int) { g_interrupted = true; }

struct AugmentCommandOptions {
  std::string input, out, transform;
  int64_t copies = 1, seed = 0, threads = 0, subset = 0;
  bool keep_originals = false, preview = false, quiet = false;
};

// What `loom augment INPUT` augments, with which chain and settings.
struct AugmentJob {
  std::shared_ptr<const Dataset> data;
  int64_t begin = 0, count = 0;
  Chain chain;
  YAML::Node chain_yaml;  // the augmenters as given
  int64_t copies = 1;
  bool keep = false;
  uint64_t seed = 0;
  std::string what;
  std::unique_ptr<Runtime> rt;
};

// The given options override the pipeline's (has_copies, has_seed: given on the command line).
AugmentJob prepare_augment(const AugmentCommandOptions& a, bool has_transform, bool has_copies,
                           bool has_seed) {
  const std::string& input = a.input;
  AugmentJob job;
  std::shared_ptr<const Dataset>& data = job.data;
  int64_t &begin = job.begin, &count = job.count;
  Chain& chain = job.chain;
  int64_t& copies = job.copies;
  bool& keep = job.keep;
  uint64_t& seed = job.seed;
  std::string& what = job.what;
  std::unique_ptr<Runtime>& rt = job.rt;
  bool pipeline = input.ends_with(".yaml") || input.ends_with(".yml");
  if (pipeline) {
    // The pipeline's first `augment` stage (its data, transform, copies, keep_originals, seed),
    // else the first dataset with a `transform:` (its train split when declared).
    RunOptions ro;
    ro.subset = a.subset;
    rt = std::make_unique<Runtime>(input, ro);
    const PipelineFile& pf = rt->pipeline();
    seed = pf.seed;
    std::string ref;
    YAML::Node transform;
    std::string tpath;
    if (YAML::Node st = pf.root["stages"])
      for (auto it = st.begin(); it != st.end() && ref.empty(); ++it)
        if (it->second.IsMap() && it->second["recipe"] &&
            it->second["recipe"].Scalar() == "augment") {
          YAML::Node s = it->second;
          ref = s["data"].Scalar();
          transform = s["transform"];
          tpath = "stages." + it->first.Scalar() + ".transform";
          // Checked by the Runtime against the recipe's parameters.
          if (s["copies"]) parse_int(s["copies"], copies);
          if (s["keep_originals"]) parse_bool(s["keep_originals"], keep);
          int64_t stage_seed = 0;
          if (s["seed"] && parse_int(s["seed"], stage_seed)) seed = uint64_t(stage_seed);
          what = "stage " + it->first.Scalar();
        }
    if (ref.empty())
      if (YAML::Node ds = pf.root["datasets"])
        for (auto it = ds.begin(); it != ds.end() && ref.empty(); ++it)
          if (it->second.IsMap() && it->second["transform"]) {
            std::string name = it->first.Scalar();
            ref = name + (it->second["splits"] && it->second["splits"]["train"] ? ".train" : "");
            transform = it->second["transform"];
            tpath = "datasets." + name + ".transform";
            what = "dataset " + ref;
          }
    if (ref.empty() && !has_transform)
      throw Error(pf.path +
                  ": nothing to augment (no `augment` stage and no dataset with a `transform:`; "
                  "or give --transform)");
    if (ref.empty()) {
      if (!pf.root["datasets"] || pf.root["datasets"].size() == 0)
        throw Error(pf.path + ": declares no dataset");
      ref = pf.root["datasets"].begin()->first.Scalar();
      what = "dataset " + ref;
    }
    DataSplit split = rt->data(ref, "");
    data = split.data;
    begin = split.begin;
    count = split.count;
    chain =
        has_transform ? chain_from_option(a.transform) : chain_from_yaml(transform, pf.path, tpath);
    if (!has_transform) job.chain_yaml = transform;
  } else {
    if (!has_transform)
      throw Error(
          "--transform is needed when the input is a dataset (e.g. --transform '[{type: "
          "horizontal_flip}, "
          "{type: rotate, degrees: 15}]', or a YAML file holding that list)");
    chain = chain_from_option(a.transform);
    auto d = std::make_shared<Dataset>(read_dataset(input));
    to_unit_range(*d);
    data = d;
    count = d->count;
    if (a.subset > 0) count = std::min<int64_t>(count, a.subset);
    what = input;
  }
  if (has_transform) job.chain_yaml = chain.yaml;
  if (has_copies) copies = a.copies;
  if (a.keep_originals) keep = true;
  if (has_seed) seed = uint64_t(a.seed);
  if (count == 0) throw Error(what + ": no samples to augment");
  require_per_sample(chain.augmenters, chain.names, "transform");
  return job;
}

// Keeps what augment_dataset hands it, in memory.
class Collect : public DatasetWriter {
 public:
  explicit Collect(int64_t per) : per_(per) {}
  void write(const float* s, int32_t label) override {
    x.insert(x.end(), s, s + per_);
    labels.push_back(label);
  }
  void close() override {}
  std::string describe() const override { return "memory"; }
  std::vector<float> x;
  std::vector<int32_t> labels;

 private:
  int64_t per_;
};

std::string augment_streams(const AugmentJob& job) {
  int64_t outs = job.copies + (job.keep ? 1 : 0);
  return "output i is copy (i mod " + std::to_string(outs) + ")" +
         (job.keep ? " - 1 (-1: the original)" : "") + " of input sample " +
         std::to_string(job.begin) + " + floor(i / " + std::to_string(outs) +
         ") of the input; copy c of input sample k draws from the stream (seed, \"augment\", c, "
         "k)";
}

void write_augment_manifest(const AugmentCommandOptions& a, const AugmentJob& job,
                            const std::string& out, int64_t written) {
  Manifest m;
  m.dataset = out;
  m.count = written;
  m.written_by = "loom augment";
  m.recipe = "augment_command";
  YAML::Node chain(YAML::NodeType::Sequence);
  if (job.chain_yaml.IsSequence())
    for (size_t i = 0; i < job.chain_yaml.size(); ++i)
      chain.push_back(resolved_entry(job.chain_yaml[i], Kind::Augmenter, global_registry()));
  for (YAML::Node e : {m.entry, m.parameters}) {
    e["copies"] = job.copies;
    e["keep_originals"] = job.keep;
    e["seed"] = job.seed;
    e["subset"] = a.subset;
  }
  m.entry["transform"] = YAML::Clone(job.chain_yaml);
  m.parameters["transform"] = chain;
  m.seed = job.seed;
  m.random_streams = augment_streams(job);
  std::string input = fs::absolute(a.input).lexically_normal().string();
  m.extra["input"] = input;
  m.extra["input_sha256"] = fs::is_regular_file(input) ? sha256_file(input) : "";
  write_manifest(m);
}

void augment_command(const AugmentCommandOptions& a, const CLI::App& cmd) {
  std::string out = a.out;
  // Ctrl-C (or a TERM) stops at the next chunk; the writers then remove their temporary files.
  std::signal(SIGINT, on_interrupt);
  std::signal(SIGTERM, on_interrupt);
  std::string budget = set_threads(a.threads, given(cmd, "--threads"));
  load_default_plugins(global_registry());
  AugmentJob job =
      prepare_augment(a, given(cmd, "--transform"), given(cmd, "--copies"), given(cmd, "--seed"));
  const Dataset* data = job.data.get();
  const int64_t begin = job.begin, count = job.count, copies = job.copies;
  const bool keep = job.keep;
  const uint64_t seed = job.seed;
  const std::string& what = job.what;
  const Chain& chain = job.chain;
  std::string names;
  for (auto& n : chain.names) names += (names.empty() ? "" : ", ") + n;
  if (names.empty()) names = "none";

  if (a.preview) {
    if (!out.ends_with(".png"))
      throw Error(out + ": --preview writes a PNG grid; give --out NAME.png");
    write_augment_preview(out, *data, begin, count, chain.augmenters, chain.names, seed);
    std::cout << "preview of " << what << ": " << std::min<int64_t>(8, count)
              << " rows; columns: original, " << names << ", whole chain -> " << out << "\n";
    return;
  }

  AugmentOptions o;
  o.cancel = &g_interrupted;
  o.copies = copies;
  o.keep_originals = keep;
  o.seed = seed;
  Progress progress(!a.quiet);
  o.progress = [&](int64_t done, int64_t total) { progress(done, total); };
  if (!a.quiet)
    std::cout << "augment: " << what << " (" << thousands(count) << " x "
              << to_string(data->sample_shape) << "), " << copies
              << (copies == 1 ? " copy" : " copies") << (keep ? " + originals" : "") << ", seed "
              << seed << "\ntransform: " << names << "\n"
              << budget << std::endl;
  auto writer =
      DatasetWriter::open(out, data->sample_shape, data->lo, data->hi, data->has_labels());
  AugmentStats st = augment_dataset(*data, begin, count, chain.augmenters, o, {writer.get()});
  writer->close();
  write_augment_manifest(a, job, out, st.written);
  std::cout << "wrote " << thousands(st.written) << " images (" << thousands(st.inputs)
            << " inputs) in " << std::to_string(st.seconds).substr(0, 5) << " s, "
            << thousands(st.seconds > 0 ? int64_t(double(st.written) / st.seconds) : 0)
            << " images/s: " << writer->describe() << std::endl;
}

}  // namespace

void regenerate_augment(const nlohmann::json& manifest, const std::string& where, int64_t index,
                        const std::string& out) {
  load_default_plugins(global_registry());
  AugmentCommandOptions a;
  const nlohmann::json& e = manifest.at("entry");
  a.input = manifest.at("input").get<std::string>();
  std::string recorded = manifest.value("input_sha256", "");
  if (!recorded.empty()) {
    if (!fs::is_regular_file(a.input))
      throw Error(where + ": the input " + a.input + " is gone; regenerating needs it");
    if (sha256_file(a.input) != recorded)
      throw Error(where + ": the input " + a.input +
                  " changed since the dataset was written (its SHA-256 differs)");
  }
  YAML::Emitter chain;
  chain << YAML::Flow << json_to_yaml(e.at("transform"));
  a.transform = chain.c_str();
  a.copies = std::stoll(e.at("copies").get<std::string>());
  a.keep_originals = e.at("keep_originals").get<std::string>() == "true";
  a.seed = int64_t(std::stoull(e.at("seed").get<std::string>()));
  a.subset = std::stoll(e.at("subset").get<std::string>());
  AugmentJob job = prepare_augment(a, true, true, true);
  int64_t outs = job.copies + (job.keep ? 1 : 0), total = job.count * outs;
  if (index >= total)
    throw Error(where + ": --index " + std::to_string(index) + " is past the " +
                std::to_string(total) + " images written (0.." + std::to_string(total - 1) + ")");
  AugmentOptions o;
  o.copies = job.copies;
  o.keep_originals = job.keep;
  o.seed = job.seed;
  int64_t per = numel(job.data->sample_shape);
  Collect one(per);
  augment_dataset(*job.data, job.begin + index / outs, 1, job.chain.augmenters, o, {&one});
  auto w = DatasetWriter::open(out, job.data->sample_shape, job.data->lo, job.data->hi,
                               job.data->has_labels());
  int64_t j = index % outs;
  w->write(one.x.data() + j * per, one.labels[size_t(j)]);
  w->close();
}

void add_augment_command(CLI::App& app) {
  auto o = std::make_shared<AugmentCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "augment", "write augmented copies of a dataset (IDX, .npy, PNG folder) or a pipeline's");
  cmd->add_option("INPUT", o->input,
                  "a dataset, or a pipeline (its augment stage, else its dataset with a transform)")
      ->required()
      ->type_name("");
  cmd->add_option("--out", o->out,
                  "the dataset to write (.npy, IDX name, DIR/), or with "
                  "--preview a .png")
      ->required()
      ->type_name("PATH");
  cmd->add_option("--transform", o->transform,
                  "the augmenters: a YAML list such as '[{type: rotate, degrees: 15}]', or a file")
      ->type_name("YAML_OR_FILE")
      ->default_str("the pipeline's; required for a dataset");
  add_non_negative(*cmd, "--copies", o->copies, "augmented copies of every image",
                   "the stage's, else 1");
  cmd->add_flag("--keep-originals", o->keep_originals, "also write every original image");
  add_non_negative(*cmd, "--seed", o->seed, "the seed; the output depends on it alone",
                   "the pipeline's, else 0");
  add_positive(*cmd, "--subset", o->subset, "augment only the first N images", "every image");
  add_threads(*cmd, o->threads);
  cmd->add_flag("--preview", o->preview,
                "write a PNG grid of what each augmenter does instead of a dataset");
  cmd->add_flag("--quiet", o->quiet, "no progress, only the summary");
  cmd->callback([o, cmd] { augment_command(*o, *cmd); });
}

int bench_augment(const AugmentBench& a) {
  int cores = omp_get_num_procs();
  int threads = a.threads > 0 ? int(a.threads) : cores;
  std::string budget = set_threads(a.threads, a.threads > 0);
  load_default_plugins(global_registry());
  std::string dir = "/usr/share/datasets/fashion-mnist/";
  std::string images = dir + "train-images-idx3-ubyte.gz";
  if (!fs::exists(images))
    throw Error(
        images +
        ": not found (install the dataset-fashion-mnist package for `loom bench --augment`)");
  Dataset d = read_idx(images);
  to_unit_range(d);
  const char* kChain =
      "[{type: horizontal_flip}, {type: rotate, degrees: 15}, {type: translate, fraction: 0.1},"
      " {type: gaussian_noise, std: 0.05}, {type: cutout, p: 0.5}]";
  Chain chain = chain_from_yaml(YAML::Load(kChain), "bench", "transform");
  int64_t windows = a.windows, per_window = std::min<int64_t>(a.images, d.count);
  auto measure = [&](int t) {
    std::vector<double> rates;
    tbb::task_arena arena(t);
    arena.execute([&] {
      AugmentOptions o;
      o.seed = 1;
      augment_dataset(d, 0, std::min<int64_t>(per_window, 5000), chain.augmenters, o,
                      {});  // warm-up
      for (int64_t w = 0; w < windows; ++w) {
        o.seed = uint64_t(w + 2);
        int64_t first = (w * per_window) % (d.count - per_window + 1);
        AugmentStats st = augment_dataset(d, first, per_window, chain.augmenters, o, {});
        rates.push_back(double(st.written) / st.seconds);
      }
    });
    return rates;
  };
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n == 0 ? 0.0 : n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  };
  std::vector<double> one = measure(1);
  std::vector<double> many = threads > 1 ? measure(threads) : one;
  double m1 = median(one), mn = median(many);
  if (a.json) {
    nlohmann::ordered_json j;
    j["bench"] = "augment";
    j["chain"] = "horizontal_flip, rotate 15, translate 0.1, gaussian_noise 0.05, cutout p 0.5";
    j["dataset"] = "fashion-mnist train";
    j["threads"] = threads;
    j["images_per_s"] = mn;
    j["images_per_s_1_thread"] = m1;
    j["windows"] = many;
    j["windows_1_thread"] = one;
    j["images_per_window"] = per_window;
    std::cout << j.dump() << std::endl;
  } else {
    std::printf(
        "augment (flip, rotate 15, translate 0.1, noise 0.05, cutout) on Fashion-MNIST:\n"
        "  1 thread:  %.0f images/s\n  %d threads: %.0f images/s (x%.2f)\n"
        "  median of %lld windows of %lld images after a warm-up\n%s\n",
        m1, threads, mn, m1 > 0 ? mn / m1 : 0.0, (long long)windows, (long long)per_window,
        budget.c_str());
  }
  return 0;
}

}  // namespace loom::cli
