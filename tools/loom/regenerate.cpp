// `loom regenerate MANIFEST --index I`: makes sample I of a generated dataset again, alone, from
// the provenance manifest written beside it (output/provenance.hpp), and compares it with the
// dataset's own sample I byte for byte.
#include <CLI/CLI.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "core/sha256.hpp"
#include "loom/dataset_io.hpp"
#include "output/provenance.hpp"
#include "stage/run_folder.hpp"
#include "stage/trained_run.hpp"

namespace fs = std::filesystem;

namespace loom::cli {

void regenerate_augment(const nlohmann::json& manifest, const std::string& where, int64_t index,
                        const std::string& out);

namespace {

struct RegenerateOptions {
  std::string manifest, out;
  int64_t index = 0, threads = 0;
};

nlohmann::json read_manifest(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": no such manifest (a dataset's is DATASET.manifest.json)");
  nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw Error(path + ": not a provenance manifest (it is not a JSON object)");
  if (j.value("manifest", "") != kManifestFormat)
    throw Error(path + ": not a provenance manifest of this Loom (\"manifest\" is not \"" +
                std::string(kManifestFormat) + "\")");
  for (const char* key : {"dataset", "count", "recipe", "entry"})
    if (!j.contains(key)) throw Error(path + ": the manifest has no \"" + std::string(key) + "\"");
  if (!j["count"].is_number_integer() || !j["entry"].is_object() || !j["recipe"].is_string() ||
      !j["dataset"].is_string())
    throw Error(path +
                ": the manifest's \"count\", \"recipe\", \"dataset\" or \"entry\" is malformed");
  return j;
}

// A recipe run again in its run folder with only_index: the pipeline and weights must be those
// that made the dataset.
void regenerate_in_run(const nlohmann::json& m, const std::string& where, int64_t index,
                       const std::string& out) {
  if (!m.contains("run") || !m["run"].is_string())
    throw Error(where + ": the manifest names no run folder (\"run\")");
  std::string run_dir = m["run"];
  fs::path pipeline = fs::path(run_dir) / "pipeline.yaml";
  if (!fs::exists(pipeline))
    throw Error(where + ": the run folder " + run_dir + " that made the dataset is gone");
  if (m.contains("pipeline_sha256") && sha256_file(pipeline.string()) != m["pipeline_sha256"])
    throw Error(where + ": " + pipeline.string() +
                " changed since the dataset was written (its SHA-256 differs from the manifest's)");
  std::string checkpoint = m.value("checkpoint", "");
  TrainedRun run =
      load_trained_run(checkpoint.empty() || !fs::exists(checkpoint) ? run_dir : checkpoint);
  YAML::Node entry = json_to_yaml(m["entry"]);
  bool ema = !entry["ema"] || entry["ema"].as<std::string>() == "true";
  if (m.contains("weights_sha256") && m["weights_sha256"].is_object())
    for (auto& [name, hash] : m["weights_sha256"].items()) {
      auto model = run.model(name);
      AveragedWeights averaged(*model, ema);
      if (weights_sha256(*model) != hash)
        throw Error(where + ": the weights of model '" + name + "' in " + run.weights +
                    " are not those that made the dataset (their SHA-256 differs from the "
                    "manifest's): a later stage or run changed them");
    }
  entry["only_index"] = index;
  entry["write"] = fs::absolute(out).string();
  run.runtime->run_recipe("regenerate", m["recipe"].get<std::string>(), entry, where);
}

void regenerate_command(const RegenerateOptions& o, const CLI::App& cmd) {
  nlohmann::json m = read_manifest(o.manifest);
  int64_t count = m["count"];
  if (o.index >= count)
    throw UsageError("--index: " + o.manifest + " describes " + std::to_string(count) +
                     " samples (0.." + std::to_string(count - 1) + "), so no sample " +
                     std::to_string(o.index));
  // The thread count the dataset was made with: oneDNN's kernels may round differently with
  // another.
  int64_t threads = given(cmd, "--threads") ? o.threads : m.value("threads", int64_t(0));
  set_threads(threads, true);
  fs::path dataset = fs::path(m["dataset"].get<std::string>());
  if (dataset.is_relative()) dataset = fs::path(o.manifest).parent_path() / dataset;
  // By default, beside nothing of the run: in the current folder, in the dataset's own format
  // (the comparison is of stored bytes: an IDX holds bytes, a .npy floats).
  std::string out = o.out;
  if (out.empty()) {
    std::string i = std::to_string(o.index);
    if (fs::is_directory(dataset))
      out = dataset.filename().string() + "." + i + "/";
    else if (dataset.extension() == ".npy")
      out = dataset.stem().string() + "." + i + ".npy";
    else
      out = dataset.filename().string() + "." + i + ".idx";
  }
  std::string recipe = m["recipe"];
  if (recipe == "augment_command")
    regenerate_augment(m, o.manifest, o.index, out);
  else
    regenerate_in_run(m, o.manifest, o.index, out);

  // The comparison with the dataset's own sample.
  if (!fs::exists(dataset)) {
    std::cout << "sample " << o.index << " written to " << out << " (" << dataset.string()
              << " is not there to compare with)\n";
    return;
  }
  Dataset made = read_dataset(out), whole = read_dataset(dataset.string());
  if (whole.count != count)
    throw Error(dataset.string() + ": holds " + std::to_string(whole.count) +
                " samples but the manifest says " + std::to_string(count) +
                " (the dataset changed since it was written)");
  int64_t per = numel(whole.sample_shape);
  if (made.count != 1 || numel(made.sample_shape) != per)
    throw Error(out + ": regenerated a sample of shape " + to_string(made.sample_shape) +
                " for a dataset of " + to_string(whole.sample_shape));
  const float* a = made.sample(0);
  const float* b = whole.sample(o.index);
  int64_t differ = 0;
  for (int64_t k = 0; k < per; ++k) differ += std::memcmp(a + k, b + k, sizeof(float)) != 0;
  bool label_differs =
      whole.has_labels() && made.has_labels() && whole.labels[size_t(o.index)] != made.labels[0];
  if (differ || label_differs)
    throw Error("sample " + std::to_string(o.index) + " made again (" + out + ") differs from " +
                dataset.string() + "'s in " + std::to_string(differ) + " of " +
                std::to_string(per) + " values" + (label_differs ? " and in its label" : "") +
                ": the run, the weights or the machine's arithmetic differ from the manifest's");
  std::cout << "sample " << o.index << " of " << dataset.string() << " made again in " << out
            << ": identical (" << per << " values"
            << (whole.has_labels() ? ", label " + std::to_string(whole.labels[size_t(o.index)])
                                   : std::string())
            << ")\n";
}

}  // namespace

void add_regenerate_command(CLI::App& app) {
  auto o = std::make_shared<RegenerateOptions>();
  CLI::App* cmd = app.add_subcommand(
      "regenerate",
      "make sample I of a generated dataset again, alone, from its provenance manifest, and "
      "check it byte for byte");
  cmd->add_option("MANIFEST", o->manifest, "DATASET.manifest.json, written beside the dataset")
      ->required()
      ->type_name("");
  add_non_negative(*cmd, "--index", o->index, "the sample to make again", "0")->required();
  cmd->add_option("--out", o->out, "where to write it (a one-sample dataset: .npy, IDX name)")
      ->type_name("PATH")
      ->default_str("DATASET_NAME.I.npy in the current folder");
  add_threads(*cmd, o->threads);
  cmd->callback([o, cmd] { regenerate_command(*o, *cmd); });
}

}  // namespace loom::cli
