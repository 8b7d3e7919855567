#include "output/report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "core/cpu.hpp"
#include "loom/error.hpp"
#include "loom/io.hpp"
#include "stage/run_folder.hpp"
#include "stage/stage_cache.hpp"

namespace fs = std::filesystem;

namespace loom {

namespace {

std::string escape(const std::string& s) {
  std::string o;
  o.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  }
  return o;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string base64(const std::string& in) {
  static const char* k = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = (uint8_t(in[i]) << 16) | (uint8_t(in[i + 1]) << 8) | uint8_t(in[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out += k[(v >> s) & 63];
  }
  if (i < in.size()) {
    uint32_t v = uint8_t(in[i]) << 16;
    if (i + 1 < in.size()) v |= uint8_t(in[i + 1]) << 8;
    out += k[(v >> 18) & 63];
    out += k[(v >> 12) & 63];
    out += i + 1 < in.size() ? k[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string num(double v) {
  char b[32];
  std::snprintf(b, sizeof b, "%.4g", v);
  return b;
}

// 34.5 s, 5 min 12 s, 2 h 03 min.
std::string duration_text(double s) {
  char b[48];
  if (s < 60)
    std::snprintf(b, sizeof b, "%.3g s", s);
  else if (s < 3600)
    std::snprintf(b, sizeof b, "%d min %02d s", int(s / 60), int(s) % 60);
  else
    std::snprintf(b, sizeof b, "%d h %02d min", int(s / 3600), int(s / 60) % 60);
  return b;
}

// Axis labels: short enough for the margin.
std::string tick(double v) {
  char b[32];
  if (std::abs(v) >= 1e6) {
    std::snprintf(b, sizeof b, "%.3gM", v / 1e6);
  } else if (std::abs(v) >= 1e3) {
    std::snprintf(b, sizeof b, "%.3gk", v / 1000);
  } else if (v != 0 && std::abs(v) < 1e-3) {  // 5.25e-4, not 0.000525
    int e = int(std::floor(std::log10(std::abs(v))));
    double m = v / std::pow(10.0, e);
    if (std::abs(m) >= 9.995) {  // rounds up to the next power of ten
      m /= 10;
      ++e;
    }
    std::snprintf(b, sizeof b, "%.3ge%d", m, e);
  } else {
    std::snprintf(b, sizeof b, "%.3g", v);
  }
  return b;
}

// An <img> of a PNG, shown at twice its size (at most 1000 pixels wide), pixels kept sharp.
std::string img_tag(const std::string& png, const std::string& alt, const std::string& attrs) {
  int64_t w = 0;
  if (png.size() > 24)
    w = (int64_t(uint8_t(png[16])) << 24) | (uint8_t(png[17]) << 16) | (uint8_t(png[18]) << 8) |
        uint8_t(png[19]);
  std::string width =
      w > 0 ? " width=\"" + std::to_string(std::min<int64_t>(2 * w, 1000)) + "\"" : "";
  return "<img alt=\"" + escape(alt) + "\"" + width + attrs + " src=\"data:image/png;base64," +
         base64(png) + "\">";
}

// "model name", flags of interest, from /proc/cpuinfo.
std::string machine() {
  std::ifstream in("/proc/cpuinfo");
  std::string line, model;
  while (model.empty() && std::getline(in, line))
    if (line.rfind("model name", 0) == 0) model = line.substr(line.find(':') + 2);
  std::string isa = cpu_isa_text();
  return (model.empty() ? std::string("unknown CPU") : model) + ", " +
         std::to_string(std::thread::hardware_concurrency()) + " cores" +
         (isa.empty() ? "" : " (" + isa + ")");
}

struct Series {
  std::string name;
  std::vector<std::pair<double, double>> points;  // (epoch, value)
};

const char* kColours[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd",
                          "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};

// A line chart on shared axes: x the epoch, y the values, one polyline (and its points) per
// series, a legend under the title.
std::string chart(const std::string& title, const std::vector<Series>& series) {
  double x0 = 1e300, x1 = -1e300, y0 = 1e300, y1 = -1e300;
  for (auto& s : series)
    for (auto [x, y] : s.points) {
      x0 = std::min(x0, x);
      x1 = std::max(x1, x);
      y0 = std::min(y0, y);
      y1 = std::max(y1, y);
    }
  if (x0 > x1) return "";
  if (x1 == x0) x1 = x0 + 1;
  if (y1 == y0) {
    y0 -= std::abs(y0) * 0.1 + 1e-9;
    y1 += std::abs(y1) * 0.1 + 1e-9;
  }
  const double W = 460, H = 260, L = 52, R = 12, T = 34 + 16 * double((series.size() + 2) / 3),
               B = 36;
  auto px = [&](double x) { return L + (x - x0) / (x1 - x0) * (W - L - R); };
  auto py = [&](double y) { return H - B - (y - y0) / (y1 - y0) * (H - T - B); };
  std::ostringstream o;
  o << "<svg class=\"chart\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" role=\"img\" aria-label=\"" << escape(title) << "\">";
  o << "<text x=\"" << W / 2 << "\" y=\"16\" text-anchor=\"middle\" class=\"t\">" << escape(title)
    << "</text>";
  for (size_t i = 0; i < series.size(); ++i) {
    double lx = 10 + double(i % 3) * 150, ly = 32 + 16 * double(i / 3);
    o << "<rect x=\"" << lx << "\" y=\"" << ly - 8 << "\" width=\"10\" height=\"3\" fill=\""
      << kColours[i % 10] << "\"/><text x=\"" << lx + 14 << "\" y=\"" << ly << "\" class=\"l\">"
      << escape(series[i].name) << "</text>";
  }
  o << "<rect x=\"" << L << "\" y=\"" << T << "\" width=\"" << W - L - R << "\" height=\""
    << H - T - B << "\" class=\"frame\"/>";
  for (int k = 0; k <= 4; ++k) {
    double y = y0 + (y1 - y0) * k / 4;
    o << "<text x=\"" << L - 4 << "\" y=\"" << py(y) + 4 << "\" text-anchor=\"end\" class=\"a\">"
      << tick(y) << "</text>";
    o << "<line x1=\"" << L << "\" x2=\"" << W - R << "\" y1=\"" << py(y) << "\" y2=\"" << py(y)
      << "\" class=\"grid\"/>";
  }
  // Whole epochs on x: every one when few, else about eight.
  double step = std::max(1.0, std::ceil((x1 - x0) / 8));
  for (double x = std::ceil(x0); x <= x1 + 1e-9; x += step)
    o << "<text x=\"" << px(x) << "\" y=\"" << H - B + 14
      << "\" text-anchor=\"middle\" class=\"a\">" << tick(x) << "</text>";
  o << "<text x=\"" << (L + W - R) / 2 << "\" y=\"" << H - 6
    << "\" text-anchor=\"middle\" class=\"a\">epoch</text>";
  for (size_t i = 0; i < series.size(); ++i) {
    std::string pts;
    for (auto [x, y] : series[i].points) pts += num(px(x)) + "," + num(py(y)) + " ";
    o << "<polyline class=\"curve\" fill=\"none\" stroke=\"" << kColours[i % 10]
      << "\" stroke-width=\"2\" points=\"" << pts << "\"/>";
    for (auto [x, y] : series[i].points)
      o << "<circle cx=\"" << num(px(x)) << "\" cy=\"" << num(py(y)) << "\" r=\"2.5\" fill=\""
        << kColours[i % 10] << "\"><title>" << escape(series[i].name) << ", epoch " << num(x)
        << ": " << num(y) << "</title></circle>";
  }
  o << "</svg>";
  return o.str();
}

// What the rows of Loom's own grids are.
std::string caption(const std::string& name, bool per_epoch_samples) {
  if (name.rfind("reconstructions", 0) == 0)
    return "<br><small>validation originals over their reconstructions (a denoising "
           "autoencoder's noisy inputs between them)</small>";
  // samples.png is the last of samples/epoch_NNN.png when a training stage keeps them, else a
  // sampling stage's grid.
  if (name == "samples" || (name == "samples.png" && per_epoch_samples))
    return "<br><small>the same latent codes (or noise) every epoch; conditional models: one "
           "class per row</small>";
  if (name.rfind("samples", 0) == 0)
    return "<br><small>drawn by a sampling stage; conditional models: one class per row</small>";
  if (name.rfind("trajectory", 0) == 0)
    return "<br><small>one image from noise (left) to the sample (right)</small>";
  return "";
}

// The grids of a folder of epoch_NNN.png (at most 40 shown, evenly spaced, the last always),
// with a slider.
std::string epoch_grids(const fs::path& dir, const std::string& id) {
  std::vector<fs::path> files;
  for (auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".png") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  if (files.empty()) return "";
  if (files.size() > 40) {
    std::vector<fs::path> kept;
    for (size_t k = 0; k < 40; ++k) kept.push_back(files[k * (files.size() - 1) / 39]);
    files = kept;
  }
  std::ostringstream o;
  o << "<figure class=\"epochs\"><figcaption>" << escape(dir.filename().string())
    << "/ — <span id=\"" << id << "-name\">" << escape(files.back().filename().string())
    << "</span>" << caption(dir.filename().string(), true) << "</figcaption>";
  for (size_t i = 0; i < files.size(); ++i) {
    std::string n = escape(files[i].filename().string());
    o << img_tag(read_all(files[i]), files[i].filename().string(),
                 " id=\"" + id + "-" + std::to_string(i) + "\" data-name=\"" + n + "\"" +
                     (i + 1 == files.size() ? "" : " hidden"));
  }
  if (files.size() > 1)
    o << "<br><input type=\"range\" min=\"0\" max=\"" << files.size() - 1 << "\" value=\""
      << files.size() - 1 << "\" data-grids=\"" << id << "\" aria-label=\"epoch\">";
  o << "</figure>";
  return o.str();
}

}  // namespace

namespace {

// failures.json: stage -> {message, checkpoint}; an empty object when absent or unreadable.
nlohmann::json read_failures(const fs::path& run_dir) {
  fs::path p = run_dir / "failures.json";
  if (!fs::is_regular_file(p)) return nlohmann::json::object();
  nlohmann::json j = nlohmann::json::parse(read_all(p), nullptr, false);
  return j.is_object() ? j : nlohmann::json::object();
}

// A text file written atomically.
void write_text(const std::string& path, const std::string& text) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream o(tmp);
    o << text;
    if (!o.flush()) throw Error(write_failed(path));
  });
}

// failures.json, removed when no stage has failed.
void write_failures(const fs::path& run_dir, const nlohmann::json& j) {
  fs::path p = run_dir / "failures.json";
  if (j.empty())
    fs::remove(p);
  else
    write_text(p.string(), j.dump(2) + "\n");
}

}  // namespace

void record_stage_failure(const std::string& run_dir, const std::string& stage,
                          const std::string& message) {
  nlohmann::json j = read_failures(run_dir);
  fs::path last = fs::path(run_dir) / "checkpoints" / stage / "last.safetensors";
  j[stage] = {{"message", message},
              {"checkpoint", fs::is_regular_file(last) ? last.string() : std::string()}};
  write_failures(run_dir, j);
}

void clear_stage_failure(const std::string& run_dir, const std::string& stage) {
  nlohmann::json j = read_failures(run_dir);
  if (!j.contains(stage)) return;
  j.erase(stage);
  write_failures(run_dir, j);
}

std::string write_report(const ReportInput& in) {
  fs::path dir = fs::path(in.run_dir).lexically_normal();
  if (dir.filename().empty()) dir = dir.parent_path();  // "runs/x/" names the folder x
  // Metrics, by stage, in file order.
  std::map<std::string, std::vector<nlohmann::json>> lines;
  std::vector<std::string> order = in.stages;
  if (fs::is_regular_file(dir / "metrics.jsonl")) {
    std::ifstream m(dir / "metrics.jsonl");
    for (std::string line; std::getline(m, line);) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_discarded() || !j.is_object() || !j.contains("task") || !j["task"].is_string())
        continue;
      std::string t = j["task"];
      if (std::find(order.begin(), order.end(), t) == order.end()) order.push_back(t);
      lines[t].push_back(j);
    }
  }
  nlohmann::json failures = read_failures(dir);
  // Stages recorded as finished (stages.json): done, even those that write no metrics.
  std::map<std::string, StageRecord> finished;
  try {
    finished = read_stage_records(dir.string());
  } catch (const Error&) {
    // A damaged record only loses the "done" of stages without metrics; --resume reports it.
  }
  std::string threads = in.threads;  // else as the stages recorded it (`loom report`)
  for (auto& [stage, r] : finished)
    if (threads.empty() && !r.threads.empty()) threads = r.threads;
  std::ostringstream o;
  std::string name = dir.filename().string();
  o << "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Loom run: "
    << escape(name) << "</title><style>"
    << "body{font-family:sans-serif;margin:24px;max-width:1500px;color:#222}"
    << "h1{font-size:22px}h2{font-size:18px;border-bottom:1px solid #ccc;padding-bottom:4px}"
    << "pre{background:#f6f6f6;padding:8px;overflow:auto;font-size:12px;max-height:420px}"
    << ".charts{display:flex;flex-wrap:wrap;gap:12px}.t{font-size:13px;font-weight:bold}"
    << ".l,.a{font-size:11px}.frame{fill:none;stroke:#999}.grid{stroke:#eee}"
    << "figure{display:inline-block;margin:8px;vertical-align:top}img{image-rendering:pixelated;"
    << "border:1px solid #ddd}.failed{background:#fde8e8;border:1px solid #e99;"
    << "padding:8px}td,th{padding:2px 10px;text-align:left}.ok{color:#2a7}.bad{color:#c22}"
    << "</style></head><body>";
  o << "<h1>Loom run <code>" << escape(name) << "</code></h1>";
  o << "<table><tr><th>Loom</th><td>" << escape(loom_version())
    << "</td></tr><tr><th>machine</th><td>" << escape(machine())
    << "</td></tr><tr><th>threads</th><td>"
    << escape(threads.empty() ? std::string("not recorded") : threads) << "</td></tr>"
    << "<tr><th>folder</th><td>" << escape(fs::absolute(dir).string()) << "</td></tr></table>";
  // Stage table: status and wall time.
  o << "<h2>Stages</h2><table><tr><th>stage</th><th>recipe</th><th>status</th><th>epochs</th>"
    << "<th>wall time</th></tr>";
  for (auto& s : order) {
    // The wall time of the stage's last run as recorded when it finished; for a stage that did
    // not finish, the time its training and validation passes took (a lower bound).
    double seconds = 0;
    int64_t epochs = 0;
    for (auto& j : lines[s]) {
      std::string split = j.value("split", "");
      if ((split == "train" || split == "valid") && j.contains("time_s") && j["time_s"].is_number())
        seconds += j["time_s"].get<double>();
      if (j.contains("epoch") && j["epoch"].is_number_integer())
        epochs = std::max<int64_t>(epochs, j["epoch"].get<int64_t>());
    }
    bool recorded = finished.count(s) && finished[s].seconds >= 0;
    if (recorded) seconds = finished[s].seconds;
    std::string status = failures.contains(s)  ? "<span class=\"bad\">failed</span>"
                         : in.running.count(s) ? "running"
                         : in.reused.count(s)  ? "<span class=\"ok\">done</span> (reused)"
                         : lines.count(s) || finished.count(s) ? "<span class=\"ok\">done</span>"
                                                               : "not run";
    auto r = in.recipes.find(s);
    o << "<tr><td><a href=\"#stage-" << escape(s) << "\">" << escape(s) << "</a></td><td>"
      << escape(r == in.recipes.end() ? "" : r->second) << "</td><td>" << status << "</td><td>"
      << (epochs > 0 ? std::to_string(epochs) : std::string("&mdash;")) << "</td><td>"
      << (seconds > 0 ? (recorded ? "" : "&ge; ") + duration_text(seconds) : "") << "</td></tr>";
  }
  o << "</table>";
  // Per stage: failure, curves.
  static const std::set<std::string> kSkip{"task", "epoch", "step", "split", "time_s", "samples"};
  for (auto& s : order) {
    o << "<h2 id=\"stage-" << escape(s) << "\">Stage <code>" << escape(s) << "</code></h2>";
    if (failures.contains(s) && failures[s].is_object()) {
      auto& f = failures[s];
      o << "<div class=\"failed\"><b>failed:</b><pre>" << escape(f.value("message", std::string()))
        << "</pre>";
      std::string ck = f.value("checkpoint", std::string());
      o << "last good checkpoint: " << (ck.empty() ? "none" : "<code>" + escape(ck) + "</code>")
        << "</div>";
    }
    // (chart, split/key) -> series
    std::map<std::string, std::map<std::string, Series>> charts;
    for (auto& j : lines[s]) {
      if (!j.contains("epoch") || !j["epoch"].is_number()) continue;
      double epoch = j["epoch"].get<double>();
      std::string split = j.value("split", "");
      if (split == "test") continue;
      for (auto& [k, v] : j.items()) {
        if (kSkip.count(k) || !v.is_number()) continue;
        // A GAN's `loss` is its generator's loss again (g_loss): drawn once.
        if (k == "loss" && j.contains("g_loss")) continue;
        std::string c = k.rfind("lr", 0) == 0                ? "learning rate"
                        : k.find("acc") != std::string::npos ? "accuracy"
                        : k.rfind("diversity", 0) == 0       ? "diversity (mean pairwise distance)"
                        : k == "images_per_s"                ? "images per second"
                                                             : "losses";
        std::string sname = c == "learning rate" || c == "images per second" ? k : split + " " + k;
        Series& se = charts[c][sname];
        se.name = sname;
        se.points.push_back({epoch, v.get<double>()});
      }
    }
    o << "<div class=\"charts\">";
    bool any = false;
    for (const char* c : {"losses", "accuracy", "diversity (mean pairwise distance)",
                          "learning rate", "images per second"}) {
      if (!charts.count(c)) continue;
      std::vector<Series> v;
      for (auto& [k, se] : charts[c]) v.push_back(se);
      o << chart(std::string(c) + " — " + s, v);
      any = true;
    }
    o << "</div>";
    if (!any && !failures.contains(s)) o << "<p>No per-epoch figures for this stage.</p>";
    // Test-split figures.
    for (auto& j : lines[s])
      if (j.value("split", "") == "test") {
        o << "<p>test split:";
        for (auto& [k, v] : j.items())
          if (!kSkip.count(k) && v.is_number())
            o << " " << escape(k) << " " << num(v.get<double>());
        o << "</p>";
      }
  }
  // Pictures: top-level PNGs, then folders of per-epoch grids.
  std::vector<fs::path> pngs, folders;
  if (fs::is_directory(dir))
    for (auto& e : fs::directory_iterator(dir)) {
      if (e.is_regular_file() && e.path().extension() == ".png") pngs.push_back(e.path());
      if (e.is_directory() && e.path().filename() != "checkpoints") folders.push_back(e.path());
    }
  std::sort(pngs.begin(), pngs.end());
  std::sort(folders.begin(), folders.end());
  o << "<h2>Pictures</h2>";
  if (pngs.empty() && folders.empty()) o << "<p>This run wrote no pictures.</p>";
  for (auto& p : pngs)
    o << "<figure><figcaption>" << escape(p.filename().string())
      << caption(p.filename().string(), fs::is_directory(p.parent_path() / "samples"))
      << "</figcaption>" << img_tag(read_all(p), p.filename().string(), "") << "</figure>";
  int id = 0;
  for (auto& f : folders) o << epoch_grids(f, std::string(1, 'g') + std::to_string(id++));
  if (!in.summary.empty()) o << "<h2>Models</h2><pre>" << escape(in.summary) << "</pre>";
  if (fs::is_regular_file(dir / "pipeline.yaml"))
    o << "<h2>Pipeline as run</h2><pre>" << escape(read_all(dir / "pipeline.yaml")) << "</pre>";
  // The sliders: show the grid of the chosen epoch.
  o << "<script>document.querySelectorAll('input[data-grids]').forEach(function(r){"
    << "r.addEventListener('input',function(){var id=r.dataset.grids,n=+r.max;"
    << "for(var i=0;i<=n;i++){var "
       "im=document.getElementById(id+'-'+i);if(im)im.hidden=(i!=+r.value);}"
    << "var cur=document.getElementById(id+'-'+r.value);"
    << "document.getElementById(id+'-name').textContent=cur?cur.dataset.name:'';});});</script>";
  o << "</body></html>\n";
  std::string path = (dir / "report.html").string();
  write_text(path, o.str());
  return path;
}

}  // namespace loom
