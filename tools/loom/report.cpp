// loom report RUN_DIR: (re)writes the run folder's report.html.
#include "output/report.hpp"

#include <CLI/CLI.hpp>
#include <filesystem>
#include <iostream>

#include "cli.hpp"
#include "loom/error.hpp"
#include "stage/runtime.hpp"

namespace fs = std::filesystem;

namespace loom::cli {

void add_report_command(CLI::App& app) {
  auto dir = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand(
      "report",
      "write RUN_DIR/report.html: the run's curves, grids, models and failures in one page");
  cmd->add_option("run_dir", *dir, "a run folder")->required();
  cmd->callback([dir] {
    fs::path run(*dir);
    if (!fs::is_directory(run)) throw Error(*dir + ": no such folder");
    fs::path yaml = run / "pipeline.yaml";
    if (!fs::is_regular_file(yaml) && !fs::is_regular_file(run / "metrics.jsonl"))
      throw Error(*dir + ": not a run folder (it has no pipeline.yaml and no metrics.jsonl)");
    ReportInput in;
    in.run_dir = *dir;
    if (fs::is_regular_file(yaml)) {
      try {
        RunOptions ro;
        ro.received = true;  // a folder from elsewhere: no plugin it names is loaded
        Runtime rt(yaml.string(), ro);
        in.summary = rt.summary();
        YAML::Node st = rt.pipeline().root["stages"];
        for (auto it = st.begin(); it != st.end(); ++it) {
          in.stages.push_back(it->first.Scalar());
          if (it->second["recipe"]) in.recipes[it->first.Scalar()] = it->second["recipe"].Scalar();
        }
      } catch (const Error& e) {
        std::string why = e.what();
        std::cerr << "warning: the report shows no model summaries: "
                  << why.substr(0, why.find('\n')) << "\n";
      }
    }
    std::cout << write_report(in) << "\n";
  });
}

}  // namespace loom::cli
