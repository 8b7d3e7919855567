#include "stage/stage_cache.hpp"

#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "loom/error.hpp"
#include "loom/io.hpp"
#include "loom/rng.hpp"

namespace fs = std::filesystem;

namespace loom {

namespace {

const char* kFile = "stages.json";

nlohmann::json to_json(const StageInputs& in) {
  nlohmann::json j{{"entry", in.entry},     {"models", in.models}, {"datasets", in.datasets},
                   {"after", in.after},     {"seed", in.seed},     {"version", in.version},
                   {"options", in.options}, {"length", in.length}};
  if (!in.plugins.empty()) j["plugins"] = in.plugins;
  return j;
}

StageInputs from_json(const nlohmann::json& j) {
  StageInputs in;
  in.entry = j.at("entry").get<std::string>();
  in.models = j.at("models").get<std::map<std::string, std::string>>();
  in.datasets = j.at("datasets").get<std::map<std::string, std::string>>();
  in.after = j.at("after").get<std::map<std::string, std::string>>();
  in.seed = j.at("seed").get<std::string>();
  in.version = j.at("version").get<std::string>();
  in.options = j.at("options").get<std::string>();
  in.length = j.at("length").get<std::string>();
  if (j.contains("plugins")) in.plugins = j.at("plugins").get<std::map<std::string, std::string>>();
  return in;
}

// The first name whose fingerprint differs between two maps (added or removed counts).
std::string first_difference(const std::map<std::string, std::string>& a,
                             const std::map<std::string, std::string>& b) {
  for (auto& [k, v] : a) {
    auto it = b.find(k);
    if (it == b.end() || it->second != v) return k;
  }
  for (auto& [k, v] : b)
    if (!a.count(k)) return k;
  return "";
}

}  // namespace

std::string fingerprint(const std::string& text) {
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash_string(text));
  return hex;
}

std::string StageInputs::key() const {
  std::ostringstream o;
  o << "entry " << entry << "\nseed " << seed << "\nversion " << version << "\noptions " << options
    << "\n";
  for (auto& [k, v] : models) o << "model " << k << " " << v << "\n";
  for (auto& [k, v] : datasets) o << "dataset " << k << " " << v << "\n";
  for (auto& [k, v] : after) o << "after " << k << " " << v << "\n";
  for (auto& [k, v] : plugins) o << "plugin " << k << " " << v << "\n";
  return fingerprint(o.str());
}

std::string StageInputs::full_key() const { return fingerprint(key() + "\nlength " + length); }

std::map<std::string, StageRecord> read_stage_records(const std::string& run_dir) {
  fs::path p = fs::path(run_dir) / kFile;
  std::map<std::string, StageRecord> out;
  if (!fs::is_regular_file(p)) return out;
  std::ifstream in(p);
  std::stringstream text;
  text << in.rdbuf();
  try {
    nlohmann::json j = nlohmann::json::parse(text.str());
    for (auto& [stage, r] : j.items()) {
      StageRecord rec;
      rec.inputs = from_json(r.at("inputs"));
      rec.finished = r.at("finished").get<std::string>();
      if (r.contains("seconds")) rec.seconds = r.at("seconds").get<double>();
      if (r.contains("threads")) rec.threads = r.at("threads").get<std::string>();
      out[stage] = rec;
    }
  } catch (const nlohmann::json::exception&) {
    throw Error(p.string() +
                ": is damaged (not the record of finished stages Loom writes); remove it to run "
                "every stage again");
  }
  return out;
}

void write_stage_records(const std::string& run_dir,
                         const std::map<std::string, StageRecord>& records) {
  fs::path p = fs::path(run_dir) / kFile;
  if (records.empty()) {
    fs::remove(p);
    return;
  }
  nlohmann::json j = nlohmann::json::object();
  for (auto& [stage, r] : records) {
    j[stage] = {{"finished", r.finished}, {"key", r.inputs.key()}, {"inputs", to_json(r.inputs)}};
    if (r.seconds >= 0) j[stage]["seconds"] = r.seconds;
    if (!r.threads.empty()) j[stage]["threads"] = r.threads;
  }
  std::string text = j.dump(2) + "\n";
  write_atomically(p.string(), [&](const std::string& tmp) {
    std::ofstream o(tmp);
    o << text;
    if (!o.flush()) throw Error(p.string() + ": cannot write the record of finished stages");
  });
}

StageChange what_changed(const StageInputs& now, const StageInputs& before) {
  if (now.seed != before.seed)
    return {"the seed changed (" + before.seed + " -> " + now.seed + ")", true};
  if (std::string d = first_difference(now.datasets, before.datasets); !d.empty())
    return {"dataset '" + d + "' changed", true};
  if (now.options != before.options)
    return {"--subset or the precision changed (" +
                (before.options.empty() ? "none" : before.options) + " -> " +
                (now.options.empty() ? "none" : now.options) + ")",
            true};
  if (std::string a = first_difference(now.after, before.after); !a.empty())
    return {"stage '" + a + "' before it changed", true};
  if (now.entry != before.entry) return {"its pipeline entry changed", false};
  if (std::string m = first_difference(now.models, before.models); !m.empty())
    return {"model '" + m + "' changed", false};
  if (now.version != before.version)
    return {"Loom version changed (" + before.version + " -> " + now.version + ")", false};
  if (std::string p = first_difference(now.plugins, before.plugins); !p.empty())
    return {"plugin library '" + p + "' changed", false};
  return {};
}

std::string utc_now() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace loom
